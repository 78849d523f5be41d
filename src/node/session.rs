//! A connected client as the rest of the server sees it: identity, what it connected
//! with (app, transport, token, meta, labels), its outgoing queue and its
//! subscriptions. Stored in the hub; the transport task owns the socket.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::filter::cel::MetaForm;
use crate::hub::Member;
use crate::protocol::{ClientInfo, Encoding, Raw};

use super::queue::Queue;

/// Which transport a session arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    UniHttpStream,
    UniSse,
    UniWebSocket,
    /// Bidirectional emulation: replies stream down an HTTP response, commands come
    /// through `/emulation`.
    HttpStream,
    Sse,
}

impl Transport {
    /// Every transport, in declaration order (its index is `self as usize`).
    pub const ALL: [Transport; 6] = [
        Transport::WebSocket,
        Transport::UniHttpStream,
        Transport::UniSse,
        Transport::UniWebSocket,
        Transport::HttpStream,
        Transport::Sse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::UniHttpStream => "uni_http_stream",
            Transport::UniSse => "uni_sse",
            Transport::UniWebSocket => "uni_websocket",
            Transport::HttpStream => "http_stream",
            Transport::Sse => "sse",
        }
    }

    /// Emulated transports carry commands through `/emulation`, addressed by the
    /// connect result's `session` and `node`.
    pub fn emulated(self) -> bool {
        matches!(self, Transport::HttpStream | Transport::Sse)
    }

    /// Unidirectional transports write bare pushes and expect no pong.
    pub fn unidirectional(self) -> bool {
        matches!(self, Transport::UniHttpStream | Transport::UniSse | Transport::UniWebSocket)
    }
}

/// `jti` and `iat` of a token, as the connections API reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenInfo {
    pub uid: String,
    pub issued_at: i64,
}

/// Where a subscription came from (ChannelContext.source in the connections API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubSource {
    /// A client `subscribe` command.
    Client = 0,
    /// The connection token's `channels`/`subs`.
    Token = 1,
    /// Server API `subscribe`.
    Api = 2,
    /// Channels a unidirectional client asked for in its connect request.
    ConnectRequest = 3,
}

/// One subscription of a session.
#[derive(Debug, Clone)]
pub struct SubState {
    pub source: SubSource,
    pub token: Option<TokenInfo>,
    /// Unix seconds after which the subscription must be refreshed (client-side only).
    pub expire_at: Option<i64>,
    pub presence: bool,
    pub join_leave: bool,
    pub chan_info: Option<Raw>,
}

impl SubState {
    pub fn server_side(&self) -> bool {
        self.source != SubSource::Client
    }
}

#[derive(Default)]
pub struct MutableState {
    pub subs: HashMap<String, SubState>,
    /// Unix seconds when the connection expires unless refreshed.
    pub expire_at: Option<i64>,
    /// The token of the connection's last client refresh (revocation checks use it
    /// instead of the connect token).
    pub refreshed: Option<TokenInfo>,
}

pub struct Session {
    /// The client ID; its wire form (a UUID string) is [`Session::client`].
    pub id: u128,
    pub user: String,
    pub transport: Transport,
    /// JSON or protobuf: how every reply and push to this client is encoded.
    pub encoding: Encoding,
    pub app_name: String,
    pub app_version: String,
    /// Connection info (in ClientInfo) and meta; the refresh proxy may replace both.
    pub info: RawCell,
    pub meta: MetaCell,
    pub labels: Vec<(Arc<str>, Arc<str>)>,
    pub connected_at_ms: i64,
    /// Session ID of unidirectional and emulated connections (ConnectResult.session, a
    /// UUID; its string is [`Session::session`]), else 0. For emulation it is the
    /// capability `/emulation` requests name.
    pub session_id: u128,
    pub token: Option<TokenInfo>,
    pub queue: Arc<Queue>,
    pub state: Mutex<MutableState>,
    /// Client headers the proxies may forward (captured at connect).
    pub proxy_headers: Arc<crate::proxy::Headers>,
    /// Credentials came from the connect proxy: the refresh proxy extends them.
    pub proxied: bool,
}

impl Session {
    /// Prefetches the lines of the fields an interpreted expression reads, ahead of a
    /// scan reaching this session ([`crate::hub::Lookahead`]); reads nothing itself.
    pub fn prefetch_fields(&self) {
        use crate::hub::prefetch;
        prefetch(&self.id);
        prefetch(&self.user);
        prefetch(&self.app_name);
        prefetch(&self.app_version);
        prefetch(&self.transport);
        prefetch(&self.meta);
        prefetch(&self.labels);
        prefetch(&self.connected_at_ms);
    }

    /// The client ID as the wire has it (a UUID string), made from [`Session::id`].
    pub fn client(&self) -> UuidStr {
        UuidStr::of(self.id)
    }

    /// The session ID as the wire has it (a UUID string); None for a connection that
    /// has none (bidirectional WebSocket).
    pub fn session(&self) -> Option<UuidStr> {
        (self.session_id != 0).then(|| UuidStr::of(self.session_id))
    }

    /// ClientInfo for presence, join/leave and client publications.
    pub fn client_info(&self, chan_info: Option<Raw>) -> ClientInfo {
        ClientInfo { user: self.user.clone(), client: self.client().to_string(), conn_info: self.info.get(), chan_info }
    }

    /// The `client_name` × `client_version` row of this client in the metrics.
    pub fn metrics_kind(&self) -> usize {
        crate::metrics::client_kind(&self.app_name, &self.app_version)
    }

    pub fn push(&self, msg: Bytes) -> bool {
        self.queue.push(msg)
    }

    pub fn is_subscribed(&self, channel: &str) -> bool {
        self.state.lock().subs.contains_key(channel)
    }

    pub fn uni(&self) -> bool {
        self.transport.unidirectional()
    }
}

impl Member for Session {
    fn client_id(&self) -> u128 {
        self.id
    }
    fn user(&self) -> &str {
        &self.user
    }
    fn labels(&self) -> &[(Arc<str>, Arc<str>)] {
        &self.labels
    }
    fn attributes(&self) -> &'static [(Arc<str>, Arc<str>)] {
        attributes(self.transport, self.encoding)
    }
}

/// The hub attributes of a connection on `transport` with `encoding`: its protocol and
/// transport under their reserved keys, sorted by key, as CEL's `protocol` and
/// `transport` name them. One shared table for every combination.
fn attributes(transport: Transport, encoding: Encoding) -> &'static [(Arc<str>, Arc<str>)] {
    use crate::filter::attribute::{PROTOCOL, TRANSPORT};
    type Pairs = [(Arc<str>, Arc<str>); 2];
    static TABLE: std::sync::LazyLock<Vec<Pairs>> = std::sync::LazyLock::new(|| {
        let pairs = |t: Transport, e: Encoding| -> Pairs {
            [(Arc::from(PROTOCOL), Arc::from(e.name())), (Arc::from(TRANSPORT), Arc::from(t.name()))]
        };
        Transport::ALL.iter().flat_map(|&t| [pairs(t, Encoding::Json), pairs(t, Encoding::Protobuf)]).collect()
    });
    &TABLE[transport as usize * 2 + (encoding == Encoding::Protobuf) as usize]
}

/// A connection attribute that may change while the session lives (`info`, `meta`):
/// read as an `Arc` clone under a short lock that is never held across anything else.
#[derive(Default)]
pub struct RawCell(Mutex<Option<Raw>>);

impl RawCell {
    pub fn get(&self) -> Option<Raw> {
        self.0.lock().clone()
    }

    pub fn set(&self, v: Option<Raw>) {
        *self.0.lock() = v;
    }
}

/// The connection's `meta`, with what its text was found to be when stored
/// ([`MetaForm`]): interpreted expressions then find keys in it without checking all
/// of it on every evaluation.
pub struct MetaCell(Mutex<Option<(Raw, MetaForm)>>);

impl MetaCell {
    pub fn get(&self) -> Option<Raw> {
        self.0.lock().as_ref().map(|(raw, _)| raw.clone())
    }

    pub fn set(&self, v: Option<Raw>) {
        *self.0.lock() = v.map(MetaCell::checked);
    }

    /// Runs `f` on the text in place, under the cell's lock: no reference count is
    /// taken (a survey reads a million of these).
    pub fn with<R>(&self, f: impl FnOnce(Option<&serde_json::value::RawValue>, MetaForm) -> R) -> R {
        match &*self.0.lock() {
            Some((raw, form)) => f(Some(raw), *form),
            None => f(None, MetaForm::UNCHECKED),
        }
    }

    fn checked(raw: Raw) -> (Raw, MetaForm) {
        let form = MetaForm::of(raw.get());
        (raw, form)
    }
}

impl From<Option<Raw>> for MetaCell {
    fn from(v: Option<Raw>) -> Self {
        MetaCell(Mutex::new(v.map(MetaCell::checked)))
    }
}

impl From<Option<Raw>> for RawCell {
    fn from(v: Option<Raw>) -> Self {
        RawCell(Mutex::new(v))
    }
}

/// What the channel index keeps per subscriber.
#[derive(Clone)]
pub struct Subscriber {
    pub session: Arc<Session>,
    /// Wants join/leave pushes for this channel.
    pub push_join_leave: bool,
    /// The client's publication tags filter (`tf`): publications whose tags do not
    /// match are not delivered to this subscriber.
    pub tags_filter: Option<crate::filter::Program>,
}

/// A UUID in its 36-character wire form, made on the stack. Sessions keep their IDs
/// as `u128`s: a `String` would be a 24-byte field and a 48-byte block in every one.
#[derive(Clone, Copy)]
pub struct UuidStr([u8; 36]);

impl UuidStr {
    pub fn of(id: u128) -> UuidStr {
        let mut out = [0u8; 36];
        uuid::Uuid::from_u128(id).hyphenated().encode_lower(&mut out);
        UuidStr(out)
    }

    pub fn as_str(&self) -> &str {
        // Hex digits and hyphens: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for UuidStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for UuidStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for UuidStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for UuidStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<String> for UuidStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

/// A fixed session for tests that render one (the `connections` row in JSON and in
/// protobuf): fixed id and connect time, a token with a `uid`, the given user, subs,
/// labels and meta.
#[cfg(test)]
pub(crate) fn test_session(
    id: u128,
    user: &str,
    encoding: Encoding,
    app_version: &str,
    subs: HashMap<String, SubState>,
    labels: &[(&str, &str)],
    meta: Option<&str>,
) -> Session {
    Session {
        id,
        user: user.into(),
        transport: Transport::WebSocket,
        encoding,
        app_name: "app \"one\"".into(),
        app_version: app_version.into(),
        info: None.into(),
        meta: meta.map(|m| Arc::from(serde_json::value::RawValue::from_string(m.into()).unwrap())).into(),
        labels: labels.iter().map(|(k, v)| (Arc::from(*k), Arc::from(*v))).collect(),
        connected_at_ms: 1_700_000_000_123,
        session_id: 0,
        token: Some(TokenInfo { uid: "tok\n1".into(), issued_at: 1_700_000_000 }),
        queue: Arc::new(Queue::new(1 << 10)),
        state: Mutex::new(MutableState { subs, expire_at: None, refreshed: None }),
        proxy_headers: crate::proxy::Headers::default().shared(),
        proxied: false,
    }
}

#[cfg(test)]
mod tests {
    use super::{Encoding, Session, Transport, UuidStr, attributes};
    use crate::filter::attribute::{PROTOCOL, TRANSPORT};

    #[test]
    fn a_client_id_is_the_uuid_of_its_number() {
        for id in [uuid::Uuid::new_v4(), uuid::Uuid::nil(), uuid::Uuid::max()] {
            let s = UuidStr::of(id.as_u128());
            assert_eq!(s.as_str(), id.to_string());
            assert_eq!(s, id.to_string());
            assert_eq!(format!("{s} {s:?}"), format!("{id} \"{id}\""));
        }
    }

    /// Every connection keeps one `Session` in an `Arc` (16 bytes of counts more): at
    /// 368 B and under, that block takes mimalloc's 384-byte size class (the next is
    /// 448). A field added here costs every connection.
    #[test]
    fn a_session_stays_in_its_size_class() {
        let size = std::mem::size_of::<Session>();
        // 384 bytes (a 448-byte block, and a 48-byte string for the client ID) before
        // the client ID was kept as a number only; 352 since.
        assert!(size <= 368, "a session grew to {size} bytes");
    }

    /// Each combination finds its own names, sorted by key (the hub and the session's
    /// label source binary-search them).
    #[test]
    fn attributes_name_the_transport_and_protocol() {
        for t in Transport::ALL {
            for e in [Encoding::Json, Encoding::Protobuf] {
                let pairs: Vec<(&str, &str)> = attributes(t, e).iter().map(|(k, v)| (&**k, &**v)).collect();
                assert_eq!(pairs, [(PROTOCOL, e.name()), (TRANSPORT, t.name())]);
                assert!(pairs.is_sorted());
            }
        }
    }
}
