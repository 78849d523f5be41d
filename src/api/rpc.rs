//! `rpc`: built-in server-side extensions. `getUserConnections` (the seed's call)
//! returns `{"data":{"<client id>":{"app_name"?,"app_version"?,"meta"?}}}` for a user.
//! Unknown methods are 104.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::node::Node;
use crate::protocol::Raw;

use super::error::ApiError;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RpcRequest {
    pub method: String,
    pub params: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub(super) struct RpcResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct UserConnection {
    #[serde(skip_serializing_if = "String::is_empty")]
    app_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    app_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Raw>,
}

pub(super) fn rpc(node: &Node, req: RpcRequest) -> Result<RpcResult, ApiError> {
    match req.method.as_str() {
        "getUserConnections" => get_user_connections(node, req.params),
        _ => Err(ApiError::not_found()),
    }
}

fn get_user_connections(node: &Node, params: Option<serde_json::Value>) -> Result<RpcResult, ApiError> {
    let user = params
        .as_ref()
        .and_then(|p| p.get("user"))
        .and_then(|u| u.as_str())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_request("getUserConnections needs params.user"))?;
    let data: BTreeMap<String, UserConnection> = node
        .hub
        .user_connections(user)
        .iter()
        .map(|s| {
            let c =
                UserConnection { app_name: s.app_name.clone(), app_version: s.app_version.clone(), meta: s.meta.get() };
            (s.client().to_string(), c)
        })
        .collect();
    Ok(RpcResult { data: Some(crate::json::to_value(&data)) })
}
