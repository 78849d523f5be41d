//! `rotor gentoken` and `rotor gensubtoken`: HS256 tokens signed with the configured
//! HMAC secret, printed in the seed's format.

use std::path::PathBuf;

use anyhow::bail;
use serde_json::{Map, Value, json};

use crate::config::{Duration, Overrides};

#[derive(clap::Args)]
pub(super) struct TokenArgs {
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// User ID (empty = anonymous).
    #[arg(short = 'u', long = "user", default_value = "")]
    user: String,
    /// Time to live in seconds (negative = no expiration).
    #[arg(short = 't', long = "ttl", default_value_t = 604800, allow_negative_numbers = true)]
    ttl: i64,
    /// Print only the token.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
}

#[derive(clap::Args)]
pub(super) struct SubTokenArgs {
    #[command(flatten)]
    token: TokenArgs,
    /// Channel the token grants.
    #[arg(short = 's', long = "channel", default_value = "")]
    channel: String,
}

fn claims(user: &str, ttl: i64, extra: &[(&str, Value)]) -> Value {
    let now = crate::node::now_secs();
    let mut m = Map::new();
    if !user.is_empty() {
        m.insert("sub".into(), json!(user));
    }
    for (k, v) in extra {
        m.insert((*k).into(), v.clone());
    }
    m.insert("iat".into(), json!(now));
    if ttl > 0 {
        m.insert("exp".into(), json!(now + ttl));
    }
    Value::Object(m)
}

fn describe(user: &str, ttl: i64) -> (String, String) {
    let who = if user.is_empty() { "anonymous user".to_string() } else { format!("user {user}") };
    let exp = if ttl < 0 {
        "without expiration".to_string()
    } else {
        format!("with expiration TTL {}", Duration::from_secs(ttl as u64))
    };
    (who, exp)
}

fn emit(token: &str, quiet: bool, headline: String) {
    if quiet {
        print!("{token}");
    } else {
        println!("{headline}\n{token}");
    }
}

pub(super) fn run_token(a: TokenArgs) -> anyhow::Result<()> {
    let cfg = super::load_config(a.config.as_deref(), &Overrides::default())?.config;
    let secret = &cfg.client.token.hmac_secret_key;
    if secret.is_empty() {
        bail!("no HMAC secret key set (client.token.hmac_secret_key)");
    }
    let token = crate::auth::sign_hs256(&claims(&a.user, a.ttl, &[]), secret);
    let (who, exp) = describe(&a.user, a.ttl);
    emit(&token, a.quiet, format!("HMAC SHA-256 JWT for {who} {exp}:"));
    Ok(())
}

pub(super) fn run_subtoken(a: SubTokenArgs) -> anyhow::Result<()> {
    if a.channel.is_empty() {
        bail!("channel is required");
    }
    let t = a.token;
    let cfg = super::load_config(t.config.as_deref(), &Overrides::default())?.config;
    let c = &cfg.client;
    let secret = if c.subscription_token.enabled {
        &c.subscription_token.keys.hmac_secret_key
    } else {
        &c.token.hmac_secret_key
    };
    if secret.is_empty() {
        bail!("no HMAC secret key set for subscription tokens");
    }
    let token = crate::auth::sign_hs256(&claims(&t.user, t.ttl, &[("channel", json!(a.channel))]), secret);
    let (who, exp) = describe(&t.user, t.ttl);
    emit(&token, t.quiet, format!("HMAC SHA-256 JWT for {who} and channel {:?} {exp}:", a.channel));
    Ok(())
}
