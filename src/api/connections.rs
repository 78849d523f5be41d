//! `connections` — the headline API: list live connections by `user` (per-user index,
//! no scan), `label_filter` (a survey of the hub's label columns) and/or CEL
//! `expression`, AND-combined (selection lives in `select.rs`), and build each one's
//! ConnectionInfo. At least one of the three must be non-empty: an accidental blank
//! request never lists the fleet. Rotor's `limit`/`cursor` page through a listing in
//! client-id order, so a connection present throughout appears exactly once.

use std::collections::HashMap;
use std::sync::Arc;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::node::{Node, Session, SubState, TokenInfo};

use super::error::ApiError;
use super::select::{Selector, filter_is_empty};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectionsRequest {
    pub user: String,
    pub expression: String,
    pub label_filter: Option<serde_json::Value>,
    /// At most this many connections (0 = no limit).
    pub limit: u64,
    /// `next_cursor` of the previous page.
    pub cursor: String,
}

pub struct ConnectionsResult {
    pub connections: Vec<Arc<Session>>,
    /// Set when `limit` cut the listing short: pass it as `cursor` for the next page.
    pub next_cursor: String,
    /// How many connections the selection matches in all (every page, not just this
    /// one); the same on each page of a listing while nothing connects or disconnects.
    pub total: u64,
    /// This node's name, written into each ConnectionInfo as `node`.
    pub node: String,
}

impl Serialize for ConnectionsResult {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("connections", &ConnectionMap(&self.connections, &self.node))?;
        if !self.next_cursor.is_empty() {
            m.serialize_entry("next_cursor", &self.next_cursor)?;
        }
        m.serialize_entry("total", &self.total)?;
        m.end()
    }
}

/// `{"<client id>": ConnectionInfo, …}` written straight from the sessions.
struct ConnectionMap<'a>(&'a [Arc<Session>], &'a str);

impl Serialize for ConnectionMap<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(self.0.len()))?;
        for s in self.0 {
            m.serialize_entry(&s.client, &ConnectionInfo(s, self.1))?;
        }
        m.end()
    }
}

/// The ConnectionInfo of one live session, serialized without copying it: `app_name`,
/// `app_version` (omitted when empty), `transport`, `protocol`, `user` (omitted when
/// anonymous), `state{channels{<ch>:{source?}}, connection_token{uid?, issued_at?},
/// subscription_tokens{<ch>:{…}}, meta}` (empty parts omitted), `labels`,
/// `connected_at_ms` and Rotor's `node` (the name of the node holding the connection,
/// the second field). The session's state lock is held while its entry is written.
pub struct ConnectionInfo<'a>(pub &'a Session, pub &'a str);

impl Serialize for ConnectionInfo<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let s = self.0;
        let mut m = ser.serialize_map(None)?;
        if !s.app_name.is_empty() {
            m.serialize_entry("app_name", &s.app_name)?;
        }
        if !s.app_version.is_empty() {
            m.serialize_entry("app_version", &s.app_version)?;
        }
        m.serialize_entry("transport", s.transport.name())?;
        m.serialize_entry("protocol", s.encoding.name())?;
        if !s.user.is_empty() {
            m.serialize_entry("user", &s.user)?;
        }
        {
            let st = s.state.lock();
            m.serialize_entry("state", &StateOut { s, subs: &st.subs })?;
        }
        if !s.labels.is_empty() {
            m.serialize_entry("labels", &LabelsOut(&s.labels))?;
        }
        m.serialize_entry("connected_at_ms", &s.connected_at_ms)?;
        m.serialize_entry("node", self.1)?;
        m.end()
    }
}

struct StateOut<'a> {
    s: &'a Session,
    subs: &'a HashMap<String, SubState>,
}

impl Serialize for StateOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        if !self.subs.is_empty() {
            m.serialize_entry("channels", &ChannelsOut(self.subs))?;
        }
        if let Some(t) = &self.s.token {
            m.serialize_entry("connection_token", &TokenOut(t))?;
        }
        if self.subs.values().any(|sub| sub.token.is_some()) {
            m.serialize_entry("subscription_tokens", &SubTokensOut(self.subs))?;
        }
        if let Some(meta) = self.s.meta.get() {
            m.serialize_entry("meta", &meta)?;
        }
        m.end()
    }
}

struct ChannelsOut<'a>(&'a HashMap<String, SubState>);

impl Serialize for ChannelsOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(self.0.len()))?;
        for (ch, sub) in self.0 {
            m.serialize_entry(ch, &SourceOut(sub.source as u32))?;
        }
        m.end()
    }
}

/// ChannelContext: `{"source": n}`, `{}` for client subscriptions (source 0).
struct SourceOut(u32);

impl Serialize for SourceOut {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        if self.0 != 0 {
            m.serialize_entry("source", &self.0)?;
        }
        m.end()
    }
}

struct SubTokensOut<'a>(&'a HashMap<String, SubState>);

impl Serialize for SubTokensOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        for (ch, sub) in self.0 {
            if let Some(t) = &sub.token {
                m.serialize_entry(ch, &TokenOut(t))?;
            }
        }
        m.end()
    }
}

/// TokenInfo: `uid` and `issued_at`, each omitted when empty or zero.
struct TokenOut<'a>(&'a TokenInfo);

impl Serialize for TokenOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        if !self.0.uid.is_empty() {
            m.serialize_entry("uid", &self.0.uid)?;
        }
        if self.0.issued_at != 0 {
            m.serialize_entry("issued_at", &self.0.issued_at)?;
        }
        m.end()
    }
}

/// Labels as a JSON object (they are kept sorted by key).
struct LabelsOut<'a>(&'a [(Arc<str>, Arc<str>)]);

impl Serialize for LabelsOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(&**k, &**v)?;
        }
        m.end()
    }
}

/// The opaque cursor after the connection with client id `id`.
pub(super) fn encode_cursor(id: u128) -> String {
    format!("{id:032x}")
}

/// The client id a cursor of [`encode_cursor`] names: exactly 32 lowercase hex digits.
/// Anything else (another length, a sign, upper case, other characters) was not issued
/// by this server and is a bad request.
fn decode_cursor(cursor: &str) -> Result<u128, ApiError> {
    let issued = cursor.len() == 32 && cursor.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let invalid = || ApiError::bad_request("cursor: not a cursor returned by connections");
    if !issued {
        return Err(invalid());
    }
    u128::from_str_radix(cursor, 16).map_err(|_| invalid())
}

pub fn connections(node: &Node, req: ConnectionsRequest) -> Result<ConnectionsResult, ApiError> {
    let no_expression = req.expression.trim().is_empty();
    if req.user.is_empty() && no_expression && filter_is_empty(&req.label_filter) {
        return Err(ApiError::bad_request(
            "connections needs at least one of user, expression or label_filter (a blank request would list the whole fleet)",
        ));
    }
    let after = if req.cursor.is_empty() { 0 } else { decode_cursor(&req.cursor)? };
    let user = (!req.user.is_empty()).then_some(req.user.as_str());
    let selector = Selector::compile(node, user, &req.expression, &req.label_filter)?;
    let want = (req.limit > 0).then(|| usize::try_from(req.limit).unwrap_or(usize::MAX).saturating_add(1));
    let (mut sessions, total) = selector.run_counted(node, after, want)?;
    let mut next_cursor = String::new();
    if req.limit > 0 && sessions.len() as u64 > req.limit {
        sessions.truncate(req.limit as usize);
        next_cursor = encode_cursor(sessions.last().expect("limit > 0").id);
    }
    Ok(ConnectionsResult { connections: sessions, next_cursor, total: total as u64, node: node.name.clone() })
}

/// One node's share of a fleet-wide listing: its page of `(client, ConnectionInfo)`
/// in client-id order, whether it has more after the page, and how many connections
/// the selection matches on that node in all.
#[derive(Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<(String, Box<serde_json::value::RawValue>)>,
    pub more: bool,
    /// Absent from the answers of nodes older than the field: counted as 0.
    #[serde(default)]
    pub total: u64,
}

pub fn page(node: &Node, req: ConnectionsRequest) -> Result<Page, ApiError> {
    let r = connections(node, req)?;
    let items = r
        .connections
        .iter()
        .map(|s| (s.client.clone(), serde_json::value::to_raw_value(&ConnectionInfo(s, &r.node)).expect("encodes")))
        .collect();
    Ok(Page { items, more: !r.next_cursor.is_empty(), total: r.total })
}
