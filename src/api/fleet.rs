//! The API across a fleet (Redis engine): the node that received a request answers
//! for every live node. `connections`, `rpc getUserConnections` and `channels` are
//! surveys — each node answers for its own hub and this node merges, listing the
//! nodes that did not answer in time in `missing_nodes` instead of failing; `info`
//! comes from the heartbeat registry; `subscribe`, `unsubscribe`, `disconnect` and
//! `refresh` are applied here and broadcast for every other node to apply. With the
//! memory engine each of these is just the node-local answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::node::Node;
use crate::node::fleet::{Handlers, SurveyOutcome};
use crate::protocol::ErrorCode;

use super::channel_info::{ChannelStats, ChannelsRequest, ChannelsResult};
use super::connections::{ConnectionsRequest, Listing, Page, Row, encode_cursor};
use super::error::ApiError;
use super::info::{InfoRequest, InfoResult};
use super::rpc::{RpcRequest, RpcResult};
use super::targets::Empty;
use super::{Encoded, Undecodable, decode, local, targets, to_value};

/// Installs this API's meaning of surveys and fleet operations on a Redis node.
pub fn install(node: &Arc<Node>) {
    let Some(fleet) = &node.fleet else { return };
    fleet.set_handlers(Handlers {
        survey: Box::new(|node, op, data| Box::pin(async move { answer(&node, &op, data.get().as_bytes()).await })),
        op: Box::new(|node, op, data| {
            Box::pin(async move {
                match targeted_local(&node, &op, data.get().as_bytes()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::info!(op, code = e.code.code(), "fleet operation refused here: {}", e.message)
                    }
                    Err(Undecodable(why)) => tracing::warn!(op, why, "undecodable fleet operation"),
                }
            })
        }),
    });
}

/// This node's answer to a survey op.
async fn answer(node: &Arc<Node>, op: &str, body: &[u8]) -> Result<Box<RawValue>, String> {
    let undecodable = |_| "undecodable survey request".to_string();
    let encoded = match op {
        "connections" => {
            let req: ConnectionsRequest = decode(body).map_err(undecodable)?;
            let page = local(node, body, move |n| super::connections::page(n, req)).await;
            page.and_then(|p| p).map(|p| crate::json::to_raw(&p))
        }
        "user_connections" => {
            let req: RpcRequest = decode(body).map_err(undecodable)?;
            super::rpc::rpc(node, req).map(|r| crate::json::to_raw(&r.data))
        }
        "channels" => {
            super::channel_info::channels(node, decode(body).map_err(undecodable)?).map(|r| crate::json::to_raw(&r))
        }
        _ => return Err(format!("unknown survey op {op:?}")),
    };
    encoded.map_err(|e| e.message)
}

fn internal(e: crate::engine::EngineError) -> ApiError {
    tracing::warn!("{e}");
    ApiError::new(ErrorCode::Internal)
}

fn raw(body: &[u8]) -> Result<Box<RawValue>, Undecodable> {
    serde_json::from_slice(body).map_err(Undecodable::from_serde)
}

/// Runs a survey on the other nodes (none with the memory engine).
async fn survey(node: &Arc<Node>, op: &str, body: &[u8]) -> Result<SurveyOutcome, ApiError> {
    let Some(fleet) = &node.fleet else { return Ok(SurveyOutcome::default()) };
    let data = raw(body).map_err(|_| ApiError::bad_request("invalid JSON"))?;
    node.metrics.activity.action(crate::metrics::Action::Survey);
    let started = std::time::Instant::now();
    let out = fleet.survey(&node.uid, op, &data).await;
    node.metrics.survey(op).observe(started.elapsed().as_secs_f64());
    out.map_err(internal)
}

// ---------------------------------------------------------------- targeted ops

/// Applies a targeted operation here and, once it was accepted, on every other node.
pub(super) async fn targeted(
    node: &Arc<Node>,
    name: &str,
    body: &[u8],
) -> Result<Result<Encoded, ApiError>, Undecodable> {
    let here = targeted_local(node, name, body).await?;
    if here.is_ok()
        && let Some(fleet) = &node.fleet
        && let Err(e) = fleet.broadcast_op(&node.uid, name, &raw(body)?).await
    {
        return Ok(Err(internal(e)));
    }
    Ok(here)
}

async fn targeted_local(node: &Arc<Node>, name: &str, body: &[u8]) -> Result<Result<Encoded, ApiError>, Undecodable> {
    Ok(match name {
        "subscribe" => {
            let req = decode(body)?;
            let run = async {
                let (sessions, p) = local(node, body, move |n| targets::subscribe_targets(n, req)).await??;
                node.subscribe_sessions(&sessions, &p).await?;
                Ok(Empty {})
            };
            to_value(run.await)
        }
        "unsubscribe" => {
            let req = decode(body)?;
            to_value(local(node, body, move |n| targets::unsubscribe(n, req)).await.and_then(|r| r))
        }
        "disconnect" => {
            let req = decode(body)?;
            to_value(local(node, body, move |n| targets::disconnect(n, req)).await.and_then(|r| r))
        }
        "refresh" => {
            let req = decode(body)?;
            to_value(local(node, body, move |n| targets::refresh(n, req)).await.and_then(|r| r))
        }
        _ => Err(ApiError::not_found()),
    })
}

// ---------------------------------------------------------------- info, channels

pub(super) fn info(node: &Node, _req: InfoRequest) -> Result<InfoResult, ApiError> {
    let mut nodes = vec![node.node_info()];
    if let Some(fleet) = &node.fleet {
        nodes.extend(fleet.peers());
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.uid.cmp(&b.uid)));
    Ok(InfoResult { nodes })
}

/// `channels` summed over the fleet: `num_clients` of a channel is its subscriber
/// count on every node that answered.
pub(super) async fn channels(node: &Arc<Node>, req: ChannelsRequest) -> Result<Encoded, ApiError> {
    let body = crate::json::to_vec(&req);
    let mut total: ChannelsResult = super::channel_info::channels(node, req)?;
    if node.fleet.is_none() {
        return to_value(Ok(total));
    }
    let outcome = survey(node, "channels", &body).await?;
    for a in outcome.answers {
        let Ok(data) = a.result else { continue };
        let Ok(part) = serde_json::from_str::<ChannelsResult>(data.get()) else { continue };
        for (ch, stats) in part.channels {
            total.channels.entry(ch).or_insert(ChannelStats { num_clients: 0 }).num_clients += stats.num_clients;
        }
    }
    to_value(Ok(WithMissing { result: total, missing_nodes: outcome.missing }))
}

// ---------------------------------------------------------------- rpc

/// `getUserConnections` over the fleet; other RPC methods as on one node.
pub(super) async fn rpc(node: &Arc<Node>, req: RpcRequest) -> Result<Encoded, ApiError> {
    if req.method != "getUserConnections" || node.fleet.is_none() {
        return to_value(super::rpc::rpc(node, req));
    }
    let body = crate::json::to_vec(&req);
    let here = super::rpc::rpc(node, req)?;
    let mut data: BTreeMap<String, Box<RawValue>> = match &here.data {
        Some(d) => serde_json::from_value(d.clone()).unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let outcome = survey(node, "user_connections", &body).await?;
    for a in outcome.answers {
        let Ok(d) = a.result else { continue };
        if let Ok(part) = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(d.get()) {
            data.extend(part);
        }
    }
    let data = crate::json::to_value(&data);
    to_value(Ok(WithMissing { result: RpcResult { data: Some(data) }, missing_nodes: outcome.missing }))
}

// ---------------------------------------------------------------- connections

/// `connections` over the fleet: every node lists at most one page after the
/// cursor, in client-id order; the pages are merged in that order and cut to
/// `limit`, so paging visits each connection exactly once. The answer is left
/// unencoded: the HTTP and gRPC APIs encode the same rows each their way.
pub(super) async fn connections(node: &Arc<Node>, body: &[u8], req: ConnectionsRequest) -> Result<Listing, ApiError> {
    if node.fleet.is_none() {
        let r = local(node, body, move |n| super::connections::connections(n, req)).await;
        return r.and_then(|r| r).map(Listing::from);
    }
    let limit = req.limit;
    // This node's page is computed while the peers compute theirs.
    let (here, outcome) = tokio::join!(
        local(node, body, move |n| super::connections::connections(n, req)),
        survey(node, "connections", body)
    );
    let (here, outcome) = (here??, outcome?);
    let mut more = !here.next_cursor.is_empty();
    let mut total = here.total;
    let mut keyed: Vec<(u128, Row)> = here.connections.into_iter().map(|s| (s.id, Row::Here(s))).collect();
    let mut missing = outcome.missing;
    for a in outcome.answers {
        match a.result.map(|d| serde_json::from_str::<Page>(d.get())) {
            Ok(Ok(p)) => {
                more |= p.more;
                total += p.total;
                keyed.extend(p.items.into_iter().map(|(client, info)| {
                    (uuid::Uuid::parse_str(&client).map_or(0, |u| u.as_u128()), Row::Peer { client, info })
                }));
            }
            _ => missing.push(a.uid),
        }
    }
    keyed.sort_by_key(|(id, _)| *id);
    keyed.dedup_by_key(|(id, _)| *id);
    let mut next_cursor = String::new();
    if limit > 0 && (keyed.len() as u64 > limit || more) {
        keyed.truncate(limit as usize);
        if let Some((id, _)) = keyed.last() {
            next_cursor = encode_cursor(*id);
        }
    }
    let rows = keyed.into_iter().map(|(_, row)| row).collect();
    Ok(Listing { rows, next_cursor, total, missing, node: node.name.clone() })
}

/// A result with Rotor's `missing_nodes`: live nodes that did not answer in time.
#[derive(Serialize)]
struct WithMissing<T> {
    #[serde(flatten)]
    result: T,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing_nodes: Vec<String>,
}
