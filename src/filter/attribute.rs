//! Connection attributes that a label source may hold next to the labels: the
//! transport and the protocol, which CEL names as the variables `transport` and
//! `protocol`. The hub stores them in its label columns under the keys below, so an
//! expression such as `transport == "websocket" && labels.region == "eu"` translates
//! to bytecode instead of running per connection in the interpreter.
//!
//! The keys start with a NUL byte, which no label key may contain (connection tokens
//! with such a key are refused), so a label never shadows an attribute. A
//! `label_filter` names labels only: its reserved keys are read as absent
//! ([`Expr::without_reserved_keys`](super::Expr::without_reserved_keys)).

/// The key of the connection's transport (`websocket`, `uni_sse`, …).
pub const TRANSPORT: &str = "\0transport";

/// The key of the connection's protocol (`json` or `protobuf`).
pub const PROTOCOL: &str = "\0protocol";

/// Whether `key` is in the attributes' namespace (no label may have it).
pub fn is_reserved(key: &str) -> bool {
    key.starts_with('\0')
}

/// The attribute key a CEL variable stands for, if it is one.
pub fn of_variable(name: &str) -> Option<&'static str> {
    match name {
        "transport" => Some(TRANSPORT),
        "protocol" => Some(PROTOCOL),
        _ => None,
    }
}
