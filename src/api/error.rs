//! Server API errors: the code table (reference §4.4) and how an error becomes a
//! response — inside a 200 `{"error":…}` body by default, or as an HTTP status with
//! the bare error object in transport error mode.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::protocol::ErrorCode;

/// A server API error: `{"code":N,"message":"…"}`. Its code is always one of the
/// table's ([`ErrorCode`]); the message may say more than the table's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(serialize_with = "code_number")]
    pub code: ErrorCode,
    pub message: String,
}

fn code_number<S: serde::Serializer>(code: &ErrorCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u32(code.code())
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        Self { code, message: api_message(code).into() }
    }

    /// An error of `code` with a message saying more than the table's.
    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// A bad request (107) with a message saying what was wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::with_message(ErrorCode::BadRequest, message)
    }

    /// A limit was reached (106) while serving the request; the message names it.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::with_message(ErrorCode::LimitExceeded, message)
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::MethodNotFound)
    }

    /// The HTTP status in transport error mode.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// In transport error mode an error is its HTTP status with the bare error object.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), serde_json::to_vec(&self).unwrap_or_default()).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp
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
            too_large => ApiError::with_message(too_large.code(), too_large.to_string()),
        }
    }
}

impl From<ErrorCode> for ApiError {
    fn from(c: ErrorCode) -> Self {
        ApiError::new(c)
    }
}
