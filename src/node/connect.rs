//! Connecting: token verification (or anonymous rules), label bounds, the session's
//! creation and registration, and server-side subscriptions from the token's
//! `channels`/`subs` and from the connect request's `subs` (unidirectional clients).

use crate::protocol::Encoding;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::auth::{ConnectToken, TokenError};
use crate::protocol::{
    ConnectRequest, ConnectResult, Disconnect, ErrorCode, ErrorReply, SubscribeRequest, SubscribeResult, one_line,
};

use super::channels::Asker;
use super::subscribe::{Attach, PendingJoin};
use super::{Node, Queue, Session, SubSource, TokenInfo, Transport, now_ms, now_secs, ttl_until};

/// Why a connect failed: an error reply (bidirectional clients may retry, e.g. 109)
/// or a disconnect.
#[derive(Debug, Clone)]
pub enum ConnectError {
    Error(ErrorReply),
    Disconnect(Disconnect),
}

impl From<ErrorCode> for ConnectError {
    fn from(c: ErrorCode) -> Self {
        ConnectError::Error(c.reply())
    }
}

impl ConnectError {
    /// The disconnect a unidirectional client gets (reference §2.2 mapping).
    pub fn into_uni_disconnect(self) -> Disconnect {
        match self {
            ConnectError::Disconnect(d) => d,
            // An application's own code (from a proxy) has no unidirectional form.
            ConnectError::Error(e) => {
                ErrorCode::from_code(e.code).map_or_else(Disconnect::internal, ErrorCode::uni_disconnect)
            }
        }
    }
}

/// One server-side channel to subscribe at connect.
struct Planned {
    channel: String,
    source: SubSource,
    request: SubscribeRequest,
    info: Option<crate::protocol::Raw>,
    presence: Option<bool>,
    join_leave: Option<bool>,
}

impl Node {
    /// Authenticates, registers the session, subscribes its server-side channels and
    /// queues the connect reply built by `reply` — all before any publication for
    /// those channels can be queued.
    pub async fn connect(
        self: &Arc<Self>,
        req: ConnectRequest,
        (transport, encoding): (Transport, Encoding),
        queue: Arc<Queue>,
        forwarded: Vec<(String, String)>,
        reply: impl FnOnce(&ConnectResult) -> Bytes,
    ) -> Result<Arc<Session>, ConnectError> {
        if self.is_shutting_down() {
            return Err(ConnectError::Disconnect(Disconnect::shutdown()));
        }
        let headers =
            crate::proxy::Headers { transport: forwarded, emulated: self.proxies.capture_emulated(&req.headers) };
        let id = uuid::Uuid::new_v4();
        let (token, data, proxied) = if req.token.is_empty() && self.proxies.connect.is_some() {
            let (t, data) = self.connect_proxy(&req, (transport, encoding), &id.to_string(), &headers).await?;
            let proxied = t.is_some();
            (t, data, proxied)
        } else {
            (self.authenticate(&req.token).await?, None, false)
        };
        let planned = self.plan_subscriptions(token.as_ref(), &req, transport)?;
        let mut session = self.new_session(&req, transport, token.as_ref(), queue);
        session.id = id.as_u128();
        session.proxy_headers = headers.shared();
        session.encoding = encoding;
        if proxied {
            session.proxied = true;
            session.token = None;
        }
        let session = Arc::new(session);
        // Revoked or invalidated token, blocked user: one lookup per table.
        self.check_connection(&session.user, session.token.as_ref()).map_err(ConnectError::Disconnect)?;
        if self.config.client.user_connection_limit > 0
            && !session.user.is_empty()
            && self.hub.user_connections(&session.user).len() >= self.config.client.user_connection_limit
        {
            return Err(ConnectError::Disconnect(Disconnect::connection_limit()));
        }
        let streams = self.prepare_planned(&planned).await?;
        if let Err(full) = self.hub.add(session.clone()) {
            // Reported like the token's other label bounds (3500, no reconnect).
            tracing::warn!(max = full.max, "connect refused: distinct label keys at client.labels.max_keys_per_node");
            self.unprepare_planned(&planned, &streams);
            return Err(ConnectError::Disconnect(Disconnect::new(3500, format!("invalid token: {full}"))));
        }
        self.metrics.activity.client_added(session.transport as usize, session.metrics_kind());
        if self.is_shutting_down() {
            // Shutdown started while this connect was in flight and may have missed it.
            session.queue.close(Disconnect::shutdown(), true);
        }
        // A revocation or block applied while this connect was in flight walked the
        // hub before the session was in it.
        if let Err(d) = self.check_connection(&session.user, session.token.as_ref()) {
            session.queue.close(d, true);
        }
        self.touch_online(vec![session.user.clone()]);
        let joins = self.subscribe_planned(&session, planned, streams, data, reply);
        for j in joins {
            self.emit_join_leave(&j.channel, "join", &j.info);
        }
        Ok(session)
    }

    pub(super) async fn authenticate(&self, token: &str) -> Result<Option<ConnectToken>, ConnectError> {
        let c = &self.config.client;
        if token.is_empty() {
            if c.insecure || c.allow_anonymous_connect_without_token {
                return Ok(None);
            }
            return Err(ConnectError::Disconnect(Disconnect::bad_request()));
        }
        let t = match self.verifier.verify_connect(token).await {
            Ok(t) => t,
            Err(TokenError::Expired) => return Err(ErrorCode::TokenExpired.into()),
            Err(TokenError::Invalid(why)) => {
                tracing::info!(reason = %why, "connect with invalid token");
                return Err(ConnectError::Disconnect(Disconnect::invalid_token()));
            }
            Err(TokenError::Labels(why)) => {
                tracing::info!(reason = %why, "connect token labels out of bounds");
                return Err(ConnectError::Disconnect(Disconnect::new(3500, format!("invalid token: {why}"))));
            }
        };
        if t.user.is_empty() && c.disallow_anonymous_connection_tokens {
            return Err(ConnectError::Disconnect(Disconnect::permission_denied()));
        }
        Ok(Some(t))
    }

    /// Builds (without registering) the session a verified token and connect request
    /// describe. `rotor capacity` uses it to populate a hub exactly as connects do.
    pub fn new_session(
        &self,
        req: &ConnectRequest,
        transport: Transport,
        t: Option<&ConnectToken>,
        queue: Arc<Queue>,
    ) -> Session {
        let id = uuid::Uuid::new_v4();
        let labels = t.map(|t| self.hub.shared_labels(&t.labels));
        Session {
            id: id.as_u128(),
            user: t.map(|t| t.user.clone()).unwrap_or_default(),
            transport,
            encoding: Encoding::Json,
            app_name: req.name.clone(),
            app_version: req.version.clone(),
            info: t.and_then(|t| t.info.clone()).map(|i| one_line(Arc::from(i))).into(),
            meta: t.and_then(|t| t.meta.clone()).map(|m| one_line(Arc::from(m))).into(),
            labels: labels.unwrap_or_default(),
            connected_at_ms: now_ms(),
            session_id: if transport.unidirectional() || transport.emulated() {
                uuid::Uuid::new_v4().as_u128()
            } else {
                0
            },
            token: t.map(|t| TokenInfo { uid: t.jti.clone().unwrap_or_default(), issued_at: t.iat.unwrap_or(0) }),
            queue,
            state: parking_lot::Mutex::new(super::MutableState {
                subs: HashMap::new(),
                refreshed: None,
                expire_at: t.and_then(|t| t.expire_at).map(|e| e.min(now_secs() + 365 * 24 * 3600)),
            }),
            proxy_headers: crate::proxy::Headers::default().shared(),
            proxied: false,
        }
    }

    /// Server-side channels: token `subs` (or `channels`), then, for unidirectional
    /// clients, channels from the request's `subs` they may subscribe to themselves.
    fn plan_subscriptions(
        &self,
        t: Option<&ConnectToken>,
        req: &ConnectRequest,
        transport: Transport,
    ) -> Result<Vec<Planned>, ConnectError> {
        let mut out = Vec::new();
        if let Some(t) = t {
            self.plan_token_channels(t, req, &mut out)?;
        }
        if transport.unidirectional() {
            self.plan_requested_channels(t, req, &mut out)?;
        }
        if out.len() > self.config.client.channel_limit {
            return Err(ConnectError::Disconnect(Disconnect::channel_limit()));
        }
        Ok(out)
    }

    fn plan_token_channels(
        &self,
        t: &ConnectToken,
        req: &ConnectRequest,
        out: &mut Vec<Planned>,
    ) -> Result<(), ConnectError> {
        let recover = |ch: &str| req.subs.get(ch).cloned().unwrap_or_default();
        if !t.subs.is_empty() {
            for (ch, opts) in &t.subs {
                self.channels.resolve(ch)?;
                out.push(Planned {
                    channel: ch.clone(),
                    source: SubSource::Token,
                    request: recover(ch),
                    info: opts.info.clone().map(|i| one_line(Arc::from(i))),
                    presence: opts.overrides.presence,
                    join_leave: opts.overrides.join_leave,
                });
            }
        } else {
            for ch in &t.channels {
                self.channels.resolve(ch)?;
                let request = recover(ch);
                out.push(Planned {
                    channel: ch.clone(),
                    source: SubSource::Token,
                    request,
                    info: None,
                    presence: None,
                    join_leave: None,
                });
            }
        }
        Ok(())
    }

    fn plan_requested_channels(
        &self,
        t: Option<&ConnectToken>,
        req: &ConnectRequest,
        out: &mut Vec<Planned>,
    ) -> Result<(), ConnectError> {
        let user = t.map_or("", |t| t.user.as_str());
        for (ch, sub) in &req.subs {
            if out.iter().any(|p| &p.channel == ch) {
                continue;
            }
            let name = match self.channels.resolve(ch) {
                Ok(n) => n,
                Err(ErrorCode::UnknownChannel) => return Err(ConnectError::Disconnect(Disconnect::bad_request())),
                Err(_) => continue,
            };
            let asker = Asker { user, subscribed: false, insecure: self.config.client.insecure };
            if asker.may_subscribe(&name) {
                let request = SubscribeRequest { channel: ch.clone(), ..sub.clone() };
                out.push(Planned {
                    channel: ch.clone(),
                    source: SubSource::ConnectRequest,
                    request,
                    info: None,
                    presence: None,
                    join_leave: None,
                });
            }
        }
        Ok(())
    }

    /// The waiting part of each planned subscription (see `prepare`); on error what
    /// was taken is given back and the connect fails with error 100.
    async fn prepare_planned(&self, planned: &[Planned]) -> Result<Vec<Option<SubscribeResult>>, ConnectError> {
        let mut out = Vec::with_capacity(planned.len());
        for p in planned {
            let Ok(name) = self.channels.resolve(&p.channel) else {
                out.push(None);
                continue;
            };
            match self.prepare(&p.channel, &name, &p.request).await {
                Ok(r) => out.push(Some(r)),
                Err(e) => {
                    for (p, r) in planned.iter().zip(&out) {
                        if r.is_some() {
                            self.unprepare(&p.channel);
                        }
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(out)
    }

    /// Gives back what `prepare_planned` took when the connect fails after it.
    fn unprepare_planned(&self, planned: &[Planned], streams: &[Option<SubscribeResult>]) {
        for (p, r) in planned.iter().zip(streams) {
            if r.is_some() {
                self.unprepare(&p.channel);
            }
        }
    }

    fn subscribe_planned(
        &self,
        s: &Arc<Session>,
        planned: Vec<Planned>,
        streams: Vec<Option<SubscribeResult>>,
        data: Option<crate::protocol::Raw>,
        reply: impl FnOnce(&ConnectResult) -> Bytes,
    ) -> Vec<PendingJoin> {
        let mut result = self.connect_result(s);
        result.data = data;
        let mut joins = Vec::new();
        let mut q = s.queue.hold();
        for (p, stream) in planned.iter().zip(streams) {
            let Ok(name) = self.channels.resolve(&p.channel) else { continue };
            let Some(stream) = stream else { continue };
            let attach = Attach {
                tags_filter: None,
                source: p.source,
                request: &p.request,
                token: None,
                expire_at: None,
                chan_info: p.info.clone(),
                presence: p.presence,
                join_leave: p.join_leave,
            };
            let (r, join) = self.attach(s, &p.channel, &name, attach, stream);
            result.subs.insert(p.channel.clone(), r);
            joins.extend(join);
        }
        q.push(reply(&result));
        drop(q);
        s.queue.wake();
        joins
    }

    fn connect_result(&self, s: &Session) -> ConnectResult {
        let transport = s.transport;
        let c = &self.config.client;
        let mut r = ConnectResult {
            client: s.client().to_string(),
            version: super::VERSION.to_string(),
            ping: c.ping_interval.std().as_secs() as u32,
            pong: !transport.unidirectional(),
            ..Default::default()
        };
        r.session = s.session().map(|id| id.to_string()).unwrap_or_default();
        if transport.emulated() {
            r.node = self.uid.clone();
        }
        // With the refresh proxy the server extends the connection itself: the client
        // is not told to refresh.
        let server_refresh = s.proxied && self.proxies.refresh.is_some();
        if let Some(exp) = s.state.lock().expire_at.filter(|_| !server_refresh) {
            r.expires = true;
            r.ttl = ttl_until(exp);
        }
        if c.connect_include_server_time {
            r.time = Some(now_ms());
        }
        r
    }

    /// Removes a session from everything: hub, channels, presence (leave pushes).
    pub fn remove_session(&self, s: &Session) {
        if self.hub.remove(s.id).is_none() {
            return;
        }
        self.metrics.activity.client_removed(s.transport as usize, s.metrics_kind());
        let channels: Vec<String> = s.state.lock().subs.keys().cloned().collect();
        for ch in channels {
            self.detach(s, &ch);
        }
    }
}
