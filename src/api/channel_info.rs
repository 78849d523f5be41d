//! Read-only channel methods: `presence`, `presence_stats`, `history`,
//! `history_remove`, `channels`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::node::Node;
use crate::protocol::{HistoryResult, PresenceResult, PresenceStatsResult, StreamPosition};

use super::error::ApiError;
use super::targets::Empty;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ChannelRequest {
    pub channel: String,
}

fn require(channel: &str) -> Result<(), ApiError> {
    if channel.is_empty() { Err(ApiError::bad_request("channel required")) } else { Ok(()) }
}

pub(super) async fn presence(node: &Node, req: ChannelRequest) -> Result<PresenceResult, ApiError> {
    require(&req.channel)?;
    Ok(node.presence(None, &req.channel).await?)
}

pub(super) async fn presence_stats(node: &Node, req: ChannelRequest) -> Result<PresenceStatsResult, ApiError> {
    require(&req.channel)?;
    Ok(node.presence_stats(None, &req.channel).await?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct HistoryRequest {
    pub channel: String,
    /// 0 or absent: stream position only; -1: everything retained.
    pub limit: i64,
    pub since: Option<StreamPosition>,
    pub reverse: bool,
}

pub(super) async fn history(node: &Node, req: HistoryRequest) -> Result<HistoryResult, ApiError> {
    require(&req.channel)?;
    let limit = match req.limit {
        0 => None,
        n if n < 0 => Some(usize::MAX),
        n => Some(n as usize),
    };
    Ok(node.history(None, &req.channel, limit, req.since, req.reverse).await?)
}

pub(super) async fn history_remove(node: &Node, req: ChannelRequest) -> Result<Empty, ApiError> {
    require(&req.channel)?;
    node.history_remove(&req.channel).await?;
    Ok(Empty {})
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct ChannelsRequest {
    pub pattern: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ChannelStats {
    pub num_clients: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ChannelsResult {
    pub channels: BTreeMap<String, ChannelStats>,
}

pub(super) fn channels(node: &Node, req: ChannelsRequest) -> Result<ChannelsResult, ApiError> {
    let channels = node
        .channel_counts()
        .into_iter()
        .filter(|(ch, _)| req.pattern.is_empty() || crate::glob::matches(&req.pattern, ch))
        .map(|(ch, n)| (ch, ChannelStats { num_clients: n as u32 }))
        .collect();
    Ok(ChannelsResult { channels })
}
