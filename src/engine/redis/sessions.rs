//! What the node's session tables and user statuses keep in Redis.
//!
//! - **Session entries** (revocations, invalidations, blocks) are opaque to this
//!   file: an id, an encoded body and an expiry. They live on the first shard only (a
//!   resharded fleet must not lose them, as in Centrifugo PRO) in one hash by id plus
//!   a sorted set of expiry times; a sweep script drops what expired and every node
//!   loads the whole hash at start.
//! - **User statuses** are one hash per user (`active`, `online`, `state`) on the
//!   user's shard, expiring `expire` after the last write. Bulk reads and writes are
//!   one pipeline per shard (cluster: concurrent commands on the multiplexed
//!   connection), never a round trip per user.

use std::time::Duration;

use redis::Cmd;

use super::{Commands, RedisEngine, RedisError, keys, scripts};

/// A user's status fields as stored (Unix seconds; absent = never set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredStatus {
    pub active: Option<i64>,
    pub online: Option<i64>,
    pub state: Option<String>,
}

impl RedisEngine {
    /// Stores (or replaces) a session entry; `expire_at` 0 = kept until removed.
    pub async fn put_session_entry(&self, id: &str, body: &[u8], expire_at: i64) -> Result<(), RedisError> {
        let (entries, expiry) = self.keys.session_entries();
        let mut inv = scripts::SESSION_PUT.prepare_invoke();
        inv.key(entries).key(expiry).arg(id).arg(body).arg(expire_at);
        self.script::<i64>(&self.shards[0], inv).await.map(|_| ())
    }

    pub async fn remove_session_entry(&self, id: &str) -> Result<(), RedisError> {
        let (entries, expiry) = self.keys.session_entries();
        let mut inv = scripts::SESSION_REMOVE.prepare_invoke();
        inv.key(entries).key(expiry).arg(id);
        self.script::<i64>(&self.shards[0], inv).await.map(|_| ())
    }

    /// Drops entries whose expiry is at or before `now`; returns how many.
    pub async fn sweep_session_entries(&self, now: i64) -> Result<i64, RedisError> {
        let (entries, expiry) = self.keys.session_entries();
        let mut inv = scripts::SESSION_SWEEP.prepare_invoke();
        inv.key(entries).key(expiry).arg(now);
        self.script(&self.shards[0], inv).await
    }

    /// Every stored entry body (expired ones the sweep has not dropped yet included).
    pub async fn session_entries(&self) -> Result<Vec<Vec<u8>>, RedisError> {
        let (entries, _) = self.keys.session_entries();
        let cmd = redis::cmd("HVALS").arg(entries).to_owned();
        self.run(&self.shards[0], &cmd).await
    }

    // ------------------------------------------------------------------ user status

    /// Sets `active` (and `state` when given) of each user to `now`.
    pub async fn update_user_status(
        &self,
        users: &[String],
        now: i64,
        state: Option<&str>,
        expire: Duration,
    ) -> Result<(), RedisError> {
        self.write_status(users, expire, |key| {
            let mut set = redis::cmd("HSET");
            set.arg(key).arg("active").arg(now);
            if let Some(s) = state {
                set.arg("state").arg(s);
            }
            vec![set]
        })
        .await
    }

    /// Sets `online` of each user to `now`.
    pub async fn touch_online(&self, users: &[String], now: i64, expire: Duration) -> Result<(), RedisError> {
        self.write_status(users, expire, |key| vec![redis::cmd("HSET").arg(key).arg("online").arg(now).to_owned()])
            .await
    }

    pub async fn delete_user_status(&self, users: &[String]) -> Result<(), RedisError> {
        for (shard, idx) in self.by_shard(users).iter().enumerate() {
            let cmds = idx.iter().map(|i| redis::cmd("DEL").arg(self.keys.user_status(&users[*i])).to_owned());
            self.batch::<i64>(shard, cmds.collect()).await?;
        }
        Ok(())
    }

    /// Each user's stored status, in the order of `users`.
    pub async fn user_statuses(&self, users: &[String]) -> Result<Vec<StoredStatus>, RedisError> {
        let mut out = vec![StoredStatus::default(); users.len()];
        for (shard, idx) in self.by_shard(users).iter().enumerate() {
            let cmds = idx.iter().map(|i| {
                let key = self.keys.user_status(&users[*i]);
                redis::cmd("HMGET").arg(key).arg("active").arg("online").arg("state").to_owned()
            });
            type Row = (Option<i64>, Option<i64>, Option<String>);
            let rows: Vec<Row> = self.batch(shard, cmds.collect()).await?;
            for (i, (active, online, state)) in idx.iter().zip(rows) {
                out[*i] = StoredStatus { active, online, state };
            }
        }
        Ok(out)
    }

    async fn write_status(
        &self,
        users: &[String],
        expire: Duration,
        set: impl Fn(&str) -> Vec<Cmd>,
    ) -> Result<(), RedisError> {
        let ttl = expire.as_secs().max(1);
        for (shard, idx) in self.by_shard(users).iter().enumerate() {
            let mut cmds = Vec::with_capacity(idx.len() * 3);
            for i in idx {
                let key = self.keys.user_status(&users[*i]);
                cmds.extend(set(&key));
                cmds.push(redis::cmd("EXPIRE").arg(&key).arg(ttl).to_owned());
            }
            self.batch::<redis::Value>(shard, cmds).await?;
        }
        Ok(())
    }

    /// Indexes of `users` per shard.
    fn by_shard(&self, users: &[String]) -> Vec<Vec<usize>> {
        let n = self.shards.len();
        let mut out = vec![Vec::new(); n];
        for (i, u) in users.iter().enumerate() {
            out[keys::shard_index(u, n)].push(i);
        }
        out
    }

    /// Runs commands on a shard and returns their replies in order: one pipeline (one
    /// round trip) to a standalone Redis. A cluster routes a pipeline to its first
    /// key's slot only, so there the commands go concurrently over the multiplexed
    /// connection, each to its own slot.
    async fn batch<T: redis::FromRedisValue>(&self, shard: usize, cmds: Vec<Cmd>) -> Result<Vec<T>, RedisError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match self.shards[shard].commands.clone() {
            Commands::Single(mut c) => {
                let mut p = redis::pipe();
                for cmd in cmds {
                    p.add_command(cmd);
                }
                self.in_time(p.query_async(&mut c)).await
            }
            Commands::Cluster(c) => {
                let calls = cmds.into_iter().map(|cmd| {
                    let mut c = c.clone();
                    async move { cmd.query_async::<T>(&mut c).await }
                });
                self.in_time(async { futures_util::future::join_all(calls).await.into_iter().collect() }).await
            }
        }
    }
}
