//! Size limits for untrusted filters (Centrifugo has none; the transport's message-size
//! cap is its only bound).
//!
//! This module owns the numbers and their defaults. It must never enforce them: the
//! parser does, while it walks the tree, before anything is built from an oversized part.

/// No configuration can raise the depth limit above this: the IR and the compiler
/// recurse once per level, and this bound keeps that well inside any thread's stack.
pub const DEPTH_CAP: usize = 512;

/// Caps applied while parsing a [`FilterNode`](super::FilterNode) tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting, counting the root as level 1 (a lone leaf has depth 1).
    /// Values above [`DEPTH_CAP`] act as `DEPTH_CAP`.
    pub max_depth: usize,
    /// Most nodes in the tree (operators and leaves; a leaf's ignored `nodes` don't count).
    pub max_nodes: usize,
    /// Most entries in one `in`/`nin` `vals` list.
    pub max_values: usize,
    /// Longest `val` or `vals` entry, in bytes.
    pub max_value_len: usize,
    /// Longest `key`, in bytes.
    pub max_key_len: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_depth: 32, max_nodes: 1024, max_values: 1024, max_value_len: 4096, max_key_len: 256 }
    }
}

impl Limits {
    /// The depth limit actually applied: `max_depth` bounded by [`DEPTH_CAP`].
    pub fn effective_depth(&self) -> usize {
        self.max_depth.min(DEPTH_CAP)
    }
}
