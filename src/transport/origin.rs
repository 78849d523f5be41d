//! Origin checks for connection endpoints (`client.allowed_origins`): an empty list
//! allows only requests without an `Origin` header (non-browser clients); `*` allows
//! all; other entries are lower-case glob patterns where `*` matches any run. An
//! `Origin` that is not visible ASCII, or more than one, is refused whatever the list.

use axum::http::HeaderMap;

pub(super) fn allowed(patterns: &[String], headers: &HeaderMap) -> bool {
    let mut origins = headers.get_all("origin").iter();
    let Some(origin) = origins.next() else { return true };
    if origins.next().is_some() {
        return false;
    }
    // Fails closed: an Origin that is not visible ASCII is no origin a browser sends,
    // and must not pass as if the header were absent.
    let Ok(origin) = origin.to_str() else { return false };
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

    #[test]
    fn malformed_origin_fails_closed() {
        let mut h = HeaderMap::new();
        h.insert("origin", axum::http::HeaderValue::from_bytes(b"http://\xffevil.test").unwrap());
        assert!(!allowed(&[], &h));
        assert!(!allowed(&["*".into()], &h));
        let mut two = with_origin("http://a.test");
        two.append("origin", "http://b.test".parse().unwrap());
        assert!(!allowed(&["*".into()], &two));
    }
}
