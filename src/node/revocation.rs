//! Making revocations, invalidations and blocks stick (the tables are `sessions.rs`):
//! storing an entry (Redis engine: in Redis, then broadcast on the fleet's control
//! channel so every node applies it), enforcing it on live connections here, the
//! checks connect/refresh/subscribe run, and the background work — sweeping expired
//! entries, loading every stored entry at start and after a lost control channel.
//!
//! With the memory engine entries live in this process only and a restart forgets
//! them; with Redis they survive restarts and reach nodes that start later.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::EngineError;
use crate::protocol::codes::unsubscribe;
use crate::protocol::{Disconnect, ErrorCode};

use super::sessions::{Entry, Refusal};
use super::{Node, Session, TokenInfo, now_secs};

/// How often expired entries are dropped from this node's tables.
const SWEEP_LOCAL: Duration = Duration::from_secs(1);
/// How often a node asks Redis to drop expired entries (any node may; it is idempotent).
const SWEEP_REDIS: Duration = Duration::from_secs(10);

impl Refusal {
    /// The disconnect a connection gets for it (non-reconnecting codes).
    pub fn disconnect(self) -> Disconnect {
        match self {
            Refusal::TokenRevoked => Disconnect::token_revoked(),
            Refusal::UserBlocked => Disconnect::user_blocked(),
        }
    }
}

impl Node {
    /// Records an entry for the whole fleet and enforces it on live connections: with
    /// Redis it is stored first (an unreachable Redis is an error and nothing changes),
    /// then applied here and broadcast to every other node.
    pub async fn add_session_entry(&self, e: Entry) -> Result<(), EngineError> {
        if let Some(r) = self.engine.redis() {
            let id = e.id();
            match &e {
                Entry::Unblocked { .. } => r.remove_session_entry(&id).await?,
                _ => r.put_session_entry(&id, &crate::json::to_vec(&e), e.expire_at()).await?,
            }
        }
        self.apply_session_entry(&e);
        if let Some(f) = &self.fleet {
            f.broadcast_session_entry(&self.uid, &e).await?;
        }
        Ok(())
    }

    /// Applies an entry to this node's tables and its live connections.
    pub(super) fn apply_session_entry(&self, e: &Entry) {
        self.sessions.apply(e, now_secs());
        self.enforce(e);
    }

    /// Disconnects (or unsubscribes) this node's connections an entry refuses.
    fn enforce(&self, e: &Entry) {
        match e {
            Entry::Revoked { uid, .. } if !uid.is_empty() => {
                for s in self.hub.all() {
                    if current_token(&s).is_some_and(|t| &t.uid == uid) {
                        s.queue.close(Disconnect::token_revoked(), true);
                        continue;
                    }
                    self.unsubscribe_where(&s, |_, t| &t.uid == uid);
                }
            }
            Entry::Invalidated { user, channel, issued_before, .. } => {
                for s in self.hub.user_connections(user) {
                    if channel.is_empty() {
                        if current_token(&s).is_some_and(|t| t.issued_at < *issued_before) {
                            s.queue.close(Disconnect::token_revoked(), true);
                        }
                    } else {
                        self.unsubscribe_where(&s, |ch, t| ch == channel && t.issued_at < *issued_before);
                    }
                }
            }
            Entry::Blocked { user, .. } => {
                for s in self.hub.user_connections(user) {
                    s.queue.close(Disconnect::user_blocked(), true);
                }
            }
            Entry::Revoked { .. } | Entry::Unblocked { .. } => {}
        }
    }

    /// Unsubscribes client subscriptions made with a token `pred` refuses.
    fn unsubscribe_where(&self, s: &Session, pred: impl Fn(&str, &TokenInfo) -> bool) {
        let refused: Vec<String> = s
            .state
            .lock()
            .subs
            .iter()
            .filter(|(ch, sub)| sub.token.as_ref().is_some_and(|t| pred(ch, t)))
            .map(|(ch, _)| ch.clone())
            .collect();
        for ch in refused {
            self.unsubscribe_session(s, &ch, unsubscribe::TOKEN_REVOKED);
        }
    }

    /// The connect/refresh check for a user and its connection token.
    pub(super) fn check_connection(&self, user: &str, token: Option<&TokenInfo>) -> Result<(), Disconnect> {
        let token = token.map(|t| (t.uid.as_str(), t.issued_at));
        self.sessions.check_connection(user, token, now_secs()).map_err(Refusal::disconnect)
    }

    /// The subscribe/sub_refresh check for a subscription token: error 103.
    pub(super) fn check_subscription(&self, user: &str, channel: &str, t: &TokenInfo) -> Result<(), ErrorCode> {
        self.sessions
            .check_subscription(user, channel, &t.uid, t.issued_at, now_secs())
            .map_err(|_| ErrorCode::PermissionDenied)
    }

    /// Replaces this node's tables with every entry stored in Redis (no-op in memory
    /// mode); returns how many were loaded. Live connections are checked against them.
    pub async fn load_session_entries(&self) -> Result<usize, EngineError> {
        let Some(r) = self.engine.redis() else { return Ok(0) };
        let bodies = r.session_entries().await?;
        let entries: Vec<Entry> = bodies
            .iter()
            .filter_map(|b| match serde_json::from_slice(b) {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::warn!("undecodable session entry in Redis: {e}");
                    None
                }
            })
            .collect();
        self.sessions.replace_all(&entries, now_secs());
        for e in &entries {
            self.enforce(e);
        }
        Ok(entries.len())
    }
}

/// The token a connection holds now: the last one it refreshed with, else the one
/// it connected with.
fn current_token(s: &Session) -> Option<TokenInfo> {
    s.state.lock().refreshed.clone().or_else(|| s.token.clone())
}

/// Sweeps expired entries (here every second; in Redis every ten) for as long as the
/// node lives.
pub(super) fn spawn_sweeps(node: &Arc<Node>) {
    let weak = Arc::downgrade(node);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_LOCAL);
        let mut redis_due = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else { return };
            node.sessions.sweep(now_secs());
            if let Some(r) = node.engine.redis()
                && tokio::time::Instant::now() >= redis_due
            {
                redis_due = tokio::time::Instant::now() + SWEEP_REDIS;
                if let Err(e) = r.sweep_session_entries(now_secs()).await {
                    tracing::debug!("session entries not swept: {e}");
                }
            }
        }
    });
}
