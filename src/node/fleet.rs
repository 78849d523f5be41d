//! The fleet: what a node does with its peers when it runs on the Redis engine.
//!
//! - **Channel interest.** A node listens to a channel's PUB/SUB while it has local
//!   subscribers: a count per channel, taken before a subscription registers and
//!   dropped when it goes. The counts are the registry the PUB/SUB connections
//!   resubscribe from after a reconnect.
//! - **Delivery.** Every publication, join and leave arrives through PUB/SUB (this
//!   node's own publishes too) and is fanned out locally.
//! - **Registry.** Every node broadcasts its numbers every [`HEARTBEAT`]; a peer not
//!   heard from for [`PEER_TIMEOUT`] is dropped (a node that shuts down says so).
//! - **Surveys.** A request is broadcast; each live peer answers for its own hub on
//!   the requester's node channel. The requester waits for the peers that were live
//!   when it asked, stops waiting for one as soon as it is dropped from the registry,
//!   and after the survey timeout reports the silent ones instead of failing.
//! - **Emulation.** Commands posted to `/emulation` for a session on another node
//!   are sent to that node alone, which answers like a one-node survey.
//! - **Operations.** Fleet-wide subscribe/unsubscribe/disconnect/refresh are broadcast
//!   and applied by every node to its own connections.
//! - **Session entries.** Revocations, invalidations and blocks are broadcast and
//!   applied by every node to its tables and connections (reloaded from Redis after
//!   the control channel reconnects).
//!
//! What a survey or operation means is the API's business: it installs [`Handlers`]
//! at start, so this module never depends on the API.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::config::RedisEngine as RedisConfig;
use crate::engine::EngineError;
use crate::engine::redis::{Incoming, RedisEngine};
use crate::protocol::{ClientInfo, Publication};

use super::Node;

/// How often a node announces itself.
pub const HEARTBEAT: Duration = Duration::from_secs(3);
/// A peer unheard for this long is gone.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(7);

const INTEREST_SHARDS: usize = 64;

/// A node's numbers, as `info` lists them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    pub uid: String,
    pub name: String,
    pub version: String,
    pub num_clients: u32,
    pub num_users: u32,
    pub num_channels: u32,
    pub uptime: u32,
    pub num_subs: u32,
}

/// Answers a survey op for this node's hub: `Ok(data)` or `Err(message)`.
pub type SurveyHandler =
    Box<dyn Fn(Arc<Node>, String, Box<RawValue>) -> BoxFuture<'static, Result<Box<RawValue>, String>> + Send + Sync>;
/// Applies a broadcast operation to this node's connections.
pub type OpHandler = Box<dyn Fn(Arc<Node>, String, Box<RawValue>) -> BoxFuture<'static, ()> + Send + Sync>;

pub struct Handlers {
    pub survey: SurveyHandler,
    pub op: OpHandler,
}

#[derive(Debug, Serialize, Deserialize)]
struct Control {
    /// The sender's uid.
    from: String,
    body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Body {
    Node(NodeInfo),
    Leaving,
    SurveyRequest {
        id: u64,
        op: String,
        data: Box<RawValue>,
    },
    SurveyResponse {
        id: u64,
        error: Option<String>,
        data: Option<Box<RawValue>>,
    },
    Op {
        op: String,
        data: Box<RawValue>,
    },
    /// A revocation, invalidation, block or unblock every node applies.
    Sessions(super::sessions::Entry),
    /// Commands for an emulated session of the receiving node (sent to that node
    /// only); answered with a `SurveyResponse` of the same id.
    Emulation {
        id: u64,
        session: String,
        data: String,
    },
}

struct Peer {
    info: NodeInfo,
    seen: Instant,
}

/// One node's answer to a survey.
pub struct Answer {
    pub uid: String,
    pub result: Result<Box<RawValue>, String>,
}

/// Every answer that came, and the names of the live nodes that did not answer
/// (both empty for a node alone).
#[derive(Default)]
pub struct SurveyOutcome {
    pub answers: Vec<Answer>,
    pub missing: Vec<String>,
}

pub struct Fleet {
    pub redis: Arc<RedisEngine>,
    hasher: std::collections::hash_map::RandomState,
    interest: Box<[Mutex<HashMap<String, usize>>]>,
    peers: Mutex<HashMap<String, Peer>>,
    surveys: Mutex<HashMap<u64, mpsc::UnboundedSender<Answer>>>,
    next_survey: AtomicU64,
    survey_timeout: Duration,
    handlers: OnceLock<Handlers>,
    /// PUB/SUB messages dropped at the readers' full hand-off.
    pub dropped: Arc<crate::engine::redis::Dropped>,
}

impl Fleet {
    pub fn new(redis: Arc<RedisEngine>, c: &RedisConfig, dropped: Arc<crate::engine::redis::Dropped>) -> Self {
        Self {
            redis,
            dropped,
            hasher: Default::default(),
            interest: (0..INTEREST_SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            peers: Mutex::new(HashMap::new()),
            surveys: Mutex::new(HashMap::new()),
            next_survey: AtomicU64::new(1),
            survey_timeout: c.survey_timeout.std(),
            handlers: OnceLock::new(),
        }
    }

    /// Installs what surveys and operations mean (once, at start).
    pub fn set_handlers(&self, h: Handlers) {
        let _ = self.handlers.set(h);
    }

    // ------------------------------------------------------------ channel interest

    fn interest_shard(&self, channel: &str) -> &Mutex<HashMap<String, usize>> {
        &self.interest[(self.hasher.hash_one(channel) as usize) % INTEREST_SHARDS]
    }

    /// Takes one interest in a channel; the first makes this node SUBSCRIBE to its
    /// PUB/SUB before returning. On error nothing is taken.
    pub async fn retain_channel(&self, channel: &str) -> Result<(), EngineError> {
        let first = {
            let mut m = self.interest_shard(channel).lock();
            let n = m.entry(channel.to_string()).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first && let Err(e) = self.redis.subscribe(channel).await {
            self.release_count(channel);
            return Err(e);
        }
        Ok(())
    }

    /// Drops one interest; the last one unsubscribes. The unsubscribe runs in the
    /// background and re-subscribes if interest came back meanwhile (its SUBSCRIBE
    /// may have reached Redis before this UNSUBSCRIBE).
    pub fn release_channel(self: &Arc<Self>, channel: &str) {
        if !self.release_count(channel) {
            return;
        }
        let fleet = self.clone();
        let channel = channel.to_string();
        tokio::spawn(async move {
            let _ = fleet.redis.unsubscribe(&channel).await;
            if fleet.interest_shard(&channel).lock().contains_key(&channel) {
                let _ = fleet.redis.subscribe(&channel).await;
            }
        });
    }

    /// Decrements; true when the count reached zero.
    fn release_count(&self, channel: &str) -> bool {
        let mut m = self.interest_shard(channel).lock();
        match m.get_mut(channel) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                m.remove(channel);
                true
            }
            None => false,
        }
    }

    /// Every channel this node listens to.
    pub fn channels(&self) -> Vec<String> {
        self.interest.iter().flat_map(|m| m.lock().keys().cloned().collect::<Vec<_>>()).collect()
    }

    // ------------------------------------------------------------ registry

    /// Live peers (not this node), by uid.
    pub fn peers(&self) -> Vec<NodeInfo> {
        let now = Instant::now();
        let mut p = self.peers.lock();
        p.retain(|_, peer| now.duration_since(peer.seen) < PEER_TIMEOUT);
        p.values().map(|peer| peer.info.clone()).collect()
    }

    fn is_live(&self, uid: &str) -> bool {
        self.peers.lock().get(uid).is_some_and(|p| p.seen.elapsed() < PEER_TIMEOUT)
    }

    /// Sends a session entry to every other node.
    pub async fn broadcast_session_entry(&self, self_uid: &str, e: &super::sessions::Entry) -> Result<(), EngineError> {
        let msg = encode(&Control { from: self_uid.to_string(), body: Body::Sessions(e.clone()) });
        self.redis.broadcast_control(msg).await
    }

    /// Tells peers this node is going, so they stop counting on it at once.
    pub fn announce_leaving(&self, uid: &str) {
        let msg = encode(&Control { from: uid.to_string(), body: Body::Leaving });
        let redis = self.redis.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = redis.broadcast_control(msg).await;
            });
        }
    }

    // ------------------------------------------------------------ surveys

    /// Asks every live peer to run `op` on its own hub. Redis failing to carry the
    /// request is an error; silent peers are reported in `missing`.
    pub async fn survey(&self, self_uid: &str, op: &str, data: &RawValue) -> Result<SurveyOutcome, EngineError> {
        let peers = self.peers();
        if peers.is_empty() {
            return Ok(SurveyOutcome { answers: Vec::new(), missing: Vec::new() });
        }
        let id = self.next_survey.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.surveys.lock().insert(id, tx);
        let _cleanup = RemoveOnDrop { map: &self.surveys, id };
        let request = Body::SurveyRequest { id, op: op.to_string(), data: data.to_owned() };
        self.redis.broadcast_control(encode(&Control { from: self_uid.to_string(), body: request })).await?;
        let mut waiting: HashMap<String, String> = peers.into_iter().map(|p| (p.uid, p.name)).collect();
        let mut answers = Vec::new();
        let deadline = tokio::time::Instant::now() + self.survey_timeout;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        while !waiting.is_empty() {
            tokio::select! {
                a = rx.recv() => match a {
                    Some(a) => {
                        if waiting.remove(&a.uid).is_some() {
                            answers.push(a);
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => waiting.retain(|uid, _| self.is_live(uid)),
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let mut missing: Vec<String> = waiting.into_values().collect();
        missing.sort();
        Ok(SurveyOutcome { answers, missing })
    }

    /// Broadcasts an operation for every other node to apply to its connections.
    pub async fn broadcast_op(&self, self_uid: &str, op: &str, data: &RawValue) -> Result<(), EngineError> {
        let body = Body::Op { op: op.to_string(), data: data.to_owned() };
        self.redis.broadcast_control(encode(&Control { from: self_uid.to_string(), body })).await
    }
}

impl Fleet {
    /// Delivers `data` to emulated session `session` on peer `target` and waits for
    /// its answer (at most the survey timeout). A peer not in the registry is an
    /// unknown node.
    pub async fn emulate(
        &self,
        self_uid: &str,
        target: &str,
        session: &str,
        data: bytes::Bytes,
    ) -> Result<(), super::EmulationError> {
        use super::EmulationError;
        if !self.is_live(target) {
            return Err(EmulationError::UnknownNode);
        }
        // Frames decoded as JSON text already; anything else cannot be a command.
        let data = String::from_utf8(data.to_vec()).map_err(|_| EmulationError::UnknownSession)?;
        let id = self.next_survey.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.surveys.lock().insert(id, tx);
        let _cleanup = RemoveOnDrop { map: &self.surveys, id };
        let body = Body::Emulation { id, session: session.to_string(), data };
        let msg = encode(&Control { from: self_uid.to_string(), body });
        self.redis.send_to_node(target, msg).await.map_err(|e| EmulationError::Unreachable(e.to_string()))?;
        loop {
            match tokio::time::timeout(self.survey_timeout, rx.recv()).await {
                Ok(Some(a)) if a.uid == target => {
                    return a.result.map(|_| ()).map_err(|e| EmulationError::from_wire(&e));
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return Err(EmulationError::Unreachable("no answer".into())),
            }
        }
    }
}

struct RemoveOnDrop<'a> {
    map: &'a Mutex<HashMap<u64, mpsc::UnboundedSender<Answer>>>,
    id: u64,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        self.map.lock().remove(&self.id);
    }
}

fn encode(c: &Control) -> Vec<u8> {
    crate::json::to_vec(c)
}

impl Node {
    /// This node's numbers.
    pub fn node_info(&self) -> NodeInfo {
        let channels = self.hub.channels();
        NodeInfo {
            uid: self.uid.clone(),
            name: self.name.clone(),
            version: super::VERSION.to_string(),
            num_clients: self.hub.len() as u32,
            num_users: self.hub.num_users() as u32,
            num_channels: channels.num_channels() as u32,
            uptime: self.started.elapsed().as_secs() as u32,
            num_subs: channels.num_subscriptions() as u32,
        }
    }

    /// A payload from a channel's PUB/SUB, fanned out to local subscribers:
    /// `p<offset>:<epoch>:<publication>`, `j<client info>` or `l<client info>`.
    fn deliver(&self, channel: &str, payload: &[u8]) {
        match payload.first() {
            Some(b'p') => {
                let mut parts = payload[1..].splitn(3, |b| *b == b':');
                let (Some(offset), Some(_epoch), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
                    return;
                };
                let offset = std::str::from_utf8(offset).ok().and_then(|o| o.parse().ok()).unwrap_or(0);
                match serde_json::from_slice::<Publication>(body) {
                    Ok(mut p) => {
                        p.offset = offset;
                        self.fan_out(channel, &p);
                    }
                    Err(e) => tracing::warn!(channel, "undecodable publication from Redis: {e}"),
                }
            }
            Some(kind @ (b'j' | b'l')) => {
                if let Ok(info) = serde_json::from_slice::<ClientInfo>(&payload[1..]) {
                    self.fan_out_join_leave(channel, if *kind == b'j' { "join" } else { "leave" }, &info);
                }
            }
            _ => {}
        }
    }

    fn on_control(self: &Arc<Self>, payload: &[u8]) {
        let Some(fleet) = &self.fleet else { return };
        let msg: Control = match serde_json::from_slice(payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("undecodable control message: {e}");
                return;
            }
        };
        if msg.from == self.uid {
            return;
        }
        match msg.body {
            Body::Node(info) => {
                let new = fleet.peers.lock().insert(msg.from, Peer { info, seen: Instant::now() }).is_none();
                if new {
                    // A newcomer learns of this node now rather than at its next beat.
                    let node = self.clone();
                    tokio::spawn(async move { heartbeat(&node).await });
                }
            }
            Body::Leaving => {
                fleet.peers.lock().remove(&msg.from);
            }
            Body::Sessions(e) => self.apply_session_entry(&e),
            Body::SurveyResponse { id, error, data } => {
                let result = match (error, data) {
                    (None, Some(d)) => Ok(d),
                    (e, _) => Err(e.unwrap_or_else(|| "empty answer".into())),
                };
                if let Some(tx) = fleet.surveys.lock().get(&id) {
                    let _ = tx.send(Answer { uid: msg.from, result });
                }
            }
            Body::SurveyRequest { id, op, data } => {
                let node = self.clone();
                tokio::spawn(async move {
                    let Some(fleet) = &node.fleet else { return };
                    let result = match fleet.handlers.get() {
                        Some(h) => (h.survey)(node.clone(), op, data).await,
                        None => Err("node is starting".into()),
                    };
                    let (error, data) = match result {
                        Ok(d) => (None, Some(d)),
                        Err(e) => (Some(e), None),
                    };
                    let reply = Control { from: node.uid.clone(), body: Body::SurveyResponse { id, error, data } };
                    if let Err(e) = fleet.redis.send_to_node(&msg.from, encode(&reply)).await {
                        tracing::warn!("survey answer not sent: {e}");
                    }
                });
            }
            Body::Emulation { id, session, data } => {
                let node = self.clone();
                tokio::spawn(async move {
                    let Some(fleet) = &node.fleet else { return };
                    let (error, data) = match node.emulate_local(&session, bytes::Bytes::from(data)).await {
                        Ok(()) => (None, Some(crate::json::to_raw(&true))),
                        Err(e) => (Some(e.wire().to_string()), None),
                    };
                    let reply = Control { from: node.uid.clone(), body: Body::SurveyResponse { id, error, data } };
                    if let Err(e) = fleet.redis.send_to_node(&msg.from, encode(&reply)).await {
                        tracing::warn!("emulation answer not sent: {e}");
                    }
                });
            }
            Body::Op { op, data } => {
                let node = self.clone();
                tokio::spawn(async move {
                    if let Some(h) = node.fleet.as_ref().and_then(|f| f.handlers.get()) {
                        (h.op)(node.clone(), op, data).await;
                    }
                });
            }
        }
    }

    /// Emits a join or leave: through Redis to every node with the Redis engine,
    /// straight to local subscribers with the memory engine.
    pub(super) fn emit_join_leave(&self, channel: &str, kind: &str, info: &ClientInfo) {
        let m = if kind == "join" { crate::metrics::Message::Join } else { crate::metrics::Message::Leave };
        self.metrics.node_sent(m);
        match self.engine.redis() {
            None => self.fan_out_join_leave(channel, kind, info),
            Some(r) => {
                let (r, channel, info, join) = (r.clone(), channel.to_string(), info.clone(), kind == "join");
                tokio::spawn(async move {
                    if let Err(e) = r.publish_join_leave(&channel, join, &info).await {
                        tracing::warn!(channel, "join/leave not published: {e}");
                    }
                });
            }
        }
    }

    /// Adds a presence entry (Redis: in the background; a failure only delays it to
    /// the next refresh).
    pub(super) fn presence_add(&self, channel: &str, info: ClientInfo) {
        self.metrics.activity.action(crate::metrics::Action::AddPresence);
        match &self.engine {
            crate::engine::Engine::Memory(m) => m.add_presence(channel, info),
            crate::engine::Engine::Redis(r) => {
                let (r, channel) = (r.clone(), channel.to_string());
                tokio::spawn(async move {
                    if let Err(e) = r.add_presence(&channel, &info).await {
                        tracing::debug!(channel, "presence not added: {e}");
                    }
                });
            }
        }
    }

    pub(super) fn presence_remove(&self, channel: &str, client: &str) {
        self.metrics.activity.action(crate::metrics::Action::RemovePresence);
        match &self.engine {
            crate::engine::Engine::Memory(m) => m.remove_presence(channel, client),
            crate::engine::Engine::Redis(r) => {
                let (r, channel, client) = (r.clone(), channel.to_string(), client.to_string());
                tokio::spawn(async move {
                    if let Err(e) = r.remove_presence(&channel, &client).await {
                        tracing::debug!(channel, "presence not removed: {e}");
                    }
                });
            }
        }
    }

    /// Re-adds the presence of every local subscription that has it, so entries
    /// outlive their TTL only while their connection lives.
    fn refresh_presence(&self) {
        for s in self.hub.all() {
            self.readd_presence(&s);
        }
    }

    /// Re-adds one session's presence entries with its current client info (after
    /// the refresh proxy changed its `info`, too).
    pub(super) fn readd_presence(&self, s: &super::Session) {
        let subs: Vec<(String, Option<crate::protocol::Raw>)> = {
            let st = s.state.lock();
            st.subs
                .iter()
                .filter(|(_, sub)| sub.presence)
                .map(|(ch, sub)| (ch.clone(), sub.chan_info.clone()))
                .collect()
        };
        for (ch, chan_info) in subs {
            self.presence_add(&ch, s.client_info(chan_info));
        }
    }
}

/// Starts the fleet's background tasks: delivery of PUB/SUB messages (and resubscribe
/// after a reconnect), heartbeats, presence refresh.
pub fn spawn_tasks(node: &Arc<Node>, mut incoming: mpsc::Receiver<Incoming>) {
    let weak: Weak<Node> = Arc::downgrade(node);
    tokio::spawn(async move {
        while let Some(ev) = incoming.recv().await {
            let Some(node) = weak.upgrade() else { return };
            match ev {
                Incoming::Channel { channel, payload } => node.deliver(&channel, &payload),
                Incoming::Control(p) => node.on_control(&p),
                Incoming::Reconnected(shard) => {
                    let Some(fleet) = &node.fleet else { continue };
                    let (redis, channels) = (fleet.redis.clone(), fleet.channels());
                    tokio::spawn(async move {
                        let n = channels.len();
                        match redis.resubscribe(shard, channels).await {
                            Ok(()) => tracing::info!(shard, channels = n, "resubscribed after reconnect"),
                            Err(e) => tracing::warn!(shard, "resubscribe failed: {e}"),
                        }
                    });
                    if shard == 0 {
                        heartbeat(&node).await;
                        // Entries broadcast while the control channel was down were missed.
                        let node = node.clone();
                        tokio::spawn(async move {
                            if let Err(e) = node.load_session_entries().await {
                                tracing::warn!("session entries not reloaded after reconnect: {e}");
                            }
                        });
                    }
                }
                Incoming::Disconnected(_) => {}
            }
        }
    });
    let weak = Arc::downgrade(node);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else { return };
            if node.is_shutting_down() {
                return;
            }
            heartbeat(&node).await;
        }
    });
    let weak = Arc::downgrade(node);
    let every = (node.config.engine.redis.presence_ttl.std() / 3).max(Duration::from_secs(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else { return };
            node.refresh_presence();
        }
    });
}

async fn heartbeat(node: &Arc<Node>) {
    let Some(fleet) = &node.fleet else { return };
    let msg = encode(&Control { from: node.uid.clone(), body: Body::Node(node.node_info()) });
    if let Err(e) = fleet.redis.broadcast_control(msg).await {
        tracing::debug!("heartbeat not sent: {e}");
    }
}
