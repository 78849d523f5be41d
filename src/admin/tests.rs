//! Router tests of the admin endpoints: login, throttling, token checks, the API
//! behind the token, the embedded UI and its security headers.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::config::Config;

const PASSWORD: &str = "admin-password";
const SECRET: &str = "admin-secret";

fn config(patch: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    c.admin.enabled = true;
    c.admin.password = PASSWORD.into();
    c.admin.secret = SECRET.into();
    c.admin.max_failed_logins = 3;
    patch(&mut c);
    c
}

fn admin_app(c: Config) -> Router {
    let node = Node::new(c).unwrap();
    crate::server::app(&node)
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec())
}

fn login_request(prefix: &str, password: &str) -> Request<Body> {
    Request::post(format!("{prefix}/admin/auth"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("password={password}")))
        .unwrap()
}

async fn login(app: &Router, password: &str) -> (StatusCode, Option<String>) {
    let (status, _, body) = send(app, login_request("", password)).await;
    let token = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["token"].as_str().map(String::from));
    (status, token)
}

fn api_request(prefix: &str, auth: Option<&str>, body: Value) -> Request<Body> {
    let mut b = Request::post(format!("{prefix}/admin/api"));
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

fn info() -> Value {
    json!({"method": "info", "params": {}})
}

#[tokio::test]
async fn login_issues_a_token_that_opens_the_api() {
    let app = admin_app(config(|_| {}));
    let (status, token) = login(&app, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let token = token.unwrap();
    let (status, headers, body) = send(&app, api_request("", Some(&format!("token {token}")), info())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["result"]["nodes"].as_array().unwrap().len(), 1, "{reply}");
    // The scheme is case-insensitive, as Centrifugo's.
    let (status, _, _) = send(&app, api_request("", Some(&format!("Token {token}")), info())).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn wrong_missing_or_unconfigured_password_is_400() {
    let app = admin_app(config(|_| {}));
    assert_eq!(login(&app, "nope").await, (StatusCode::BAD_REQUEST, None));
    let (status, _, _) = send(&app, Request::post("/admin/auth").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no form at all");
    let (status, _, _) = send(&app, Request::get("/admin/auth").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    for unset in [config(|c| c.admin.password.clear()), config(|c| c.admin.secret.clear())] {
        assert_eq!(login(&admin_app(unset), "").await.0, StatusCode::BAD_REQUEST);
    }
    let app = admin_app(config(|c| c.admin.secret.clear()));
    assert_eq!(login(&app, PASSWORD).await.0, StatusCode::BAD_REQUEST, "no secret: no token");
}

#[tokio::test]
async fn failed_logins_are_throttled_even_for_the_right_password() {
    let app = admin_app(config(|_| {}));
    for _ in 0..3 {
        assert_eq!(login(&app, "guess").await.0, StatusCode::BAD_REQUEST);
    }
    let (status, headers, _) = send(&app, login_request("", PASSWORD)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn api_refuses_missing_forged_foreign_and_url_tokens() {
    let app = admin_app(config(|_| {}));
    let (_, token) = login(&app, PASSWORD).await;
    let token = token.unwrap();
    let other = token::issue(&config(|c| c.admin.secret = "another-secret".into()).admin).unwrap();
    let mut forged = token.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    for auth in [
        None,
        Some("token".to_string()),
        Some(format!("token {forged}")),
        Some(format!("token {other}")),
        Some(format!("Bearer {token}")),
        Some(format!("apikey {token}")),
    ] {
        let (status, _, body) = send(&app, api_request("", auth.as_deref(), info())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(body.is_empty());
    }
    // A token in the query string is never accepted.
    let req = Request::post(format!("/admin/api?token={token}")).body(Body::from(info().to_string())).unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let c = config(|_| {});
    let expired = {
        let claims = json!({"sub": "admin", "aud": "rotor-admin", "iat": 1, "exp": 2});
        crate::auth::sign_hs256(&claims, SECRET)
    };
    let app = admin_app(c);
    let (status, _, _) = send(&app, api_request("", Some(&format!("token {expired}")), info())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_errors_and_methods() {
    let app = admin_app(config(|_| {}));
    let auth = format!("token {}", login(&app, PASSWORD).await.1.unwrap());
    let (status, _, _) = send(&app, api_request("", Some(&auth), json!({"method": "nope"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let req = Request::post("/admin/api").header(header::AUTHORIZATION, &auth).body(Body::from("{")).unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::BAD_REQUEST);
    let req = Request::get("/admin/api").header(header::AUTHORIZATION, &auth).body(Body::empty()).unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::METHOD_NOT_ALLOWED);
    // A blank connections request is refused with 107, as on /api.
    let (_, _, body) = send(&app, api_request("", Some(&auth), json!({"method": "connections", "params": {}}))).await;
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["error"]["code"], 107, "{reply}");
    let bad = json!({"method": "connections", "params": {"label_filter": {"op": "and", "nodes": [{"key": "a", "cmp": "zz"}]}}});
    let (_, _, body) = send(&app, api_request("", Some(&auth), bad)).await;
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert!(reply["error"]["message"].as_str().unwrap().starts_with("label_filter"), "{reply}");
}

#[tokio::test]
async fn init_reports_authentication() {
    let app = admin_app(config(|_| {}));
    let init = |auth: Option<String>| {
        let mut b = Request::get("/admin/init");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).unwrap()
    };
    let (_, _, body) = send(&app, init(None)).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"insecure": false, "edition": "oss", "authenticated": false})
    );
    let token = login(&app, PASSWORD).await.1.unwrap();
    let (_, _, body) = send(&app, init(Some(format!("token {token}")))).await;
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["authenticated"], true);
}

#[tokio::test]
async fn insecure_needs_no_token() {
    let app = admin_app(config(|c| c.admin.insecure = true));
    let (status, _, _) = send(&app, api_request("", None, info())).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, body) = send(&app, Request::get("/admin/init").body(Body::empty()).unwrap()).await;
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["authenticated"], true);
    // Not insecure by default, and the http_api's insecure flag does not open it.
    let app = admin_app(config(|c| c.http_api.insecure = true));
    assert_eq!(send(&app, api_request("", None, info())).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn ui_is_embedded_with_a_strict_csp() {
    let app = admin_app(config(|_| {}));
    for (path, kind) in [("/", "text/html"), ("/app.js", "text/javascript"), ("/app.css", "text/css")] {
        let (status, headers, body) = send(&app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind), "{path}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!body.is_empty());
    }
    let (_, _, html) = send(&app, Request::get("/").body(Body::empty()).unwrap()).await;
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains(r#"<label for="password">Password</label>"#));
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style");
    let (_, headers, _) = send(&app, api_request("", None, info())).await;
    assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY), "API answers carry the CSP too");
}

#[tokio::test]
async fn handler_prefix_moves_everything() {
    let app = admin_app(config(|c| c.admin.handler_prefix = "/ui".into()));
    let (status, headers, _) = send(&app, Request::get("/ui").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/ui/");
    assert_eq!(send(&app, Request::get("/ui/").body(Body::empty()).unwrap()).await.0, StatusCode::OK);
    assert_eq!(send(&app, Request::get("/").body(Body::empty()).unwrap()).await.0, StatusCode::NOT_FOUND);
    let (status, _, body) = send(&app, login_request("/ui", PASSWORD)).await;
    assert_eq!(status, StatusCode::OK);
    let token: Value = serde_json::from_slice(&body).unwrap();
    let auth = format!("token {}", token["token"].as_str().unwrap());
    assert_eq!(send(&app, api_request("/ui", Some(&auth), info())).await.0, StatusCode::OK);
}

#[tokio::test]
async fn disabled_serves_nothing() {
    let app = admin_app(config(|c| c.admin.enabled = false));
    assert_eq!(send(&app, Request::get("/").body(Body::empty()).unwrap()).await.0, StatusCode::NOT_FOUND);
    assert_eq!(login(&app, PASSWORD).await.0, StatusCode::NOT_FOUND);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs_of_router(c: Config) -> String {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    let node = Node::new(c).unwrap();
    tracing::subscriber::with_default(subscriber, || drop(router(&node)));
    String::from_utf8(out.0.lock().clone()).unwrap()
}

#[test]
fn insecure_and_unusable_logins_are_warned_about_at_start() {
    let logs = logs_of_router(config(|c| c.admin.insecure = true));
    assert!(logs.contains("WARN") && logs.contains("admin.insecure is on"), "{logs}");
    let logs = logs_of_router(config(|c| c.admin.password.clear()));
    assert!(logs.contains("nobody can log in"), "{logs}");
    assert!(logs_of_router(config(|_| {})).is_empty());
}
