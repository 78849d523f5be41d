//! Client protocol v2, JSON encoding: commands the client sends, results and pushes
//! the server sends. Shapes and omitempty rules follow Centrifugo (reference §1).
//! Decoding is lenient about unknown fields (SDKs send `flag`, `tf`, `delta`, …).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Raw JSON kept as it arrived (publication data, info, meta).
pub type Raw = Arc<RawValue>;

/// One command frame line: `{"id":N,"<method>":{…}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Command {
    pub id: u32,
    pub connect: Option<ConnectRequest>,
    pub subscribe: Option<SubscribeRequest>,
    pub unsubscribe: Option<ChannelRequest>,
    pub publish: Option<PublishRequest>,
    pub presence: Option<ChannelRequest>,
    pub presence_stats: Option<ChannelRequest>,
    pub history: Option<HistoryRequest>,
    pub ping: Option<serde::de::IgnoredAny>,
    pub send: Option<SendRequest>,
    pub rpc: Option<RpcRequest>,
    pub refresh: Option<RefreshRequest>,
    pub sub_refresh: Option<SubRefreshRequest>,
    /// A protobuf command whose payload bytes are not JSON: answered with error 107
    /// (the server carries payloads as JSON; see `pb.rs`).
    #[serde(skip)]
    pub binary_payload: bool,
}

/// The request a command carries, classified in Centrifugo's order.
#[derive(Debug)]
pub enum Method {
    Connect(ConnectRequest),
    Subscribe(SubscribeRequest),
    Unsubscribe(ChannelRequest),
    Publish(PublishRequest),
    Presence(ChannelRequest),
    PresenceStats(ChannelRequest),
    History(HistoryRequest),
    Rpc(RpcRequest),
    Send(SendRequest),
    Refresh(RefreshRequest),
    SubRefresh(SubRefreshRequest),
}

impl Command {
    /// A command with `id == 0` and no `send` is a pong (reference §1.2 rule 2).
    pub fn is_pong(&self) -> bool {
        self.id == 0 && self.send.is_none()
    }

    /// The first request field present, or None (⇒ disconnect 3501).
    pub fn into_method(self) -> Option<Method> {
        let m = if let Some(r) = self.connect {
            Method::Connect(r)
        } else if let Some(r) = self.subscribe {
            Method::Subscribe(r)
        } else if let Some(r) = self.unsubscribe {
            Method::Unsubscribe(r)
        } else if let Some(r) = self.publish {
            Method::Publish(r)
        } else if let Some(r) = self.presence {
            Method::Presence(r)
        } else if let Some(r) = self.presence_stats {
            Method::PresenceStats(r)
        } else if let Some(r) = self.history {
            Method::History(r)
        } else if let Some(r) = self.rpc {
            Method::Rpc(r)
        } else if let Some(r) = self.send {
            Method::Send(r)
        } else if let Some(r) = self.refresh {
            Method::Refresh(r)
        } else {
            Method::SubRefresh(self.sub_refresh?)
        };
        Some(m)
    }
}

impl Method {
    /// The result key of the reply to this method.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Connect(_) => "connect",
            Method::Subscribe(_) => "subscribe",
            Method::Unsubscribe(_) => "unsubscribe",
            Method::Publish(_) => "publish",
            Method::Presence(_) => "presence",
            Method::PresenceStats(_) => "presence_stats",
            Method::History(_) => "history",
            Method::Rpc(_) => "rpc",
            Method::Send(_) => "send",
            Method::Refresh(_) => "refresh",
            Method::SubRefresh(_) => "sub_refresh",
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ConnectRequest {
    pub token: String,
    pub data: Option<Raw>,
    pub subs: HashMap<String, SubscribeRequest>,
    pub name: String,
    pub version: String,
    pub headers: HashMap<String, String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SubscribeRequest {
    pub channel: String,
    pub token: String,
    pub recover: bool,
    pub epoch: String,
    pub offset: u64,
    pub data: Option<Raw>,
    pub positioned: bool,
    pub recoverable: bool,
    pub join_leave: bool,
    /// Publication tags filter (FilterNode JSON), compiled by the node.
    pub tf: Option<Raw>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ChannelRequest {
    pub channel: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PublishRequest {
    pub channel: String,
    pub data: Option<Raw>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct StreamPosition {
    pub offset: u64,
    pub epoch: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct HistoryRequest {
    pub channel: String,
    pub limit: i32,
    pub since: Option<StreamPosition>,
    pub reverse: bool,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SendRequest {
    pub data: Option<Raw>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RpcRequest {
    pub data: Option<Raw>,
    pub method: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RefreshRequest {
    pub token: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SubRefreshRequest {
    pub channel: String,
    pub token: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}
fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// `{"user","client","conn_info"?,"chan_info"?}`: user and client always present.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientInfo {
    pub user: String,
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub conn_info: Option<Raw>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub chan_info: Option<Raw>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Publication {
    pub data: Raw,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub info: Option<ClientInfo>,
    #[serde(skip_serializing_if = "is_zero_u64", default)]
    pub offset: u64,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub tags: HashMap<String, String>,
    /// When it was published (Unix ms; 0 = unknown). The broker keeps it (see
    /// [`Brokered`]); clients never see it.
    #[serde(skip_serializing, default)]
    pub time: i64,
}

/// A publication as the broker stores and relays it: its client-visible fields plus
/// `time`, from which each node measures its PUB/SUB lag.
#[derive(Serialize)]
pub struct Brokered<'a> {
    #[serde(flatten)]
    pub publication: &'a Publication,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub time: i64,
}

impl<'a> From<&'a Publication> for Brokered<'a> {
    fn from(publication: &'a Publication) -> Self {
        Brokered { publication, time: publication.time }
    }
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectResult {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Raw>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub subs: HashMap<String, SubscribeResult>,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ping: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub pong: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub session: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SubscribeResult {
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub recoverable: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<Publication>,
    #[serde(skip_serializing_if = "is_false")]
    pub recovered: bool,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub positioned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Raw>,
    #[serde(skip_serializing_if = "is_false")]
    pub was_recovering: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PresenceResult {
    pub presence: HashMap<String, ClientInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PresenceStatsResult {
    pub num_clients: u32,
    pub num_users: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryResult {
    pub publications: Vec<Publication>,
    pub epoch: String,
    pub offset: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RefreshResult {
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
}

/// An empty result object `{}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Empty {}

#[derive(Debug, Clone, Serialize)]
pub struct RpcResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Raw>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JoinLeave {
    pub info: ClientInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnsubscribePush {
    pub code: u32,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefreshPush {
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
}

/// Drops raw newlines from embedded JSON so it can never break the `\n` framing.
/// (Valid JSON has newlines only as whitespace; inside strings they are escaped.)
pub fn one_line(raw: Raw) -> Raw {
    if !raw.get().bytes().any(|b| b == b'\n' || b == b'\r') {
        return raw;
    }
    let text: String = raw.get().chars().filter(|c| *c != '\n' && *c != '\r').collect();
    RawValue::from_string(text).map(Arc::from).unwrap_or(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_strips_framing_newlines() {
        let raw: Raw = RawValue::from_string("{\n  \"a\": \"x\\ny\"\r\n}".into()).unwrap().into();
        assert_eq!(one_line(raw).get(), "{  \"a\": \"x\\ny\"}");
    }

    #[test]
    fn commands_ignore_unknown_fields() {
        let c: Command =
            serde_json::from_str(r#"{"id":2,"subscribe":{"channel":"a","flag":1,"delta":"fossil","zzz":[1]}}"#)
                .unwrap();
        assert!(matches!(c.into_method(), Some(Method::Subscribe(s)) if s.channel == "a"));
    }
}
