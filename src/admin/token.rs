//! Admin tokens and the password check. A token is an HS256 JWT signed with
//! `admin.secret`, with audience `rotor-admin` (so a client connection token signed
//! with the same key is never an admin token) and an expiry `admin.token_ttl` after
//! issue. The password is compared in constant time. Nothing here reads a request.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::config::Admin;

const AUDIENCE: &str = "rotor-admin";
const SUBJECT: &str = "admin";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether `given` is the configured password. An unset password never matches.
pub(super) fn password_matches(c: &Admin, given: &str) -> bool {
    !c.password.is_empty() && bool::from(given.as_bytes().ct_eq(c.password.as_bytes()))
}

/// A token valid for `admin.token_ttl` from now; `None` when `admin.secret` is unset.
pub(super) fn issue(c: &Admin) -> Option<String> {
    issue_at(c, now())
}

fn issue_at(c: &Admin, iat: u64) -> Option<String> {
    if c.secret.is_empty() {
        return None;
    }
    let claims = Claims { sub: SUBJECT.into(), aud: AUDIENCE.into(), iat, exp: iat + c.token_ttl.std().as_secs() };
    let key = EncodingKey::from_secret(c.secret.as_bytes());
    // HS256 signing fails only for keys of other algorithms; None like a missing secret.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).ok()
}

/// Whether `token` was signed with `admin.secret` for the admin audience and has not
/// expired. Only HS256 is accepted (no `alg` switching).
pub(super) fn verify(c: &Admin, token: &str) -> bool {
    if c.secret.is_empty() {
        return false;
    }
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "aud", "sub"]);
    let key = DecodingKey::from_secret(c.secret.as_bytes());
    jsonwebtoken::decode::<Claims>(token, &key, &v).is_ok_and(|d| d.claims.sub == SUBJECT && d.claims.exp > now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(secret: &str) -> Admin {
        Admin { password: "pw".into(), secret: secret.into(), ..Admin::default() }
    }

    #[test]
    fn issued_tokens_verify_only_with_their_secret() {
        let c = admin("s1");
        let t = issue(&c).unwrap();
        assert!(verify(&c, &t));
        assert!(!verify(&admin("s2"), &t));
        assert!(!verify(&admin(""), &t));
        assert!(issue(&admin("")).is_none());
    }

    #[test]
    fn expired_forged_and_foreign_tokens_fail() {
        let c = admin("s1");
        let old = issue_at(&c, now() - c.token_ttl.std().as_secs() - 1).unwrap();
        assert!(!verify(&c, &old));
        // One signature character changed (the first: every one of its bits counts; the
        // last carries padding bits, and was sometimes already the replacement).
        let t = issue(&c).unwrap();
        let sig = t.rfind('.').unwrap() + 1;
        let swapped = if t.as_bytes()[sig] == b'A' { "B" } else { "A" };
        let forged = format!("{}{swapped}{}", &t[..sig], &t[sig + 1..]);
        assert_ne!(forged, t);
        assert!(!verify(&c, &forged));
        // A client connection token signed with the same key is not an admin token.
        let client = crate::auth::sign_hs256(&serde_json::json!({"sub": "42", "exp": now() + 60}), "s1");
        assert!(!verify(&c, &client));
        let none_alg = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiIsImF1ZCI6InJvdG9yLWFkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.";
        assert!(!verify(&c, none_alg));
    }

    #[test]
    fn password_check() {
        let c = admin("s");
        assert!(password_matches(&c, "pw"));
        assert!(!password_matches(&c, "pW"));
        assert!(!password_matches(&c, ""));
        assert!(!password_matches(&Admin::default(), ""));
    }
}
