//! `info`: `{"nodes":[…]}` — this node's numbers, and with the Redis engine those of
//! every live peer from the heartbeat registry (see `fleet.rs`).

use serde::{Deserialize, Serialize};

use crate::node::fleet::NodeInfo;

#[derive(Debug, Default, Deserialize)]
pub(super) struct InfoRequest {}

#[derive(Debug, Serialize)]
pub(super) struct InfoResult {
    pub nodes: Vec<NodeInfo>,
}
