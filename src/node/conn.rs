//! One client connection's protocol state machine, independent of the transport:
//! frame → commands in order, the connect handshake, dispatch of every client
//! command, ping/pong and the stale/expiry timers. Transports own the socket, call
//! [`Conn::handle_frame`] / [`Conn::connect_uni`] and sleep until [`Conn::deadline`].
//! Dropping a `Conn` removes its session from the node.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::metrics::Frame;
use crate::protocol::{Command, ConnectRequest, Disconnect, Empty, Encoding, ErrorCode, ErrorReply, Method};

use super::timers::Stamp;
use super::{ConnectError, Node, Session, Transport, now_secs};

/// A failed command: an error reply, or the end of the connection.
#[derive(Debug)]
pub(super) enum Fail {
    Error(ErrorReply),
    Disconnect(Disconnect),
}

impl From<ErrorCode> for Fail {
    fn from(c: ErrorCode) -> Self {
        Fail::Error(c.reply())
    }
}

impl From<Disconnect> for Fail {
    fn from(d: Disconnect) -> Self {
        Fail::Disconnect(d)
    }
}

enum State {
    New,
    /// Connect answered with an error: the next command ends the connection.
    Failed,
    Connected(Arc<Session>),
}

pub struct Conn {
    node: Arc<Node>,
    queue: Arc<super::Queue>,
    transport: Transport,
    encoding: Encoding,
    state: State,
    /// Deadlines, as [`Stamp`]s of the node's timer wheel (8 bytes each, not 16).
    stale_at: Option<Stamp>,
    next_ping: Option<Stamp>,
    pong_due: Option<Stamp>,
    /// Transport headers the proxies may forward (see `Proxies::capture`); boxed, and
    /// only when there are some, as most connections have none (8 bytes, not 24).
    #[allow(clippy::box_collection)]
    forwarded: Option<Box<Vec<(String, String)>>>,
    /// Next call of the refresh proxy for a proxy-issued connection (see `proxy.rs`).
    refresh: super::proxy::RefreshTimer,
}

impl Conn {
    pub fn new(node: Arc<Node>, transport: Transport) -> Self {
        let queue = Arc::new(super::Queue::new(node.config.client.queue_max_size));
        let stale_at = Some(node.timers.stamp(Instant::now() + node.config.client.stale_close_delay.std()));
        node.metrics.connects[transport as usize].inc();
        Self {
            node,
            queue,
            transport,
            encoding: Encoding::Json,
            state: State::New,
            stale_at,
            next_ping: None,
            pong_due: None,
            forwarded: None,
            refresh: Default::default(),
        }
    }

    /// Keeps the client request's headers some proxy forwards.
    pub fn with_headers(mut self, forwarded: Vec<(String, String)>) -> Self {
        self.forwarded = (!forwarded.is_empty()).then(|| Box::new(forwarded));
        self
    }

    /// Speaks protobuf instead of JSON (negotiated by the transport).
    pub fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    pub fn queue(&self) -> &Arc<super::Queue> {
        &self.queue
    }

    pub fn session(&self) -> Option<&Arc<Session>> {
        match &self.state {
            State::Connected(s) => Some(s),
            _ => None,
        }
    }

    /// Handles one frame of commands (JSON lines or length-prefixed protobuf), in order.
    /// Each command counts as received with an even share of the frame's bytes.
    pub async fn handle_frame(&mut self, frame: &[u8]) -> Result<(), Disconnect> {
        let commands = self.encoding.decode_frame(frame)?;
        let share = frame.len() / commands.len();
        let mut rest = frame.len() - share * commands.len();
        for cmd in commands {
            let size = share + std::mem::take(&mut rest);
            self.handle_command(cmd, size).await?;
        }
        Ok(())
    }

    async fn handle_command(&mut self, cmd: Command, size: usize) -> Result<(), Disconnect> {
        if matches!(self.state, State::Failed) {
            return Err(Disconnect::bad_request());
        }
        let metrics = self.node.metrics.clone();
        let transport = self.transport as usize;
        if cmd.is_pong() {
            metrics.received(transport, Frame::Pong, size);
            return self.on_pong();
        }
        let id = cmd.id;
        let binary = cmd.binary_payload;
        let method = cmd.into_method().ok_or_else(Disconnect::bad_request)?;
        let index = command_index(&method);
        metrics.received(transport, Frame::command(index), size);
        let started = std::time::Instant::now();
        let session = match (&self.state, method) {
            (State::New, Method::Connect(req)) => {
                let r = self.connect_bidi(id, req).await;
                metrics.commands[index].observe(started.elapsed().as_secs_f64());
                return r;
            }
            (State::Connected(s), m) if !matches!(m, Method::Connect(_)) => (s.clone(), m),
            _ => return Err(Disconnect::bad_request()),
        };
        let (s, method) = session;
        let name = method.name();
        let result = if binary {
            // A protobuf payload that is not JSON: the server carries payloads as JSON.
            Err(Fail::Error(ErrorCode::BadRequest.reply()))
        } else {
            self.dispatch(&s, id, method).await
        };
        metrics.commands[index].observe(started.elapsed().as_secs_f64());
        match result {
            Ok(Some(reply)) => {
                metrics.sent(transport, Frame::command(index), reply.len());
                self.queue.push(reply);
                Ok(())
            }
            // Subscribe queues its own reply (and counts it there).
            Ok(None) => Ok(()),
            Err(Fail::Error(e)) => {
                let reply = self.encoding.error(id, &e);
                metrics.sent(transport, Frame::command(index), reply.len());
                metrics.reply_error(index, e.code);
                self.queue.push(reply);
                tracing::debug!(method = name, code = e.code, "command error");
                Ok(())
            }
            Err(Fail::Disconnect(d)) => Err(d),
        }
    }

    fn on_pong(&mut self) -> Result<(), Disconnect> {
        match (&self.state, self.pong_due) {
            (State::Connected(_), Some(_)) => {
                self.pong_due = None;
                Ok(())
            }
            _ => Err(Disconnect::bad_request()),
        }
    }

    async fn connect_bidi(&mut self, id: u32, req: ConnectRequest) -> Result<(), Disconnect> {
        let (metrics, transport, enc) = (self.node.metrics.clone(), self.transport as usize, self.encoding);
        let reply = |r: &crate::protocol::ConnectResult| {
            let b = enc.reply(id, "connect", r);
            metrics.sent(transport, Frame::Connect, b.len());
            b
        };
        match self
            .node
            .connect(
                req,
                (self.transport, enc),
                self.queue.clone(),
                self.forwarded.take().map(|f| *f).unwrap_or_default(),
                reply,
            )
            .await
        {
            Ok(s) => {
                self.on_connected(s);
                Ok(())
            }
            Err(ConnectError::Error(e)) => {
                self.state = State::Failed;
                let reply = enc.error(id, &e);
                self.node.metrics.sent(self.transport as usize, Frame::Connect, reply.len());
                self.node.metrics.reply_error(0, e.code);
                self.queue.push(reply);
                Ok(())
            }
            Err(ConnectError::Disconnect(d)) => Err(d),
        }
    }

    /// Connects a unidirectional client: the first message is the `connect` push.
    pub async fn connect_uni(&mut self, req: ConnectRequest) -> Result<(), Disconnect> {
        let (metrics, transport) = (self.node.metrics.clone(), self.transport as usize);
        let reply = |r: &crate::protocol::ConnectResult| {
            let b = crate::protocol::codec::encode_push(true, "", "connect", r);
            metrics.sent(transport, Frame::Connect, b.len());
            b
        };
        match self
            .node
            .connect(
                req,
                (self.transport, Encoding::Json),
                self.queue.clone(),
                self.forwarded.take().map(|f| *f).unwrap_or_default(),
                reply,
            )
            .await
        {
            Ok(s) => {
                self.on_connected(s);
                Ok(())
            }
            Err(e) => Err(e.into_uni_disconnect()),
        }
    }

    fn on_connected(&mut self, s: Arc<Session>) {
        self.state = State::Connected(s);
        self.stale_at = None;
        let interval = self.node.config.client.ping_interval.std();
        if !interval.is_zero() {
            let first = rand::rng().random_range(interval / 2..=interval);
            self.next_ping = Some(self.node.timers.stamp(Instant::now() + first));
        }
    }

    async fn dispatch(&mut self, s: &Arc<Session>, id: u32, method: Method) -> Result<Option<bytes::Bytes>, Fail> {
        let node = self.node.clone();
        let enc = self.encoding;
        let reply = match method {
            Method::Subscribe(req) => {
                node.client_subscribe(s, id, req).await?;
                return Ok(None);
            }
            Method::Unsubscribe(req) => {
                node.client_unsubscribe(s, &req.channel);
                enc.reply(id, "unsubscribe", &Empty {})
            }
            Method::Publish(req) => {
                node.client_publish(s, req).await?;
                enc.reply(id, "publish", &Empty {})
            }
            Method::Presence(req) => enc.reply(id, "presence", &node.presence(Some(s), &req.channel).await?),
            Method::PresenceStats(req) => {
                enc.reply(id, "presence_stats", &node.presence_stats(Some(s), &req.channel).await?)
            }
            Method::History(req) => {
                let limit = node.client_history_limit(req.limit);
                let h = node.history(Some(s), &req.channel, limit, req.since, req.reverse).await?;
                enc.reply(id, "history", &h)
            }
            Method::Rpc(req) => enc.reply(id, "rpc", &node.client_rpc(s, req).await?),
            Method::Send(_) => return Err(Disconnect::not_available().into()),
            Method::Refresh(req) => enc.reply(id, "refresh", &node.client_refresh(s, &req.token).await?),
            Method::SubRefresh(req) => {
                let (ttl, expires) = node.client_sub_refresh(s, req).await?;
                enc.reply(id, "sub_refresh", &crate::protocol::RefreshResult { expires, ttl })
            }
            Method::Connect(_) => return Err(Disconnect::bad_request().into()),
        };
        Ok(Some(reply))
    }

    /// When the transport should call [`Conn::on_deadline`] next.
    pub fn deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut d = [self.stale_at, self.next_ping, self.pong_due]
            .into_iter()
            .flatten()
            .min()
            .map_or(far, |s| self.node.timers.instant(s));
        if let Some(at) = self.refresh_deadline() {
            d = d.min(at);
        }
        if let Some(exp) = self.expiry_deadline() {
            d = d.min(exp);
        }
        d
    }

    /// Next moment a connection or subscription expiry must be checked.
    fn expiry_deadline(&self) -> Option<Instant> {
        let s = self.session()?;
        let c = &self.node.config.client;
        let st = s.state.lock();
        // A connection the refresh proxy extends is closed only when the backend says so.
        let conn = st
            .expire_at
            .filter(|_| !self.server_refreshed(s))
            .map(|e| e.saturating_add(c.expired_close_delay.std().as_secs() as i64));
        let subs = st
            .subs
            .iter()
            .filter_map(|(ch, x)| {
                let at = x.expire_at?;
                // The sub_refresh proxy is due at the expiry itself; others get the grace.
                if self.node.server_refreshes_sub(ch) {
                    return (!self.refresh.flags().subs.lock().contains(ch)).then_some(at);
                }
                Some(at.saturating_add(c.expired_sub_close_delay.std().as_secs() as i64))
            })
            .min();
        let at = [conn, subs].into_iter().flatten().min()?;
        let secs = at.saturating_sub(now_secs()).saturating_add(1).max(0) as u64;
        // An expiry too far away for an Instant is no deadline at all.
        Instant::now().checked_add(Duration::from_secs(secs))
    }

    /// Timers: stale (3502), ping, no pong (3012), expiry (3005), sub expiry.
    pub fn on_deadline(&mut self) -> Result<(), Disconnect> {
        let now = Instant::now();
        let stamp = self.node.timers.stamp(now);
        if self.stale_at.is_some_and(|t| t <= stamp) {
            return Err(Disconnect::stale());
        }
        if self.pong_due.is_some_and(|t| t <= stamp) {
            return Err(Disconnect::no_pong());
        }
        if self.next_ping.is_some_and(|t| t <= stamp) {
            self.send_ping(now);
        }
        let Some(s) = self.session().cloned() else { return Ok(()) };
        if self.refresh_due() {
            self.refresh.flags().conn.store(true, std::sync::atomic::Ordering::Release);
            self.node.spawn_refresh(s.clone(), self.refresh.flags().clone());
        }
        self.spawn_sub_refreshes(&s);
        let grace = self.node.config.client.expired_close_delay.std().as_secs() as i64;
        let expired = s.state.lock().expire_at.is_some_and(|e| e.saturating_add(grace) < now_secs());
        if expired && !self.server_refreshed(&s) {
            return Err(Disconnect::expired());
        }
        self.node.expire_subscriptions(&s)
    }

    /// The session's credentials came from the connect proxy and the refresh proxy
    /// extends them (clients never refresh such connections themselves).
    fn server_refreshed(&self, s: &Session) -> bool {
        s.proxied && self.node.proxies.refresh.is_some()
    }

    /// When the refresh proxy is due: at the connection's expiry, unless a refresh
    /// is already running.
    fn refresh_deadline(&self) -> Option<Instant> {
        let s = self.session()?;
        if !self.server_refreshed(s) || self.refresh.flags().conn.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let at = s.state.lock().expire_at?;
        let secs = at.saturating_sub(now_secs()).max(0) as u64;
        Instant::now().checked_add(Duration::from_secs(secs))
    }

    /// Starts the sub_refresh proxy for every subscription it extends that expired.
    fn spawn_sub_refreshes(&self, s: &Arc<Session>) {
        let now = now_secs();
        let due: Vec<String> = s
            .state
            .lock()
            .subs
            .iter()
            .filter(|(_, x)| x.expire_at.is_some_and(|at| at <= now))
            .map(|(ch, _)| ch.clone())
            .collect();
        for ch in due {
            if self.node.server_refreshes_sub(&ch) && self.refresh.flags().subs.lock().insert(ch.clone()) {
                self.node.spawn_sub_refresh(s.clone(), ch, self.refresh.flags().clone());
            }
        }
    }

    fn refresh_due(&self) -> bool {
        self.refresh_deadline().is_some()
            && self.session().and_then(|s| s.state.lock().expire_at).is_some_and(|at| at <= now_secs())
    }

    fn send_ping(&mut self, now: Instant) {
        let c = &self.node.config.client;
        let ping = self.encoding.ping();
        self.node.metrics.sent(self.transport as usize, Frame::Ping, ping.len());
        self.queue.push(ping);
        self.next_ping = Some(self.node.timers.stamp(now + c.ping_interval.std()));
        if !self.transport.unidirectional() && self.pong_due.is_none() {
            self.pong_due = Some(self.node.timers.stamp(now + c.pong_timeout.std()));
        }
    }
}

/// The position of a command in [`crate::metrics::COMMANDS`].
fn command_index(m: &Method) -> usize {
    match m {
        Method::Connect(_) => 0,
        Method::Subscribe(_) => 1,
        Method::Unsubscribe(_) => 2,
        Method::Publish(_) => 3,
        Method::Presence(_) => 4,
        Method::PresenceStats(_) => 5,
        Method::History(_) => 6,
        Method::Rpc(_) => 7,
        Method::Send(_) => 8,
        Method::Refresh(_) => 9,
        Method::SubRefresh(_) => 10,
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.node.timers.disarm(&self.queue);
        if let State::Connected(s) = &self.state {
            self.node.remove_session(s);
        }
    }
}
