//! Request and response bodies of the HTTP proxies (Centrifugo's `proxy.proto` in
//! its JSON form). Every request field is omitted when empty.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::protocol::Raw;

#[derive(Debug, Deserialize)]
#[serde(bound = "R: Deserialize<'de>")]
pub(super) struct Envelope<R> {
    #[serde(default)]
    pub result: Option<R>,
    #[serde(default)]
    pub error: Option<WireError>,
    #[serde(default)]
    pub disconnect: Option<WireDisconnect>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireError {
    pub code: u32,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub temporary: bool,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireDisconnect {
    pub code: u32,
    #[serde(default)]
    pub reason: String,
}

fn empty(s: &str) -> bool {
    s.is_empty()
}

/// Fields every request starts with.
#[derive(Debug, Serialize, Default)]
pub struct Base {
    pub client: String,
    pub transport: &'static str,
    pub protocol: &'static str,
    pub encoding: &'static str,
    #[serde(skip_serializing_if = "empty")]
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Raw>,
}

#[derive(Debug, Serialize)]
pub struct ConnectRequest {
    #[serde(flatten)]
    pub base: Base,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b64data: Option<String>,
    #[serde(skip_serializing_if = "empty")]
    pub name: String,
    #[serde(skip_serializing_if = "empty")]
    pub version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectResult {
    pub user: String,
    /// Unix seconds; 0 = never. Kept as JSON so a malformed one is a clear error.
    pub expire_at: Option<Value>,
    pub info: Option<Box<RawValue>>,
    pub b64info: Option<String>,
    pub data: Option<Box<RawValue>>,
    pub b64data: Option<String>,
    pub channels: Vec<String>,
    pub subs: HashMap<String, Value>,
    pub meta: Option<Value>,
    pub labels: Option<Value>,
}

#[derive(Debug, Serialize)]
pub struct RefreshRequest {
    #[serde(flatten)]
    pub base: Base,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RefreshResult {
    pub expired: bool,
    pub expire_at: i64,
    pub info: Option<Box<RawValue>>,
    pub b64info: Option<String>,
    pub meta: Option<Value>,
}

#[derive(Debug, Serialize)]
pub struct SubscribeRequest {
    #[serde(flatten)]
    pub base: Base,
    pub channel: String,
    #[serde(skip_serializing_if = "empty")]
    pub token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b64data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscribeResult {
    pub expire_at: i64,
    pub info: Option<Box<RawValue>>,
    pub b64info: Option<String>,
    pub data: Option<Box<RawValue>>,
    pub b64data: Option<String>,
    #[serde(rename = "override")]
    pub overrides: Option<Value>,
}

#[derive(Debug, Serialize)]
pub struct PublishRequest {
    #[serde(flatten)]
    pub base: Base,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b64data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PublishResult {
    pub data: Option<Box<RawValue>>,
    pub b64data: Option<String>,
    pub skip_history: bool,
    pub tags: HashMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct SubRefreshRequest {
    #[serde(flatten)]
    pub base: Base,
    pub channel: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubRefreshResult {
    pub expired: bool,
    pub expire_at: i64,
    pub info: Option<Box<RawValue>>,
    pub b64info: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RpcRequest {
    #[serde(flatten)]
    pub base: Base,
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b64data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RpcResult {
    pub data: Option<Box<RawValue>>,
    pub b64data: Option<String>,
}
