//! User status, as in Centrifugo PRO: `active` is the last time the application (API
//! `update_user_status`) or the user's client (RPC `update_user_status`) said the user
//! was active, `online` the last time the user had a connection (kept by the server:
//! at connect and every `user_status.online_interval` for every connected user), and
//! `state` an application-defined word. A status goes away `user_status.expire_interval`
//! after its last update.
//!
//! With the Redis engine statuses live in Redis (one hash per user, bulk reads in one
//! pipeline per shard) and every node keeps `online` for its own users; with the
//! memory engine they live in this process and a restart forgets them.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::engine::EngineError;
use crate::engine::redis::StoredStatus;

use super::{Node, now_secs};

/// One user's status in a `get_user_status` result (absent fields were never set or
/// expired).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserStatus {
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// Statuses of the memory engine: the stored fields and when they were last written.
#[derive(Default)]
pub(super) struct MemoryStatuses {
    map: Mutex<HashMap<String, (StoredStatus, i64)>>,
}

impl MemoryStatuses {
    fn write(&self, users: &[String], now: i64, f: impl Fn(&mut StoredStatus)) {
        let mut m = self.map.lock();
        for u in users {
            let e = m.entry(u.clone()).or_default();
            f(&mut e.0);
            e.1 = now;
        }
    }

    fn read(&self, users: &[String], now: i64, expire: i64) -> Vec<StoredStatus> {
        let m = self.map.lock();
        users
            .iter()
            .map(|u| {
                m.get(u).filter(|(_, at)| at.saturating_add(expire) > now).map(|(s, _)| s.clone()).unwrap_or_default()
            })
            .collect()
    }

    fn delete(&self, users: &[String]) {
        let mut m = self.map.lock();
        for u in users {
            m.remove(u);
        }
    }

    /// Drops statuses not updated for `expire` seconds.
    fn sweep(&self, now: i64, expire: i64) {
        self.map.lock().retain(|_, (_, at)| at.saturating_add(expire) > now);
    }
}

impl Node {
    fn status_expire(&self) -> std::time::Duration {
        self.config.user_status.expire_interval.std()
    }

    /// Sets `active` = now (and `state`, when given) for each user.
    pub async fn update_user_status(&self, users: &[String], state: Option<&str>) -> Result<(), EngineError> {
        let now = now_secs();
        match self.engine.redis() {
            Some(r) => r.update_user_status(users, now, state, self.status_expire()).await,
            None => {
                self.statuses.write(users, now, |s| {
                    s.active = Some(now);
                    if let Some(st) = state {
                        s.state = Some(st.to_string());
                    }
                });
                Ok(())
            }
        }
    }

    /// Each user's status, in the order asked. A user connected to this node is
    /// online now, whatever was last recorded.
    pub async fn user_statuses(&self, users: &[String]) -> Result<Vec<UserStatus>, EngineError> {
        let now = now_secs();
        let stored = match self.engine.redis() {
            Some(r) => r.user_statuses(users).await?,
            None => self.statuses.read(users, now, self.status_expire().as_secs() as i64),
        };
        Ok(users
            .iter()
            .zip(stored)
            .map(|(user, s)| {
                let here = !user.is_empty() && !self.hub.user_connections(user).is_empty();
                UserStatus {
                    user: user.clone(),
                    active: s.active,
                    online: if here { Some(now) } else { s.online },
                    state: s.state.filter(|s| !s.is_empty()),
                }
            })
            .collect())
    }

    pub async fn delete_user_status(&self, users: &[String]) -> Result<(), EngineError> {
        match self.engine.redis() {
            Some(r) => r.delete_user_status(users).await,
            None => {
                self.statuses.delete(users);
                Ok(())
            }
        }
    }

    /// Records `online` = now for users (in the background with Redis).
    pub(super) fn touch_online(&self, users: Vec<String>) {
        let users: Vec<String> = users.into_iter().filter(|u| !u.is_empty()).collect();
        if users.is_empty() {
            return;
        }
        let now = now_secs();
        match self.engine.redis() {
            Some(r) => {
                let (r, expire) = (r.clone(), self.status_expire());
                tokio::spawn(async move {
                    if let Err(e) = r.touch_online(&users, now, expire).await {
                        tracing::debug!("online status not recorded: {e}");
                    }
                });
            }
            None => self.statuses.write(&users, now, |s| s.online = Some(now)),
        }
    }

    /// Every user connected to this node, once each.
    fn local_users(&self) -> Vec<String> {
        let mut users: Vec<String> = self.hub.all().iter().map(|s| s.user.clone()).collect();
        users.sort_unstable();
        users.dedup();
        users
    }
}

/// Records `online` for this node's users every `user_status.online_interval` and
/// drops expired memory statuses, for as long as the node lives.
pub(super) fn spawn_online(node: &Arc<Node>) {
    let weak = Arc::downgrade(node);
    let every = node.config.user_status.online_interval.std();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else { return };
            node.touch_online(node.local_users());
            node.statuses.sweep(now_secs(), node.status_expire().as_secs() as i64);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_statuses_expire_and_delete() {
        let m = MemoryStatuses::default();
        let users = vec!["a".to_string(), "b".to_string()];
        m.write(&users[..1], 100, |s| s.active = Some(100));
        let r = m.read(&users, 105, 10);
        assert_eq!(r[0].active, Some(100));
        assert_eq!(r[1], StoredStatus::default());
        assert_eq!(m.read(&users, 110, 10)[0], StoredStatus::default(), "expired at last write + expire");
        m.sweep(110, 10);
        assert!(m.map.lock().is_empty());
        m.write(&users, 100, |s| s.online = Some(100));
        m.delete(&users[1..]);
        assert_eq!(m.read(&users, 100, 10)[1], StoredStatus::default());
        assert_eq!(m.read(&users, 100, 10)[0].online, Some(100));
    }
}
