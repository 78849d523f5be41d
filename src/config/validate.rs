//! Validation of a loaded configuration: what Centrifugo refuses to start with, and
//! what Rotor does not support yet, as one clear error each.

use std::collections::HashSet;

use super::load::ConfigError;
use super::schema::{ChannelOptions, Config, DEFAULT_PROXY_NAME, EngineKind};

fn err(msg: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::Rule(msg.into()))
}

pub fn validate(c: &Config) -> Result<(), ConfigError> {
    match c.engine.kind {
        EngineKind::Memory => {}
        EngineKind::Redis => redis(&c.engine.redis)?,
    }
    if c.client.ping_interval <= c.client.pong_timeout {
        return err("client.ping_interval must be greater than client.pong_timeout");
    }
    if c.user_status.expire_interval.std() < std::time::Duration::from_secs(1) {
        return err("user_status.expire_interval must be at least 1s");
    }
    if c.user_status.online_interval.std() < std::time::Duration::from_secs(1) {
        return err("user_status.online_interval must be at least 1s");
    }
    admin(c)?;
    emulation(c)?;
    grpc_api(&c.grpc_api)?;
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
    proxies(c)
}

/// Every proxy in use needs an `http(s)://` endpoint (gRPC proxies are not supported);
/// named proxies have valid, unique names, and every name a namespace picks exists.
fn proxies(c: &Config) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (i, p) in c.proxies.iter().enumerate() {
        let valid = p.name.len() >= 2 && p.name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
        if !valid {
            return err(format!("proxies[{i}].name {:?} must match ^[-a-zA-Z0-9_.]{{2,}}$", p.name));
        }
        if p.name == DEFAULT_PROXY_NAME {
            return err(format!(
                "proxies[{i}]: the name {DEFAULT_PROXY_NAME:?} is reserved for channel.proxy / rpc.proxy"
            ));
        }
        if !names.insert(p.name.as_str()) {
            return err(format!("proxy {:?} is defined twice in proxies", p.name));
        }
        proxy_endpoint(&format!("proxies[{i}] ({:?})", p.name), &p.proxy)?;
    }
    // Which default (unnamed) proxies are switched on somewhere, and that every
    // named one picked exists.
    let (mut sub, mut publ, mut refresh, mut rpc) = (false, false, false, false);
    let pick = |used: &mut bool, on: bool, name: &str, whose: &str, key: &str| {
        if !on {
            return Ok(());
        }
        if is_default_proxy(name) {
            *used = true;
            Ok(())
        } else if names.contains(name) {
            Ok(())
        } else {
            err(format!("{whose}: {key} {name:?} is not in proxies"))
        }
    };
    let channels = std::iter::once(("channel.without_namespace".to_string(), &c.channel.without_namespace))
        .chain(c.channel.namespaces.iter().map(|n| (format!("namespace {:?}", n.name), &n.options)));
    for (whose, o) in channels {
        pick(&mut sub, o.subscribe_proxy_enabled, &o.subscribe_proxy_name, &whose, "subscribe_proxy_name")?;
        pick(&mut publ, o.publish_proxy_enabled, &o.publish_proxy_name, &whose, "publish_proxy_name")?;
        pick(&mut refresh, o.sub_refresh_proxy_enabled, &o.sub_refresh_proxy_name, &whose, "sub_refresh_proxy_name")?;
    }
    let rpcs = std::iter::once(("rpc.without_namespace".to_string(), &c.rpc.without_namespace))
        .chain(c.rpc.namespaces.iter().map(|n| (format!("rpc namespace {:?}", n.name), &n.options)));
    for (whose, o) in rpcs {
        pick(&mut rpc, o.proxy_enabled, &o.proxy_name, &whose, "proxy_name")?;
    }
    let used = [
        ("client.proxy.connect", c.client.proxy.connect.enabled, &c.client.proxy.connect.proxy),
        ("client.proxy.refresh", c.client.proxy.refresh.enabled, &c.client.proxy.refresh.proxy),
        ("channel.proxy.subscribe", sub, &c.channel.proxy.subscribe),
        ("channel.proxy.publish", publ, &c.channel.proxy.publish),
        ("channel.proxy.sub_refresh", refresh, &c.channel.proxy.sub_refresh),
        ("rpc.proxy", rpc, &c.rpc.proxy),
    ];
    for (key, on, p) in used {
        if on {
            proxy_endpoint(key, p)?;
        }
    }
    Ok(())
}

/// `""` and `"default"` both name the unnamed proxy.
pub(crate) fn is_default_proxy(name: &str) -> bool {
    name.is_empty() || name == DEFAULT_PROXY_NAME
}

fn proxy_endpoint(key: &str, p: &super::schema::Proxy) -> Result<(), ConfigError> {
    let e = &p.endpoint;
    if !(e.starts_with("http://") || e.starts_with("https://")) {
        return err(format!("{key}.endpoint must be an http:// or https:// URL when the proxy is used, not {e:?}"));
    }
    if p.timeout.std().is_zero() {
        return err(format!("{key}.timeout must be above zero"));
    }
    Ok(())
}

/// Emulation paths must be usable routes, and `/emulation` must not shadow a stream.
fn emulation(c: &Config) -> Result<(), ConfigError> {
    if !c.emulation_enabled() {
        return Ok(());
    }
    let e = &c.emulation.handler_prefix;
    if !e.starts_with('/') || e.len() < 2 || e.ends_with('/') {
        return err(format!("emulation.handler_prefix {e:?} must start with '/' and not end with it"));
    }
    for (key, on, path) in
        [("http_stream", c.http_stream.enabled, c.http_stream_prefix()), ("sse", c.sse.enabled, c.sse_prefix())]
    {
        if on && !path.starts_with('/') {
            return err(format!("{key}.handler_prefix {path:?} must start with '/'"));
        }
        if on && path == e {
            return err(format!("{key}.handler_prefix must differ from emulation.handler_prefix"));
        }
    }
    if c.http_stream.enabled && c.sse.enabled && c.http_stream_prefix() == c.sse_prefix() {
        return err("http_stream.handler_prefix must differ from sse.handler_prefix");
    }
    Ok(())
}

/// `grpc_api`: a key is required when enabled (no unauthenticated API), and TLS has both a certificate and a key.
fn grpc_api(g: &super::schema::GrpcApi) -> Result<(), ConfigError> {
    if !g.enabled {
        return Ok(());
    }
    if g.key.is_empty() {
        return err("grpc_api.key is required when grpc_api.enabled (calls authenticate with it)");
    }
    if g.tls.enabled && (g.tls.cert_pem.is_empty() || g.tls.key_pem.is_empty()) {
        return err("grpc_api.tls needs both cert_pem and key_pem when enabled");
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
        assert!(check(r#"{"channel":{"namespaces":[{"name":"a"}]}}"#).is_err());
        assert!(check(r#"{"channel":{"namespaces":[{"name":"ab"},{"name":"ab"}]}}"#).is_err());
        assert!(check(r#"{"channel":{"without_namespace":{"history_size":5}}}"#).is_err());
        assert!(check(r#"{"client":{"ping_interval":"5s","pong_timeout":"5s"}}"#).is_err());
        assert!(check(r#"{"admin":{"enabled":true,"handler_prefix":"/ui"}}"#).is_ok());
        assert!(check(r#"{"sse":{"enabled":true}}"#).is_ok());
        assert!(check(r#"{"sse":{"enabled":true},"emulation":{"handler_prefix":"emu"}}"#).is_err());
        assert!(check(r#"{"http_stream":{"enabled":true,"handler_prefix":"/emulation"}}"#).is_err());
        assert!(
            check(
                r#"{"http_stream":{"enabled":true},"sse":{"enabled":true,"handler_prefix":"/connection/http_stream"}}"#
            )
            .is_err()
        );
        assert!(check(r#"{"admin":{"enabled":true,"handler_prefix":"ui/"}}"#).is_err());
        assert!(check(r#"{"admin":{"enabled":true},"http_api":{"handler_prefix":""}}"#).is_err());
        assert!(check(r#"{"admin":{"enabled":true,"max_failed_logins":0}}"#).is_err());
        assert!(check(r#"{"admin":{"enabled":true,"handler_prefix":"/health"}}"#).is_err());
    }

    #[test]
    fn closed_sets_are_refused_when_parsed_naming_the_key() {
        for (json, key) in [
            (r#"{"engine":{"type":"nats"}}"#, "engine.type"),
            (r#"{"log":{"level":"loud"}}"#, "log.level"),
            (r#"{"http_api":{"error_mode":"status"}}"#, "http_api.error_mode"),
        ] {
            let Err(e) = parse_str(json, "json") else { panic!("{json} parsed") };
            let e = e.to_string();
            assert!(e.contains(key), "{json}: {e}");
        }
        let c = parse_str(
            r#"{"engine":{"type":"redis"},"log":{"level":"none"},"http_api":{"error_mode":"transport"}}"#,
            "json",
        )
        .unwrap()
        .config;
        assert_eq!(c.engine.kind, EngineKind::Redis);
        assert_eq!(c.log.level, crate::config::LogLevel::None);
        assert_eq!(c.http_api.error_mode, crate::config::ErrorMode::Transport);
    }

    #[test]
    fn named_proxies_are_checked_and_picked_by_name() {
        let named = |extra: &str| {
            format!(
                r#"{{"proxies":[{{"name":"billing","endpoint":"http://127.0.0.1:9/b"}}{extra}],
                   "channel":{{"namespaces":[{{"name":"pay","publish_proxy_enabled":true,"publish_proxy_name":"billing"}}]}}}}"#
            )
        };
        assert!(check(&named("")).is_ok(), "a named proxy needs no channel.proxy.publish");
        let twice = named(r#",{"name":"billing","endpoint":"http://x"}"#);
        assert!(check(&twice).unwrap_err().to_string().contains("twice"));
        let reserved = named(r#",{"name":"default","endpoint":"http://x"}"#);
        assert!(check(&reserved).unwrap_err().to_string().contains("reserved"));
        let bad_name = named(r#",{"name":"a b","endpoint":"http://x"}"#);
        assert!(check(&bad_name).unwrap_err().to_string().contains("proxies[1].name"));
        let no_url = named(r#",{"name":"other","endpoint":"grpc://x"}"#);
        assert!(check(&no_url).unwrap_err().to_string().contains("proxies[1]"));
        let missing =
            r#"{"channel":{"without_namespace":{"subscribe_proxy_enabled":true,"subscribe_proxy_name":"nope"}}}"#;
        let e = check(missing).unwrap_err().to_string();
        assert!(e.contains("subscribe_proxy_name") && e.contains("nope"), "{e}");
        let rpc = r#"{"rpc":{"namespaces":[{"name":"app","proxy_enabled":true,"proxy_name":"nope"}]}}"#;
        assert!(check(rpc).unwrap_err().to_string().contains("rpc namespace"));
        // "default" (or no name) still needs the unnamed endpoint.
        let default =
            r#"{"channel":{"without_namespace":{"subscribe_proxy_enabled":true,"subscribe_proxy_name":"default"}}}"#;
        assert!(check(default).unwrap_err().to_string().contains("channel.proxy.subscribe.endpoint"));
        // A name that is not switched on is not looked up.
        assert!(check(r#"{"rpc":{"without_namespace":{"proxy_name":"nope"}}}"#).is_ok());
    }

    #[test]
    fn grpc_api_keys() {
        assert!(check(r#"{"grpc_api":{"enabled":true,"key":"k"}}"#).is_ok());
        assert!(check(r#"{"grpc_api":{"enabled":true}}"#).unwrap_err().to_string().contains("grpc_api.key"));
        assert!(parse_str(r#"{"grpc_api":{"error_mode":"loud"}}"#, "json").is_err());
        let tls = r#"{"grpc_api":{"enabled":true,"key":"k","tls":{"enabled":true,"cert_pem":"c.pem"}}}"#;
        assert!(check(tls).unwrap_err().to_string().contains("key_pem"));
        let env = crate::config::load_with_env(
            None,
            &Default::default(),
            &[
                ("ROTOR_GRPC_API_ENABLED".into(), "true".into()),
                ("ROTOR_GRPC_API_PORT".into(), "10001".into()),
                ("ROTOR_GRPC_API_MAX_RECEIVE_MESSAGE_SIZE".into(), "1024".into()),
                ("ROTOR_GRPC_API_TLS_CERT_PEM".into(), "cert.pem".into()),
            ],
        )
        .unwrap();
        let g = env.config.grpc_api;
        assert!(g.enabled && g.port == 10001 && g.max_receive_message_size == 1024 && g.tls.cert_pem == "cert.pem");
        assert_eq!(crate::config::Config::default().grpc_api.port, 10000);
    }

    #[test]
    fn redis_engine_keys() {
        let redis = |r: &str| check(&format!(r#"{{"engine":{{"type":"redis","redis":{r}}}}}"#));
        assert!(redis(r#"{"address":"redis://u:p@10.0.0.1:6380/2"}"#).is_ok());
        assert!(redis(r#"{"address":["redis://a:1","rediss://b:2"],"prefix":"x"}"#).is_ok());
        assert!(redis(r#"{"cluster_address":["redis://a:1","redis://b:2"]}"#).is_ok());
        assert!(redis(r#"{"address":"http://a:1"}"#).unwrap_err().to_string().contains("engine.redis.address"));
        assert!(redis(r#"{"address":[]}"#).unwrap_err().to_string().contains("at least one"));
        assert!(redis(r#"{"cluster_address":["nope"]}"#).unwrap_err().to_string().contains("cluster_address"));
        assert!(redis(r#"{"address":"redis://a:notaport"}"#).is_err());
        assert!(redis(r#"{"prefix":""}"#).is_err());
        assert!(redis(r#"{"io_timeout":"0s"}"#).unwrap_err().to_string().contains("io_timeout"));
        let env = crate::config::load_with_env(
            None,
            &Default::default(),
            &[("ROTOR_ENGINE_REDIS_ADDRESS".into(), "redis://a:1 redis://b:2".into())],
        )
        .unwrap();
        assert_eq!(env.config.engine.redis.address, vec!["redis://a:1", "redis://b:2"]);
    }

    #[test]
    fn prometheus_and_internal_listener() {
        assert!(check(r#"{"prometheus":{"enabled":true}}"#).is_ok());
        assert!(check(r#"{"prometheus":{"enabled":true,"handler_prefix":"/stats"}}"#).is_ok());
        for bad in ["", "/", "metrics", "/metrics/", "/health", "/api", "/api/publish", "/connection/websocket"] {
            let json = format!(r#"{{"prometheus":{{"enabled":true,"handler_prefix":"{bad}"}}}}"#);
            assert!(check(&json).unwrap_err().to_string().contains("prometheus.handler_prefix"), "{bad:?}");
        }
        // A disabled endpoint's prefix is not checked.
        assert!(check(r#"{"prometheus":{"handler_prefix":"nope"}}"#).is_ok());
        assert!(check(r#"{"http_server":{"port":8000,"internal_port":9000}}"#).is_ok());
        assert!(
            check(r#"{"http_server":{"port":8000,"internal_port":8000}}"#)
                .unwrap_err()
                .to_string()
                .contains("internal_port")
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
}
