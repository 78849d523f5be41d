//! Engines store what outlives a single connection: history streams and presence.
//! `memory.rs` is the single-node engine; `redis/` is the fleet engine, which also
//! carries publications between nodes (PUB/SUB) and the nodes' control messages.
//! Fan-out to local subscribers is the node's job; an engine assigns offsets, keeps
//! streams and presence, and (Redis) delivers publications to every subscribed node.

mod memory;
pub mod redis;

pub use memory::{HistoryOptions, MemoryEngine};

use crate::protocol::{Publication, StreamPosition};

/// A history read: `limit` None = all retained, `since` = continue after a position.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub limit: Option<usize>,
    pub since: Option<StreamPosition>,
    pub reverse: bool,
}

#[derive(Debug, Clone)]
pub struct HistoryResult {
    pub publications: Vec<Publication>,
    pub position: StreamPosition,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// The requested position is from another epoch or no longer retained.
    Unrecoverable,
}

/// A new stream epoch: 8 random lowercase letters.
pub fn new_epoch() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..8).map(|_| rng.random_range(b'a'..=b'z') as char).collect()
}

/// The engine a node runs on. Methods are async for both; the memory engine never
/// waits. An `Err` means Redis failed (the caller answers error 100).
pub enum Engine {
    Memory(MemoryEngine),
    Redis(std::sync::Arc<redis::RedisEngine>),
}

pub use self::redis::RedisError as EngineError;

impl Engine {
    pub fn redis(&self) -> Option<&std::sync::Arc<redis::RedisEngine>> {
        match self {
            Engine::Redis(r) => Some(r),
            Engine::Memory(_) => None,
        }
    }

    pub async fn stream_position(
        &self,
        channel: &str,
        meta_ttl: std::time::Duration,
    ) -> Result<StreamPosition, EngineError> {
        match self {
            Engine::Memory(m) => Ok(m.stream_position(channel, meta_ttl)),
            Engine::Redis(r) => r.stream_position(channel, meta_ttl).await,
        }
    }

    pub async fn history(
        &self,
        channel: &str,
        q: &HistoryQuery,
        meta_ttl: std::time::Duration,
    ) -> Result<Result<HistoryResult, HistoryError>, EngineError> {
        match self {
            Engine::Memory(m) => Ok(m.history(channel, q, meta_ttl)),
            Engine::Redis(r) => r.history(channel, q, meta_ttl).await,
        }
    }

    pub async fn remove_history(&self, channel: &str) -> Result<(), EngineError> {
        match self {
            Engine::Memory(m) => {
                m.remove_history(channel);
                Ok(())
            }
            Engine::Redis(r) => r.remove_history(channel).await,
        }
    }

    pub async fn presence(
        &self,
        channel: &str,
    ) -> Result<std::collections::HashMap<String, crate::protocol::ClientInfo>, EngineError> {
        match self {
            Engine::Memory(m) => Ok(m.presence(channel)),
            Engine::Redis(r) => r.presence(channel).await,
        }
    }

    pub async fn presence_stats(&self, channel: &str) -> Result<(u32, u32), EngineError> {
        match self {
            Engine::Memory(m) => Ok(m.presence_stats(channel)),
            Engine::Redis(r) => r.presence_stats(channel).await,
        }
    }
}
