//! Server API errors: the code table (reference §4.4) and how an error becomes a
//! response — inside a 200 `{"error":…}` body by default, or as an HTTP status with
//! the bare error object in transport error mode.

use axum::http::StatusCode;
use serde::Serialize;

use crate::protocol::ErrorCode;

/// A server API error: `{"code":N,"message":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub code: u32,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        Self { code: code.code(), message: api_message(code).into() }
    }

    /// A bad request (107) with a message saying what was wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { code: 107, message: message.into() }
    }

    /// A limit was reached (106) while serving the request; the message names it.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self { code: 106, message: message.into() }
    }

    pub fn not_found() -> Self {
        Self { code: 104, message: "not found".into() }
    }

    /// The HTTP status in transport error mode.
    pub fn status(&self) -> StatusCode {
        match self.code {
            102 | 104 => StatusCode::NOT_FOUND,
            107 | 108 => StatusCode::BAD_REQUEST,
            112 => StatusCode::RANGE_NOT_SATISFIABLE,
            113 => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The server API names 104 "not found" where the client protocol says "method not found".
fn api_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::MethodNotFound => "not found",
        other => other.message(),
    }
}

impl From<crate::node::PublishError> for ApiError {
    fn from(e: crate::node::PublishError) -> Self {
        match e {
            crate::node::PublishError::Code(code) => ApiError::new(code),
            too_large => ApiError { code: too_large.code().code(), message: too_large.to_string() },
        }
    }
}

impl From<ErrorCode> for ApiError {
    fn from(c: ErrorCode) -> Self {
        ApiError::new(c)
    }
}
