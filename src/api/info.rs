//! `info`: `{"nodes":[…]}` — this node's numbers, and with the Redis engine those of
//! every live peer from the heartbeat registry (see `fleet.rs`).

use serde::{Deserialize, Serialize};

use crate::node::fleet::NodeInfo;

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

impl From<NodeInfo> for NodeResult {
    fn from(n: NodeInfo) -> Self {
        Self {
            uid: n.uid,
            name: n.name,
            version: n.version,
            num_clients: n.num_clients,
            num_users: n.num_users,
            num_channels: n.num_channels,
            uptime: n.uptime,
            num_subs: n.num_subs,
        }
    }
}
