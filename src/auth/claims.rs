//! Claims of connection and subscription tokens, decoded from the verified payload:
//! `info`/`b64info`, `channels`, `subs` with overrides, `meta` (an object), `labels`
//! (string → string, checked against the configured bounds, never truncated).

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::LabelLimits;

use super::TokenError;

/// `{"presence":{"value":true},…}` from a token's `override` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelOverrides {
    pub presence: Option<bool>,
    pub join_leave: Option<bool>,
    pub force_push_join_leave: Option<bool>,
    pub force_recovery: Option<bool>,
    pub force_positioning: Option<bool>,
}

#[derive(Debug)]
pub struct SubOptions {
    pub info: Option<Box<RawValue>>,
    pub data: Option<Box<RawValue>>,
    pub overrides: ChannelOverrides,
}

impl ChannelOverrides {
    /// From an `override` object (`{"presence":{"value":true},…}`).
    pub fn from_value(v: Option<&Value>) -> Self {
        overrides(v)
    }
}

pub(super) fn overrides(v: Option<&Value>) -> ChannelOverrides {
    let flag = |name: &str| v.and_then(|o| o.get(name)).and_then(|f| f.get("value")).and_then(Value::as_bool);
    ChannelOverrides {
        presence: flag("presence"),
        join_leave: flag("join_leave"),
        force_push_join_leave: flag("force_push_join_leave"),
        force_recovery: flag("force_recovery"),
        force_positioning: flag("force_positioning"),
    }
}

fn raw(v: &Value) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(v).ok()
}

/// `info`, or `b64info` when it decodes to JSON (the JSON protocol cannot carry binary).
pub(super) fn info(claims: &Value, plain: &str, b64: &str) -> Option<Box<RawValue>> {
    if let Some(text) = claims.get(b64).and_then(Value::as_str)
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
        && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
    {
        return raw(&v);
    }
    claims.get(plain).filter(|v| !v.is_null()).and_then(raw)
}

/// Latest NumericDate accepted: 9999-12-31T23:59:59Z. Anything beyond it (e.g.
/// `2^64-1`) is a mistake or an attack, not an expiry, and makes the token invalid.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// How a non-integer NumericDate is rounded to whole seconds: toward the earlier
/// second for `exp`/`iat`/`expire_at` (a token never lives longer than it says) and
/// toward the later one for `nbf` (never usable earlier than it says).
#[derive(Clone, Copy)]
pub(super) enum Round {
    Down,
    Up,
}

/// An RFC 7519 NumericDate claim: a JSON number of seconds, integer or not. Absent is
/// `Ok(None)`; a string, boolean, null, array, object, or a number beyond ±year 9999
/// makes the token invalid — it is never read as "no expiry".
pub(super) fn numeric_date(claims: &Value, name: &str, round: Round) -> Result<Option<i64>, TokenError> {
    let Some(v) = claims.get(name) else { return Ok(None) };
    let invalid = || TokenError::Invalid(format!("{name} must be a NumericDate (a number of seconds)"));
    let Value::Number(n) = v else { return Err(invalid()) };
    if let Some(i) = n.as_i64() {
        return if (i as f64).abs() <= MAX_NUMERIC_DATE { Ok(Some(i)) } else { Err(invalid()) };
    }
    let f = n.as_f64().filter(|f| f.is_finite() && f.abs() <= MAX_NUMERIC_DATE).ok_or_else(invalid)?;
    let whole = match round {
        Round::Down => f.floor(),
        Round::Up => f.ceil(),
    };
    Ok(Some(whole as i64))
}

pub(super) fn string(claims: &Value, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_string)
}

pub(super) fn channels(claims: &Value) -> Result<Vec<String>, TokenError> {
    match claims.get("channels") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => {
            Vec::<String>::deserialize(v).map_err(|_| TokenError::Invalid("channels must be a list of strings".into()))
        }
    }
}

pub(super) fn subs(claims: &Value) -> Result<HashMap<String, SubOptions>, TokenError> {
    let Some(map) = claims.get("subs").and_then(Value::as_object) else { return Ok(HashMap::new()) };
    Ok(map
        .iter()
        .map(|(ch, o)| {
            let opts = SubOptions {
                info: info(o, "info", "b64info"),
                data: info(o, "data", "b64data"),
                overrides: overrides(o.get("override")),
            };
            (ch.clone(), opts)
        })
        .collect())
}

pub(super) fn meta(claims: &Value) -> Result<Option<Box<RawValue>>, TokenError> {
    match claims.get("meta") {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(raw(v)),
        Some(_) => Err(TokenError::Invalid("meta must be a JSON object".into())),
    }
}

/// Labels sorted by key, within the configured bounds: those derived from the claims
/// `client.labels.from_claims` names, then the `labels` claim (which wins on a clash).
pub(super) fn labels(claims: &Value, limits: &LabelLimits) -> Result<Vec<(String, String)>, TokenError> {
    let mut out = derived_labels(claims, &limits.from_claims)?;
    out.extend(label_object(claims.get("labels"))?);
    bounded(out, limits)
}

/// Labels given as one object (the connect proxy's `labels`), within the bounds.
pub(super) fn labels_in(v: Option<&Value>, limits: &LabelLimits) -> Result<Vec<(String, String)>, TokenError> {
    bounded(label_object(v)?, limits)
}

fn label_object(v: Option<&Value>) -> Result<BTreeMap<String, String>, TokenError> {
    let map = match v {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(TokenError::Labels("labels must be an object of strings".into())),
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let Some(v) = v.as_str() else {
            return Err(TokenError::Labels(format!("label {k:?} must be a string")));
        };
        out.insert(k.clone(), v.to_string());
    }
    Ok(out)
}

/// Scalar claims at dotted paths (`org.region`), each a label named by its path.
/// An absent or `null` claim gives no label; an object or array is an error.
fn derived_labels(claims: &Value, paths: &[String]) -> Result<BTreeMap<String, String>, TokenError> {
    let mut out = BTreeMap::new();
    for path in paths {
        let found = path.split('.').try_fold(claims, |v, part| v.get(part));
        let value = match found {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            Some(_) => {
                return Err(TokenError::Labels(format!("claim {path:?} is not a string, number or boolean")));
            }
        };
        out.insert(path.clone(), value);
    }
    Ok(out)
}

fn bounded(map: BTreeMap<String, String>, limits: &LabelLimits) -> Result<Vec<(String, String)>, TokenError> {
    if map.len() > limits.max_count {
        return Err(TokenError::Labels(format!("{} labels, at most {} allowed", map.len(), limits.max_count)));
    }
    for (k, v) in &map {
        if k.is_empty() || k.len() > limits.max_key_length {
            return Err(TokenError::Labels(format!("label key {k:?} must be 1..={} bytes", limits.max_key_length)));
        }
        if k.contains('\0') {
            // Keys with a NUL byte are where the hub keeps connection attributes.
            return Err(TokenError::Labels(format!("label key {k:?} must not contain a NUL byte")));
        }
        if v.len() > limits.max_value_length {
            return Err(TokenError::Labels(format!("label {k:?} value is over {} bytes", limits.max_value_length)));
        }
    }
    Ok(map.into_iter().collect())
}
