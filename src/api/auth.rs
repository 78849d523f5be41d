//! API key authentication: `X-API-Key`, else `Authorization: apikey KEY`, else
//! `?api_key=`; constant-time comparison; `401` with an empty body on failure (also
//! when no key is configured, unless `http_api.insecure`). It runs as middleware on
//! the request's head alone: nothing may read a body before the key is checked, so a
//! caller without the key cannot make the server buffer megabytes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::node::Node;

/// Middleware: answers 401 from the headers and URI, before any extractor reads the body.
pub(super) async fn require_key(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    let c = &node.config.http_api;
    if !authorized(&c.key, c.insecure, req.headers(), req.uri()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(req).await
}

pub(super) fn authorized(key: &str, insecure: bool, headers: &HeaderMap, uri: &Uri) -> bool {
    if insecure {
        return true;
    }
    if key.is_empty() {
        return false;
    }
    presented(headers, uri).is_some_and(|k| bool::from(k.as_bytes().ct_eq(key.as_bytes())))
}

fn presented(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let parts: Vec<&str> = v.split_whitespace().collect();
        if parts.len() == 2 && parts[0].eq_ignore_ascii_case("apikey") {
            return Some(parts[1].to_string());
        }
    }
    let query = uri.query()?;
    query.split('&').find_map(|pair| pair.strip_prefix("api_key=")).map(percent_decode)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn key_sources() {
        let uri: Uri = "/api/publish".parse().unwrap();
        assert!(authorized("k1", false, &headers(&[("x-api-key", "k1")]), &uri));
        assert!(authorized("k1", false, &headers(&[("authorization", "apikey k1")]), &uri));
        assert!(authorized("k1", false, &headers(&[("authorization", "APIKEY k1")]), &uri));
        assert!(!authorized("k1", false, &headers(&[("authorization", "Bearer k1")]), &uri));
        assert!(authorized("k1", false, &HeaderMap::new(), &"/api/publish?api_key=k1".parse().unwrap()));
        assert!(!authorized("k1", false, &headers(&[("x-api-key", "k2")]), &uri));
        assert!(!authorized("", false, &headers(&[("x-api-key", "")]), &uri));
        assert!(authorized("", true, &HeaderMap::new(), &uri));
    }
}
