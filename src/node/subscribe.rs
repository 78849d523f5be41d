//! Subscriptions: attaching a session to a channel (recovery, positioning, presence,
//! join) and detaching it (presence, leave), plus the client `subscribe`,
//! `unsubscribe` and `sub_refresh` commands with their permission and token rules.

use std::sync::Arc;

use crate::auth::{SubscribeToken, TokenError};
use crate::engine::HistoryQuery;
use crate::filter::{FilterNode, Limits, NoSymbols, Program, compile};
use crate::metrics::Action;
use crate::protocol::codes::unsubscribe;
use crate::protocol::{
    ClientInfo, Disconnect, ErrorCode, Raw, SubRefreshRequest, SubscribeRequest, SubscribeResult, UnsubscribePush,
};

use super::channels::{Asker, ChannelName};
use super::conn::Fail;
use super::{Node, Session, SubSource, SubState, Subscriber, TokenInfo, now_secs, ttl_until};

/// How a subscription is being made.
pub(super) struct Attach<'a> {
    pub source: SubSource,
    pub request: &'a SubscribeRequest,
    pub token: Option<TokenInfo>,
    pub expire_at: Option<i64>,
    pub chan_info: Option<Raw>,
    /// Token/API overrides of the namespace's presence and join/leave options.
    pub presence: Option<bool>,
    pub join_leave: Option<bool>,
    /// Compiled `tf` of a client subscription.
    pub tags_filter: Option<Program>,
}

/// Decodes and compiles a client's `tf` (Centrifugo's FilterNode); the error names the
/// offending node's JSON path. Publication tags are plain strings, so the program
/// compares strings (no interner).
fn compile_tags_filter(tf: &Raw) -> Result<Program, String> {
    let mut de = serde_json::Deserializer::from_str(tf.get());
    let node: FilterNode =
        serde_path_to_error::deserialize(&mut de).map_err(|e| format!("tf.{}: {}", e.path(), e.inner()))?;
    compile(&node, "tf", &Limits::default(), &NoSymbols).map_err(|e| e.to_string())
}

/// A join to emit once the caller released the session's queue.
pub(super) struct PendingJoin {
    pub channel: String,
    pub info: ClientInfo,
}

impl Node {
    /// Registers a session in a channel and builds its SubscribeResult. The caller
    /// holds the session's queue (so no publication overtakes the reply) and emits the
    /// returned join after releasing it.
    /// `stream` is the result of [`Node::prepare`] for this subscription.
    pub(super) fn attach(
        &self,
        s: &Arc<Session>,
        channel: &str,
        name: &ChannelName<'_>,
        a: Attach<'_>,
        stream: SubscribeResult,
    ) -> (SubscribeResult, Option<PendingJoin>) {
        let o = name.options;
        let presence = a.presence.unwrap_or(o.presence);
        let join_leave = a.join_leave.unwrap_or(o.join_leave);
        let push_join_leave = join_leave && (o.force_push_join_leave || a.request.join_leave);
        let sub = Subscriber { session: s.clone(), push_join_leave, tags_filter: a.tags_filter.clone() };
        let first = self.hub.channels().add(channel, s.id, sub);
        self.metrics.activity.subscription_added(!s.app_name.is_empty(), first);
        let state = SubState {
            source: a.source,
            token: a.token,
            expire_at: a.expire_at,
            presence,
            join_leave,
            chan_info: a.chan_info.clone(),
        };
        s.state.lock().subs.insert(channel.to_string(), state);
        let info = s.client_info(a.chan_info);
        if presence {
            self.presence_add(channel, info.clone());
        }
        let mut result = stream;
        if let Some(tf) = &a.tags_filter {
            // Recovered publications the filter rejects are left out; the stream
            // position in the result still covers them.
            result.publications.retain(|p| tf.matches_map(&p.tags));
        }
        // A subscription the sub_refresh proxy extends is not the client's to refresh.
        let client_refresh = a.source == SubSource::Client && !self.server_refreshes_sub(channel);
        if let Some(exp) = a.expire_at.filter(|_| client_refresh) {
            result.expires = true;
            result.ttl = ttl_until(exp);
        }
        let join = join_leave.then(|| PendingJoin { channel: channel.to_string(), info });
        (result, join)
    }

    /// The part of a subscription that may wait, done before the session's queue is
    /// held: with the Redis engine, makes this node listen to the channel's PUB/SUB
    /// (one interest, released by `detach`, or at once on error); then reads the
    /// stream position and recovers publications. Redis failing is error 100.
    pub(super) async fn prepare(
        &self,
        channel: &str,
        name: &ChannelName<'_>,
        req: &SubscribeRequest,
    ) -> Result<SubscribeResult, ErrorCode> {
        if let Some(f) = &self.fleet {
            f.retain_channel(channel).await.map_err(super::internal)?;
        }
        let r = self.stream_result(channel, name, req).await;
        if r.is_err()
            && let Some(f) = &self.fleet
        {
            f.release_channel(channel);
        }
        r
    }

    /// Gives back what `prepare` took when the subscription is not made after all.
    pub(super) fn unprepare(&self, channel: &str) {
        if let Some(f) = &self.fleet {
            f.release_channel(channel);
        }
    }

    /// Positioning and recovery part of a SubscribeResult.
    async fn stream_result(
        &self,
        channel: &str,
        name: &ChannelName<'_>,
        req: &SubscribeRequest,
    ) -> Result<SubscribeResult, ErrorCode> {
        let o = name.options;
        let mut r = SubscribeResult::default();
        if !o.history_enabled() {
            return Ok(r);
        }
        let recoverable = o.force_recovery || (o.allow_recovery && (req.recoverable || req.recover));
        let positioned = recoverable || o.force_positioning || (o.allow_positioning && req.positioned);
        if !positioned {
            return Ok(r);
        }
        r.positioned = true;
        r.recoverable = recoverable;
        let meta_ttl = self.channels.history_meta_ttl();
        if recoverable && req.recover {
            self.metrics.activity.action(Action::HistoryRecover);
            r.was_recovering = true;
            let limit = self.config.client.recovery_max_publication_limit;
            let since = crate::protocol::StreamPosition { offset: req.offset, epoch: req.epoch.clone() };
            let q = HistoryQuery { limit: Some(limit + 1), since: Some(since), reverse: false };
            let read = self.engine.history(channel, &q, meta_ttl).await.map_err(super::internal)?;
            if let Ok(h) = read
                && h.publications.len() <= limit
            {
                r.recovered = true;
                r.publications = h.publications;
                r.offset = req.offset;
                r.epoch = h.position.epoch;
                return Ok(r);
            }
        }
        let pos = self.engine.stream_position(channel, meta_ttl).await.map_err(super::internal)?;
        r.offset = pos.offset;
        r.epoch = pos.epoch;
        Ok(r)
    }

    /// Removes a session from a channel; emits leave when the channel has join/leave.
    pub(super) fn detach(&self, s: &Session, channel: &str) -> Option<SubState> {
        let state = s.state.lock().subs.remove(channel)?;
        let last = self.hub.channels().remove(channel, s.id);
        self.metrics.activity.subscription_removed(!s.app_name.is_empty(), last);
        if let Some(f) = &self.fleet {
            f.release_channel(channel);
        }
        if state.presence {
            self.presence_remove(channel, &s.client());
        }
        if state.join_leave {
            self.emit_join_leave(channel, "leave", &s.client_info(state.chan_info.clone()));
        }
        Some(state)
    }

    /// Server-initiated unsubscribe: detach and tell the client with an unsubscribe push.
    pub fn unsubscribe_session(&self, s: &Session, channel: &str, code: (u32, &str)) -> bool {
        if self.detach(s, channel).is_none() {
            return false;
        }
        let push = UnsubscribePush { code: code.0, reason: code.1.to_string() };
        s.push(s.encoding.push(s.uni(), channel, "unsubscribe", &push));
        true
    }

    /// The client `subscribe` command; pushes its own reply (see `attach`).
    pub(super) async fn client_subscribe(&self, s: &Arc<Session>, id: u32, req: SubscribeRequest) -> Result<(), Fail> {
        let name = self.channels.resolve(&req.channel)?;
        let tags_filter = match &req.tf {
            None => None,
            Some(_) if !name.options.allow_tags_filter => return Err(ErrorCode::BadRequest.into()),
            Some(tf) => Some(compile_tags_filter(tf).map_err(|why| {
                tracing::debug!(channel = %req.channel, %why, "invalid tags filter");
                ErrorCode::BadRequest
            })?),
        };
        let token = self.check_subscribe_permission(s, &req, &name).await?;
        {
            let st = s.state.lock();
            if st.subs.contains_key(&req.channel) {
                return Err(ErrorCode::AlreadySubscribed.into());
            }
            if st.subs.len() >= self.config.client.channel_limit {
                return Err(ErrorCode::LimitExceeded.into());
            }
        }
        let sub_data = token.as_ref().and_then(|t| t.data.clone()).map(|d| crate::protocol::one_line(Arc::from(d)));
        let attach = match &token {
            Some(t) => Attach {
                source: SubSource::Client,
                request: &req,
                token: Some(TokenInfo { uid: t.jti.clone().unwrap_or_default(), issued_at: t.iat.unwrap_or(0) }),
                expire_at: t.expire_at,
                chan_info: t.info.clone().map(|i| crate::protocol::one_line(Arc::from(i))),
                presence: t.overrides.presence,
                join_leave: t.overrides.join_leave,
                tags_filter,
            },
            None => Attach {
                source: SubSource::Client,
                request: &req,
                token: None,
                expire_at: None,
                chan_info: None,
                presence: None,
                join_leave: None,
                tags_filter,
            },
        };
        let stream = self.prepare(&req.channel, &name, &req).await?;
        if s.is_subscribed(&req.channel) {
            self.unprepare(&req.channel);
            return Err(ErrorCode::AlreadySubscribed.into());
        }
        let mut q = s.queue.hold();
        let (mut result, join) = self.attach(s, &req.channel, &name, attach, stream);
        result.data = sub_data;
        let reply = s.encoding.reply(id, "subscribe", &result);
        self.metrics.sent(s.transport as usize, crate::metrics::Frame::Subscribe, reply.len());
        q.push(reply);
        drop(q);
        s.queue.wake();
        if let Some(j) = join {
            self.emit_join_leave(&j.channel, "join", &j.info);
        }
        Ok(())
    }

    /// Token or channel rules; returns the verified subscription token if one was given.
    async fn check_subscribe_permission(
        &self,
        s: &Session,
        req: &SubscribeRequest,
        name: &ChannelName<'_>,
    ) -> Result<Option<SubscribeToken>, Fail> {
        if !req.token.is_empty() {
            let t = self.verify_sub_token(s, &req.channel, &req.token).await?;
            return Ok(Some(t));
        }
        if name.private {
            return Err(ErrorCode::PermissionDenied.into());
        }
        // As in Centrifugo: private channels need a token, user-limited channels are
        // decided by their user list, everything else in the namespace by the proxy.
        let user_limited = name.options.allow_user_limited_channels && !name.allowed_users.is_empty();
        if name.options.subscribe_proxy_enabled && !user_limited {
            return self.subscribe_proxy(s, req, &name.options.subscribe_proxy_name).await.map(Some);
        }
        let asker = Asker { user: &s.user, subscribed: false, insecure: self.config.client.insecure };
        if !asker.may_subscribe(name) {
            return Err(ErrorCode::PermissionDenied.into());
        }
        Ok(None)
    }

    async fn verify_sub_token(&self, s: &Session, channel: &str, token: &str) -> Result<SubscribeToken, Fail> {
        let t = match self.verifier.verify_subscribe(token).await {
            Ok(t) => t,
            Err(TokenError::Expired) => return Err(ErrorCode::TokenExpired.into()),
            Err(_) => return Err(ErrorCode::PermissionDenied.into()),
        };
        let client_mismatch = t.client.as_deref().is_some_and(|c| !c.is_empty() && *s.client() != *c);
        if t.channel != channel || t.user != s.user || client_mismatch {
            return Err(Fail::Disconnect(Disconnect::invalid_token()));
        }
        let info = TokenInfo { uid: t.jti.clone().unwrap_or_default(), issued_at: t.iat.unwrap_or(0) };
        self.check_subscription(&s.user, channel, &info)?;
        Ok(t)
    }

    /// The client `unsubscribe` command: server-side subscriptions cannot be dropped
    /// by the client (Centrifugo ignores that too); unknown channels are a no-op.
    pub(super) fn client_unsubscribe(&self, s: &Session, channel: &str) {
        let client_side = s.state.lock().subs.get(channel).is_some_and(|sub| !sub.server_side());
        if client_side {
            self.detach(s, channel);
        }
    }

    /// The client `sub_refresh` command.
    pub(super) async fn client_sub_refresh(&self, s: &Session, req: SubRefreshRequest) -> Result<(u32, bool), Fail> {
        if req.token.is_empty() || req.channel.is_empty() {
            return Err(ErrorCode::BadRequest.into());
        }
        if !s.is_subscribed(&req.channel) {
            return Err(ErrorCode::PermissionDenied.into());
        }
        let t = self.verify_sub_token(s, &req.channel, &req.token).await?;
        let mut st = s.state.lock();
        let sub = st.subs.get_mut(&req.channel).ok_or(ErrorCode::PermissionDenied)?;
        sub.expire_at = t.expire_at;
        sub.token = Some(TokenInfo { uid: t.jti.unwrap_or_default(), issued_at: t.iat.unwrap_or(0) });
        Ok(match t.expire_at {
            Some(exp) => (ttl_until(exp), true),
            None => (0, false),
        })
    }

    /// Drops client-side subscriptions whose token expired beyond the grace delay
    /// (unsubscribe 2501); a server-side one disconnects the client (3006).
    pub(super) fn expire_subscriptions(&self, s: &Session) -> Result<(), Disconnect> {
        let grace = self.config.client.expired_sub_close_delay.std().as_secs() as i64;
        let now = now_secs();
        let expired: Vec<(String, bool)> = s
            .state
            .lock()
            .subs
            .iter()
            .filter(|(_, sub)| sub.expire_at.is_some_and(|e| e.saturating_add(grace) < now))
            .filter(|(ch, _)| !self.server_refreshes_sub(ch))
            .map(|(ch, sub)| (ch.clone(), sub.server_side()))
            .collect();
        for (ch, server_side) in expired {
            if server_side {
                return Err(Disconnect::subscription_expired());
            }
            self.unsubscribe_session(s, &ch, unsubscribe::EXPIRED);
        }
        Ok(())
    }
}
