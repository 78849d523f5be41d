//! `update_user_status`, `get_user_status`, `delete_user_status` (Centrifugo PRO's
//! user status API): up to [`MAX_USERS`] users per call, each answered in one bulk
//! read or write (see `node/user_status.rs`).

use serde::{Deserialize, Serialize};

use crate::node::{Node, UserStatus};
use crate::protocol::ErrorCode;

use super::error::ApiError;
use super::sessions::MAX_ID_LEN;
use super::targets::Empty;

/// Most users one call may name.
pub(super) const MAX_USERS: usize = 1000;
/// Longest `state`, in bytes.
pub(super) const MAX_STATE_LEN: usize = 256;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct UpdateUserStatusRequest {
    pub users: Vec<String>,
    pub state: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct UsersRequest {
    pub users: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct GetUserStatusResult {
    pub statuses: Vec<UserStatus>,
}

/// A non-empty, bounded list of non-empty, bounded user IDs.
fn users(users: &[String]) -> Result<(), ApiError> {
    if users.is_empty() {
        return Err(ApiError::bad_request("users required"));
    }
    if users.len() > MAX_USERS {
        return Err(ApiError::bad_request(format!("{} users; at most {MAX_USERS} per call", users.len())));
    }
    for (i, u) in users.iter().enumerate() {
        if u.is_empty() {
            return Err(ApiError::bad_request(format!("users[{i}]: empty user ID")));
        }
        if u.len() > MAX_ID_LEN {
            return Err(ApiError::bad_request(format!("users[{i}]: longer than {MAX_ID_LEN} bytes")));
        }
    }
    Ok(())
}

fn internal(e: crate::engine::EngineError) -> ApiError {
    tracing::warn!("user status: {e}");
    ApiError::new(ErrorCode::Internal)
}

pub(super) async fn update(node: &Node, req: UpdateUserStatusRequest) -> Result<Empty, ApiError> {
    users(&req.users)?;
    if req.state.len() > MAX_STATE_LEN {
        return Err(ApiError::bad_request(format!("state longer than {MAX_STATE_LEN} bytes")));
    }
    let state = (!req.state.is_empty()).then_some(req.state.as_str());
    node.update_user_status(&req.users, state).await.map_err(internal)?;
    Ok(Empty {})
}

pub(super) async fn get(node: &Node, req: UsersRequest) -> Result<GetUserStatusResult, ApiError> {
    users(&req.users)?;
    Ok(GetUserStatusResult { statuses: node.user_statuses(&req.users).await.map_err(internal)? })
}

pub(super) async fn delete(node: &Node, req: UsersRequest) -> Result<Empty, ApiError> {
    users(&req.users)?;
    node.delete_user_status(&req.users).await.map_err(internal)?;
    Ok(Empty {})
}
