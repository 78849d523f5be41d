//! Authentication: verifying connection and subscription JWTs (HS256/384/512,
//! RS*/PS*, ES256/384, JWKS) and turning their claims into typed tokens. Rules
//! (reference §3): `exp` strictly in the future with no leeway (else `Expired`),
//! `nbf` honoured, `aud`/`iss` checked when configured, a `channel` claim makes a
//! connection token invalid, label bounds are enforced. No connection state here.

mod claims;
mod keys;

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::{Client, LabelLimits};

use claims::Round;
pub use claims::{ChannelOverrides, SubOptions};
use keys::KeySet;

/// A configuration error in the token keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A PEM public key that does not parse; `key` is its config key.
    #[error("{key}: {message}")]
    BadPublicKey { key: &'static str, message: String },
    /// A JWKS endpoint and static keys at once: which to trust would be ambiguous.
    #[error("jwks_public_endpoint cannot be combined with static token keys")]
    JwksWithStaticKeys,
    /// The HTTP client for the JWKS endpoint could not be built (TLS backend).
    #[error("jwks_public_endpoint: HTTP client: {0}")]
    JwksClient(String),
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    /// Bad format, signature, algorithm or claim; the text is for logs.
    Invalid(String),
    /// Label bounds violated; the text names the label and the bound.
    Labels(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Expired => f.write_str("token expired"),
            TokenError::Invalid(why) => write!(f, "invalid token: {why}"),
            TokenError::Labels(why) => write!(f, "invalid token labels: {why}"),
        }
    }
}

/// A verified connection token's claims. `Default` is the empty token (no user, no
/// expiry, no claims), for building synthetic sessions (tests, `rotor capacity`).
#[derive(Debug, Default)]
pub struct ConnectToken {
    pub user: String,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    /// Connection expiry: the `expire_at` claim if present (0 ⇒ none), else `exp`.
    pub expire_at: Option<i64>,
    pub info: Option<Box<RawValue>>,
    pub channels: Vec<String>,
    pub subs: HashMap<String, SubOptions>,
    pub meta: Option<Box<RawValue>>,
    pub labels: Vec<(String, String)>,
    pub claims: Value,
}

#[derive(Debug)]
pub struct SubscribeToken {
    pub user: String,
    pub channel: String,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    pub expire_at: Option<i64>,
    pub info: Option<Box<RawValue>>,
    pub data: Option<Box<RawValue>>,
    pub overrides: ChannelOverrides,
    pub client: Option<String>,
}

struct Inner {
    connect: KeySet,
    subscribe: Option<KeySet>,
    labels: LabelLimits,
}

/// Verifies tokens with the configured keys. Cheap to clone.
#[derive(Clone)]
pub struct Verifier(Arc<Inner>);

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Verifier {
    pub fn new(client: &Client) -> Result<Self, AuthError> {
        let subscribe =
            if client.subscription_token.enabled { Some(KeySet::new(&client.subscription_token.keys)?) } else { None };
        Ok(Self(Arc::new(Inner { connect: KeySet::new(&client.token)?, subscribe, labels: client.labels.clone() })))
    }

    pub async fn verify_connect(&self, token: &str) -> Result<ConnectToken, TokenError> {
        let keys = &self.0.connect;
        let c = verify(keys, token).await?;
        if c.get("channel").is_some() {
            return Err(TokenError::Invalid("connection token has a channel claim".into()));
        }
        let TokenTimes { exp, iat, expire_at } = token_times(&c)?;
        Ok(ConnectToken {
            user: user_of(&c, &keys.user_id_claim)?,
            exp,
            iat,
            jti: claims::string(&c, "jti"),
            expire_at,
            info: claims::info(&c, "info", "b64info"),
            channels: claims::channels(&c)?,
            subs: claims::subs(&c)?,
            meta: claims::meta(&c)?,
            labels: claims::labels(&c, &self.0.labels)?,
            claims: c,
        })
    }

    /// Credentials from a connect proxy result (reference §7.2): the same claim rules
    /// as a token (`info`/`b64info`, `channels`, `subs`, `meta` an object, label
    /// bounds), `user` for the user and `expire_at` (0 = never, past = expired).
    pub fn proxy_credentials(&self, r: &Value) -> Result<ConnectToken, TokenError> {
        let expire_at = match claims::numeric_date(r, "expire_at", Round::Down)? {
            Some(0) | None => None,
            Some(at) if at < now() => return Err(TokenError::Expired),
            at => at,
        };
        Ok(ConnectToken {
            user: user_of(r, "user")?,
            exp: None,
            iat: None,
            jti: None,
            expire_at,
            info: claims::info(r, "info", "b64info"),
            channels: claims::channels(r)?,
            subs: claims::subs(r)?,
            meta: claims::meta(r)?,
            labels: claims::labels_in(r.get("labels"), &self.0.labels)?,
            claims: Value::Null,
        })
    }

    pub async fn verify_subscribe(&self, token: &str) -> Result<SubscribeToken, TokenError> {
        let keys = self.0.subscribe.as_ref().unwrap_or(&self.0.connect);
        let c = verify(keys, token).await?;
        let channel = claims::string(&c, "channel").filter(|s| !s.is_empty());
        let channel = channel.ok_or_else(|| TokenError::Invalid("subscription token without channel".into()))?;
        let TokenTimes { exp, iat, expire_at } = token_times(&c)?;
        Ok(SubscribeToken {
            user: user_of(&c, &keys.user_id_claim)?,
            channel,
            exp,
            iat,
            jti: claims::string(&c, "jti"),
            expire_at,
            info: claims::info(&c, "info", "b64info"),
            data: claims::info(&c, "data", "b64data"),
            overrides: claims::overrides(c.get("override")),
            client: claims::string(&c, "client"),
        })
    }
}

/// `exp`, `iat` and the connection's expiry: the `expire_at` claim when present
/// (`0` or `null` ⇒ never), else `exp`. An `expire_at` already past expires the token
/// like a past `exp` (the signature and `exp` were checked in [`check_claims`]).
fn token_times(c: &Value) -> Result<TokenTimes, TokenError> {
    let exp = claims::numeric_date(c, "exp", Round::Down)?;
    let iat = claims::numeric_date(c, "iat", Round::Down)?;
    let expire_at = match c.get("expire_at") {
        Some(Value::Null) => None,
        Some(_) => match claims::numeric_date(c, "expire_at", Round::Down)? {
            Some(0) => None,
            at => at,
        },
        None => exp,
    };
    if expire_at.is_some_and(|at| at <= now()) {
        return Err(TokenError::Expired);
    }
    Ok(TokenTimes { exp, iat, expire_at })
}

/// A token's `exp`, `iat` and the connection's expiry (Unix seconds).
struct TokenTimes {
    exp: Option<i64>,
    iat: Option<i64>,
    expire_at: Option<i64>,
}

/// The user id claim (`sub` unless configured): a string; absent or `null` is the
/// anonymous user `""`. Any other JSON type (a number, an object…) makes the token
/// invalid rather than being coerced into some user id.
fn user_of(c: &Value, claim: &str) -> Result<String, TokenError> {
    match c.get(claim) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Ok(String::new()),
        Some(_) => Err(TokenError::Invalid(format!("{claim} must be a string"))),
    }
}

/// Signature, algorithm, time and audience/issuer checks; returns the claims.
async fn verify(keys: &KeySet, token: &str) -> Result<Value, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(format!("header: {e}")))?;
    // RFC 7515 §4.1.11: a recipient must refuse a token whose `crit` names an extension
    // it does not understand; this server understands none, so any `crit` is refused.
    if let Some(crit) = &header.crit {
        return Err(TokenError::Invalid(format!("header: unsupported critical extensions {crit:?}")));
    }
    let now = now();
    let candidates = keys.keys_for(header.alg, header.kid.as_deref(), now).await.map_err(TokenError::Invalid)?;
    let mut v = Validation::new(header.alg);
    v.leeway = 0;
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let mut last = String::new();
    for key in &candidates {
        match jsonwebtoken::decode::<Value>(token, key, &v) {
            Ok(data) => return check_claims(keys, data.claims, now),
            Err(e) => last = e.to_string(),
        }
    }
    Err(TokenError::Invalid(last))
}

fn check_claims(keys: &KeySet, c: Value, now: i64) -> Result<Value, TokenError> {
    if !c.is_object() {
        return Err(TokenError::Invalid("claims must be an object".into()));
    }
    if !keys.audience.is_empty() && !audience_matches(c.get("aud"), &keys.audience) {
        return Err(TokenError::Invalid("audience mismatch".into()));
    }
    if !keys.issuer.is_empty() && c.get("iss").and_then(Value::as_str) != Some(keys.issuer.as_str()) {
        return Err(TokenError::Invalid("issuer mismatch".into()));
    }
    // Type checks first: a malformed date is invalid (3500) even when another one
    // would already have expired the token.
    let nbf = claims::numeric_date(&c, "nbf", Round::Up)?;
    let exp = claims::numeric_date(&c, "exp", Round::Down)?;
    claims::numeric_date(&c, "iat", Round::Down)?;
    if nbf.is_some_and(|nbf| nbf > now) || exp.is_some_and(|exp| exp <= now) {
        return Err(TokenError::Expired);
    }
    Ok(c)
}

fn audience_matches(aud: Option<&Value>, want: &str) -> bool {
    match aud {
        Some(Value::String(s)) => s == want,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(want)),
        _ => false,
    }
}

/// Signs claims with HS256 (gentoken, gensubtoken and tests).
#[allow(clippy::expect_used, reason = "HS256 with a secret key and JSON claims has no failure path")]
pub fn sign_hs256(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).expect("HS256 signing cannot fail")
}

#[cfg(test)]
mod tests;
