//! Verification keys: the algorithm families a configuration enables (HMAC secret,
//! previous HMAC secret with its validity window, RSA and ECDSA public keys in PEM),
//! and a JWKS endpoint whose keys are cached per `kid` for an hour. A token's header
//! algorithm must belong to a configured family: that rules out `alg: none` (which
//! the JWT library cannot even parse) and algorithm confusion.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::Mutex;

use crate::config::TokenKeys;

use super::AuthError;

const JWKS_TTL: Duration = Duration::from_secs(3600);
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(5);

pub(super) struct KeySet {
    hmac: Option<DecodingKey>,
    hmac_previous: Option<(DecodingKey, i64)>,
    rsa: Option<DecodingKey>,
    ecdsa: Option<DecodingKey>,
    jwks: Option<Jwks>,
    pub audience: String,
    pub issuer: String,
    pub user_id_claim: String,
}

type KeyCache = HashMap<String, (DecodingKey, Instant)>;

struct Jwks {
    url: String,
    client: reqwest::Client,
    /// kid → (key, fetched at), and when the endpoint was last fetched.
    cache: Mutex<(KeyCache, Option<Instant>)>,
}

fn family(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => "hmac",
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => "rsa",
        Algorithm::ES256 | Algorithm::ES384 => "ec",
        _ => "other",
    }
}

impl KeySet {
    pub(super) fn new(k: &TokenKeys) -> Result<Self, AuthError> {
        let pem = |text: &str, key: &'static str, f: fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>| {
            if text.is_empty() {
                return Ok(None);
            }
            f(text.as_bytes()).map(Some).map_err(|e| AuthError::BadPublicKey { key, message: e.to_string() })
        };
        let jwks = match k.jwks_public_endpoint.as_str() {
            "" => None,
            url => Some(Jwks {
                url: url.to_string(),
                client: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .map_err(|e| AuthError::JwksClient(e.to_string()))?,
                cache: Mutex::new((HashMap::new(), None)),
            }),
        };
        let set = Self {
            hmac: (!k.hmac_secret_key.is_empty()).then(|| DecodingKey::from_secret(k.hmac_secret_key.as_bytes())),
            hmac_previous: (!k.hmac_previous_secret_key.is_empty()).then(|| {
                (
                    DecodingKey::from_secret(k.hmac_previous_secret_key.as_bytes()),
                    k.hmac_previous_secret_key_valid_until,
                )
            }),
            rsa: pem(&k.rsa_public_key, "client.token.rsa_public_key", DecodingKey::from_rsa_pem)?,
            ecdsa: pem(&k.ecdsa_public_key, "client.token.ecdsa_public_key", DecodingKey::from_ec_pem)?,
            jwks,
            audience: k.audience.clone(),
            issuer: k.issuer.clone(),
            user_id_claim: if k.user_id_claim.is_empty() { "sub".into() } else { k.user_id_claim.clone() },
        };
        if set.jwks.is_some() && (set.hmac.is_some() || set.rsa.is_some() || set.ecdsa.is_some()) {
            return Err(AuthError::JwksWithStaticKeys);
        }
        Ok(set)
    }

    /// Keys to try, in order, for a token with this header (empty = alg not allowed).
    pub(super) async fn keys_for(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
        now: i64,
    ) -> Result<Vec<DecodingKey>, String> {
        if let Some(jwks) = &self.jwks {
            let kid = kid.ok_or("token has no kid but keys come from JWKS")?;
            return jwks.key(kid).await.map(|k| vec![k]);
        }
        let keys = match family(alg) {
            "hmac" => {
                let mut v: Vec<DecodingKey> = self.hmac.iter().cloned().collect();
                if let Some((prev, until)) = &self.hmac_previous
                    && (*until == 0 || now < *until)
                {
                    v.push(prev.clone());
                }
                v
            }
            "rsa" => self.rsa.iter().cloned().collect(),
            "ec" => self.ecdsa.iter().cloned().collect(),
            _ => Vec::new(),
        };
        if keys.is_empty() {
            return Err(format!("algorithm {alg:?} is not enabled by the configured keys"));
        }
        Ok(keys)
    }
}

impl Jwks {
    async fn key(&self, kid: &str) -> Result<DecodingKey, String> {
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        {
            let mut c = self.cache.lock();
            if c.1.is_some_and(|t| t.elapsed() < JWKS_MIN_REFETCH) {
                return Err(format!("unknown kid {kid}"));
            }
            c.1 = Some(Instant::now());
        }
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("fetching JWKS: {e}"))?
            .json()
            .await
            .map_err(|e| format!("decoding JWKS: {e}"))?;
        let mut c = self.cache.lock();
        for jwk in &set.keys {
            if let (Some(id), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) {
                c.0.insert(id, (key, Instant::now()));
            }
        }
        c.0.get(kid).map(|(k, _)| k.clone()).ok_or_else(|| format!("unknown kid {kid}"))
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        let c = self.cache.lock();
        c.0.get(kid).filter(|(_, at)| at.elapsed() < JWKS_TTL).map(|(k, _)| k.clone())
    }
}
