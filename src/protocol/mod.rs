//! The wire: client protocol v2 JSON types (`client.rs`), frame encoding (`codec.rs`),
//! Centrifugo's code tables (`codes.rs`) and a nesting-depth check for untrusted JSON
//! (`nesting.rs`). Pure data — no sockets, no tokio.

pub mod client;
pub mod codec;
pub mod codes;
pub mod nesting;

pub use client::*;
pub use codes::{Disconnect, ErrorCode, ErrorReply};
