//! `subscribe`, `unsubscribe`, `disconnect`, `refresh`: operations on a user's live
//! connections (optionally one client or session). `user: ""` targets anonymous
//! connections, as in Centrifugo. Each also takes Rotor's `label_filter` (narrowing the
//! targets by labels) and `all_users` (with a `label_filter`: every matching connection
//! of the node, whatever its user); see `select::op_targets`.

use serde::{Deserialize, Serialize};

use crate::node::{Node, ServerSubscribe};
use crate::protocol::{Disconnect, Raw, StreamPosition};

use super::error::ApiError;
use super::select::op_targets;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct BoolValue {
    pub value: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SubscribeOverride {
    pub presence: Option<BoolValue>,
    pub join_leave: Option<BoolValue>,
    pub force_recovery: Option<BoolValue>,
    pub force_positioning: Option<BoolValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SubscribeRequest {
    pub user: String,
    pub channel: String,
    pub client: String,
    pub session: String,
    pub expire_at: i64,
    pub info: Option<Raw>,
    pub data: Option<Raw>,
    pub recover_since: Option<StreamPosition>,
    #[serde(rename = "override")]
    pub overrides: Option<SubscribeOverride>,
    pub label_filter: Option<serde_json::Value>,
    pub all_users: bool,
}

/// Results of these methods are empty objects.
#[derive(Debug, Default, Serialize)]
pub(super) struct Empty {}

/// The targets and parameters of a `subscribe` (selection may survey: blocking pool).
pub(super) fn subscribe_targets(
    node: &Node,
    req: SubscribeRequest,
) -> Result<(Vec<std::sync::Arc<crate::node::Session>>, ServerSubscribe), ApiError> {
    if req.channel.is_empty() {
        return Err(ApiError::bad_request("channel required"));
    }
    let o = req.overrides.unwrap_or_default();
    let p = ServerSubscribe {
        channel: req.channel.clone(),
        info: req.info.map(crate::protocol::one_line),
        data: req.data.map(crate::protocol::one_line),
        expire_at: (req.expire_at > 0).then_some(req.expire_at),
        recover_since: req.recover_since,
        presence: o.presence.map(|b| b.value),
        join_leave: o.join_leave.map(|b| b.value),
        force_recovery: o.force_recovery.map(|b| b.value),
        force_positioning: o.force_positioning.map(|b| b.value),
    };
    let sessions = op_targets(node, &req.user, &req.client, &req.session, &req.label_filter, req.all_users)?;
    Ok((sessions, p))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct UnsubscribeRequest {
    pub user: String,
    pub channel: String,
    pub client: String,
    pub session: String,
    pub label_filter: Option<serde_json::Value>,
    pub all_users: bool,
}

pub(super) fn unsubscribe(node: &Node, req: UnsubscribeRequest) -> Result<Empty, ApiError> {
    if !req.channel.is_empty() {
        node.channels.resolve(&req.channel)?;
    }
    let sessions = op_targets(node, &req.user, &req.client, &req.session, &req.label_filter, req.all_users)?;
    node.unsubscribe_sessions(&sessions, &req.channel);
    Ok(Empty {})
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DisconnectSpec {
    pub code: u32,
    pub reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DisconnectRequest {
    pub user: String,
    pub client: String,
    pub session: String,
    pub whitelist: Vec<String>,
    pub disconnect: Option<DisconnectSpec>,
    pub label_filter: Option<serde_json::Value>,
    pub all_users: bool,
}

pub(super) fn disconnect(node: &Node, req: DisconnectRequest) -> Result<Empty, ApiError> {
    let d = match req.disconnect {
        Some(d) if d.code > 0 => {
            if !(3000..=4999).contains(&d.code) {
                return Err(ApiError::bad_request("disconnect code must be in 3000..4999"));
            }
            if d.reason.len() > 123 {
                return Err(ApiError::bad_request("disconnect reason must be at most 123 bytes"));
            }
            Disconnect::new(d.code, d.reason)
        }
        _ => Disconnect::force_no_reconnect(),
    };
    let sessions = op_targets(node, &req.user, &req.client, &req.session, &req.label_filter, req.all_users)?;
    node.disconnect_sessions(&sessions, &d, &req.whitelist);
    Ok(Empty {})
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RefreshRequest {
    pub user: String,
    pub client: String,
    pub session: String,
    pub expired: bool,
    pub expire_at: i64,
    pub info: Option<Raw>,
    pub label_filter: Option<serde_json::Value>,
    pub all_users: bool,
}

pub(super) fn refresh(node: &Node, req: RefreshRequest) -> Result<Empty, ApiError> {
    let sessions = op_targets(node, &req.user, &req.client, &req.session, &req.label_filter, req.all_users)?;
    node.refresh_sessions(&sessions, req.expired, (req.expire_at > 0).then_some(req.expire_at));
    Ok(Empty {})
}
