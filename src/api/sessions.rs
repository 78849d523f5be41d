//! `revoke_token`, `invalidate_user_tokens`, `block_user`, `unblock_user`: entries that
//! make a terminated session stay terminated (Centrifugo PRO's request fields). Each
//! is validated here (107 names the field), then recorded for the whole fleet and
//! enforced on live connections by the node (`node/revocation.rs`).

use serde::Deserialize;

use crate::node::{Node, SessionEntry, now_secs};
use crate::protocol::ErrorCode;

use super::error::ApiError;
use super::targets::Empty;

/// Longest token id, user ID or channel these methods accept, in bytes.
pub(super) const MAX_ID_LEN: usize = 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RevokeTokenRequest {
    pub uid: String,
    pub expire_at: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct InvalidateUserTokensRequest {
    pub user: String,
    pub issued_before: i64,
    pub channel: String,
    pub expire_at: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct BlockUserRequest {
    pub user: String,
    pub expire_at: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct UnblockUserRequest {
    pub user: String,
}

/// A required, bounded identifier.
fn id(field: &str, v: String) -> Result<String, ApiError> {
    if v.is_empty() {
        return Err(ApiError::bad_request(format!("{field} required")));
    }
    if v.len() > MAX_ID_LEN {
        return Err(ApiError::bad_request(format!("{field} longer than {MAX_ID_LEN} bytes")));
    }
    Ok(v)
}

/// `expire_at`: 0 (never) or a Unix time in the future.
fn expire_at(v: i64) -> Result<i64, ApiError> {
    if v < 0 {
        return Err(ApiError::bad_request("expire_at must not be negative"));
    }
    if v != 0 && v <= now_secs() {
        return Err(ApiError::bad_request("expire_at is in the past"));
    }
    Ok(v)
}

async fn record(node: &Node, e: SessionEntry) -> Result<Empty, ApiError> {
    node.add_session_entry(e).await.map_err(|e| {
        tracing::warn!("session entry not recorded: {e}");
        ApiError::new(ErrorCode::Internal)
    })?;
    Ok(Empty {})
}

pub(super) async fn revoke_token(node: &Node, req: RevokeTokenRequest) -> Result<Empty, ApiError> {
    let e = SessionEntry::Revoked { uid: id("uid", req.uid)?, expire_at: expire_at(req.expire_at)? };
    record(node, e).await
}

pub(super) async fn invalidate_user_tokens(node: &Node, req: InvalidateUserTokensRequest) -> Result<Empty, ApiError> {
    if req.issued_before < 0 {
        return Err(ApiError::bad_request("issued_before must not be negative"));
    }
    if req.channel.len() > MAX_ID_LEN {
        return Err(ApiError::bad_request(format!("channel longer than {MAX_ID_LEN} bytes")));
    }
    let e = SessionEntry::Invalidated {
        user: id("user", req.user)?,
        channel: req.channel,
        issued_before: if req.issued_before == 0 { now_secs() } else { req.issued_before },
        expire_at: expire_at(req.expire_at)?,
    };
    record(node, e).await
}

pub(super) async fn block_user(node: &Node, req: BlockUserRequest) -> Result<Empty, ApiError> {
    let e = SessionEntry::Blocked { user: id("user", req.user)?, expire_at: expire_at(req.expire_at)? };
    record(node, e).await
}

pub(super) async fn unblock_user(node: &Node, req: UnblockUserRequest) -> Result<Empty, ApiError> {
    record(node, SessionEntry::Unblocked { user: id("user", req.user)? }).await
}
