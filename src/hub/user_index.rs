//! user → that user's live connections. Sharded by a keyed hash of the user ID (user
//! IDs come from tokens but are still attacker-influenced strings), each shard a small
//! mutex-guarded map; lookups clone the few `Arc`s out and never hold a lock outside.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::Mutex;
use smallvec::SmallVec;

const SHARDS: usize = 64;

type Conns<C> = SmallVec<[Arc<C>; 2]>;
type UserMap<C> = HashMap<Arc<str>, Conns<C>>;

pub struct UserIndex<C> {
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[Mutex<UserMap<C>>]>,
}

impl<C> Default for UserIndex<C> {
    fn default() -> Self {
        Self { hasher: Default::default(), shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }
}

impl<C> UserIndex<C> {
    fn shard(&self, user: &str) -> &Mutex<UserMap<C>> {
        &self.shards[(self.hasher.hash_one(user) as usize) % SHARDS]
    }

    pub fn add(&self, user: &str, conn: Arc<C>) {
        let mut map = self.shard(user).lock();
        match map.get_mut(user) {
            Some(v) => v.push(conn),
            None => {
                map.insert(Arc::from(user), smallvec::smallvec![conn]);
            }
        }
    }

    /// Removes the connection (matched by pointer) from the user's set.
    pub fn remove(&self, user: &str, conn: &Arc<C>) {
        let mut map = self.shard(user).lock();
        if let Some(v) = map.get_mut(user) {
            v.retain(|c| !Arc::ptr_eq(c, conn));
            if v.is_empty() {
                map.remove(user);
            }
        }
    }

    /// The user's live connections (a copy of the `Arc`s).
    pub fn get(&self, user: &str) -> Vec<Arc<C>> {
        self.shard(user).lock().get(user).map(|v| v.to_vec()).unwrap_or_default()
    }

    /// Number of distinct users with at least one connection.
    pub fn num_users(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}
