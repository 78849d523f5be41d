//! One shard of the hub: a lock-free `papaya` map from client id to connection, and
//! the shard's label columns behind a short-lived lock (held only to place or free a
//! row, or by a survey for one chunk of rows).

use std::sync::Arc;

use parking_lot::RwLock;
use smallvec::SmallVec;

use super::labels::LabelColumns;

/// A live connection in the map, with the label row it occupies.
pub(super) struct Entry<C> {
    pub conn: Arc<C>,
    pub row: u32,
}

impl<C> Clone for Entry<C> {
    fn clone(&self) -> Self {
        Self { conn: self.conn.clone(), row: self.row }
    }
}

pub struct Shard<C> {
    pub(super) clients: papaya::HashMap<u128, Entry<C>>,
    pub(super) labels: RwLock<LabelColumns>,
}

impl<C> Default for Shard<C> {
    fn default() -> Self {
        Self { clients: papaya::HashMap::new(), labels: RwLock::new(LabelColumns::default()) }
    }
}

impl<C: Send + Sync + 'static> Shard<C> {
    pub(super) fn insert(&self, id: u128, conn: Arc<C>, labels: &[(u32, u32)]) {
        let row = self.labels.write().insert(id, labels);
        self.clients.pin().insert(id, Entry { conn, row });
    }

    /// Removes connection `id`; `keys` gives the key ids of its labels so only those
    /// columns are touched.
    pub(super) fn remove(&self, id: u128, keys: impl FnOnce(&C) -> SmallVec<[u32; 8]>) -> Option<Arc<C>> {
        let entry = self.clients.pin().remove(&id).cloned()?;
        let keys = keys(&entry.conn);
        self.labels.write().remove(entry.row, &keys);
        Some(entry.conn)
    }

    pub(super) fn get(&self, id: u128) -> Option<Arc<C>> {
        self.clients.pin().get(&id).map(|e| e.conn.clone())
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` over this shard's label columns under the read lock.
    pub fn with_labels<R>(&self, f: impl FnOnce(&LabelColumns) -> R) -> R {
        f(&self.labels.read())
    }
}
