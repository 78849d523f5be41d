//! The legacy single endpoint `POST /api`: newline-separated
//! `{"id"?,"method","params"}` commands in, newline-joined `{"id"?,"result"|"error"}`
//! replies out. Method names are case-insensitive (or Centrifugo's enum numbers); a
//! missing method means publish; an unknown method name fails the whole request (400).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::sync::Arc;

use crate::node::Node;

use super::error::ApiError;

#[derive(Debug, Deserialize)]
struct LegacyCommand {
    #[serde(default)]
    id: Option<u32>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    params: Option<Value>,
}

#[derive(Debug, Serialize)]
struct LegacyReply {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ApiError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<super::Encoded>,
}

/// Centrifugo's method enum, in order (index = number).
const ENUM: &[&str] = &[
    "publish",
    "broadcast",
    "unsubscribe",
    "disconnect",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
    "rpc",
    "subscribe",
    "refresh",
    "",
    "connections",
];

/// Whether the legacy endpoint knows `name` by name only: every method of
/// [`super::METHODS`] outside Centrifugo's enum (PRO's session management and user
/// status; the admin UI calls them through `/admin/api`), except `batch`.
fn named_only(name: &str) -> bool {
    name != "batch" && !ENUM.contains(&name) && super::METHODS.contains(&name)
}

/// A method the enum knows; `Some("")` for valid-but-unimplemented numbers.
fn method_name(m: &Option<Value>) -> Option<String> {
    match m {
        None | Some(Value::Null) => Some("publish".into()),
        Some(Value::String(s)) => {
            let lower = s.to_ascii_lowercase();
            let known = !lower.is_empty() && (ENUM.contains(&lower.as_str()) || named_only(&lower));
            known.then_some(lower)
        }
        Some(Value::Number(n)) => n.as_u64().and_then(|i| ENUM.get(i as usize)).map(|e| e.to_string()),
        _ => None,
    }
}

/// Runs every command; Err(()) means the request as a whole is bad (HTTP 400).
pub(super) async fn handle(node: &Arc<Node>, body: &[u8]) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let mut count = 0;
    for cmd in serde_json::Deserializer::from_slice(body).into_iter::<LegacyCommand>() {
        let cmd = cmd.map_err(|_| ())?;
        let name = method_name(&cmd.method).ok_or(())?;
        let reply = run(node, &name, cmd.id, cmd.params).await;
        if count > 0 {
            out.push(b'\n');
        }
        crate::json::write(&mut out, &reply);
        count += 1;
    }
    if count == 0 {
        return Err(());
    }
    Ok(out)
}

async fn run(node: &Arc<Node>, name: &str, id: Option<u32>, params: Option<Value>) -> LegacyReply {
    let reply = |r: Result<super::Encoded, ApiError>| match r {
        Ok(v) => LegacyReply { id, error: None, result: Some(v) },
        Err(e) => LegacyReply { id, error: Some(e), result: None },
    };
    if name.is_empty() {
        return reply(Err(ApiError::not_found()));
    }
    let body = crate::json::to_vec(&params.unwrap_or_else(|| Value::Object(Default::default())));
    match Box::pin(super::call(node, name, &body)).await {
        Ok(r) => reply(r),
        Err(_) => reply(Err(ApiError::bad_request("invalid params"))),
    }
}
