//! Validation of a loaded configuration: what Centrifugo refuses to start with, and
//! what Rotor does not support yet, as one clear error each.

use std::collections::HashSet;

use super::load::ConfigError;
use super::schema::{ChannelOptions, Config};

fn err(msg: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError(msg.into()))
}

pub fn validate(c: &Config) -> Result<(), ConfigError> {
    match c.engine.kind.as_str() {
        "memory" => {}
        "redis" => redis(&c.engine.redis)?,
        other => return err(format!("engine.type {other:?} is not one of \"memory\", \"redis\"")),
    }
    if !["", "transport"].contains(&c.http_api.error_mode.as_str()) {
        return err(format!("http_api.error_mode must be \"\" or \"transport\", not {:?}", c.http_api.error_mode));
    }
    if !["trace", "debug", "info", "warn", "error", "none"].contains(&c.log.level.as_str()) {
        return err(format!("log.level {:?} is not one of trace, debug, info, warn, error, none", c.log.level));
    }
    if c.client.ping_interval <= c.client.pong_timeout {
        return err("client.ping_interval must be greater than client.pong_timeout");
    }
    admin(c)?;
    listeners(c)?;
    channel_options("channel.without_namespace", &c.channel.without_namespace)?;
    let mut seen = HashSet::new();
    for ns in &c.channel.namespaces {
        let valid = ns.name.len() >= 2 && ns.name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
        if !valid {
            return err(format!("invalid namespace name {:?}: must match ^[-a-zA-Z0-9_.]{{2,}}$", ns.name));
        }
        if !seen.insert(ns.name.as_str()) {
            return err(format!("namespace {:?} is defined twice", ns.name));
        }
        channel_options(&format!("namespace {:?}", ns.name), &ns.options)?;
    }
    proxies(c)?;
    crate::auth::Verifier::new(&c.client).map(|_| ()).map_err(|e| ConfigError(format!("client.token: {e}")))
}

/// Every proxy in use needs an `http(s)://` endpoint (gRPC proxies are not supported).
fn proxies(c: &Config) -> Result<(), ConfigError> {
    let all = std::iter::once(&c.channel.without_namespace).chain(c.channel.namespaces.iter().map(|n| &n.options));
    let (mut sub, mut publ, mut refresh) = (false, false, false);
    for o in all {
        sub |= o.subscribe_proxy_enabled;
        publ |= o.publish_proxy_enabled;
        refresh |= o.sub_refresh_proxy_enabled;
    }
    let rpc = c.rpc.without_namespace.proxy_enabled || c.rpc.namespaces.iter().any(|n| n.options.proxy_enabled);
    let used = [
        ("client.proxy.connect", c.client.proxy.connect.enabled, &c.client.proxy.connect.proxy),
        ("client.proxy.refresh", c.client.proxy.refresh.enabled, &c.client.proxy.refresh.proxy),
        ("channel.proxy.subscribe", sub, &c.channel.proxy.subscribe),
        ("channel.proxy.publish", publ, &c.channel.proxy.publish),
        ("channel.proxy.sub_refresh", refresh, &c.channel.proxy.sub_refresh),
        ("rpc.proxy", rpc, &c.rpc.proxy),
    ];
    for (key, on, p) in used {
        let e = &p.endpoint;
        if on && !(e.starts_with("http://") || e.starts_with("https://")) {
            return err(format!(
                "{key}.endpoint must be an http:// or https:// URL when the proxy is enabled, not {e:?}"
            ));
        }
        if on && p.timeout.std().is_zero() {
            return err(format!("{key}.timeout must be above zero"));
        }
    }
    Ok(())
}

fn admin(c: &Config) -> Result<(), ConfigError> {
    let a = &c.admin;
    if !a.enabled {
        return Ok(());
    }
    if !a.handler_prefix.is_empty() && (!a.handler_prefix.starts_with('/') || a.handler_prefix.ends_with('/')) {
        return err(format!("admin.handler_prefix {:?} must start with '/' and not end with it", a.handler_prefix));
    }
    if !c.http_api.disabled && c.http_api.handler_prefix.trim_end_matches('/') == a.handler_prefix {
        return err("admin.handler_prefix must differ from http_api.handler_prefix (both would serve the same path)");
    }
    if c.health.enabled && c.health.handler_prefix == a.handler_prefix && !a.handler_prefix.is_empty() {
        return err("admin.handler_prefix must differ from health.handler_prefix");
    }
    if a.token_ttl.is_zero() || a.login_window.is_zero() || a.max_failed_logins == 0 {
        return err("admin.token_ttl, admin.login_window and admin.max_failed_logins must be positive");
    }
    Ok(())
}

/// `prometheus.handler_prefix` is a path of its own; the internal listener is a
/// socket of its own.
fn listeners(c: &Config) -> Result<(), ConfigError> {
    let p = &c.prometheus;
    if p.enabled {
        let h = p.handler_prefix.as_str();
        if !h.starts_with('/') || h.len() < 2 || h.ends_with('/') {
            return err(format!(
                "prometheus.handler_prefix {h:?} must start with '/', name a path and not end with '/'"
            ));
        }
        let api = c.http_api.handler_prefix.trim_end_matches('/');
        let taken = [
            (!c.http_api.disabled && (h == api || h.starts_with(&format!("{api}/"))), "http_api.handler_prefix"),
            (c.health.enabled && h == c.health.handler_prefix, "health.handler_prefix"),
            (!c.websocket.disabled && h == c.websocket.handler_prefix, "websocket.handler_prefix"),
        ];
        if let Some((_, key)) = taken.iter().find(|(clash, _)| *clash) {
            return err(format!("prometheus.handler_prefix {h:?} clashes with {key}"));
        }
    }
    let s = &c.http_server;
    if s.internal_port != 0 && s.internal_port == s.port && s.internal_address == s.address {
        return err("http_server.internal_port must differ from http_server.port on the same address");
    }
    Ok(())
}

fn channel_options(what: &str, o: &ChannelOptions) -> Result<(), ConfigError> {
    if (o.history_size > 0) == o.history_ttl.is_zero() {
        return err(format!("{what}: history_size and history_ttl must be set together"));
    }
    if (o.force_recovery || o.allow_recovery) && !o.history_enabled() {
        return err(format!("{what}: recovery needs history_size and history_ttl"));
    }
    if !o.channel_regex.is_empty() && regex::Regex::new(&o.channel_regex).is_err() {
        return err(format!("{what}: channel_regex does not compile"));
    }
    Ok(())
}

/// `engine.redis`: at least one address, each a `redis://` or `rediss://` URL the client
/// can parse; timeouts above zero.
fn redis(r: &super::schema::RedisEngine) -> Result<(), ConfigError> {
    let (key, list) =
        if r.cluster_address.is_empty() { ("address", &r.address) } else { ("cluster_address", &r.cluster_address) };
    if list.is_empty() {
        return err(format!("engine.redis.{key} needs at least one redis:// or rediss:// URL"));
    }
    for a in list {
        if !(a.starts_with("redis://") || a.starts_with("rediss://")) {
            return err(format!("engine.redis.{key}: {a:?} is not a redis:// or rediss:// URL"));
        }
        if let Err(e) = redis::Client::open(a.as_str()) {
            return err(format!("engine.redis.{key}: {a:?}: {e}"));
        }
    }
    if r.prefix.is_empty() {
        return err("engine.redis.prefix must not be empty");
    }
    for (name, d) in [
        ("connect_timeout", r.connect_timeout),
        ("io_timeout", r.io_timeout),
        ("presence_ttl", r.presence_ttl),
        ("survey_timeout", r.survey_timeout),
    ] {
        if d.std().is_zero() {
            return err(format!("engine.redis.{name} must be above zero"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn check(json: &str) -> Result<(), ConfigError> {
        validate(&parse_str(json, "json").unwrap().config)
    }

    #[test]
    fn rules() {
        assert!(check("{}").is_ok());
        assert!(check(r#"{"engine":{"type":"redis"}}"#).is_ok());
        assert!(check(r#"{"engine":{"type":"nats"}}"#).unwrap_err().0.contains("engine.type"));
        assert!(check(r#"{"channel":{"namespaces":[{"name":"a"}]}}"#).is_err());
        assert!(check(r#"{"channel":{"namespaces":[{"name":"ab"},{"name":"ab"}]}}"#).is_err());
        assert!(check(r#"{"channel":{"without_namespace":{"history_size":5}}}"#).is_err());
        assert!(check(r#"{"client":{"ping_interval":"5s","pong_timeout":"5s"}}"#).is_err());
        assert!(check(r#"{"client":{"token":{"rsa_public_key":"nope"}}}"#).is_err());
        assert!(check(r#"{"log":{"level":"loud"}}"#).is_err());
        assert!(check(r#"{"admin":{"enabled":true,"handler_prefix":"/ui"}}"#).is_ok());
        assert!(check(r#"{"admin":{"enabled":true,"handler_prefix":"ui/"}}"#).is_err());
        assert!(check(r#"{"admin":{"enabled":true},"http_api":{"handler_prefix":""}}"#).is_err());
        assert!(check(r#"{"admin":{"enabled":true,"max_failed_logins":0}}"#).is_err());
        assert!(check(r#"{"admin":{"enabled":true,"handler_prefix":"/health"}}"#).is_err());
    }

    #[test]
    fn prometheus_and_internal_listener() {
        assert!(check(r#"{"prometheus":{"enabled":true}}"#).is_ok());
        assert!(check(r#"{"prometheus":{"enabled":true,"handler_prefix":"/stats"}}"#).is_ok());
        for bad in ["", "/", "metrics", "/metrics/", "/health", "/api", "/api/publish", "/connection/websocket"] {
            let json = format!(r#"{{"prometheus":{{"enabled":true,"handler_prefix":"{bad}"}}}}"#);
            assert!(check(&json).unwrap_err().0.contains("prometheus.handler_prefix"), "{bad:?}");
        }
        // A disabled endpoint's prefix is not checked.
        assert!(check(r#"{"prometheus":{"handler_prefix":"nope"}}"#).is_ok());
        assert!(check(r#"{"http_server":{"port":8000,"internal_port":9000}}"#).is_ok());
        assert!(
            check(r#"{"http_server":{"port":8000,"internal_port":8000}}"#).unwrap_err().0.contains("internal_port")
        );
        let other = r#"{"http_server":{"port":8000,"internal_port":8000,"internal_address":"127.0.0.1"}}"#;
        assert!(check(other).is_ok());
        let env = crate::config::load_with_env(
            None,
            &Default::default(),
            &[
                ("ROTOR_HTTP_SERVER_INTERNAL_PORT".into(), "9100".into()),
                ("ROTOR_PROMETHEUS_ENABLED".into(), "true".into()),
                ("ROTOR_PROMETHEUS_HANDLER_PREFIX".into(), "/m".into()),
            ],
        )
        .unwrap();
        assert_eq!(env.config.http_server.internal_port, 9100);
        assert!(env.config.prometheus.enabled);
        assert_eq!(env.config.prometheus.handler_prefix, "/m");
        let bad = r#"{"http_server":{"internal_port":70000}}"#;
        assert!(crate::config::parse_str(bad, "json").is_err(), "ports above 65535 are refused at load");
    }

    #[test]
    fn redis_engine_keys() {
        let redis = |r: &str| check(&format!(r#"{{"engine":{{"type":"redis","redis":{r}}}}}"#));
        assert!(redis(r#"{"address":"redis://u:p@10.0.0.1:6380/2"}"#).is_ok());
        assert!(redis(r#"{"address":["redis://a:1","rediss://b:2"],"prefix":"x"}"#).is_ok());
        assert!(redis(r#"{"cluster_address":["redis://a:1","redis://b:2"]}"#).is_ok());
        assert!(redis(r#"{"address":"http://a:1"}"#).unwrap_err().0.contains("engine.redis.address"));
        assert!(redis(r#"{"address":[]}"#).unwrap_err().0.contains("at least one"));
        assert!(redis(r#"{"cluster_address":["nope"]}"#).unwrap_err().0.contains("cluster_address"));
        assert!(redis(r#"{"address":"redis://a:notaport"}"#).is_err());
        assert!(redis(r#"{"prefix":""}"#).is_err());
        assert!(redis(r#"{"io_timeout":"0s"}"#).unwrap_err().0.contains("io_timeout"));
        let env = crate::config::load_with_env(
            None,
            &Default::default(),
            &[("ROTOR_ENGINE_REDIS_ADDRESS".into(), "redis://a:1 redis://b:2".into())],
        )
        .unwrap();
        assert_eq!(env.config.engine.redis.address, vec!["redis://a:1", "redis://b:2"]);
    }
}
