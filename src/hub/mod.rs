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

use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use smallvec::SmallVec;

pub use channel_index::ChannelIndex;
pub use labels::{Interner, InternerStats, LabelColumns, Lease};
pub use shard::Shard;
pub use survey::{Lookahead, SortedLabels, lookahead, prefetch};
pub use user_index::UserIndex;

/// What the hub needs to know about a connection.
pub trait Member: Send + Sync + 'static {
    fn client_id(&self) -> u128;
    fn user(&self) -> &str;
    fn labels(&self) -> &[(Arc<str>, Arc<str>)];
    /// Attributes stored in the label columns next to the labels, sorted by key, each
    /// key in the namespace no label has ([`crate::filter::attribute`]): what
    /// translated CEL tests besides labels. Shared, never per connection.
    fn attributes(&self) -> &'static [(Arc<str>, Arc<str>)] {
        &[]
    }
}

pub struct Hub<C, S> {
    shards: Box<[Shard<C>]>,
    shard_hasher: std::collections::hash_map::RandomState,
    users: UserIndex<C>,
    channels: ChannelIndex<S>,
    keys: Interner,
    values: Interner,
    /// Most distinct label keys the live connections may have between them.
    max_keys: usize,
}

/// A connection would bring the hub past its cap on distinct label keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyLabelKeys {
    pub max: usize,
}

impl fmt::Display for TooManyLabelKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "labels: node is at its limit of {} distinct label keys (max_keys_per_node)", self.max)
    }
}

impl std::error::Error for TooManyLabelKeys {}

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
            max_keys: usize::MAX,
        }
    }

    /// Caps the distinct label keys of live connections (0 = no cap): a connection that
    /// would bring a new key past it is refused by [`Hub::add`]. Each key costs a
    /// column per shard that has it.
    pub fn with_max_label_keys(mut self, max: usize) -> Self {
        self.max_keys = if max == 0 { usize::MAX } else { max };
        self
    }

    fn shard_of(&self, id: u128) -> &Shard<C> {
        &self.shards[(self.shard_hasher.hash_one(id) as usize) % self.shards.len()]
    }

    /// Registers a connection: references on its label and attribute keys and values,
    /// map entry, label row, user index. Refused, with nothing changed, when its labels
    /// would bring a new key past the cap (attribute keys are not counted against it).
    pub fn add(&self, conn: Arc<C>) -> Result<(), TooManyLabelKeys> {
        let (labels, attributes) = (conn.labels(), conn.attributes());
        let pairs = || labels.iter().chain(attributes);
        let keys = self
            .keys
            .acquire(pairs().map(|(k, _)| k), self.max_keys.saturating_add(attributes.len()))
            .map_err(|_| TooManyLabelKeys { max: self.max_keys })?;
        let values = self.values.acquire_all(pairs().map(|(_, v)| v));
        let ids: SmallVec<[(u32, u32); 8]> = keys.into_iter().zip(values).collect();
        self.shard_of(conn.client_id()).insert(conn.client_id(), conn.clone(), &ids);
        let user = conn.user().to_string();
        self.users.add(&user, conn);
        Ok(())
    }

    /// Unregisters a connection; returns it if it was present. Its label references
    /// are dropped after its row is freed, so no live row ever holds a freed id.
    pub fn remove(&self, id: u128) -> Option<Arc<C>> {
        let conn = self.shard_of(id).remove(id, |c| self.ids(&self.keys, Self::pairs(c).map(|(k, _)| k)))?;
        self.users.remove(conn.user(), &conn);
        self.keys.release(&self.ids(&self.keys, Self::pairs(&conn).map(|(k, _)| k)));
        self.values.release(&self.ids(&self.values, Self::pairs(&conn).map(|(_, v)| v)));
        Some(conn)
    }

    /// A connection's label and attribute pairs.
    fn pairs(c: &C) -> impl Iterator<Item = &(Arc<str>, Arc<str>)> {
        c.labels().iter().chain(c.attributes())
    }

    /// The ids of strings a registered connection holds references on (so they are live).
    fn ids<'a>(&self, interner: &Interner, strs: impl Iterator<Item = &'a Arc<str>>) -> SmallVec<[u32; 8]> {
        strs.map(|s| interner.lookup(s).unwrap_or(0)).collect()
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

    /// A connection's labels as the interners' own strings where they are interned, so
    /// that a million connections with `region=eu` share one allocation instead of
    /// holding a million; a new string gets its own allocation, which [`Hub::add`] then
    /// interns. Nothing is referenced here: a connection never added leaks nothing.
    pub fn shared_labels(&self, labels: &[(String, String)]) -> Vec<(Arc<str>, Arc<str>)> {
        let shared = |interner: &Interner, s: &str| interner.shared(s).unwrap_or_else(|| Arc::from(s));
        labels.iter().map(|(k, v)| (shared(&self.keys, k), shared(&self.values, v))).collect()
    }

    /// Label columns over all shards (each a key some live connection of that shard has).
    pub fn num_label_columns(&self) -> usize {
        self.shards.iter().map(|s| s.with_labels(LabelColumns::num_columns)).sum()
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
            hub.add(fake(i, if i % 2 == 0 { "42" } else { "7" }, if i % 3 == 0 { "eu" } else { "us" })).unwrap();
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

    fn labelled(id: u128, labels: &[(&str, &str)]) -> Arc<Fake> {
        let mut labels: Vec<(Arc<str>, Arc<str>)> = labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        labels.sort();
        Arc::new(Fake { id, user: "u".into(), labels })
    }

    fn label_bytes(hub: &Hub<Fake, ()>) -> usize {
        hub.shards().iter().map(|s| s.with_labels(LabelColumns::heap_bytes)).sum()
    }

    /// Regression: unique label keys and values were never freed — a column per key per
    /// shard and an interner entry per string stayed after their connections left.
    #[test]
    fn label_churn_returns_to_baseline() {
        let hub: Hub<Fake, ()> = Hub::with_shards(4);
        for i in 1..=100u128 {
            hub.add(fake(i, "u", if i % 2 == 0 { "eu" } else { "us" })).unwrap();
        }
        let baseline = (hub.num_label_columns(), hub.label_keys().len(), hub.label_values().len());
        let bytes = label_bytes(&hub);
        // 10k connections with a unique key and a unique value each, 50 alive at a time.
        let mut live = std::collections::VecDeque::new();
        for i in 0..10_000u128 {
            let id = 1_000_000 + i;
            hub.add(labelled(id, &[(&format!("k{i}"), &format!("v{i}")), ("region", &format!("r{i}"))])).unwrap();
            live.push_back(id);
            if live.len() > 50 {
                hub.remove(live.pop_front().unwrap()).unwrap();
            }
        }
        assert!(hub.num_label_columns() > baseline.0 + 40, "columns grow with live keys");
        for id in live {
            hub.remove(id).unwrap();
        }
        assert_eq!((hub.num_label_columns(), hub.label_keys().len(), hub.label_values().len()), baseline);
        // Freed ids are reused: the id space tracks the peak of live strings, not the churn.
        assert!(hub.label_keys().stats().high_water < 100, "{:?}", hub.label_keys().stats());
        assert!(hub.label_values().stats().high_water < 200, "{:?}", hub.label_values().stats());
        // Rows are reused; columns are dropped: the tables hold what they held before
        // (plus rows the 50 extra connections needed).
        assert!(
            label_bytes(&hub) <= bytes + 4 * 64 * 16 * 2,
            "{} bytes after churn, {bytes} before",
            label_bytes(&hub)
        );
    }

    #[test]
    fn distinct_label_keys_are_capped() {
        let hub: Hub<Fake, ()> = Hub::with_shards(2).with_max_label_keys(3);
        hub.add(labelled(1, &[("a", "1"), ("b", "1")])).unwrap();
        hub.add(labelled(2, &[("c", "1"), ("a", "2")])).unwrap();
        assert_eq!(hub.add(labelled(3, &[("d", "1")])), Err(TooManyLabelKeys { max: 3 }));
        assert!(hub.get(3).is_none(), "a refused connection is not registered");
        assert_eq!((hub.label_keys().len(), hub.label_values().len()), (3, 2), "nor referenced");
        hub.add(labelled(4, &[("a", "3"), ("b", "3")])).unwrap();
        hub.remove(2).unwrap();
        hub.add(labelled(3, &[("d", "1")])).unwrap();
        assert_eq!(hub.label_keys().len(), 3);
    }

    /// A program compiled before a value's last connection left must not match the
    /// connection whose new value would otherwise reuse the freed id.
    #[test]
    fn a_compiled_program_never_sees_a_reused_id() {
        use crate::filter::{FilterNode, Limits, compile};
        let hub: Hub<Fake, ()> = Hub::with_shards(1);
        hub.add(labelled(1, &[("k", "a")])).unwrap();
        let node: FilterNode = serde_json::from_str(r#"{"key":"k","cmp":"eq","val":"a"}"#).unwrap();
        let program = compile(&node, "label_filter", &Limits::default(), hub.label_values()).unwrap();
        let a = hub.label_values().lookup("a").unwrap();
        hub.remove(1).unwrap();
        hub.add(labelled(2, &[("k", "b")])).unwrap();
        assert_ne!(hub.label_values().lookup("b"), Some(a));
        assert!(hub.survey(&program, 1).is_empty());
        drop(program);
        hub.add(labelled(3, &[("k", "c")])).unwrap();
        assert_eq!(hub.label_values().lookup("c"), Some(a), "reused once no program holds it");
        assert_eq!(hub.label_values().stats().leases, 0);
    }

    /// A connection's attributes live in the columns beside its labels, are surveyed like
    /// labels, and leave with it; they do not count against the cap on label keys.
    #[test]
    fn attributes_are_columns_that_leave_with_their_connection() {
        use crate::filter::{Expr, NoSymbols, Test, compile_expr};
        struct Attributed(Arc<Fake>, &'static [(Arc<str>, Arc<str>)]);
        impl Member for Attributed {
            fn client_id(&self) -> u128 {
                self.0.id
            }
            fn user(&self) -> &str {
                &self.0.user
            }
            fn labels(&self) -> &[(Arc<str>, Arc<str>)] {
                &self.0.labels
            }
            fn attributes(&self) -> &'static [(Arc<str>, Arc<str>)] {
                self.1
            }
        }
        static SSE: std::sync::LazyLock<[(Arc<str>, Arc<str>); 1]> =
            std::sync::LazyLock::new(|| [(Arc::from("\0transport"), Arc::from("sse"))]);
        static WS: std::sync::LazyLock<[(Arc<str>, Arc<str>); 1]> =
            std::sync::LazyLock::new(|| [(Arc::from("\0transport"), Arc::from("websocket"))]);
        let hub: Hub<Attributed, ()> = Hub::with_shards(2).with_max_label_keys(1);
        for i in 1..=10u128 {
            let attrs: &'static [_] = if i % 2 == 0 { &*SSE } else { &*WS };
            hub.add(Arc::new(Attributed(fake(i, "u", "eu"), attrs))).unwrap();
        }
        let sse = Expr::and(vec![
            Expr::leaf("\0transport", Test::Eq("sse".into())),
            Expr::leaf("region", Test::Eq("eu".into())),
        ]);
        let program = compile_expr(&sse, "t", hub.label_values()).unwrap();
        let mut ids = hub.survey(&program, 2);
        ids.sort_unstable();
        assert_eq!(ids, [2, 4, 6, 8, 10]);
        let strings = compile_expr(&sse, "t", &NoSymbols).unwrap();
        let one = hub.get(4).unwrap();
        assert!(strings.matches(&SortedLabels::of(&strings, &*one)), "a session's own view agrees");
        drop((program, one));
        for i in 1..=10u128 {
            hub.remove(i).unwrap();
        }
        assert_eq!((hub.num_label_columns(), hub.label_keys().len(), hub.label_values().len()), (0, 0, 0));
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
