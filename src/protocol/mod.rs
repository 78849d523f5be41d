//! The wire: client protocol v2 JSON types (`client.rs`), JSON frame encoding
//! (`codec.rs`), the protobuf encoding (`pb.rs`) and the choice between the two
//! (`encoding.rs`), Centrifugo's code tables (`codes.rs`) and a nesting-depth check for untrusted JSON
//! (`nesting.rs`). Pure data — no sockets, no tokio.

pub mod client;
pub mod codec;
pub mod codes;
pub mod encoding;
pub mod nesting;
pub mod pb;

pub use client::*;
pub use codes::{Disconnect, ErrorCode, ErrorReply};
pub use encoding::Encoding;
