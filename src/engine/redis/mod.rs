//! The Redis engine: what a fleet of Rotor nodes shares through Redis. Publications
//! go through Redis PUB/SUB (a node subscribes to a channel while it has local
//! subscribers), history lives in Redis streams whose epoch and top offset a Lua
//! script keeps atomically with the publish, presence lives in a hash plus an expiry
//! sorted set per channel, and a control channel carries node-to-node messages
//! (heartbeats, surveys, fleet-wide operations) whose meaning the node defines.
//!
//! Layout: `keys.rs` names keys and picks the shard of a channel, `scripts.rs` holds
//! the Lua, `pubsub.rs` runs one PUB/SUB connection per shard with reconnect and
//! resubscribe, this file runs commands. Only this module talks to Redis.

mod keys;
mod pubsub;
mod scripts;
mod sessions;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;

use crate::config::RedisEngine as RedisConfig;
use crate::protocol::{ClientInfo, Publication, StreamPosition};

use super::{HistoryError, HistoryOptions, HistoryQuery, HistoryResult};
use keys::Keys;
pub use pubsub::{Dropped, HANDOFF_CAPACITY, Handoff, Incoming, handoff};
pub use sessions::StoredStatus;

/// Redis did not answer, answered an error, or timed out.
#[derive(Debug, Clone)]
pub struct RedisError(pub String);

impl std::fmt::Display for RedisError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis: {}", self.0)
    }
}

impl std::error::Error for RedisError {}

impl From<redis::RedisError> for RedisError {
    fn from(e: redis::RedisError) -> Self {
        Self(e.to_string())
    }
}

/// A command connection: one multiplexed (pipelining) connection to a standalone
/// Redis, or a cluster connection routing each key to its slot's master.
#[derive(Clone)]
enum Commands {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

struct Shard {
    commands: Commands,
    pubsub: pubsub::PubSub,
}

pub struct RedisEngine {
    keys: Keys,
    shards: Vec<Shard>,
    io_timeout: Duration,
    presence_ttl: Duration,
}

/// What a publish returned: the position given to it (zero without history) and
/// whether an idempotency key matched an earlier publish (nothing was sent again).
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub position: StreamPosition,
    pub duplicate: bool,
}

impl RedisEngine {
    /// Connects to every shard (failing with a clear error when one is unreachable)
    /// and starts the PUB/SUB readers; everything they receive goes to `incoming`.
    /// `node_channels` are this node's control subscriptions (kept on shard 0).
    pub async fn connect(c: &RedisConfig, node_uid: &str, incoming: pubsub::Handoff) -> Result<Arc<Self>, RedisError> {
        let cluster = !c.cluster_address.is_empty();
        let keys = Keys::new(&c.prefix, cluster, node_uid);
        let mut shards = Vec::new();
        if cluster {
            let client = redis::cluster::ClusterClient::builder(c.cluster_address.clone())
                .connection_timeout(c.connect_timeout.std())
                .response_timeout(c.io_timeout.std())
                .build()?;
            let conn = tokio::time::timeout(c.connect_timeout.std() * 3, client.get_async_connection())
                .await
                .map_err(|_| RedisError(format!("cluster {:?}: connect timed out", c.cluster_address)))?
                .map_err(|e| RedisError(format!("cluster {:?}: {e}", c.cluster_address)))?;
            // Classic PUB/SUB is cluster-wide: one subscriber connection to any
            // master sees every PUBLISH. Seeds are tried in order on reconnect.
            let seeds = c.cluster_address.iter().map(|a| redis::Client::open(a.as_str())).collect::<Result<_, _>>()?;
            let ps = pubsub::PubSub::start(seeds, 0, keys.clone(), incoming.clone(), c.connect_timeout.std());
            shards.push(Shard { commands: Commands::Cluster(conn), pubsub: ps });
        } else {
            for (i, address) in c.address.iter().enumerate() {
                let client = redis::Client::open(address.as_str())?;
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(c.connect_timeout.std()))
                    .set_response_timeout(Some(c.io_timeout.std()))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(2));
                let conn =
                    tokio::time::timeout(c.connect_timeout.std() * 3, client.get_connection_manager_with_config(cfg))
                        .await
                        .map_err(|_| RedisError(format!("{}: connect timed out", redacted(address))))?
                        .map_err(|e| RedisError(format!("{}: {e}", redacted(address))))?;
                let ps =
                    pubsub::PubSub::start(vec![client], i, keys.clone(), incoming.clone(), c.connect_timeout.std());
                shards.push(Shard { commands: Commands::Single(conn), pubsub: ps });
            }
        }
        let engine =
            Arc::new(Self { keys, shards, io_timeout: c.io_timeout.std(), presence_ttl: c.presence_ttl.std() });
        // The control subscriptions must be in place before the node announces itself.
        engine.shards[0].pubsub.wait_ready(c.connect_timeout.std() * 3).await?;
        Ok(engine)
    }

    fn shard(&self, channel: &str) -> &Shard {
        &self.shards[keys::shard_index(channel, self.shards.len())]
    }

    async fn run<T: redis::FromRedisValue>(&self, shard: &Shard, cmd: &redis::Cmd) -> Result<T, RedisError> {
        let fut = async {
            match shard.commands.clone() {
                Commands::Single(mut c) => cmd.query_async(&mut c).await,
                Commands::Cluster(mut c) => cmd.query_async(&mut c).await,
            }
        };
        self.in_time(fut).await
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        shard: &Shard,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        let fut = async {
            match shard.commands.clone() {
                Commands::Single(mut c) => inv.invoke_async(&mut c).await,
                Commands::Cluster(mut c) => inv.invoke_async(&mut c).await,
            }
        };
        self.in_time(fut).await
    }

    /// A Redis call bounded by `io_timeout`.
    async fn in_time<T>(&self, fut: impl Future<Output = redis::RedisResult<T>>) -> Result<T, RedisError> {
        match tokio::time::timeout(self.io_timeout, fut).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError(format!("no answer within {:?}", self.io_timeout))),
        }
    }

    // ------------------------------------------------------------------ PUB/SUB

    /// Subscribes this node to a channel's publications (idempotent). Fails while
    /// the shard's PUB/SUB connection is down; the client then gets error 100.
    pub async fn subscribe(&self, channel: &str) -> Result<(), RedisError> {
        self.shard(channel).pubsub.subscribe(self.keys.client_channel(channel)).await
    }

    pub async fn unsubscribe(&self, channel: &str) -> Result<(), RedisError> {
        self.shard(channel).pubsub.unsubscribe(self.keys.client_channel(channel)).await
    }

    /// After a shard's PUB/SUB connection came back: subscribes again to every channel
    /// of `channels` (the node's registry) that lives on that shard.
    pub async fn resubscribe(&self, shard: usize, channels: Vec<String>) -> Result<(), RedisError> {
        let n = self.shards.len();
        let names: Vec<String> =
            channels.iter().filter(|c| keys::shard_index(c, n) == shard).map(|c| self.keys.client_channel(c)).collect();
        for batch in names.chunks(512) {
            self.shards[shard].pubsub.subscribe_many(batch.to_vec()).await?;
        }
        Ok(())
    }

    /// Publishes a join or leave push to every node subscribed to the channel.
    pub async fn publish_join_leave(&self, channel: &str, join: bool, info: &ClientInfo) -> Result<(), RedisError> {
        let body = crate::json::to_vec(info);
        let mut payload = Vec::with_capacity(body.len() + 1);
        payload.push(if join { b'j' } else { b'l' });
        payload.extend_from_slice(&body);
        let cmd = redis::cmd("PUBLISH").arg(self.keys.client_channel(channel)).arg(payload).to_owned();
        self.run::<i64>(self.shard(channel), &cmd).await.map(|_| ())
    }

    /// Publishes into a channel: with `history`, appends to its stream and publishes
    /// in one Lua step; `idempotency_key` (kept `idempotency_ttl`) makes a repeat a
    /// no-op that returns the first publish's position.
    pub async fn publish(
        &self,
        channel: &str,
        publication: &Publication,
        history: Option<HistoryOptions>,
        idempotency_key: &str,
    ) -> Result<Published, RedisError> {
        let body = crate::json::to_vec(&crate::protocol::Brokered::from(publication));
        let shard = self.shard(channel);
        if history.is_none() && idempotency_key.is_empty() {
            let mut payload = Vec::with_capacity(body.len() + 4);
            payload.extend_from_slice(b"p0::");
            payload.extend_from_slice(&body);
            let cmd = redis::cmd("PUBLISH").arg(self.keys.client_channel(channel)).arg(payload).to_owned();
            self.run::<i64>(shard, &cmd).await?;
            return Ok(Published::default());
        }
        let (size, ttl, meta_ttl) = match history {
            Some(h) => (h.size, h.ttl.as_secs().max(1), h.meta_ttl.as_secs()),
            None => (0, 0, 0),
        };
        // Always a key of the channel's slot (unused without an idempotency key).
        let result_key = self.keys.result(channel, idempotency_key);
        let script = &scripts::PUBLISH;
        let mut inv = script.prepare_invoke();
        inv.key(self.keys.stream(channel)).key(self.keys.stream_meta(channel)).key(result_key);
        inv.arg(body)
            .arg(size)
            .arg(ttl)
            .arg(self.keys.client_channel(channel))
            .arg(meta_ttl)
            .arg(super::new_epoch())
            .arg(if idempotency_key.is_empty() { 0 } else { IDEMPOTENCY_TTL_SECS });
        let (offset, epoch, duplicate): (u64, String, i64) = self.script(shard, inv).await?;
        Ok(Published { position: StreamPosition { offset, epoch }, duplicate: duplicate == 1 })
    }

    // ------------------------------------------------------------------ history

    /// The stream's top position, creating its epoch if the stream is new.
    pub async fn stream_position(&self, channel: &str, meta_ttl: Duration) -> Result<StreamPosition, RedisError> {
        let mut inv = scripts::POSITION.prepare_invoke();
        inv.key(self.keys.stream_meta(channel)).arg(meta_ttl.as_secs()).arg(super::new_epoch());
        let (offset, epoch): (u64, String) = self.script(self.shard(channel), inv).await?;
        Ok(StreamPosition { offset, epoch })
    }

    /// Reads history with the memory engine's rules: `since` from another epoch, or
    /// older than the oldest retained entry, is unrecoverable.
    pub async fn history(
        &self,
        channel: &str,
        q: &HistoryQuery,
        meta_ttl: Duration,
    ) -> Result<Result<HistoryResult, HistoryError>, RedisError> {
        let since = q.since.as_ref().map(|s| s.offset.to_string()).unwrap_or_default();
        let mut inv = scripts::HISTORY.prepare_invoke();
        inv.key(self.keys.stream(channel))
            .key(self.keys.stream_meta(channel))
            .arg(meta_ttl.as_secs())
            .arg(super::new_epoch())
            .arg(if q.reverse { 1 } else { 0 })
            .arg(since)
            .arg(q.limit.map_or(-1, |n| n as i64));
        type Raw = (u64, String, Option<String>, Vec<(String, HashMap<String, Vec<u8>>)>);
        let (top, epoch, first, entries): Raw = self.script(self.shard(channel), inv).await?;
        let position = StreamPosition { offset: top, epoch };
        if let Some(since) = &q.since {
            if since.epoch != position.epoch {
                return Ok(Err(HistoryError::Unrecoverable));
            }
            let oldest = first.as_deref().and_then(entry_offset).unwrap_or(top + 1);
            if since.offset + 1 < oldest && since.offset < top {
                return Ok(Err(HistoryError::Unrecoverable));
            }
        }
        let mut publications = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            let Some(offset) = entry_offset(&id) else { continue };
            let Some(data) = fields.get("d") else { continue };
            match serde_json::from_slice::<Publication>(data) {
                Ok(mut p) => {
                    p.offset = offset;
                    publications.push(p);
                }
                Err(e) => tracing::warn!(channel, offset, "undecodable history entry: {e}"),
            }
        }
        Ok(Ok(HistoryResult { publications, position }))
    }

    /// Drops a channel's stream; its epoch and top offset survive (as in memory).
    pub async fn remove_history(&self, channel: &str) -> Result<(), RedisError> {
        let cmd = redis::cmd("DEL").arg(self.keys.stream(channel)).to_owned();
        self.run::<i64>(self.shard(channel), &cmd).await.map(|_| ())
    }

    // ------------------------------------------------------------------ presence

    /// Adds (or refreshes) a connection's presence entry; it expires after
    /// `presence_ttl` unless refreshed, so a dead node's entries go away on their own.
    pub async fn add_presence(&self, channel: &str, info: &ClientInfo) -> Result<(), RedisError> {
        let body = crate::json::to_vec(info);
        let ttl = self.presence_ttl.as_secs().max(1);
        let mut inv = scripts::PRESENCE_ADD.prepare_invoke();
        inv.key(self.keys.presence_data(channel))
            .key(self.keys.presence_expire(channel))
            .arg(&info.client)
            .arg(body)
            .arg(unix_secs() + ttl)
            .arg(ttl);
        self.script::<i64>(self.shard(channel), inv).await.map(|_| ())
    }

    pub async fn remove_presence(&self, channel: &str, client: &str) -> Result<(), RedisError> {
        let mut inv = scripts::PRESENCE_REMOVE.prepare_invoke();
        inv.key(self.keys.presence_data(channel)).key(self.keys.presence_expire(channel)).arg(client);
        self.script::<i64>(self.shard(channel), inv).await.map(|_| ())
    }

    /// Live presence entries of a channel (expired ones are removed on the way).
    pub async fn presence(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, RedisError> {
        let mut inv = scripts::PRESENCE_GET.prepare_invoke();
        inv.key(self.keys.presence_data(channel)).key(self.keys.presence_expire(channel)).arg(unix_secs());
        let raw: HashMap<String, Vec<u8>> = self.script(self.shard(channel), inv).await?;
        let mut out = HashMap::with_capacity(raw.len());
        for (client, body) in raw {
            if let Ok(info) = serde_json::from_slice::<ClientInfo>(&body) {
                out.insert(client, info);
            }
        }
        Ok(out)
    }

    /// (clients, distinct users) present in the channel.
    pub async fn presence_stats(&self, channel: &str) -> Result<(u32, u32), RedisError> {
        let p = self.presence(channel).await?;
        let users: std::collections::HashSet<&str> = p.values().map(|i| i.user.as_str()).collect();
        Ok((p.len() as u32, users.len() as u32))
    }

    // ------------------------------------------------------------------ control

    /// Sends a control message to every node (this one included; the node ignores
    /// its own by uid).
    pub async fn broadcast_control(&self, payload: Vec<u8>) -> Result<(), RedisError> {
        let cmd = redis::cmd("PUBLISH").arg(self.keys.control()).arg(payload).to_owned();
        self.run::<i64>(&self.shards[0], &cmd).await.map(|_| ())
    }

    /// Sends a control message to one node.
    pub async fn send_to_node(&self, node_uid: &str, payload: Vec<u8>) -> Result<(), RedisError> {
        let cmd = redis::cmd("PUBLISH").arg(self.keys.node(node_uid)).arg(payload).to_owned();
        self.run::<i64>(&self.shards[0], &cmd).await.map(|_| ())
    }
}

/// How long an idempotency key remembers its publish (Centrifugo: 5 minutes).
const IDEMPOTENCY_TTL_SECS: u64 = 300;

/// A stream entry id `<offset>-0` → offset.
fn entry_offset(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// An address with its password hidden, for logs and errors.
pub fn redacted(address: &str) -> String {
    match (address.find("://"), address.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &address[..scheme + 3], &address[at..]),
        _ => address.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redacted("redis://u:secret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn entry_ids() {
        assert_eq!(entry_offset("17-0"), Some(17));
        assert_eq!(entry_offset("x-0"), None);
    }
}
