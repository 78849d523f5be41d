//! Token verification: every algorithm family and every rejection path.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::config::Client;

const SECRET: &str = "secret-for-unit-tests";
const RSA_PRIVATE: &str = include_str!("../../tests/data/keys/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/data/keys/rsa_public.pem");
const EC_PRIVATE: &str = include_str!("../../tests/data/keys/ec_private.pem");
const EC_PUBLIC: &str = include_str!("../../tests/data/keys/ec_public.pem");

fn client() -> Client {
    let mut c = Client::default();
    c.token.hmac_secret_key = SECRET.into();
    c
}

fn claims(extra: Value) -> Value {
    let mut c = json!({"sub": "42", "exp": now() + 60});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn connect(c: &Client, token: &str) -> Result<ConnectToken, TokenError> {
    block_on(Verifier::new(c).unwrap().verify_connect(token))
}

#[test]
fn hmac_family() {
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let t =
            jsonwebtoken::encode(&Header::new(alg), &claims(json!({})), &EncodingKey::from_secret(SECRET.as_bytes()))
                .unwrap();
        assert_eq!(connect(&client(), &t).unwrap().user, "42");
    }
    let other = sign_hs256(&claims(json!({})), "other");
    assert!(matches!(connect(&client(), &other), Err(TokenError::Invalid(_))));
}

#[test]
fn rsa_and_ecdsa() {
    let mut c = Client::default();
    c.token.rsa_public_key = RSA_PUBLIC.into();
    c.token.ecdsa_public_key = EC_PUBLIC.into();
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let t = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(json!({})), &rsa).unwrap();
    assert_eq!(connect(&c, &t).unwrap().user, "42");
    let ec = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
    let t = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims(json!({})), &ec).unwrap();
    assert_eq!(connect(&c, &t).unwrap().user, "42");
    // Algorithm confusion: HS256 "signed" with the RSA public key as the secret.
    let confused = sign_hs256(&claims(json!({})), RSA_PUBLIC);
    assert!(matches!(connect(&c, &confused), Err(TokenError::Invalid(_))));
}

#[test]
fn alg_none_and_garbage() {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!("{}.{}.", e.encode(br#"{"alg":"none"}"#), e.encode(claims(json!({})).to_string()));
    assert!(matches!(connect(&client(), &none), Err(TokenError::Invalid(_))));
    for bad in ["", "a.b.c", "x", "...."] {
        assert!(matches!(connect(&client(), bad), Err(TokenError::Invalid(_))), "{bad}");
    }
}

#[test]
fn time_checks() {
    let expired = sign_hs256(&claims(json!({"exp": now() - 1})), SECRET);
    assert_eq!(connect(&client(), &expired).unwrap_err(), TokenError::Expired);
    let exactly_now = sign_hs256(&claims(json!({"exp": now()})), SECRET);
    assert_eq!(connect(&client(), &exactly_now).unwrap_err(), TokenError::Expired);
    let not_yet = sign_hs256(&claims(json!({"nbf": now() + 100})), SECRET);
    assert_eq!(connect(&client(), &not_yet).unwrap_err(), TokenError::Expired);
    let forever = sign_hs256(&json!({"sub": "1"}), SECRET);
    assert_eq!(connect(&client(), &forever).unwrap().expire_at, None);
    let decoupled = sign_hs256(&claims(json!({"expire_at": 0})), SECRET);
    assert_eq!(connect(&client(), &decoupled).unwrap().expire_at, None);
}

#[test]
fn audience_issuer_and_previous_key() {
    let mut c = client();
    c.token.audience = "rotor".into();
    c.token.issuer = "me".into();
    let good = sign_hs256(&claims(json!({"aud": ["x", "rotor"], "iss": "me"})), SECRET);
    assert!(connect(&c, &good).is_ok());
    let bad_aud = sign_hs256(&claims(json!({"aud": "x", "iss": "me"})), SECRET);
    assert!(matches!(connect(&c, &bad_aud), Err(TokenError::Invalid(_))));
    let bad_iss = sign_hs256(&claims(json!({"aud": "rotor", "iss": "you"})), SECRET);
    assert!(matches!(connect(&c, &bad_iss), Err(TokenError::Invalid(_))));
    let mut rotated = client();
    rotated.token.hmac_secret_key = "new".into();
    rotated.token.hmac_previous_secret_key = SECRET.into();
    let old = sign_hs256(&claims(json!({})), SECRET);
    assert!(connect(&rotated, &old).is_ok());
    rotated.token.hmac_previous_secret_key_valid_until = now() - 1;
    assert!(connect(&rotated, &old).is_err(), "previous key past its window");
}

#[test]
fn claim_rules() {
    let with_channel = sign_hs256(&claims(json!({"channel": "x"})), SECRET);
    assert!(matches!(connect(&client(), &with_channel), Err(TokenError::Invalid(_))));
    let bad_meta = sign_hs256(&claims(json!({"meta": [1]})), SECRET);
    assert!(matches!(connect(&client(), &bad_meta), Err(TokenError::Invalid(_))));
    let full = sign_hs256(
        &claims(json!({"info": {"a": 1}, "meta": {"m": 2}, "channels": ["a"], "jti": "j", "iat": 5,
            "subs": {"b": {"override": {"presence": {"value": false}}}}, "labels": {"z": "1", "a": "2"}})),
        SECRET,
    );
    let t = connect(&client(), &full).unwrap();
    assert_eq!(t.info.unwrap().get(), r#"{"a":1}"#);
    assert_eq!(t.channels, vec!["a"]);
    assert_eq!(t.subs["b"].overrides.presence, Some(false));
    assert_eq!(t.labels, vec![("a".to_string(), "2".to_string()), ("z".to_string(), "1".to_string())]);
    assert_eq!((t.jti.as_deref(), t.iat), (Some("j"), Some(5)));
}

#[test]
fn label_bounds() {
    let mut c = client();
    c.labels.max_count = 2;
    c.labels.max_key_length = 4;
    c.labels.max_value_length = 3;
    for labels in [
        json!({"a": "1", "b": "2", "c": "3"}),
        json!({"toolong": "1"}),
        json!({"a": "1234"}),
        json!({"a": 1}),
        json!({"": "x"}),
        json!({"\u{0}tr": "x"}),
        json!({"a\u{0}": "x"}),
        json!([1]),
    ] {
        let t = sign_hs256(&claims(json!({"labels": labels.clone()})), SECRET);
        assert!(matches!(connect(&c, &t), Err(TokenError::Labels(_))), "{labels}");
    }
}

/// NumericDates of every JSON type (issue: non-integer `exp` used to mean "never
/// expires"). Past non-integers expire, future ones keep their rounded value, any other
/// type or an out-of-range number is invalid — for `exp`, `nbf`, `iat` and `expire_at`.
#[test]
fn numeric_dates_of_every_json_type() {
    let n = now();
    let v = Verifier::new(&client()).unwrap();
    let verdict = |extra: Value| {
        let mut c = json!({"sub": "42"});
        for (k, x) in extra.as_object().unwrap() {
            c[k] = x.clone();
        }
        let conn = connect(&client(), &sign_hs256(&c, SECRET)).map(|t| t.expire_at);
        c["channel"] = json!("$x");
        let sub = block_on(v.verify_subscribe(&sign_hs256(&c, SECRET))).map(|t| t.expire_at);
        assert_eq!(conn, sub, "connection and subscription tokens agree on {c}");
        conn
    };
    let expired = [
        json!({"exp": 1_700_000_000.5}),
        json!({"exp": -1.5}),
        json!({"exp": -1}),
        json!({"exp": n as f64 - 0.25}),
        json!({"exp": n + 60, "expire_at": 1_700_000_000.5}),
        json!({"exp": n + 60, "expire_at": n - 1}),
        json!({"nbf": n as f64 + 30.5}),
        json!({"nbf": n as f64 + 20.5}), // fractional, and far enough ahead for a slow machine
    ];
    for e in expired {
        assert_eq!(verdict(e.clone()), Err(TokenError::Expired), "{e}");
    }
    let invalid = [
        json!({"exp": "1700000000"}),
        json!({"exp": format!("{}", n + 3600)}),
        json!({"exp": true}),
        json!({"exp": false}),
        json!({"exp": null}),
        json!({"exp": u64::MAX}),
        json!({"exp": 1e300}),
        json!({"exp": -1e300}),
        json!({"nbf": "0"}),
        json!({"nbf": true}),
        json!({"nbf": u64::MAX}),
        json!({"iat": "yesterday"}),
        json!({"iat": u64::MAX}),
        json!({"expire_at": "1700000000"}),
        json!({"expire_at": true}),
        json!({"expire_at": u64::MAX}),
        // A malformed date is invalid even when another date already expired it.
        json!({"exp": n - 10, "nbf": "x"}),
    ];
    for e in invalid {
        assert!(matches!(verdict(e.clone()), Err(TokenError::Invalid(_))), "{e}: {:?}", verdict(e.clone()));
    }
    let future = n as f64 + 3600.75;
    assert_eq!(verdict(json!({"exp": future})), Ok(Some(n + 3600)));
    assert_eq!(verdict(json!({"exp": n + 60, "expire_at": future})), Ok(Some(n + 3600)));
    assert_eq!(verdict(json!({"exp": n + 60, "expire_at": null})), Ok(None));
    assert_eq!(verdict(json!({"nbf": n as f64 - 0.5, "iat": n as f64 - 0.5})), Ok(None));
    assert_eq!(connect(&client(), &sign_hs256(&json!({"sub": "1", "iat": 1.5}), SECRET)).unwrap().iat, Some(1));
}

#[test]
fn subscription_tokens() {
    let v = Verifier::new(&client()).unwrap();
    let t = sign_hs256(&json!({"sub": "42", "channel": "$x", "override": {"join_leave": {"value": true}}}), SECRET);
    let s = block_on(v.verify_subscribe(&t)).unwrap();
    assert_eq!((s.user.as_str(), s.channel.as_str()), ("42", "$x"));
    assert_eq!(s.overrides.join_leave, Some(true));
    let no_channel = sign_hs256(&json!({"sub": "42"}), SECRET);
    assert!(block_on(v.verify_subscribe(&no_channel)).is_err());
}

/// Regression: a numeric `sub` was read as a user id. Only a string (or nothing, the
/// anonymous user) is a user id; any other type makes connection and subscription
/// tokens invalid.
#[test]
fn user_id_claim_must_be_a_string() {
    let v = Verifier::new(&client()).unwrap();
    for sub in [json!(42), json!(4.2), json!(true), json!(["42"]), json!({"id": "42"})] {
        let t = sign_hs256(&claims(json!({"sub": sub})), SECRET);
        assert!(matches!(connect(&client(), &t), Err(TokenError::Invalid(_))), "connect with sub {sub}");
        let t = sign_hs256(&claims(json!({"sub": sub, "channel": "$x"})), SECRET);
        assert!(matches!(block_on(v.verify_subscribe(&t)), Err(TokenError::Invalid(_))), "subscribe with sub {sub}");
    }
    let anonymous = sign_hs256(&json!({"exp": now() + 60}), SECRET);
    assert_eq!(connect(&client(), &anonymous).unwrap().user, "");
    let null = sign_hs256(&claims(json!({"sub": null})), SECRET);
    assert_eq!(connect(&client(), &null).unwrap().user, "");
}

/// Regression: a `crit` header was ignored. This server understands no JWS extension,
/// so a token marking any as critical is invalid (RFC 7515 §4.1.11), however signed.
#[test]
fn critical_header_extensions_are_refused() {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    for crit in [vec!["exp".to_string()], vec!["b64".to_string()], vec![]] {
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(crit.clone());
        let t = jsonwebtoken::encode(&header, &claims(json!({})), &key).unwrap();
        assert!(matches!(connect(&client(), &t), Err(TokenError::Invalid(_))), "crit {crit:?}");
    }
    // A crit that is not even a list of names is refused as a malformed header.
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = body.encode(br#"{"alg":"HS256","typ":"JWT","crit":"exp"}"#);
    let payload = body.encode(claims(json!({})).to_string());
    let signed = sign_hs256(&claims(json!({})), SECRET);
    let signature = signed.rsplit('.').next().unwrap();
    let t = format!("{header}.{payload}.{signature}");
    assert!(matches!(connect(&client(), &t), Err(TokenError::Invalid(_))));
}

#[test]
fn labels_from_claim_paths() {
    let mut c = client();
    c.labels.from_claims = vec!["tenant".into(), "org.region".into(), "tier".into(), "missing".into(), "n".into()];
    let extra = json!({"tenant": "acme", "org": {"region": "eu"}, "tier": "free", "n": 7,
                       "labels": {"tier": "pro", "x": "y"}});
    let t = connect(&c, &sign_hs256(&claims(extra), SECRET)).unwrap();
    let want: Vec<(String, String)> =
        [("n", "7"), ("org.region", "eu"), ("tenant", "acme"), ("tier", "pro"), ("x", "y")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(t.labels, want, "the labels claim wins; absent claims give no label");
    // An object is no label value; derived labels count against the bounds.
    let t = sign_hs256(&claims(json!({"org": {"region": {"deep": 1}}})), SECRET);
    assert!(matches!(connect(&c, &t), Err(TokenError::Labels(_))));
    c.labels.max_count = 1;
    let t = sign_hs256(&claims(json!({"tenant": "a", "tier": "b"})), SECRET);
    assert!(matches!(connect(&c, &t), Err(TokenError::Labels(_))));
}

#[test]
fn proxy_credentials_follow_token_rules() {
    let mut c = client();
    c.labels.max_count = 1;
    let v = Verifier::new(&c).unwrap();
    let t = v.proxy_credentials(&json!({"user": "5", "expire_at": 0, "labels": {"a": "b"}, "meta": {"m": 1}})).unwrap();
    assert_eq!((t.user.as_str(), t.expire_at), ("5", None));
    assert!(t.claims.is_null());
    assert_eq!(v.proxy_credentials(&json!({"expire_at": now() - 1})).unwrap_err(), TokenError::Expired);
    assert!(matches!(v.proxy_credentials(&json!({"labels": {"a": "1", "b": "2"}})), Err(TokenError::Labels(_))));
    assert!(matches!(v.proxy_credentials(&json!({"meta": [1]})), Err(TokenError::Invalid(_))));
    assert!(matches!(v.proxy_credentials(&json!({"expire_at": "soon"})), Err(TokenError::Invalid(_))));
}
