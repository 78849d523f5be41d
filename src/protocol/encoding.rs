//! The two encodings of the client protocol, JSON (`codec.rs`) and protobuf
//! (`pb.rs`), behind one set of functions: the connection state machine and the
//! node encode every reply and push through these with the session's [`Encoding`].

use bytes::Bytes;
use serde::Serialize;

use super::codes::{Disconnect, ErrorReply};
use super::pb::{PbPush, PbResult};
use super::{Command, codec, pb};

/// How a connection's frames are encoded (negotiated when it opens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Json,
    Protobuf,
}

impl Encoding {
    /// The name the connections API and metrics use.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Protobuf => "protobuf",
        }
    }

    pub fn decode_frame(self, frame: &[u8]) -> Result<Vec<Command>, Disconnect> {
        match self {
            Encoding::Json => codec::decode_frame(frame),
            Encoding::Protobuf => pb::decode_frame(frame),
        }
    }

    pub fn reply<T: Serialize + PbResult>(self, id: u32, method: &str, result: &T) -> Bytes {
        match self {
            Encoding::Json => codec::encode_reply(id, method, result),
            Encoding::Protobuf => pb::encode_reply(id, method, result),
        }
    }

    pub fn error(self, id: u32, e: &ErrorReply) -> Bytes {
        match self {
            Encoding::Json => codec::encode_error(id, e),
            Encoding::Protobuf => pb::encode_error(id, e),
        }
    }

    /// A push; `uni` (bare Push object) applies to JSON only — protobuf is served on
    /// bidirectional transports.
    pub fn push<T: Serialize + PbPush>(self, uni: bool, channel: &str, kind: &str, payload: &T) -> Bytes {
        match self {
            Encoding::Json => codec::encode_push(uni, channel, kind, payload),
            Encoding::Protobuf => pb::encode_push(channel, kind, payload),
        }
    }

    pub fn ping(self) -> Bytes {
        match self {
            Encoding::Json => Bytes::from_static(codec::PING),
            Encoding::Protobuf => Bytes::from_static(pb::PING),
        }
    }
}
