//! channel → subscribers, for fan-out. Sharded by a keyed hash of the channel name;
//! each shard is a read-write lock over a map so that publications to different
//! channels, and concurrent publications to one channel, proceed in parallel. `S` is
//! the per-subscription data the node keeps next to the subscriber (its connection,
//! tags filter, join/leave wish).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::RwLock;

const SHARDS: usize = 64;

/// Ids checked per read lock in [`ChannelIndex::retain_subscribed`].
const RETAIN_CHUNK: usize = 4096;

type Subs<S> = HashMap<u128, S>;
type ChannelMap<S> = HashMap<Arc<str>, Subs<S>>;

pub struct ChannelIndex<S> {
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[RwLock<ChannelMap<S>>]>,
}

impl<S> Default for ChannelIndex<S> {
    fn default() -> Self {
        Self { hasher: Default::default(), shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect() }
    }
}

impl<S> ChannelIndex<S> {
    fn shard(&self, channel: &str) -> &RwLock<ChannelMap<S>> {
        &self.shards[(self.hasher.hash_one(channel) as usize) % SHARDS]
    }

    /// Adds (or replaces) a subscriber; returns true if it is the channel's first.
    pub fn add(&self, channel: &str, client: u128, sub: S) -> bool {
        let mut map = self.shard(channel).write();
        match map.get_mut(channel) {
            Some(subs) => {
                subs.insert(client, sub);
                false
            }
            None => {
                map.insert(Arc::from(channel), HashMap::from([(client, sub)]));
                true
            }
        }
    }

    /// Removes a subscriber; returns true if the channel has no subscribers left.
    pub fn remove(&self, channel: &str, client: u128) -> bool {
        let mut map = self.shard(channel).write();
        let Some(subs) = map.get_mut(channel) else { return false };
        if subs.remove(&client).is_none() {
            return false;
        }
        if subs.is_empty() {
            map.remove(channel);
            return true;
        }
        false
    }

    /// Calls `f` for each subscriber of `channel` under the shard's read lock.
    /// `f` must not block or call back into the index.
    pub fn for_each(&self, channel: &str, mut f: impl FnMut(&S)) -> usize {
        let map = self.shard(channel).read();
        let Some(subs) = map.get(channel) else { return 0 };
        subs.values().for_each(&mut f);
        subs.len()
    }

    /// Keeps in `ids` only the clients `channel` has a subscriber entry for (an entry
    /// exists from before a subscription is recorded on its session until after it is
    /// removed, so no subscriber is dropped; the caller checks the sessions it keeps).
    /// The shard's read lock is taken per [`RETAIN_CHUNK`] ids, so subscriptions to
    /// the shard's channels wait at most one chunk.
    pub fn retain_subscribed(&self, channel: &str, ids: &mut Vec<u128>) {
        let mut kept = 0;
        let mut start = 0;
        while start < ids.len() {
            let end = (start + RETAIN_CHUNK).min(ids.len());
            let map = self.shard(channel).read();
            let Some(subs) = map.get(channel) else {
                ids.clear();
                return;
            };
            for i in start..end {
                if subs.contains_key(&ids[i]) {
                    ids[kept] = ids[i];
                    kept += 1;
                }
            }
            drop(map);
            start = end;
        }
        ids.truncate(kept);
    }

    pub fn num_subscribers(&self, channel: &str) -> usize {
        self.shard(channel).read().get(channel).map_or(0, |s| s.len())
    }

    /// Every channel with its subscriber count.
    pub fn channels(&self) -> Vec<(Arc<str>, usize)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.read().iter().map(|(c, s)| (c.clone(), s.len())));
        }
        out
    }

    pub fn num_channels(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Total subscriptions over all channels.
    pub fn num_subscriptions(&self) -> usize {
        self.shards.iter().map(|s| s.read().values().map(|v| v.len()).sum::<usize>()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_subscribed_keeps_members_in_order_across_chunks() {
        let index: ChannelIndex<()> = ChannelIndex::default();
        let n = RETAIN_CHUNK as u128 * 2 + 17;
        for id in (0..n).filter(|id| id % 3 == 0) {
            index.add("room", id, ());
        }
        let mut ids: Vec<u128> = (0..n).rev().collect();
        index.retain_subscribed("room", &mut ids);
        let want: Vec<u128> = (0..n).rev().filter(|id| id % 3 == 0).collect();
        assert_eq!(ids, want);
        let mut ids: Vec<u128> = (0..10).collect();
        index.retain_subscribed("nobody", &mut ids);
        assert!(ids.is_empty(), "a channel without subscribers keeps nothing");
        let mut none = Vec::new();
        index.retain_subscribed("room", &mut none);
        assert!(none.is_empty());
    }
}
