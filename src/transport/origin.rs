//! Origin checks for connection endpoints (`client.allowed_origins`): an empty list
//! allows only requests without an `Origin` header (non-browser clients); `*` allows
//! all; other entries are lower-case glob patterns where `*` matches any run.

use axum::http::HeaderMap;

pub fn allowed(patterns: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else { return true };
    let origin = origin.to_ascii_lowercase();
    patterns.iter().any(|p| crate::glob::matches(&p.to_ascii_lowercase(), &origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origin(o: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("origin", o.parse().unwrap());
        h
    }

    #[test]
    fn origin_rules() {
        assert!(allowed(&[], &HeaderMap::new()));
        assert!(!allowed(&[], &with_origin("http://evil.test")));
        assert!(allowed(&["*".into()], &with_origin("http://a.test")));
        assert!(allowed(&["http://*.example.com".into()], &with_origin("http://App.Example.com")));
        assert!(!allowed(&["http://*.example.com".into()], &with_origin("http://example.org")));
    }
}
