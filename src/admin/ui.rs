//! The admin UI's static files, compiled into the binary (plain HTML, CSS and
//! JavaScript: no build step, no CDN). `<prefix>/` serves the page; `<prefix>`
//! without the slash redirects there so the page's relative URLs resolve under the
//! prefix.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::node::Node;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

pub(super) fn router(prefix: &str) -> Router<Arc<Node>> {
    let mut r = Router::new()
        .route(&format!("{prefix}/"), get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(&format!("{prefix}/app.js"), get(|| asset("text/javascript; charset=utf-8", APP_JS)))
        .route(&format!("{prefix}/app.css"), get(|| asset("text/css; charset=utf-8", APP_CSS)))
        .route(&format!("{prefix}/favicon.svg"), get(|| asset("image/svg+xml", FAVICON_SVG)));
    if !prefix.is_empty() {
        let to = format!("{prefix}/");
        r = r.route(prefix, get(move || async move { Redirect::permanent(&to) }));
    }
    r
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
