//! The hub: every live connection of this node, indexed three ways.
//!
//! - per-core shards (`shard.rs`), each a lock-free `papaya` map client id →
//!   connection plus a dense columnar label table (`labels.rs`) for surveys;
//! - a per-user index (`user_index.rs`) so `connections` by user never scans;
//! - a channel → subscribers index (`channel_index.rs`) for fan-out.
//!
//! The hub is generic over the connection type `C` and per-subscription data `S`;
//! it knows nothing of transports, sockets or the protocol.

mod channel_index;
pub mod labels;
mod shard;
mod survey;
mod user_index;

use std::hash::BuildHasher;
use std::sync::Arc;

pub use channel_index::ChannelIndex;
pub use labels::{Interner, LabelColumns};
pub use shard::Shard;
pub use survey::SortedLabels;
pub use user_index::UserIndex;

/// What the hub needs to know about a connection.
pub trait Member: Send + Sync + 'static {
    fn client_id(&self) -> u128;
    fn user(&self) -> &str;
    fn labels(&self) -> &[(Arc<str>, Arc<str>)];
}

pub struct Hub<C, S> {
    shards: Box<[Shard<C>]>,
    shard_hasher: std::collections::hash_map::RandomState,
    users: UserIndex<C>,
    channels: ChannelIndex<S>,
    keys: Interner,
    values: Interner,
}

impl<C: Member, S> Hub<C, S> {
    /// A hub with one shard per available core (at least two).
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_shards(cores.max(2))
    }

    pub fn with_shards(n: usize) -> Self {
        Self {
            shards: (0..n.max(1)).map(|_| Shard::default()).collect(),
            shard_hasher: Default::default(),
            users: UserIndex::default(),
            channels: ChannelIndex::default(),
            keys: Interner::default(),
            values: Interner::default(),
        }
    }

    fn shard_of(&self, id: u128) -> &Shard<C> {
        &self.shards[(self.shard_hasher.hash_one(id) as usize) % self.shards.len()]
    }

    /// Registers a connection: map entry, label row, user index.
    pub fn add(&self, conn: Arc<C>) {
        let labels: Vec<(u32, u32)> =
            conn.labels().iter().map(|(k, v)| (self.keys.intern(k), self.values.intern(v))).collect();
        self.shard_of(conn.client_id()).insert(conn.client_id(), conn.clone(), &labels);
        let user = conn.user().to_string();
        self.users.add(&user, conn);
    }

    /// Unregisters a connection; returns it if it was present.
    pub fn remove(&self, id: u128) -> Option<Arc<C>> {
        let conn = self.shard_of(id).remove(id)?;
        self.users.remove(conn.user(), &conn);
        Some(conn)
    }

    pub fn get(&self, id: u128) -> Option<Arc<C>> {
        self.shard_of(id).get(id)
    }

    /// A user's connections, from the per-user index (no scan).
    pub fn user_connections(&self, user: &str) -> Vec<Arc<C>> {
        self.users.get(user)
    }

    /// Every connection (a scan over the shards' maps).
    pub fn all(&self) -> Vec<Arc<C>> {
        let mut out = Vec::with_capacity(self.len());
        for s in self.shards.iter() {
            out.extend(s.clients.pin().values().map(|e| e.conn.clone()));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(Shard::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn num_users(&self) -> usize {
        self.users.num_users()
    }

    pub fn shards(&self) -> &[Shard<C>] {
        &self.shards
    }

    pub fn channels(&self) -> &ChannelIndex<S> {
        &self.channels
    }

    /// Interned label keys and values (shared by all shards).
    pub fn label_keys(&self) -> &Interner {
        &self.keys
    }

    pub fn label_values(&self) -> &Interner {
        &self.values
    }

    /// A connection's labels as the interners' own strings, so that a million
    /// connections with `region=eu` share one allocation instead of holding a million.
    /// Keys and values are interned here as [`Hub::add`] would intern them anyway.
    pub fn shared_labels(&self, labels: &[(String, String)]) -> Vec<(Arc<str>, Arc<str>)> {
        let shared =
            |interner: &Interner, s: &str| interner.resolve(interner.intern(s)).unwrap_or_else(|| Arc::from(s));
        labels.iter().map(|(k, v)| (shared(&self.keys, k), shared(&self.values, v))).collect()
    }
}

impl<C: Member, S> Default for Hub<C, S> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) struct Fake {
        pub(super) id: u128,
        pub(super) user: String,
        pub(super) labels: Vec<(Arc<str>, Arc<str>)>,
    }

    impl Member for Fake {
        fn client_id(&self) -> u128 {
            self.id
        }
        fn user(&self) -> &str {
            &self.user
        }
        fn labels(&self) -> &[(Arc<str>, Arc<str>)] {
            &self.labels
        }
    }

    pub(super) fn fake(id: u128, user: &str, region: &str) -> Arc<Fake> {
        Arc::new(Fake { id, user: user.into(), labels: vec![("region".into(), region.into())] })
    }

    #[test]
    fn add_lookup_remove() {
        let hub: Hub<Fake, ()> = Hub::with_shards(4);
        // Client ids are never zero (zero marks a free label row).
        for i in 1..=100u128 {
            hub.add(fake(i, if i % 2 == 0 { "42" } else { "7" }, if i % 3 == 0 { "eu" } else { "us" }));
        }
        assert_eq!(hub.len(), 100);
        assert_eq!(hub.num_users(), 2);
        assert_eq!(hub.user_connections("42").len(), 50);
        assert!(hub.get(5).is_some());
        assert_eq!(hub.remove(5).unwrap().id, 5);
        assert!(hub.get(5).is_none());
        assert_eq!(hub.user_connections("7").len(), 49);
        // ids 3, 6, ..., 99 are "eu": 33 of them.
        let eu = hub.label_values().lookup("eu").unwrap();
        let region = hub.label_keys().lookup("region").unwrap();
        let matched: usize = hub
            .shards()
            .iter()
            .map(|s| s.with_labels(|t| t.column(region).map_or(0, |c| c.iter().filter(|v| **v == eu).count())))
            .sum();
        assert_eq!(matched, 33);
    }

    #[test]
    fn channel_index_first_and_last() {
        let hub: Hub<Fake, u8> = Hub::with_shards(2);
        assert!(hub.channels().add("news", 1, 0));
        assert!(!hub.channels().add("news", 2, 0));
        assert_eq!(hub.channels().num_subscribers("news"), 2);
        assert!(!hub.channels().remove("news", 1));
        assert!(hub.channels().remove("news", 2));
        assert_eq!(hub.channels().num_channels(), 0);
    }
}
