//! The memory engine: history streams (offsets, epochs, size and TTL trimming) and
//! presence for a single node. All state is in sharded mutex-guarded maps; no lock is
//! held across an await (there are no awaits here).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::protocol::{ClientInfo, Publication, StreamPosition};

use super::{HistoryError, HistoryQuery, HistoryResult, new_epoch};

const SHARDS: usize = 64;

/// How long an idempotency key remembers its publish (Centrifugo: 5 minutes).
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(300);

struct Stream {
    epoch: String,
    top: u64,
    items: VecDeque<(Publication, Instant)>,
    /// When the whole stream (and its epoch) is forgotten if nothing is published.
    meta_expires: Instant,
}

impl Stream {
    fn new(meta_ttl: Duration) -> Self {
        Self { epoch: new_epoch(), top: 0, items: VecDeque::new(), meta_expires: Instant::now() + meta_ttl }
    }

    fn trim(&mut self, now: Instant) {
        while self.items.front().is_some_and(|(_, exp)| *exp <= now) {
            self.items.pop_front();
        }
    }

    fn position(&self) -> StreamPosition {
        StreamPosition { offset: self.top, epoch: self.epoch.clone() }
    }
}

/// Presence entries of one channel: client id → info.
type PresenceMap = HashMap<String, ClientInfo>;

/// Publish results remembered by idempotency key: (channel, key) → (position, until).
type Results = HashMap<(String, String), (StreamPosition, Instant)>;

pub struct MemoryEngine {
    hasher: std::collections::hash_map::RandomState,
    streams: Box<[Mutex<HashMap<String, Stream>>]>,
    presence: Box<[Mutex<HashMap<String, PresenceMap>>]>,
    results: Mutex<Results>,
}

impl Default for MemoryEngine {
    fn default() -> Self {
        Self {
            hasher: Default::default(),
            streams: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            presence: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            results: Mutex::new(HashMap::new()),
        }
    }
}

/// History options of the channel a publication goes to.
#[derive(Debug, Clone, Copy)]
pub struct HistoryOptions {
    pub size: usize,
    pub ttl: Duration,
    pub meta_ttl: Duration,
}

impl MemoryEngine {
    fn index(&self, channel: &str) -> usize {
        (self.hasher.hash_one(channel) as usize) % SHARDS
    }

    /// Appends a publication to the channel's stream, giving it the next offset.
    pub fn add_history(
        &self,
        channel: &str,
        mut publication: Publication,
        opts: HistoryOptions,
    ) -> (Publication, StreamPosition) {
        let now = Instant::now();
        let mut map = self.streams[self.index(channel)].lock();
        let stream = map.entry(channel.to_string()).or_insert_with(|| Stream::new(opts.meta_ttl));
        if stream.meta_expires <= now {
            *stream = Stream::new(opts.meta_ttl);
        }
        stream.top += 1;
        publication.offset = stream.top;
        stream.items.push_back((publication.clone(), now + opts.ttl));
        while stream.items.len() > opts.size {
            stream.items.pop_front();
        }
        stream.trim(now);
        stream.meta_expires = now + opts.meta_ttl;
        (publication, stream.position())
    }

    /// The position a publish with this idempotency key got within the last
    /// [`IDEMPOTENCY_TTL`], if any.
    pub fn idempotent_result(&self, channel: &str, key: &str) -> Option<StreamPosition> {
        let results = self.results.lock();
        let (pos, until) = results.get(&(channel.to_string(), key.to_string()))?;
        (*until > Instant::now()).then(|| pos.clone())
    }

    /// Remembers a publish's position under its idempotency key; expired entries are
    /// dropped on the way, so the map holds at most the last 5 minutes' keys.
    pub fn remember_result(&self, channel: &str, key: &str, pos: StreamPosition) {
        let now = Instant::now();
        let mut results = self.results.lock();
        if results.len() >= 1024 {
            results.retain(|_, (_, until)| *until > now);
        }
        results.insert((channel.to_string(), key.to_string()), (pos, now + IDEMPOTENCY_TTL));
    }

    /// The stream's current top (creating the stream and its epoch if new).
    pub fn stream_position(&self, channel: &str, meta_ttl: Duration) -> StreamPosition {
        let now = Instant::now();
        let mut map = self.streams[self.index(channel)].lock();
        let stream = map.entry(channel.to_string()).or_insert_with(|| Stream::new(meta_ttl));
        if stream.meta_expires <= now {
            *stream = Stream::new(meta_ttl);
        }
        stream.position()
    }

    /// Reads history. `since` with a different epoch, or pointing before the oldest
    /// retained publication, is unrecoverable.
    pub fn history(&self, channel: &str, q: &HistoryQuery, meta_ttl: Duration) -> Result<HistoryResult, HistoryError> {
        let now = Instant::now();
        let mut map = self.streams[self.index(channel)].lock();
        let stream = map.entry(channel.to_string()).or_insert_with(|| Stream::new(meta_ttl));
        if stream.meta_expires <= now {
            *stream = Stream::new(meta_ttl);
        }
        stream.trim(now);
        let position = stream.position();
        let pubs: Vec<&Publication> = match &q.since {
            Some(since) => {
                if since.epoch != stream.epoch {
                    return Err(HistoryError::Unrecoverable);
                }
                let oldest = stream.items.front().map_or(stream.top + 1, |(p, _)| p.offset);
                if since.offset + 1 < oldest && since.offset < stream.top {
                    return Err(HistoryError::Unrecoverable);
                }
                if q.reverse {
                    stream.items.iter().rev().filter(|(p, _)| p.offset < since.offset).map(|(p, _)| p).collect()
                } else {
                    stream.items.iter().filter(|(p, _)| p.offset > since.offset).map(|(p, _)| p).collect()
                }
            }
            None if q.reverse => stream.items.iter().rev().map(|(p, _)| p).collect(),
            None => stream.items.iter().map(|(p, _)| p).collect(),
        };
        let take = match q.limit {
            Some(n) => n.min(pubs.len()),
            None => pubs.len(),
        };
        Ok(HistoryResult { publications: pubs.into_iter().take(take).cloned().collect(), position })
    }

    /// Drops a channel's history (its epoch survives until the stream meta expires).
    pub fn remove_history(&self, channel: &str) {
        let mut map = self.streams[self.index(channel)].lock();
        if let Some(stream) = map.get_mut(channel) {
            stream.items.clear();
        }
    }

    pub fn add_presence(&self, channel: &str, info: ClientInfo) {
        let mut map = self.presence[self.index(channel)].lock();
        map.entry(channel.to_string()).or_default().insert(info.client.clone(), info);
    }

    pub fn remove_presence(&self, channel: &str, client: &str) {
        let mut map = self.presence[self.index(channel)].lock();
        if let Some(entries) = map.get_mut(channel) {
            entries.remove(client);
            if entries.is_empty() {
                map.remove(channel);
            }
        }
    }

    pub fn presence(&self, channel: &str) -> PresenceMap {
        self.presence[self.index(channel)].lock().get(channel).cloned().unwrap_or_default()
    }

    /// (clients, distinct users) present in the channel.
    pub fn presence_stats(&self, channel: &str) -> (u32, u32) {
        let map = self.presence[self.index(channel)].lock();
        let Some(entries) = map.get(channel) else { return (0, 0) };
        let users: std::collections::HashSet<&str> = entries.values().map(|i| i.user.as_str()).collect();
        (entries.len() as u32, users.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn publication(n: u32) -> Publication {
        let data: Arc<serde_json::value::RawValue> =
            serde_json::value::RawValue::from_string(n.to_string()).unwrap().into();
        Publication { data, info: None, offset: 0, tags: Default::default(), time: 0 }
    }

    const OPTS: HistoryOptions =
        HistoryOptions { size: 3, ttl: Duration::from_secs(60), meta_ttl: Duration::from_secs(3600) };

    #[test]
    fn offsets_grow_and_size_trims() {
        let e = MemoryEngine::default();
        let mut last = StreamPosition::default();
        for i in 1..=5 {
            let (p, pos) = e.add_history("ch", publication(i), OPTS);
            assert_eq!(p.offset, i as u64);
            last = pos;
        }
        let all = e.history("ch", &HistoryQuery { limit: None, since: None, reverse: false }, OPTS.meta_ttl).unwrap();
        assert_eq!(all.publications.iter().map(|p| p.offset).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(all.position, last);
        let since = StreamPosition { offset: 3, epoch: last.epoch.clone() };
        let q = HistoryQuery { limit: None, since: Some(since), reverse: false };
        let rest = e.history("ch", &q, OPTS.meta_ttl).unwrap();
        assert_eq!(rest.publications.len(), 2);
        let stale = StreamPosition { offset: 1, epoch: last.epoch.clone() };
        let q = HistoryQuery { limit: None, since: Some(stale), reverse: false };
        assert!(matches!(e.history("ch", &q, OPTS.meta_ttl), Err(HistoryError::Unrecoverable)));
        let wrong = StreamPosition { offset: 4, epoch: "other".into() };
        let q = HistoryQuery { limit: None, since: Some(wrong), reverse: false };
        assert!(matches!(e.history("ch", &q, OPTS.meta_ttl), Err(HistoryError::Unrecoverable)));
    }

    #[test]
    fn presence_counts_users() {
        let e = MemoryEngine::default();
        for (c, u) in [("a", "1"), ("b", "1"), ("c", "2")] {
            e.add_presence("ch", ClientInfo { user: u.into(), client: c.into(), conn_info: None, chan_info: None });
        }
        assert_eq!(e.presence_stats("ch"), (3, 2));
        e.remove_presence("ch", "a");
        assert_eq!(e.presence("ch").len(), 2);
    }
}
