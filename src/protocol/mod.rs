//! The wire: client protocol v2 JSON types (`client.rs`), frame encoding (`codec.rs`)
//! and Centrifugo's code tables (`codes.rs`). Pure data — no sockets, no tokio.

pub mod client;
pub mod codec;
pub mod codes;

pub use client::*;
pub use codes::{Disconnect, ErrorCode, ErrorReply};
