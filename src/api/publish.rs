//! `publish`: `{channel, data, b64data?, skip_history?, tags?, idempotency_key?}` →
//! `{offset?, epoch?}`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::node::{Node, PublishOptions, PublishOutcome};
use crate::protocol::Raw;

use super::error::ApiError;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PublishRequest {
    pub channel: String,
    pub data: Option<Raw>,
    pub b64data: String,
    pub skip_history: bool,
    pub tags: HashMap<String, String>,
    pub idempotency_key: String,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct PublishResult {
    #[serde(skip_serializing_if = "is_zero")]
    pub offset: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<PublishOutcome> for PublishResult {
    fn from(o: PublishOutcome) -> Self {
        Self { offset: o.offset, epoch: o.epoch }
    }
}

/// Shared by `publish` and `broadcast`.
pub(super) async fn publish_one(node: &Node, channel: &str, req: &PublishRequest) -> Result<PublishResult, ApiError> {
    if channel.is_empty() {
        return Err(ApiError::bad_request("channel required"));
    }
    if !req.b64data.is_empty() {
        return Err(ApiError::bad_request("b64data is not supported with the JSON protocol"));
    }
    let data = match &req.data {
        Some(d) if d.get() != "null" => d.clone(),
        _ => return Err(ApiError::bad_request("data required")),
    };
    let opts = PublishOptions {
        skip_history: req.skip_history,
        tags: req.tags.clone(),
        info: None,
        idempotency_key: req.idempotency_key.clone(),
    };
    Ok(node.publish(channel, data, opts).await?.into())
}

pub(super) async fn call(node: &Node, req: PublishRequest) -> Result<PublishResult, ApiError> {
    publish_one(node, &req.channel, &req).await
}
