//! Centrifugo's code tables: client error codes (replies), unsubscribe codes (pushes)
//! and disconnect codes (pushes and WebSocket close frames). One table, no I/O.

use serde::Serialize;

/// An error carried in a reply: `{"code":N,"message":"…","temporary":true?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReply {
    pub code: u32,
    pub message: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub temporary: bool,
}

/// The client error codes of reference §4.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Internal,
    Unauthorized,
    UnknownChannel,
    PermissionDenied,
    MethodNotFound,
    AlreadySubscribed,
    LimitExceeded,
    BadRequest,
    NotAvailable,
    TokenExpired,
    Expired,
    TooManyRequests,
    UnrecoverablePosition,
    /// 113: "concurrent pagination" in the client protocol, "conflict" in the server API.
    Conflict,
}

impl ErrorCode {
    pub fn code(self) -> u32 {
        match self {
            ErrorCode::Internal => 100,
            ErrorCode::Unauthorized => 101,
            ErrorCode::UnknownChannel => 102,
            ErrorCode::PermissionDenied => 103,
            ErrorCode::MethodNotFound => 104,
            ErrorCode::AlreadySubscribed => 105,
            ErrorCode::LimitExceeded => 106,
            ErrorCode::BadRequest => 107,
            ErrorCode::NotAvailable => 108,
            ErrorCode::TokenExpired => 109,
            ErrorCode::Expired => 110,
            ErrorCode::TooManyRequests => 111,
            ErrorCode::UnrecoverablePosition => 112,
            ErrorCode::Conflict => 113,
        }
    }

    /// The table's entry for a number; `None` for codes outside Centrifugo's table
    /// (an application's own codes from a proxy, 400–1999).
    pub fn from_code(code: u32) -> Option<ErrorCode> {
        const ALL: [ErrorCode; 14] = [
            ErrorCode::Internal,
            ErrorCode::Unauthorized,
            ErrorCode::UnknownChannel,
            ErrorCode::PermissionDenied,
            ErrorCode::MethodNotFound,
            ErrorCode::AlreadySubscribed,
            ErrorCode::LimitExceeded,
            ErrorCode::BadRequest,
            ErrorCode::NotAvailable,
            ErrorCode::TokenExpired,
            ErrorCode::Expired,
            ErrorCode::TooManyRequests,
            ErrorCode::UnrecoverablePosition,
            ErrorCode::Conflict,
        ];
        ALL.into_iter().find(|c| c.code() == code)
    }

    /// The HTTP status of this code in the server API's transport error mode
    /// (reference §4.4; codes the table leaves out answer 500 as Centrifugo does).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::UnknownChannel | ErrorCode::MethodNotFound => 404,
            ErrorCode::BadRequest | ErrorCode::NotAvailable => 400,
            ErrorCode::UnrecoverablePosition => 416,
            ErrorCode::Conflict => 409,
            ErrorCode::Internal
            | ErrorCode::Unauthorized
            | ErrorCode::PermissionDenied
            | ErrorCode::AlreadySubscribed
            | ErrorCode::LimitExceeded
            | ErrorCode::TokenExpired
            | ErrorCode::Expired
            | ErrorCode::TooManyRequests => 500,
        }
    }

    /// The disconnect a unidirectional client gets instead of this error (reference
    /// §2.2): it has no reply to carry an error in.
    pub fn uni_disconnect(self) -> Disconnect {
        match self {
            ErrorCode::TokenExpired | ErrorCode::Expired => Disconnect::expired(),
            ErrorCode::TooManyRequests => Disconnect::too_many_requests(),
            ErrorCode::PermissionDenied => Disconnect::permission_denied(),
            ErrorCode::Internal
            | ErrorCode::Unauthorized
            | ErrorCode::UnknownChannel
            | ErrorCode::MethodNotFound
            | ErrorCode::AlreadySubscribed
            | ErrorCode::LimitExceeded
            | ErrorCode::BadRequest
            | ErrorCode::NotAvailable
            | ErrorCode::UnrecoverablePosition
            | ErrorCode::Conflict => Disconnect::internal(),
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::Internal => "internal server error",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnknownChannel => "unknown channel",
            ErrorCode::PermissionDenied => "permission denied",
            ErrorCode::MethodNotFound => "method not found",
            ErrorCode::AlreadySubscribed => "already subscribed",
            ErrorCode::LimitExceeded => "limit exceeded",
            ErrorCode::BadRequest => "bad request",
            ErrorCode::NotAvailable => "not available",
            ErrorCode::TokenExpired => "token expired",
            ErrorCode::Expired => "expired",
            ErrorCode::TooManyRequests => "too many requests",
            ErrorCode::UnrecoverablePosition => "unrecoverable position",
            ErrorCode::Conflict => "concurrent pagination",
        }
    }

    pub fn temporary(self) -> bool {
        matches!(self, ErrorCode::Internal | ErrorCode::TooManyRequests | ErrorCode::Conflict)
    }

    /// The wire form with Centrifugo's standard message.
    pub fn reply(self) -> ErrorReply {
        ErrorReply { code: self.code(), message: self.message().into(), temporary: self.temporary() }
    }

    /// The wire form with a more specific message (the code still says what class it is).
    pub fn reply_with(self, message: impl Into<String>) -> ErrorReply {
        ErrorReply { code: self.code(), message: message.into(), temporary: self.temporary() }
    }
}

/// A disconnect: `{"code":N,"reason":"…"}` in a push, or a WebSocket close frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disconnect {
    pub code: u32,
    pub reason: String,
}

impl Disconnect {
    pub fn new(code: u32, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into() }
    }

    pub fn shutdown() -> Self {
        Self::new(3001, "shutdown")
    }
    pub fn internal() -> Self {
        Self::new(3004, "internal server error")
    }
    pub fn expired() -> Self {
        Self::new(3005, "connection expired")
    }
    pub fn subscription_expired() -> Self {
        Self::new(3006, "subscription expired")
    }
    pub fn slow() -> Self {
        Self::new(3008, "slow")
    }
    pub fn write_error() -> Self {
        Self::new(3009, "write error")
    }
    pub fn insufficient_state() -> Self {
        Self::new(3010, "insufficient state")
    }
    pub fn force_reconnect() -> Self {
        Self::new(3011, "force reconnect")
    }
    pub fn no_pong() -> Self {
        Self::new(3012, "no pong")
    }
    pub fn too_many_requests() -> Self {
        Self::new(3013, "too many requests")
    }
    pub fn invalid_token() -> Self {
        Self::new(3500, "invalid token")
    }
    pub fn bad_request() -> Self {
        Self::new(3501, "bad request")
    }
    pub fn stale() -> Self {
        Self::new(3502, "stale")
    }
    pub fn force_no_reconnect() -> Self {
        Self::new(3503, "force disconnect")
    }
    pub fn connection_limit() -> Self {
        Self::new(3504, "connection limit")
    }
    pub fn channel_limit() -> Self {
        Self::new(3505, "channel limit")
    }
    pub fn inappropriate_protocol() -> Self {
        Self::new(3506, "inappropriate protocol")
    }
    pub fn permission_denied() -> Self {
        Self::new(3507, "permission denied")
    }
    pub fn not_available() -> Self {
        Self::new(3508, "not available")
    }
    /// Rotor: the connection's token was revoked (`revoke_token`) or invalidated
    /// (`invalidate_user_tokens`). Centrifugo documents no code for this; 3510 is in
    /// the non-reconnecting range and after Centrifugo's 3509 (too many errors).
    pub fn token_revoked() -> Self {
        Self::new(3510, "token revoked")
    }
    /// Rotor: the connection's user is blocked (`block_user`); no reconnect.
    pub fn user_blocked() -> Self {
        Self::new(3511, "user blocked")
    }
    pub fn message_too_big() -> Self {
        Self::new(1009, "message too big")
    }
    /// RFC 6455 1002: a frame broke the protocol (unmasked, reserved opcode or bits…).
    pub fn protocol_error() -> Self {
        Self::new(1002, "protocol error")
    }
    /// RFC 6455 1007: a text message that is not UTF-8.
    pub fn invalid_payload() -> Self {
        Self::new(1007, "invalid payload data")
    }

    /// Whether SDKs reconnect after this code (reference §4.3).
    pub fn reconnect(&self) -> bool {
        !matches!(self.code, 3500..=3999 | 4500..=4999)
    }

    /// A close-frame-safe reason: at most 123 bytes, cut on a char boundary.
    pub fn close_reason(&self) -> &str {
        let mut end = self.reason.len().min(123);
        while !self.reason.is_char_boundary(end) {
            end -= 1;
        }
        &self.reason[..end]
    }
}

/// Unsubscribe push codes (reference §4.2).
pub mod unsubscribe {
    pub const SERVER: (u32, &str) = (2000, "server unsubscribe");
    pub const INSUFFICIENT_STATE: (u32, &str) = (2500, "insufficient state");
    pub const EXPIRED: (u32, &str) = (2501, "subscription expired");
    /// Rotor: the subscription token was revoked or invalidated; a server unsubscribe
    /// (no resubscribe) with its own reason.
    pub const TOKEN_REVOKED: (u32, &str) = (2000, "token revoked");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_round_trips_and_maps_statuses_as_reference_4_4() {
        for n in 0..2000 {
            if let Some(c) = ErrorCode::from_code(n) {
                assert_eq!(c.code(), n);
            } else {
                assert!(!(100..=113).contains(&n), "{n} is in Centrifugo's table");
            }
        }
        let status = |n| ErrorCode::from_code(n).unwrap().http_status();
        assert_eq!([status(100), status(102), status(104), status(107), status(108)], [500, 404, 404, 400, 400]);
        assert_eq!([status(112), status(113), status(101), status(109)], [416, 409, 500, 500]);
        assert_eq!(ErrorCode::TokenExpired.uni_disconnect().code, 3005);
        assert_eq!(ErrorCode::PermissionDenied.uni_disconnect().code, 3507);
        assert_eq!(ErrorCode::BadRequest.uni_disconnect().code, 3004);
    }

    #[test]
    fn codes_match_centrifugo() {
        assert_eq!(ErrorCode::TokenExpired.code(), 109);
        assert_eq!(ErrorCode::BadRequest.reply().message, "bad request");
        assert!(ErrorCode::Internal.reply().temporary);
        assert!(!Disconnect::force_no_reconnect().reconnect());
        assert!(Disconnect::shutdown().reconnect());
        assert_eq!(
            serde_json::to_string(&ErrorCode::NotAvailable.reply()).unwrap(),
            r#"{"code":108,"message":"not available"}"#
        );
    }

    #[test]
    fn close_reason_is_bounded() {
        let d = Disconnect::new(4000, "é".repeat(100));
        assert!(d.close_reason().len() <= 123);
    }
}
