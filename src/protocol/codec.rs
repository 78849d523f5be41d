//! Frame encoding for the JSON protocol: splitting newline-batched command frames,
//! and writing replies and pushes. Bidirectional transports wrap pushes as
//! `{"push":{…}}`; unidirectional ones write the bare Push object.

use bytes::Bytes;
use serde::Serialize;

use super::client::Command;
use super::codes::{Disconnect, ErrorReply};

/// The server ping (bidirectional) and ping push (unidirectional): an empty object.
pub const PING: &[u8] = b"{}";

/// Splits a frame into commands, in order. A frame with no command, or a line that is
/// not a command object, is a protocol violation (disconnect 3501).
pub fn decode_frame(frame: &[u8]) -> Result<Vec<Command>, Disconnect> {
    let mut out = Vec::new();
    for line in frame.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let cmd: Command = serde_json::from_slice(line).map_err(|_| Disconnect::bad_request())?;
        out.push(cmd);
    }
    if out.is_empty() {
        return Err(Disconnect::bad_request());
    }
    Ok(out)
}

/// `{"id":N,"<method>":<result>}`.
pub fn encode_reply<T: Serialize>(id: u32, method: &str, result: &T) -> Bytes {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(b"{\"id\":");
    buf.extend_from_slice(itoa(id as u64).as_bytes());
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(method.as_bytes());
    buf.extend_from_slice(b"\":");
    write_json(&mut buf, result);
    buf.push(b'}');
    Bytes::from(buf)
}

/// `{"id":N,"error":{…}}`.
pub fn encode_error(id: u32, err: &ErrorReply) -> Bytes {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(b"{\"id\":");
    buf.extend_from_slice(itoa(id as u64).as_bytes());
    buf.extend_from_slice(b",\"error\":");
    write_json(&mut buf, err);
    buf.push(b'}');
    Bytes::from(buf)
}

/// A push in the framing of one transport family.
pub fn encode_push<T: Serialize>(uni: bool, channel: &str, kind: &str, payload: &T) -> Bytes {
    let mut buf = Vec::with_capacity(96);
    if !uni {
        buf.extend_from_slice(b"{\"push\":");
    }
    buf.push(b'{');
    if !channel.is_empty() {
        buf.extend_from_slice(b"\"channel\":");
        write_json(&mut buf, channel);
        buf.push(b',');
    }
    buf.push(b'"');
    buf.extend_from_slice(kind.as_bytes());
    buf.extend_from_slice(b"\":");
    write_json(&mut buf, payload);
    buf.push(b'}');
    if !uni {
        buf.push(b'}');
    }
    Bytes::from(buf)
}

/// A push whose payload is already-encoded JSON (publications are encoded once per
/// publish and wrapped per transport family).
pub fn encode_push_raw(uni: bool, channel: &str, kind: &str, payload: &[u8]) -> Bytes {
    match serde_json::from_slice::<&serde_json::value::RawValue>(payload) {
        Ok(raw) => encode_push(uni, channel, kind, &raw),
        Err(_) => encode_push(uni, channel, kind, &serde_json::Map::new()),
    }
}

fn write_json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    crate::json::write(&mut *buf, value);
}

fn itoa(n: u64) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Empty, ErrorCode};

    #[test]
    fn splits_batched_frames() {
        let cmds =
            decode_frame(b"{\"connect\":{},\"id\":1}\n{\"subscribe\":{\"channel\":\"news\",\"flag\":1},\"id\":2}\n")
                .unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[1].id, 2);
        assert_eq!(cmds[1].subscribe.as_ref().unwrap().channel, "news");
    }

    #[test]
    fn rejects_empty_and_malformed_frames() {
        assert_eq!(decode_frame(b"").unwrap_err().code, 3501);
        assert_eq!(decode_frame(b"\n\n").unwrap_err().code, 3501);
        assert_eq!(decode_frame(b"{\"id\":1,").unwrap_err().code, 3501);
        assert_eq!(decode_frame(b"[1,2]").unwrap_err().code, 3501);
        assert_eq!(decode_frame(b"{\"id\":-1}").unwrap_err().code, 3501);
    }

    #[test]
    fn encodes_replies_and_pushes() {
        assert_eq!(&encode_reply(3, "unsubscribe", &Empty {})[..], br#"{"id":3,"unsubscribe":{}}"#);
        assert_eq!(
            &encode_error(4, &ErrorCode::NotAvailable.reply())[..],
            br#"{"id":4,"error":{"code":108,"message":"not available"}}"#
        );
        let d = crate::protocol::Disconnect::shutdown();
        assert_eq!(
            &encode_push(true, "", "disconnect", &d)[..],
            br#"{"disconnect":{"code":3001,"reason":"shutdown"}}"#
        );
        assert_eq!(
            &encode_push_raw(false, "a\"b", "pub", br#"{"data":1}"#)[..],
            br#"{"push":{"channel":"a\"b","pub":{"data":1}}}"#
        );
    }
}
