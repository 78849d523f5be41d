//! `connections` — the headline API: list live connections by `user` (per-user index,
//! no scan), `label_filter` (a survey of the hub's label columns) and/or CEL
//! `expression`, AND-combined (selection lives in `select.rs`), and build each one's
//! ConnectionInfo. At least one of the three must be non-empty: an accidental blank
//! request never lists the fleet. Rotor's `limit`/`cursor` page through a listing in
//! client-id order, so a connection present throughout appears exactly once.
//!
//! A finished answer is a [`Listing`] of rows (live sessions here, ConnectionInfo JSON
//! from fleet peers); the HTTP API serializes it to JSON, the gRPC API builds protobuf
//! from the same rows (`grpc/listing.rs`), so only the encoding differs.

use std::sync::Arc;

use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::node::{Node, Session, TokenInfo};

use super::Encoded;
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

/// A `connections` answer as the API returns it, before encoding: the rows in
/// client-id order, the paging cursor, the total, and the fleet nodes that did not
/// answer.
pub struct Listing {
    pub rows: Vec<Row>,
    /// Set when `limit` cut the listing short: pass it as `cursor` for the next page.
    pub next_cursor: String,
    /// Matching connections on every node that answered (all pages).
    pub total: u64,
    /// Live fleet nodes that did not answer in time (Rotor's `missing_nodes`).
    pub missing: Vec<String>,
    /// This node's name, the `node` of its own rows.
    pub node: String,
}

/// One listed connection.
pub enum Row {
    /// A session on this node, encoded when the answer is.
    Here(Arc<Session>),
    /// A fleet peer's connection: its client id and ConnectionInfo JSON as it answered.
    Peer { client: String, info: Box<RawValue> },
}

impl From<ConnectionsResult> for Listing {
    fn from(r: ConnectionsResult) -> Listing {
        Listing {
            rows: r.connections.into_iter().map(Row::Here).collect(),
            next_cursor: r.next_cursor,
            total: r.total,
            missing: Vec::new(),
            node: r.node,
        }
    }
}

impl Listing {
    /// The HTTP API's JSON: `connections`, `next_cursor` (when set), `total`,
    /// `missing_nodes` (when any), written in one pass over the rows into a buffer
    /// sized for them, which becomes the HTTP body's middle part as it is. (Through a
    /// `Serialize` impl, as before stop 27, a large listing was copied three or four
    /// times, which cost more than building its rows; until stop 28 it was still
    /// copied twice, into a `RawValue` and into the envelope.)
    pub fn encode(&self) -> Encoded {
        let mut out = String::with_capacity(64 + self.rows.len() * ROW_GUESS);
        out.push_str("{\"connections\":");
        write_rows(&mut out, &self.rows, &self.node);
        if !self.next_cursor.is_empty() {
            out.push_str(",\"next_cursor\":");
            write_str(&mut out, &self.next_cursor);
        }
        out.push_str(",\"total\":");
        write_uint(&mut out, self.total);
        if !self.missing.is_empty() {
            out.push_str(",\"missing_nodes\":[");
            for (i, name) in self.missing.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(&mut out, name);
            }
            out.push(']');
        }
        out.push('}');
        Encoded::from_json(out)
    }
}

/// Appends `{"<client id>": ConnectionInfo, …}`: this node's rows by [`write_info`]
/// (`node` is its name), a peer's as it came.
fn write_rows(out: &mut String, rows: &[Row], node: &str) {
    // Every row of this node ends the same way: escaped once.
    let ending = info_ending(node);
    out.push('{');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match row {
            Row::Here(s) => {
                // The client ID, a UUID: encoded straight from its number, and with
                // nothing in it to escape.
                let mut id = [0u8; 36];
                out.push('"');
                out.push_str(uuid::Uuid::from_u128(s.id).hyphenated().encode_lower(&mut id));
                out.push('"');
                out.push(':');
                write_info_fields(out, s);
                out.push_str(&ending);
            }
            Row::Peer { client, info } => {
                write_str(out, client);
                out.push(':');
                out.push_str(info.get());
            }
        }
    }
    out.push('}');
}

/// A typical ConnectionInfo's size in bytes (a few channels, a token, small meta), to
/// size a listing's buffer once.
const ROW_GUESS: usize = 320;

/// The ConnectionInfo of one live session (see [`write_info`] for the fields).
pub struct ConnectionInfo<'a>(pub &'a Session, pub &'a str);

impl Serialize for ConnectionInfo<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(ROW_GUESS);
        write_info(&mut out, self.0, self.1);
        crate::json::Verbatim(&out).serialize(ser)
    }
}

/// Appends the ConnectionInfo of `s` to `out` as compact JSON, written straight from
/// the session, no intermediate structs: `app_name`, `app_version` (omitted when
/// empty), `transport`, `protocol`, `user` (omitted when anonymous),
/// `state{channels{<ch>:{source?}}, connection_token{uid?, issued_at?},
/// subscription_tokens{<ch>:{…}}, meta}` (empty parts omitted), `labels`,
/// `connected_at_ms` and Rotor's `node` (the name of the node holding the
/// connection). The session's state lock is held while its channels are written.
///
/// The bytes are those serde_json wrote for the former `Serialize` structs (same
/// order, same escaping; `tests` compare with a `serde_json::json!` rendering). Nothing
/// is cached per connection: writing the fixed fields measured within the budget
/// (docs/performance.md), so a pre-encoded copy would cost memory for little time.
pub fn write_info(out: &mut String, s: &Session, node: &str) {
    write_info_fields(out, s);
    write_ending(out, node);
}

/// The end of a ConnectionInfo on node `node`: `,"node":"<node>"}`.
fn write_ending(out: &mut String, node: &str) {
    out.push_str(",\"node\":");
    write_str(out, node);
    out.push('}');
}

/// [`write_ending`] made once: the same for each of a node's rows, so a listing
/// escapes it once.
fn info_ending(node: &str) -> String {
    let mut ending = String::with_capacity(node.len() + 12);
    write_ending(&mut ending, node);
    ending
}

/// [`write_info`] up to (not including) `node`, which the caller appends and closes.
fn write_info_fields(out: &mut String, s: &Session) {
    out.push('{');
    if !s.app_name.is_empty() {
        out.push_str("\"app_name\":");
        write_str(out, &s.app_name);
        out.push(',');
    }
    if !s.app_version.is_empty() {
        out.push_str("\"app_version\":");
        write_str(out, &s.app_version);
        out.push(',');
    }
    // Names of Rotor's own, with nothing to escape.
    out.push_str("\"transport\":\"");
    out.push_str(s.transport.name());
    out.push_str("\",\"protocol\":\"");
    out.push_str(s.encoding.name());
    out.push('"');
    if !s.user.is_empty() {
        out.push_str(",\"user\":");
        write_str(out, &s.user);
    }
    out.push_str(",\"state\":{");
    let mut first = true;
    let mut field = |out: &mut String, name: &str| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push_str(name);
    };
    {
        let st = s.state.lock();
        if !st.subs.is_empty() {
            field(out, "\"channels\":{");
            for (i, (ch, sub)) in st.subs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, ch);
                match sub.source as u32 {
                    0 => out.push_str(":{}"),
                    n => {
                        out.push_str(":{\"source\":");
                        write_int(out, n as i64);
                        out.push('}');
                    }
                }
            }
            out.push('}');
        }
        if let Some(t) = &s.token {
            field(out, "\"connection_token\":");
            write_token(out, t);
        }
        if st.subs.values().any(|sub| sub.token.is_some()) {
            field(out, "\"subscription_tokens\":{");
            let mut first = true;
            for (ch, t) in st.subs.iter().filter_map(|(ch, sub)| Some((ch, sub.token.as_ref()?))) {
                if !std::mem::take(&mut first) {
                    out.push(',');
                }
                write_str(out, ch);
                out.push(':');
                write_token(out, t);
            }
            out.push('}');
        }
    }
    if let Some(meta) = s.meta.get() {
        field(out, "\"meta\":");
        out.push_str(meta.get());
    }
    out.push('}');
    if !s.labels.is_empty() {
        out.push_str(",\"labels\":{");
        for (i, (k, v)) in s.labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_str(out, k);
            out.push(':');
            write_str(out, v);
        }
        out.push('}');
    }
    out.push_str(",\"connected_at_ms\":");
    write_int(out, s.connected_at_ms);
}

/// TokenInfo: `uid` and `issued_at`, each omitted when empty or zero.
fn write_token(out: &mut String, t: &TokenInfo) {
    out.push('{');
    if !t.uid.is_empty() {
        out.push_str("\"uid\":");
        write_str(out, &t.uid);
    }
    if t.issued_at != 0 {
        if !t.uid.is_empty() {
            out.push(',');
        }
        out.push_str("\"issued_at\":");
        write_int(out, t.issued_at);
    }
    out.push('}');
}

/// A JSON string, escaped exactly as serde_json escapes: `"` `\\` and the control
/// characters (`\b \f \n \r \t` by name, the others as `\u00XX`); everything else
/// verbatim. Most strings need no escape: they are checked with a branch-free scan
/// and copied whole.
fn write_str(out: &mut String, v: &str) {
    out.reserve(v.len() + 2);
    out.push('"');
    if plain(v) {
        out.push_str(v);
    } else {
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.push_str("\\u00");
                    out.push(HEX[(c as usize) >> 4] as char);
                    out.push(HEX[(c as usize) & 15] as char);
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

/// Whether `v` has nothing JSON escapes. Rows' strings are mostly a few bytes (a
/// user ID, a channel, a label), so short ones are looked up a byte at a time; long
/// ones are scanned without branches, which the compiler vectorises.
fn plain(v: &str) -> bool {
    const ESCAPED: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 0x20 {
            t[b] = true;
            b += 1;
        }
        t[b'"' as usize] = true;
        t[b'\\' as usize] = true;
        t
    };
    if v.len() <= 16 {
        v.bytes().all(|b| !ESCAPED[b as usize])
    } else {
        v.bytes().fold(true, |ok, b| ok & (b >= 0x20 && b != b'"' && b != b'\\'))
    }
}

/// A decimal integer, without going through `fmt` (`itoa`: two digits per step, into
/// a stack buffer, pushed once).
fn write_int(out: &mut String, n: i64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// A decimal unsigned integer, as [`write_int`].
fn write_uint(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
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
        if let Some(last) = sessions.last() {
            next_cursor = encode_cursor(last.id);
        }
    }
    Ok(ConnectionsResult { connections: sessions, next_cursor, total: total as u64, node: node.name.clone() })
}

/// One node's share of a fleet-wide listing: its page of `(client, ConnectionInfo)`
/// in client-id order, whether it has more after the page, and how many connections
/// the selection matches on that node in all.
#[derive(Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<(String, Box<RawValue>)>,
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
        .map(|s| (s.client().to_string(), crate::json::to_raw(&ConnectionInfo(s, &r.node))))
        .collect();
    Ok(Page { items, more: !r.next_cursor.is_empty(), total: r.total })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use crate::node::{SubSource, SubState};

    use super::*;

    fn sub(source: SubSource, token: Option<TokenInfo>) -> SubState {
        SubState { source, token, expire_at: None, presence: false, join_leave: false, chan_info: None }
    }

    fn session(user: &str, subs: HashMap<String, SubState>, labels: &[(&str, &str)], meta: Option<&str>) -> Session {
        let id = 0x1234_5678_9abc_def0_1234_5678_9abc_def0u128;
        crate::node::test_session(id, user, crate::protocol::Encoding::Json, "", subs, labels, meta)
    }

    fn info(s: &Session) -> String {
        serde_json::to_string(&ConnectionInfo(s, "node-1")).unwrap()
    }

    /// The exact bytes, in the field order and escaping serde_json gave the former
    /// `Serialize` structs.
    #[test]
    fn connection_info_bytes() {
        let subs = HashMap::from([(
            "chat:1".to_string(),
            sub(SubSource::Api, Some(TokenInfo { uid: String::new(), issued_at: 7 })),
        )]);
        let s = session("42", subs, &[("region", "eu"), ("tier", "p\u{1}ro")], Some(r#"{"plan": "pro"}"#));
        assert_eq!(
            info(&s),
            concat!(
                r#"{"app_name":"app \"one\"","transport":"websocket","protocol":"json","user":"42","#,
                r#""state":{"channels":{"chat:1":{"source":2}},"connection_token":{"uid":"tok\n1","issued_at":1700000000},"#,
                r#""subscription_tokens":{"chat:1":{"issued_at":7}},"meta":{"plan": "pro"}},"#,
                r#""labels":{"region":"eu","tier":"p\u0001ro"},"connected_at_ms":1700000000123,"node":"node-1"}"#
            )
        );
        let anonymous = session("", HashMap::new(), &[], None);
        assert_eq!(
            info(&anonymous),
            concat!(
                r#"{"app_name":"app \"one\"","transport":"websocket","protocol":"json","#,
                r#""state":{"connection_token":{"uid":"tok\n1","issued_at":1700000000}},"#,
                r#""connected_at_ms":1700000000123,"node":"node-1"}"#
            )
        );
    }

    /// Many channels (hash order), client and server sources, tokens on some: the same
    /// document as a `json!` rendering, and a whole listing is valid JSON.
    #[test]
    fn connection_info_matches_json_rendering() {
        let mut subs = HashMap::new();
        let mut channels = serde_json::Map::new();
        let mut tokens = serde_json::Map::new();
        for i in 0..20 {
            let ch = format!("ch\\{i}\"\u{7f}é");
            let token = (i % 3 == 0).then(|| TokenInfo { uid: format!("u{i}"), issued_at: 0 });
            if let Some(t) = &token {
                tokens.insert(ch.clone(), json!({"uid": t.uid}));
            }
            let source = if i % 2 == 0 { SubSource::Client } else { SubSource::Token };
            channels.insert(ch.clone(), if i % 2 == 0 { json!({}) } else { json!({"source": 1}) });
            subs.insert(ch, sub(source, token));
        }
        let s = session("user\u{0}\u{1f}\u{2028}", subs, &[("k", "v\t")], Some("[1,2]"));
        let want = json!({
            "app_name": "app \"one\"", "transport": "websocket", "protocol": "json", "user": "user\u{0}\u{1f}\u{2028}",
            "state": {"channels": channels, "connection_token": {"uid": "tok\n1", "issued_at": 1_700_000_000},
                      "subscription_tokens": tokens, "meta": [1, 2]},
            "labels": {"k": "v\t"}, "connected_at_ms": 1_700_000_000_123i64, "node": "node-1",
        });
        assert_eq!(serde_json::from_str::<Value>(&info(&s)).unwrap(), want);
        let s = Arc::new(s);
        let r = Listing::from(ConnectionsResult {
            connections: vec![s.clone(), s.clone()],
            next_cursor: "c".into(),
            total: 9,
            node: "node-1".into(),
        });
        let listed: Value = serde_json::from_str(r.encode().get()).unwrap();
        let client = s.client().to_string();
        assert_eq!(listed, json!({"connections": {client.as_str(): want}, "next_cursor": "c", "total": 9}));
        // Every optional field, a peer's row and escapes; and none of them.
        let mut r = r;
        r.missing = vec!["node-\"2\"".into(), "node-3".into()];
        r.rows
            .push(Row::Peer { client: "peer\u{1}".into(), info: RawValue::from_string("{\"a\": 1}".into()).unwrap() });
        r.total = u64::MAX;
        let listed: Value = serde_json::from_str(r.encode().get()).unwrap();
        let want = json!({
            "connections": {client.as_str(): want, "peer\u{1}": {"a": 1}},
            "next_cursor": "c", "total": u64::MAX, "missing_nodes": ["node-\"2\"", "node-3"],
        });
        assert_eq!(listed, want);
        let empty =
            Listing { rows: Vec::new(), next_cursor: String::new(), total: 0, missing: Vec::new(), node: "n".into() };
        assert_eq!(empty.encode().get(), r#"{"connections":{},"total":0}"#);
    }

    #[test]
    fn integers_match_serde_json() {
        for n in [0, 1, -1, 9, 10, -10, 1_700_000_000_123, i64::MAX, i64::MIN, i64::MIN + 1] {
            let mut out = String::new();
            write_int(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for n in [0, 7, 10, u64::MAX] {
            let mut out = String::new();
            write_uint(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    proptest! {
        /// Any string, hostile ones included (every control character, quotes,
        /// backslashes, U+2028, astral characters), is escaped byte-for-byte as
        /// serde_json escapes it.
        #[test]
        fn strings_escape_like_serde_json(v in "(\\PC|[\\x00-\\x1f\"\\\\\u{7f}\u{2028}])*") {
            let mut out = String::from("x");
            write_str(&mut out, &v);
            prop_assert_eq!(&out[1..], serde_json::to_string(&v).unwrap());
        }

        #[test]
        fn integers_escape_like_serde_json(n in any::<i64>()) {
            let mut out = String::new();
            write_int(&mut out, n);
            prop_assert_eq!(out, n.to_string());
        }
    }
}
