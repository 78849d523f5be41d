//! The admin web UI and its endpoints, under `admin.handler_prefix` when
//! `admin.enabled`: `/admin/init` (is this browser logged in?), `POST /admin/auth`
//! (form field `password` → `{"token"}`, 400 on a wrong password, 429 while the
//! address is throttled), `POST /admin/api` (the legacy method/params API behind
//! `Authorization: token <t>`), and the static UI (`ui.rs`), whose assets are compiled
//! into the binary. Every response carries a Content-Security-Policy that allows only
//! this origin's own script and style.
//!
//! Tokens travel only in the `Authorization` header, never in a URL. This module owns
//! no API method: `/admin/api` runs `crate::api::legacy`, so what an admin can do is
//! exactly what the server API can.

mod throttle;
mod token;
mod ui;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::node::Node;

use self::throttle::LoginThrottle;

/// Content-Security-Policy of every admin response: script, style and fetches from
/// this origin only; no inline script, no plugins, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Largest `/admin/auth` body (as Centrifugo).
const AUTH_BODY_LIMIT: usize = 1 << 20;

/// The admin routes; empty unless `admin.enabled`. Logs a warning when
/// `admin.insecure` is on, or when nobody could log in.
pub fn router(node: &Arc<Node>) -> Router<Arc<Node>> {
    let c = &node.config.admin;
    if !c.enabled {
        return Router::new();
    }
    if c.insecure {
        tracing::warn!("admin.insecure is on: the admin UI and /admin/api serve anyone without a login");
    } else if c.password.is_empty() || c.secret.is_empty() {
        tracing::warn!("admin.enabled but admin.password or admin.secret is empty: nobody can log in");
    }
    let p = c.handler_prefix.as_str();
    let throttle = Arc::new(LoginThrottle::new(c.max_failed_logins, c.login_window.std()));
    let api = Router::new()
        .route(&format!("{p}/admin/api"), post(api))
        .route_layer(middleware::from_fn_with_state(node.clone(), require_token))
        .layer(DefaultBodyLimit::max(node.config.http_api.max_request_body_size));
    Router::new()
        .route(&format!("{p}/admin/init"), any(init))
        .route(&format!("{p}/admin/auth"), post(auth).layer(DefaultBodyLimit::max(AUTH_BODY_LIMIT)))
        .layer(Extension(throttle))
        .merge(api)
        .merge(ui::router(p))
        .layer(middleware::map_response(security_headers))
}

/// The token of `Authorization: token <t>` (scheme case-insensitive).
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, t) = v.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("token").then(|| t.trim())
}

fn authenticated(node: &Node, headers: &HeaderMap) -> bool {
    let c = &node.config.admin;
    c.insecure || presented_token(headers).is_some_and(|t| token::verify(c, t))
}

/// Middleware: 401 before any body is read unless the request carries a valid token.
async fn require_token(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    if !authenticated(&node, req.headers()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(req).await
}

/// `/admin/init` → `{"insecure","edition","authenticated"}`.
async fn init(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    let insecure = node.config.admin.insecure;
    Json(json!({"insecure": insecure, "edition": "oss", "authenticated": authenticated(&node, &headers)}))
        .into_response()
}

#[derive(Deserialize)]
struct AuthForm {
    #[serde(default)]
    password: String,
}

/// `POST /admin/auth`: a form-urlencoded `password` → `200 {"token"}`; wrong or
/// missing → 400; while the client address is throttled → 429 with `Retry-After`.
async fn auth(
    State(node): State<Arc<Node>>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    req: Request,
) -> Response {
    let c = &node.config.admin;
    let addr = client_ip(&req);
    if let Err(wait) = throttle.attempt(addr, Instant::now()) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        tracing::warn!(%addr, "admin login refused: too many failed attempts");
        let mut r = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return r;
    }
    let given = match Form::<AuthForm>::from_request(req, &()).await {
        Ok(Form(f)) => f.password,
        Err(_) => String::new(),
    };
    match token::password_matches(c, &given).then(|| token::issue(c)).flatten() {
        Some(t) => {
            throttle.succeeded(addr);
            Json(json!({"token": t})).into_response()
        }
        None => {
            tracing::info!(%addr, "admin login failed");
            (StatusCode::BAD_REQUEST, "Bad Request").into_response()
        }
    }
}

/// The peer's address as the server's accept loop recorded it; unknown peers (tests
/// calling the router directly) share one throttle entry.
fn client_ip(req: &Request) -> IpAddr {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// `POST /admin/api`: the legacy API (the token was checked by `require_token`).
async fn api(State(node): State<Arc<Node>>, body: Bytes) -> Response {
    if node.is_shutting_down() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match crate::api::legacy(&node, &body).await {
        Ok(out) => ([(header::CONTENT_TYPE, "application/json")], out).into_response(),
        Err(()) => crate::api::Undecodable::legacy().into_response(),
    }
}

/// CSP and companions on every admin response; API answers are never cached.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests;
