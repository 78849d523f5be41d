//! Client protocol v2 in protobuf (`proto/rotor_client.proto`, package
//! `centrifugal.centrifuge.protocol`): splitting a varint-length-delimited frame into
//! commands, and encoding replies and pushes as length-prefixed `Reply` messages.
//!
//! Commands decode into the same [`Command`] the JSON protocol uses, so one state
//! machine serves both encodings. Payloads (`data`, `info`) are `bytes` here and raw
//! JSON inside the server: a payload that is JSON is carried as is (both directions);
//! one that is not JSON marks its command [`Command::binary_payload`] and the command
//! is answered with error 107 instead of being run.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use prost::Message;
use serde_json::value::RawValue;

use super::client::{self as c, Command, Raw};
use super::codes::{Disconnect, ErrorReply};

/// The messages generated from `proto/rotor_client.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/centrifugal.centrifuge.protocol.rs"));
}

/// The server ping: an empty `Reply`, i.e. a zero length prefix.
pub const PING: &[u8] = &[0];

/// Splits a frame of length-prefixed commands, in order. An empty frame, a prefix
/// longer than ten bytes or past the frame's end, or a message that does not decode
/// is a protocol violation (disconnect 3501).
pub fn decode_frame(frame: &[u8]) -> Result<Vec<Command>, Disconnect> {
    let mut out = Vec::new();
    for msg in split(frame)? {
        let cmd = wire::Command::decode(msg).map_err(|_| Disconnect::bad_request())?;
        out.push(command(cmd));
    }
    if out.is_empty() {
        return Err(Disconnect::bad_request());
    }
    Ok(out)
}

/// The length-delimited messages of a frame (borrowed), or 3501.
pub fn split(frame: &[u8]) -> Result<Vec<&[u8]>, Disconnect> {
    let mut rest = frame;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut buf = rest;
        let len = prost::encoding::decode_varint(&mut buf).map_err(|_| Disconnect::bad_request())?;
        let len = usize::try_from(len).map_err(|_| Disconnect::bad_request())?;
        if len > buf.len() {
            return Err(Disconnect::bad_request());
        }
        out.push(&buf[..len]);
        rest = &buf[len..];
    }
    Ok(out)
}

/// Decodes a protobuf `POST /emulation` body.
pub fn decode_emulation(body: &[u8]) -> Option<wire::EmulationRequest> {
    wire::EmulationRequest::decode(body).ok()
}

/// Appends `msg` with its length prefix.
fn delimited<M: Message>(msg: &M) -> Bytes {
    Bytes::from(msg.encode_length_delimited_to_vec())
}

/// A `bytes` payload as the server's raw JSON: empty is absent; JSON is kept as is
/// (newlines dropped, see [`c::one_line`]); anything else sets `binary`.
fn raw(bytes: Vec<u8>, binary: &mut bool) -> Option<Raw> {
    if bytes.is_empty() {
        return None;
    }
    match String::from_utf8(bytes).ok().and_then(|s| RawValue::from_string(s).ok()) {
        Some(r) => Some(c::one_line(Arc::from(r))),
        None => {
            *binary = true;
            None
        }
    }
}

fn out(raw: &Option<Raw>) -> Vec<u8> {
    raw.as_ref().map(|r| r.get().as_bytes().to_vec()).unwrap_or_default()
}

fn command(w: wire::Command) -> Command {
    let mut bin = false;
    let mut cmd = Command {
        id: w.id,
        connect: w.connect.map(|r| connect_request(r, &mut bin)),
        subscribe: w.subscribe.map(|r| subscribe_request(r, &mut bin)),
        unsubscribe: w.unsubscribe.map(|r| c::ChannelRequest { channel: r.channel }),
        publish: w.publish.map(|r| c::PublishRequest { channel: r.channel, data: raw(r.data, &mut bin) }),
        presence: w.presence.map(|r| c::ChannelRequest { channel: r.channel }),
        presence_stats: w.presence_stats.map(|r| c::ChannelRequest { channel: r.channel }),
        history: w.history.map(|r| c::HistoryRequest {
            channel: r.channel,
            limit: r.limit,
            since: r.since.map(|s| c::StreamPosition { offset: s.offset, epoch: s.epoch }),
            reverse: r.reverse,
        }),
        ping: None,
        send: w.send.map(|r| c::SendRequest { data: raw(r.data, &mut bin) }),
        rpc: w.rpc.map(|r| c::RpcRequest { data: raw(r.data, &mut bin), method: r.method }),
        refresh: w.refresh.map(|r| c::RefreshRequest { token: r.token }),
        sub_refresh: w.sub_refresh.map(|r| c::SubRefreshRequest { channel: r.channel, token: r.token }),
        binary_payload: false,
    };
    cmd.binary_payload = bin;
    cmd
}

fn connect_request(r: wire::ConnectRequest, bin: &mut bool) -> c::ConnectRequest {
    c::ConnectRequest {
        token: r.token,
        data: raw(r.data, bin),
        subs: r.subs.into_iter().map(|(k, v)| (k, subscribe_request(v, bin))).collect(),
        name: r.name,
        version: r.version,
        headers: r.headers,
    }
}

fn subscribe_request(r: wire::SubscribeRequest, bin: &mut bool) -> c::SubscribeRequest {
    c::SubscribeRequest {
        channel: r.channel,
        token: r.token,
        recover: r.recover,
        epoch: r.epoch,
        offset: r.offset,
        data: raw(r.data, bin),
        positioned: r.positioned,
        recoverable: r.recoverable,
        join_leave: r.join_leave,
        tf: r.tf.and_then(|f| serde_json::value::to_raw_value(&f).ok()).map(Arc::from),
    }
}

/// A result type that has a field in `Reply`.
pub trait PbResult {
    /// Sets this result as `reply`'s field for `method` (the JSON result key).
    fn put(&self, method: &str, reply: &mut wire::Reply);
}

/// A push payload that has a field in `Push`.
pub trait PbPush {
    /// Sets this payload as `push`'s field for `kind` (the JSON push key).
    fn put(&self, kind: &str, push: &mut wire::Push);
}

/// A length-prefixed `Reply{id, <method>: result}`.
pub fn encode_reply<T: PbResult + ?Sized>(id: u32, method: &str, result: &T) -> Bytes {
    let mut r = wire::Reply { id, ..Default::default() };
    result.put(method, &mut r);
    delimited(&r)
}

/// A length-prefixed `Reply{id, error}`.
pub fn encode_error(id: u32, e: &ErrorReply) -> Bytes {
    let error = wire::Error { code: e.code, message: e.message.clone(), temporary: e.temporary };
    delimited(&wire::Reply { id, error: Some(error), ..Default::default() })
}

/// A length-prefixed `Reply{push: {channel, <kind>: payload}}`.
pub fn encode_push<T: PbPush + ?Sized>(channel: &str, kind: &str, payload: &T) -> Bytes {
    let mut p = wire::Push { channel: channel.to_string(), ..Default::default() };
    payload.put(kind, &mut p);
    delimited(&wire::Reply { push: Some(p), ..Default::default() })
}

pub fn client_info(i: &c::ClientInfo) -> wire::ClientInfo {
    wire::ClientInfo {
        user: i.user.clone(),
        client: i.client.clone(),
        conn_info: out(&i.conn_info),
        chan_info: out(&i.chan_info),
    }
}

pub fn publication(p: &c::Publication) -> wire::Publication {
    wire::Publication {
        data: p.data.get().as_bytes().to_vec(),
        info: p.info.as_ref().map(client_info),
        offset: p.offset,
        tags: p.tags.clone(),
    }
}

fn subscribe_result(r: &c::SubscribeResult) -> wire::SubscribeResult {
    wire::SubscribeResult {
        expires: r.expires,
        ttl: r.ttl,
        recoverable: r.recoverable,
        epoch: r.epoch.clone(),
        publications: r.publications.iter().map(publication).collect(),
        recovered: r.recovered,
        offset: r.offset,
        positioned: r.positioned,
        data: out(&r.data),
        was_recovering: r.was_recovering,
    }
}

fn subs(m: &HashMap<String, c::SubscribeResult>) -> HashMap<String, wire::SubscribeResult> {
    m.iter().map(|(k, v)| (k.clone(), subscribe_result(v))).collect()
}

impl PbResult for c::ConnectResult {
    fn put(&self, _: &str, r: &mut wire::Reply) {
        r.connect = Some(wire::ConnectResult {
            client: self.client.clone(),
            version: self.version.clone(),
            expires: self.expires,
            ttl: self.ttl,
            data: out(&self.data),
            subs: subs(&self.subs),
            ping: self.ping,
            pong: self.pong,
            session: self.session.clone(),
            node: self.node.clone(),
            time: self.time.unwrap_or(0),
        });
    }
}

impl PbResult for c::SubscribeResult {
    fn put(&self, _: &str, r: &mut wire::Reply) {
        r.subscribe = Some(subscribe_result(self));
    }
}

impl PbResult for c::Empty {
    fn put(&self, method: &str, r: &mut wire::Reply) {
        match method {
            "unsubscribe" => r.unsubscribe = Some(wire::UnsubscribeResult {}),
            "publish" => r.publish = Some(wire::PublishResult {}),
            _ => r.ping = Some(wire::PingResult {}),
        }
    }
}

impl PbResult for c::PresenceResult {
    fn put(&self, _: &str, r: &mut wire::Reply) {
        let presence = self.presence.iter().map(|(k, v)| (k.clone(), client_info(v))).collect();
        r.presence = Some(wire::PresenceResult { presence });
    }
}

impl PbResult for c::PresenceStatsResult {
    fn put(&self, _: &str, r: &mut wire::Reply) {
        r.presence_stats = Some(wire::PresenceStatsResult { num_clients: self.num_clients, num_users: self.num_users });
    }
}

impl PbResult for c::HistoryResult {
    fn put(&self, _: &str, r: &mut wire::Reply) {
        r.history = Some(wire::HistoryResult {
            publications: self.publications.iter().map(publication).collect(),
            epoch: self.epoch.clone(),
            offset: self.offset,
        });
    }
}

impl PbResult for c::RpcResult {
    fn put(&self, _: &str, r: &mut wire::Reply) {
        r.rpc = Some(wire::RpcResult { data: out(&self.data) });
    }
}

impl PbResult for c::RefreshResult {
    fn put(&self, method: &str, r: &mut wire::Reply) {
        if method == "sub_refresh" {
            r.sub_refresh = Some(wire::SubRefreshResult { expires: self.expires, ttl: self.ttl });
        } else {
            r.refresh = Some(wire::RefreshResult { expires: self.expires, ttl: self.ttl, ..Default::default() });
        }
    }
}

impl PbPush for c::Publication {
    fn put(&self, _: &str, p: &mut wire::Push) {
        p.r#pub = Some(publication(self));
    }
}

impl PbPush for c::ClientInfo {
    /// Join and leave carry the ClientInfo of who came or went.
    fn put(&self, kind: &str, p: &mut wire::Push) {
        let info = Some(client_info(self));
        if kind == "leave" {
            p.leave = Some(wire::Leave { info });
        } else {
            p.join = Some(wire::Join { info });
        }
    }
}

impl PbPush for c::UnsubscribePush {
    fn put(&self, _: &str, p: &mut wire::Push) {
        p.unsubscribe = Some(wire::Unsubscribe { code: self.code, reason: self.reason.clone() });
    }
}

impl PbPush for c::RefreshPush {
    fn put(&self, _: &str, p: &mut wire::Push) {
        p.refresh = Some(wire::Refresh { expires: self.expires, ttl: self.ttl });
    }
}

impl PbPush for Disconnect {
    fn put(&self, _: &str, p: &mut wire::Push) {
        p.disconnect = Some(wire::Disconnect { code: self.code, reason: self.reason.clone(), reconnect: false });
    }
}

impl PbPush for c::SubscribeResult {
    /// A server-side subscription added while connected.
    fn put(&self, _: &str, p: &mut wire::Push) {
        p.subscribe = Some(wire::Subscribe {
            recoverable: self.recoverable,
            epoch: self.epoch.clone(),
            offset: self.offset,
            positioned: self.positioned,
            data: out(&self.data),
        });
    }
}

impl PbPush for c::ConnectResult {
    fn put(&self, _: &str, p: &mut wire::Push) {
        p.connect = Some(wire::Connect {
            client: self.client.clone(),
            version: self.version.clone(),
            data: out(&self.data),
            subs: subs(&self.subs),
            expires: self.expires,
            ttl: self.ttl,
            ping: self.ping,
            pong: self.pong,
            session: self.session.clone(),
            node: self.node.clone(),
            time: self.time.unwrap_or(0),
        });
    }
}

/// Reads one length-prefixed `Reply` off the front of `buf` (tests and the bench).
pub fn read_reply(buf: &mut Bytes) -> Option<wire::Reply> {
    if !buf.has_remaining() {
        return None;
    }
    wire::Reply::decode_length_delimited(buf).ok()
}

/// Every length-prefixed `Reply` of `buf`, or None when any part does not decode.
pub fn decode_replies(buf: &[u8]) -> Option<Vec<wire::Reply>> {
    let mut buf = Bytes::copy_from_slice(buf);
    let mut out = Vec::new();
    while buf.has_remaining() {
        out.push(read_reply(&mut buf)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(cmds: &[wire::Command]) -> Vec<u8> {
        cmds.iter().flat_map(|c| c.encode_length_delimited_to_vec()).collect()
    }

    #[test]
    fn decodes_batched_commands() {
        let f = frame(&[
            wire::Command { id: 1, connect: Some(Default::default()), ..Default::default() },
            wire::Command {
                id: 2,
                publish: Some(wire::PublishRequest { channel: "news".into(), data: br#"{"a":1}"#.to_vec() }),
                ..Default::default()
            },
        ]);
        let cmds = decode_frame(&f).unwrap();
        assert_eq!(cmds.len(), 2);
        assert!(cmds[0].connect.is_some());
        let p = cmds[1].publish.as_ref().unwrap();
        assert_eq!((p.channel.as_str(), p.data.as_ref().unwrap().get()), ("news", r#"{"a":1}"#));
        assert!(!cmds[1].binary_payload);
    }

    #[test]
    fn marks_binary_payloads() {
        let f = frame(&[wire::Command {
            id: 2,
            publish: Some(wire::PublishRequest { channel: "x".into(), data: vec![0xff, 0x00, 0x01] }),
            ..Default::default()
        }]);
        assert!(decode_frame(&f).unwrap()[0].binary_payload);
    }

    #[test]
    fn rejects_hostile_frames() {
        // Empty frame, endless varint, length past the end, garbage, wrong wire type.
        for bad in [
            &[][..],
            &[0xff; 16][..],
            &[0x05, 0x08, 0x01][..],
            &[0x03, 0xff, 0xff, 0xff][..],
            &[0x02, 0x0a, 0x05][..],
            &[0x01, 0x0b][..],
        ] {
            assert_eq!(decode_frame(bad).unwrap_err().code, 3501, "{bad:?}");
        }
    }

    #[test]
    fn skips_unknown_fields() {
        // Field 99 (varint) before id=7 and a ping: decodes to a command with id 7.
        let mut msg = vec![0x98, 0x06, 0x01, 0x08, 0x07];
        msg.extend_from_slice(&[0x5a, 0x00]); // ping = 11, empty
        let mut f = vec![msg.len() as u8];
        f.extend_from_slice(&msg);
        let cmd = decode_frame(&f).unwrap().into_iter().next().unwrap();
        assert_eq!(cmd.id, 7);
        assert!(cmd.into_method().is_none(), "a ping alone is no command");
    }

    #[test]
    fn encodes_replies_and_pushes() {
        let mut b = encode_reply(3, "unsubscribe", &c::Empty {});
        let r = read_reply(&mut b).unwrap();
        assert_eq!(r.id, 3);
        assert!(r.unsubscribe.is_some() && r.publish.is_none());
        let raw: Raw = Arc::from(RawValue::from_string(r#"{"x":1}"#.into()).unwrap());
        let p = c::Publication { data: raw, info: None, offset: 4, tags: HashMap::new(), time: 0 };
        let mut b = encode_push("ch", "pub", &p);
        let r = read_reply(&mut b).unwrap();
        let push = r.push.unwrap();
        assert_eq!(push.channel, "ch");
        assert_eq!(push.r#pub.unwrap().data, br#"{"x":1}"#);
        let mut b = encode_error(5, &crate::protocol::ErrorCode::NotAvailable.reply());
        assert_eq!(read_reply(&mut b).unwrap().error.unwrap().code, 108);
        assert_eq!(PING, &wire::Reply::default().encode_length_delimited_to_vec()[..]);
    }
}
