//! `Connections` answers in protobuf, built from the rows of the API's own
//! [`Listing`]: a session on this node becomes a `ConnectionInfo` field by field (no
//! JSON on the way), a fleet peer's row — JSON as the peer answered — is read into one.
//! The selection, paging and fleet merge stay in `api`; this file only encodes.

use std::collections::HashMap;

use tonic::Status;

use crate::api::connections::{Listing, Row};
use crate::node::Session;

use super::proto::{
    ChannelContext, ConnectionInfo, ConnectionState, ConnectionTokenInfo, ConnectionsResult, SubscriptionTokenInfo,
};

/// `ping_pong_latency_ms` when not known (Rotor does not measure it).
const UNKNOWN_LATENCY: i64 = -1;

/// The protobuf result of a listing (`total` and `missing_nodes` have no field in
/// Centrifugo's message and are left out, as before).
pub(super) fn result(listing: Listing) -> Result<ConnectionsResult, Status> {
    let mut connections = HashMap::with_capacity(listing.rows.len());
    for row in listing.rows {
        match row {
            Row::Here(s) => {
                connections.insert(s.client().to_string(), info(&s));
            }
            Row::Peer { client, info } => {
                let mut c: ConnectionInfo = serde_json::from_str(info.get())
                    .map_err(|e| Status::internal(format!("a fleet node's ConnectionInfo of {client}: {e}")))?;
                c.ping_pong_latency_ms = UNKNOWN_LATENCY;
                connections.insert(client, c);
            }
        }
    }
    Ok(ConnectionsResult { connections, next_cursor: listing.next_cursor })
}

/// The ConnectionInfo of a session on this node: the fields `api::connections::
/// write_info` writes as JSON, as Centrifugo's message has them (no `node`). The
/// session's state lock is held while its channels are read.
pub(super) fn info(s: &Session) -> ConnectionInfo {
    let meta = s.meta.get().filter(|m| m.get() != "null").map_or_else(Vec::new, |m| m.get().as_bytes().to_vec());
    let connection_token = s.token.as_ref().map(|t| ConnectionTokenInfo { uid: t.uid.clone(), issued_at: t.issued_at });
    let state = {
        let st = s.state.lock();
        let channels = st.subs.iter().map(|(ch, sub)| (ch.clone(), ChannelContext { source: sub.source as u32 }));
        let tokens = st.subs.iter().filter_map(|(ch, sub)| {
            let t = sub.token.as_ref()?;
            Some((ch.clone(), SubscriptionTokenInfo { uid: t.uid.clone(), issued_at: t.issued_at }))
        });
        ConnectionState { channels: channels.collect(), connection_token, subscription_tokens: tokens.collect(), meta }
    };
    ConnectionInfo {
        app_name: s.app_name.clone(),
        app_version: s.app_version.clone(),
        transport: s.transport.name().to_string(),
        protocol: s.encoding.name().to_string(),
        user: s.user.clone(),
        state: Some(state),
        connected_at_ms: s.connected_at_ms,
        ping_pong_latency_ms: UNKNOWN_LATENCY,
        labels: s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::api::connections::{ConnectionsResult, write_info};
    use crate::node::{SubSource, SubState, TokenInfo};

    use super::*;

    fn session(user: &str, subs: &[(&str, SubSource, Option<TokenInfo>)], meta: Option<&str>) -> Session {
        let id = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdefu128;
        let subs = subs
            .iter()
            .map(|(ch, source, token)| {
                let sub = SubState {
                    source: *source,
                    token: token.clone(),
                    expire_at: None,
                    presence: false,
                    join_leave: false,
                    chan_info: None,
                };
                (ch.to_string(), sub)
            })
            .collect();
        let labels = [("region", "eu"), ("tier", "p\u{1}ro")];
        crate::node::test_session(id, user, crate::protocol::Encoding::Protobuf, "1.2", subs, &labels, meta)
    }

    /// What the gRPC API answered before it built protobuf directly: the HTTP API's
    /// ConnectionInfo JSON read into the message.
    fn via_json(s: &Session) -> ConnectionInfo {
        let mut out = String::new();
        write_info(&mut out, s, "node-1");
        let mut c: ConnectionInfo = serde_json::from_str(&out).unwrap();
        c.ping_pong_latency_ms = UNKNOWN_LATENCY;
        c
    }

    /// Direct construction and the JSON round trip agree, field for field, on
    /// sessions with and without channels, tokens, meta and a user.
    #[test]
    fn info_matches_the_json_round_trip() {
        let tok = |uid: &str, at| Some(TokenInfo { uid: uid.into(), issued_at: at });
        let cases = [
            session("", &[], None),
            session("42", &[("news", SubSource::Client, None)], Some(r#"{"plan": "pro"}"#)),
            session(
                "u\"7",
                &[
                    ("chat:1", SubSource::Api, tok("", 7)),
                    ("ch\\2", SubSource::Token, tok("s1", 0)),
                    ("p", SubSource::ConnectRequest, None),
                ],
                Some("[1, 2]"),
            ),
            session("null-meta", &[], Some("null")),
        ];
        for s in &cases {
            assert_eq!(info(s), via_json(s), "user {:?}", s.user);
        }
    }

    /// A listing with this node's and a peer's rows: every row, the cursor, and the
    /// peer's row read from its JSON.
    #[test]
    fn result_of_mixed_rows() {
        let here = Arc::new(session("42", &[("news", SubSource::Client, None)], None));
        let mut listing = Listing::from(ConnectionsResult {
            connections: vec![here.clone()],
            next_cursor: "c".into(),
            total: 2,
            node: "node-1".into(),
        });
        let peer = r#"{"transport":"uni_sse","protocol":"json","user":"p","state":{},"connected_at_ms":5,"node":"n2"}"#;
        let peer_info = serde_json::value::RawValue::from_string(peer.into()).unwrap();
        listing.rows.push(Row::Peer { client: "peer-client".into(), info: peer_info });
        let r = result(listing).unwrap();
        assert_eq!(r.next_cursor, "c");
        assert_eq!(r.connections.len(), 2);
        assert_eq!(r.connections[here.client().as_str()], info(&here));
        let p = &r.connections["peer-client"];
        assert_eq!((p.user.as_str(), p.transport.as_str(), p.connected_at_ms), ("p", "uni_sse", 5));
        assert_eq!(p.ping_pong_latency_ms, UNKNOWN_LATENCY);
        let broken = serde_json::value::RawValue::from_string(r#"{"connected_at_ms":"soon"}"#.into()).unwrap();
        let listing = Listing {
            rows: vec![Row::Peer { client: "x".into(), info: broken }],
            next_cursor: String::new(),
            total: 1,
            missing: Vec::new(),
            node: "node-1".into(),
        };
        assert_eq!(result(listing).unwrap_err().code(), tonic::Code::Internal);
    }
}
