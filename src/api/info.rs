//! `info`: this node's numbers (`{"nodes":[…]}`); a multi-node engine would add peers.

use serde::{Deserialize, Serialize};

use crate::node::Node;

use super::error::ApiError;

#[derive(Debug, Default, Deserialize)]
pub struct InfoRequest {}

#[derive(Debug, Serialize)]
pub struct NodeResult {
    pub uid: String,
    pub name: String,
    pub version: String,
    pub num_clients: u32,
    pub num_users: u32,
    pub num_channels: u32,
    pub uptime: u32,
    pub num_subs: u32,
}

#[derive(Debug, Serialize)]
pub struct InfoResult {
    pub nodes: Vec<NodeResult>,
}

pub fn info(node: &Node, _req: InfoRequest) -> Result<InfoResult, ApiError> {
    let channels = node.hub.channels();
    Ok(InfoResult {
        nodes: vec![NodeResult {
            uid: node.uid.clone(),
            name: node.name.clone(),
            version: crate::node::VERSION.to_string(),
            num_clients: node.hub.len() as u32,
            num_users: node.hub.num_users() as u32,
            num_channels: channels.num_channels() as u32,
            uptime: node.started.elapsed().as_secs() as u32,
            num_subs: channels.num_subscriptions() as u32,
        }],
    })
}
