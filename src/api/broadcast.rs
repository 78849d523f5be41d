//! `broadcast`: `publish` to many channels; `{responses:[{result}|{error}]}` in
//! request order. Per-channel errors stay inside the list.

use serde::{Deserialize, Serialize};

use crate::node::Node;

use super::error::ApiError;
use super::publish::{PublishRequest, PublishResult, publish_one};

/// Fields are spelled out (no `#[serde(flatten)]`: raw JSON `data` cannot pass
/// through serde's flatten buffer).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct BroadcastRequest {
    pub channels: Vec<String>,
    pub data: Option<crate::protocol::Raw>,
    pub b64data: String,
    pub skip_history: bool,
    pub tags: std::collections::HashMap<String, String>,
    pub idempotency_key: String,
}

#[derive(Debug, Serialize)]
pub(super) struct PublishResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<PublishResult>,
}

#[derive(Debug, Serialize)]
pub(super) struct BroadcastResult {
    pub responses: Vec<PublishResponse>,
}

pub(super) async fn call(node: &Node, req: BroadcastRequest) -> Result<BroadcastResult, ApiError> {
    if req.channels.is_empty() {
        return Err(ApiError::bad_request("channels required"));
    }
    if req.data.is_none() {
        return Err(ApiError::bad_request("data required"));
    }
    let publish = PublishRequest {
        channel: String::new(),
        data: req.data,
        b64data: req.b64data,
        skip_history: req.skip_history,
        tags: req.tags,
        idempotency_key: req.idempotency_key,
    };
    let mut responses = Vec::with_capacity(req.channels.len());
    for ch in &req.channels {
        responses.push(match publish_one(node, ch, &publish).await {
            Ok(r) => PublishResponse { error: None, result: Some(r) },
            Err(e) => PublishResponse { error: Some(e), result: None },
        });
    }
    Ok(BroadcastResult { responses })
}
