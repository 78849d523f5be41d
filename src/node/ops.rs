//! Server-initiated operations on live connections, used by the server API:
//! selecting targets (a user's connections, optionally one client or session) and
//! subscribing, unsubscribing, disconnecting and refreshing them. `user: ""` means
//! anonymous connections, as in Centrifugo; nothing here acts fleet-wide.

use std::sync::Arc;

use crate::protocol::codes::unsubscribe;
use crate::protocol::{Disconnect, ErrorCode, Raw, RefreshPush, StreamPosition, SubscribeRequest};

use super::subscribe::Attach;
use super::{Node, Session, SubSource, ttl_until};

/// Which connections an operation applies to.
#[derive(Debug, Default, Clone)]
pub struct Target {
    pub user: String,
    /// Only this client ID, when non-empty.
    pub client: String,
    /// Only this session ID, when non-empty.
    pub session: String,
}

/// API `subscribe` parameters beyond the target.
#[derive(Debug, Default, Clone)]
pub struct ServerSubscribe {
    pub channel: String,
    pub info: Option<Raw>,
    pub data: Option<Raw>,
    pub expire_at: Option<i64>,
    pub recover_since: Option<StreamPosition>,
    pub presence: Option<bool>,
    pub join_leave: Option<bool>,
    pub force_recovery: Option<bool>,
    pub force_positioning: Option<bool>,
}

impl Node {
    /// The target user's connections (from the per-user index), narrowed.
    pub fn targets(&self, t: &Target) -> Vec<Arc<Session>> {
        let mut conns = self.hub.user_connections(&t.user);
        conns.retain(|s| {
            (t.client.is_empty() || s.client() == t.client)
                && (t.session.is_empty() || s.session().is_some_and(|id| id == t.session))
        });
        conns
    }

    /// Adds a server-side subscription to each target; each gets a `subscribe` push.
    pub async fn subscribe_sessions(&self, sessions: &[Arc<Session>], p: &ServerSubscribe) -> Result<(), ErrorCode> {
        let name = self.channels.resolve(&p.channel)?;
        let recover = p.recover_since.is_some();
        let since = p.recover_since.clone().unwrap_or_default();
        let request = SubscribeRequest {
            channel: p.channel.clone(),
            recover,
            recoverable: recover || p.force_recovery.unwrap_or(false),
            positioned: p.force_positioning.unwrap_or(false),
            epoch: since.epoch,
            offset: since.offset,
            ..Default::default()
        };
        for s in sessions {
            if s.is_subscribed(&p.channel) {
                continue;
            }
            let attach = Attach {
                tags_filter: None,
                source: SubSource::Api,
                request: &request,
                token: None,
                expire_at: p.expire_at,
                chan_info: p.info.clone(),
                presence: p.presence,
                join_leave: p.join_leave,
            };
            let stream = self.prepare(&p.channel, &name, &request).await?;
            if s.is_subscribed(&p.channel) {
                self.unprepare(&p.channel);
                continue;
            }
            let mut q = s.queue.hold();
            let (mut result, join) = self.attach(s, &p.channel, &name, attach, stream);
            result.data = p.data.clone();
            q.push(s.encoding.push(s.uni(), &p.channel, "subscribe", &result));
            drop(q);
            s.queue.wake();
            if let Some(j) = join {
                self.emit_join_leave(&j.channel, "join", &j.info);
            }
        }
        Ok(())
    }

    /// Unsubscribes targets from `channel` (all channels when empty) with push 2000.
    pub fn unsubscribe_sessions(&self, sessions: &[Arc<Session>], channel: &str) {
        for s in sessions {
            let channels: Vec<String> = if channel.is_empty() {
                s.state.lock().subs.keys().cloned().collect()
            } else {
                vec![channel.to_string()]
            };
            for ch in channels {
                self.unsubscribe_session(s, &ch, unsubscribe::SERVER);
            }
        }
    }

    /// Disconnects targets except whitelisted client IDs.
    pub fn disconnect_sessions(&self, sessions: &[Arc<Session>], d: &Disconnect, whitelist: &[String]) {
        for s in sessions.iter().filter(|s| !whitelist.iter().any(|w| s.client() == *w)) {
            s.queue.close(d.clone(), true);
        }
    }

    /// `expired` disconnects with 3005; otherwise sets a new expiry (0/None = never)
    /// and pushes `refresh` with the new ttl.
    pub fn refresh_sessions(&self, sessions: &[Arc<Session>], expired: bool, expire_at: Option<i64>) {
        for s in sessions {
            if expired {
                s.queue.close(Disconnect::expired(), true);
                continue;
            }
            let at = expire_at.filter(|e| *e > 0);
            s.state.lock().expire_at = at;
            let push = match at {
                Some(e) => RefreshPush { expires: true, ttl: ttl_until(e) },
                None => RefreshPush { expires: false, ttl: 0 },
            };
            s.push(s.encoding.push(s.uni(), "", "refresh", &push));
        }
    }
}
