//! Engines store what outlives a single connection: history streams and presence.
//! `memory.rs` is the single-node engine. Fan-out to local subscribers is the node's
//! job; the engine only assigns offsets and keeps streams.

mod memory;

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
