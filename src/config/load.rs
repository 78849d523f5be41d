//! Loading: a JSON, YAML or TOML file, then `ROTOR_` environment variables, then
//! command-line flags, each overriding the one before, over the defaults of
//! `schema.rs`. The serialized default configuration is the tree of known keys:
//! file keys outside it are reported as unknown, and environment variable names are
//! resolved against it (so `_` inside key names is not ambiguous).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::schema::{Config, Namespace};

/// Why a configuration could not be loaded or was refused; every message names the
/// file, variable, flag or key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("config file not found: {}", .0.display())]
    NotFound(PathBuf),
    #[error("reading {}: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },
    /// The text is not JSON, YAML or TOML (or not an object, or of another format).
    #[error("{source_name}: {message}")]
    Syntax { source_name: String, message: String },
    /// A `ROTOR_` variable or a `--flag` whose text does not fit its key.
    #[error("{origin}: {message}")]
    Override { origin: String, message: String },
    /// A key's value has the wrong type or is not one of its allowed values.
    #[error("{file}invalid value for {key}: {message}")]
    Value { file: String, key: String, message: String },
    /// A rule of `validate` (what Centrifugo refuses to start with).
    #[error("{0}")]
    Rule(String),
}

/// Values given as flags: (dotted key, raw text).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub values: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub path: Option<PathBuf>,
    /// Dotted paths of keys (or `ROTOR_` variables) the schema does not know.
    pub unknown_keys: Vec<String>,
    pub warnings: Vec<String>,
}

/// Loads with the process environment.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Loaded, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    load_with_env(path, overrides, &env)
}

/// Loads with an explicit environment (for tests).
pub fn load_with_env(
    path: Option<&Path>,
    overrides: &Overrides,
    env: &[(String, String)],
) -> Result<Loaded, ConfigError> {
    let mut tree = match path {
        Some(p) => read_file(p)?,
        None => Value::Object(Map::new()),
    };
    let known = crate::json::to_value(&Config::default());
    let mut unknown = Vec::new();
    find_unknown(&tree, &known, "", &mut unknown);
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("ROTOR_") else { continue };
        if value.is_empty() {
            continue;
        }
        match resolve_env(&known, rest) {
            Some(path) => set_path(&mut tree, &known, &path, value)
                .map_err(|message| ConfigError::Override { origin: name.clone(), message })?,
            None => unknown.push(name.clone()),
        }
    }
    for (key, value) in &overrides.values {
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        set_path(&mut tree, &known, &path, value)
            .map_err(|message| ConfigError::Override { origin: format!("--{key}"), message })?;
    }
    let config = deserialize(tree, path)?;
    Ok(Loaded { config, path: path.map(Path::to_path_buf), unknown_keys: unknown, warnings: Vec::new() })
}

/// Parses configuration text of a format (`json`, `yaml`/`yml`, `toml`), no environment.
pub fn parse_str(text: &str, ext: &str) -> Result<Loaded, ConfigError> {
    let tree = parse_text(text, ext, "config")?;
    let known = crate::json::to_value(&Config::default());
    let mut unknown = Vec::new();
    find_unknown(&tree, &known, "", &mut unknown);
    let config = deserialize(tree, None)?;
    Ok(Loaded { config, path: None, unknown_keys: unknown, warnings: Vec::new() })
}

fn deserialize(tree: Value, path: Option<&Path>) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let file = path.map(|p| format!("{}: ", p.display())).unwrap_or_default();
        ConfigError::Value { file, key: e.path().to_string(), message: e.inner().to_string() }
    })
}

fn read_file(p: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ConfigError::NotFound(p.to_path_buf()),
        _ => ConfigError::Unreadable { path: p.to_path_buf(), message: e.to_string() },
    })?;
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("json");
    parse_text(&text, ext, &p.display().to_string())
}

fn parse_text(text: &str, ext: &str, name: &str) -> Result<Value, ConfigError> {
    let syntax = |message: String| ConfigError::Syntax { source_name: name.to_string(), message };
    let v: Value = match ext {
        "json" => serde_json::from_str(text).map_err(|e| syntax(format!("invalid JSON: {e}")))?,
        "yaml" | "yml" => serde_yaml::from_str(text).map_err(|e| syntax(format!("invalid YAML: {e}")))?,
        "toml" => {
            let t: toml::Value = toml::from_str(text).map_err(|e| syntax(format!("invalid TOML: {e}")))?;
            serde_json::to_value(t).map_err(|e| syntax(e.to_string()))?
        }
        other => return Err(syntax(format!("unsupported config format {other:?} (use json, yaml, yml or toml)"))),
    };
    match v {
        Value::Object(_) => Ok(v),
        Value::Null => Ok(Value::Object(Map::new())),
        _ => Err(syntax("the configuration must be an object".into())),
    }
}

fn find_unknown(v: &Value, known: &Value, prefix: &str, out: &mut Vec<String>) {
    let (Value::Object(map), Value::Object(known_map)) = (v, known) else { return };
    for (k, child) in map {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match known_map.get(k) {
            None => out.push(path),
            // Free-form maps: any key is the user's.
            Some(_) if path.ends_with(".static_headers") => {}
            Some(_) if path == "rpc.namespaces" => {
                let ns = crate::json::to_value(&super::schema::RpcNamespace::default());
                for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                    find_unknown(item, &ns, &format!("{path}[{i}]"), out);
                }
            }
            Some(_) if path == "proxies" => {
                let named = crate::json::to_value(&super::schema::NamedProxy::default());
                for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                    find_unknown(item, &named, &format!("{path}[{i}]"), out);
                }
            }
            Some(_) if path == "channel.namespaces" => {
                let ns = crate::json::to_value(&Namespace::default());
                for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                    find_unknown(item, &ns, &format!("{path}[{i}]"), out);
                }
            }
            Some(kc) => find_unknown(child, kc, &path, out),
        }
    }
}

/// `CLIENT_TOKEN_HMAC_SECRET_KEY` → `["client","token","hmac_secret_key"]`.
fn resolve_env(known: &Value, rest: &str) -> Option<Vec<String>> {
    let Value::Object(map) = known else { return None };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for k in keys {
        let upper = k.to_ascii_uppercase();
        if rest == upper {
            return Some(vec![k.clone()]);
        }
        if let Some(tail) = rest.strip_prefix(&upper).and_then(|t| t.strip_prefix('_'))
            && let Some(mut path) = resolve_env(&map[k], tail)
        {
            path.insert(0, k.clone());
            return Some(path);
        }
    }
    None
}

/// Sets `path` in `tree` to `raw`, typed like the default at that path.
fn set_path(tree: &mut Value, known: &Value, path: &[String], raw: &str) -> Result<(), String> {
    let mut default = known;
    for k in path {
        default = default.get(k).ok_or_else(|| format!("unknown key {}", path.join(".")))?;
    }
    let value = typed(default, raw)?;
    let mut node = tree;
    for k in &path[..path.len() - 1] {
        if !node.get(k).is_some_and(Value::is_object) {
            node[k.as_str()] = Value::Object(Map::new());
        }
        node = &mut node[k.as_str()];
    }
    node[path[path.len() - 1].as_str()] = value;
    Ok(())
}

fn typed(default: &Value, raw: &str) -> Result<Value, String> {
    match default {
        Value::Bool(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("{raw:?} is not a boolean")),
        },
        Value::Number(_) => serde_json::from_str::<serde_json::Number>(raw)
            .map(Value::Number)
            .map_err(|_| format!("{raw:?} is not a number")),
        Value::Array(_) if !raw.trim_start().starts_with('[') => {
            Ok(Value::Array(raw.split_whitespace().map(|s| Value::String(s.into())).collect()))
        }
        Value::Array(_) | Value::Object(_) => serde_json::from_str(raw).map_err(|e| format!("invalid JSON: {e}")),
        _ => Ok(Value::String(raw.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn formats_and_unknown_keys() {
        let j = parse_str(r#"{"http_server":{"port":9000},"bogus":1,"client":{"token":{"nope":2}}}"#, "json").unwrap();
        assert_eq!(j.config.http_server.port, 9000);
        assert_eq!(j.unknown_keys, vec!["bogus", "client.token.nope"]);
        let y = parse_str("client:\n  ping_interval: 10s\nchannel:\n  namespaces:\n    - name: chat\n      presence: true\n      x: 1\n", "yaml").unwrap();
        assert_eq!(y.config.client.ping_interval.std().as_secs(), 10);
        assert!(y.config.channel.namespaces[0].options.presence);
        assert_eq!(y.unknown_keys, vec!["channel.namespaces[0].x"]);
        let p = parse_str(
            r#"{"proxies":[{"name":"p1","endpoint":"http://a","http":{"static_headers":{"X":"y"}},"bad":1}]}"#,
            "json",
        )
        .unwrap();
        assert_eq!(p.config.proxies[0].proxy.endpoint, "http://a");
        assert_eq!(p.unknown_keys, vec!["proxies[0].bad"]);
        let t = parse_str("[http_api]\nkey = \"abc\"\n", "toml").unwrap();
        assert_eq!(t.config.http_api.key, "abc");
        assert!(parse_str("{", "json").unwrap_err().to_string().contains("invalid JSON"));
        assert!(parse_str("", "ini").is_err());
        let e = parse_str(r#"{"http_server":{"port":"x"}}"#, "json").unwrap_err();
        assert!(e.to_string().contains("http_server.port"), "{e}");
    }

    #[test]
    fn env_and_flags_override() {
        let e = env(&[
            ("ROTOR_CLIENT_TOKEN_HMAC_SECRET_KEY", "s"),
            ("ROTOR_UNI_HTTP_STREAM_ENABLED", "true"),
            ("ROTOR_HTTP_SERVER_PORT", "7000"),
            ("ROTOR_CLIENT_ALLOWED_ORIGINS", "http://a http://b"),
            ("ROTOR_CHANNEL_NAMESPACES", r#"[{"name":"chat"}]"#),
            ("ROTOR_NO_SUCH_THING", "1"),
            ("OTHER", "x"),
        ]);
        let flags = Overrides { values: vec![("http_server.port".into(), "7100".into())] };
        let l = load_with_env(None, &flags, &e).unwrap();
        assert_eq!(l.config.client.token.hmac_secret_key, "s");
        assert!(l.config.uni_http_stream.enabled);
        assert_eq!(l.config.http_server.port, 7100, "flags beat env");
        assert_eq!(l.config.client.allowed_origins, vec!["http://a", "http://b"]);
        assert_eq!(l.config.channel.namespaces[0].name, "chat");
        assert_eq!(l.unknown_keys, vec!["ROTOR_NO_SUCH_THING"]);
        let bad = load_with_env(None, &Overrides::default(), &env(&[("ROTOR_HTTP_SERVER_PORT", "eighty")]));
        assert!(bad.unwrap_err().to_string().contains("ROTOR_HTTP_SERVER_PORT"));
    }

    #[test]
    fn http_server_read_limits() {
        let d = parse_str("{}", "json").unwrap().config.http_server;
        assert_eq!((d.read_header_timeout.std().as_secs(), d.read_body_timeout.std().as_secs()), (5, 10));
        assert_eq!(d.max_pending_connections, 4096);
        let e =
            env(&[("ROTOR_HTTP_SERVER_READ_HEADER_TIMEOUT", "1500ms"), ("ROTOR_HTTP_SERVER_READ_BODY_TIMEOUT", "0")]);
        let flags = Overrides { values: vec![("http_server.max_pending_connections".into(), "64".into())] };
        let c = load_with_env(None, &flags, &e).unwrap().config.http_server;
        assert_eq!(c.read_header_timeout.std().as_millis(), 1500);
        assert!(c.read_body_timeout.is_zero());
        assert_eq!(c.max_pending_connections, 64);
    }
}
