//! The node: one server's shared state (configuration, hub, engine, token verifier)
//! and the operations both client connections and the server API use — connecting,
//! subscribing, publishing with fan-out, disconnecting. Per-connection command
//! handling lives in `conn.rs` and one file per command; transports drive it.

mod channels;
mod conn;
mod connect;
mod emulation;
mod fanout;
pub mod fleet;
mod history;
mod ops;
mod presence;
mod proxy;
mod publish;
mod queue;
mod refresh;
mod revocation;
mod session;
pub mod sessions;
mod subscribe;
pub mod timers;
mod user_status;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::auth::Verifier;
use crate::config::{Config, EngineKind};
use crate::engine::{Engine, EngineError, MemoryEngine};
use crate::hub::Hub;
use crate::protocol::Disconnect;

pub use channels::{Asker, ChannelName, ChannelRules};
pub use conn::Conn;
pub use connect::ConnectError;
pub use emulation::{EmulatedSessions, EmulationError, Registration};
pub use ops::{ServerSubscribe, Target};
pub use publish::{PublishError, PublishOptions, PublishOutcome};
pub use queue::{Queue, Signal};
#[cfg(test)]
pub(crate) use session::test_session;
pub use session::{
    MetaCell, MutableState, RawCell, Session, SubSource, SubState, Subscriber, TokenInfo, Transport, UuidStr,
};
pub use sessions::{Entry as SessionEntry, Sessions};
pub use user_status::UserStatus;

/// The hub as this node uses it.
pub type NodeHub = Hub<Session, Subscriber>;

pub struct Node {
    pub config: Arc<Config>,
    pub hub: NodeHub,
    pub engine: Engine,
    /// Set with the Redis engine: peers, surveys and the channels this node listens to.
    pub fleet: Option<Arc<fleet::Fleet>>,
    pub verifier: Verifier,
    /// HTTP proxies to the application backend.
    pub proxies: crate::proxy::Proxies,
    /// Prometheus metrics (handles resolved at start; see `crate::metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    pub channels: ChannelRules,
    /// Emulated (http_stream / sse) sessions of this node, for `/emulation`.
    pub emulated: EmulatedSessions,
    /// This node's unique id and display name.
    pub uid: String,
    pub name: String,
    pub started: Instant,
    /// Revoked tokens, invalidations and blocked users (this node's replica).
    pub sessions: Sessions,
    /// Every connection's next deadline (see `timers.rs`).
    pub timers: timers::Timers,
    /// User statuses with the memory engine (Redis keeps them otherwise).
    statuses: user_status::MemoryStatuses,
    shutting_down: AtomicBool,
    shutdown_tx: watch::Sender<bool>,
}

/// Rotor's version string in connect results.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " rotor");

impl Node {
    /// A node on the memory engine (whatever `engine.type` says; see [`Node::start`]).
    pub fn new(config: Config) -> Result<Arc<Self>, crate::auth::AuthError> {
        let uid = uuid::Uuid::new_v4().to_string();
        Ok(Arc::new(Self::build(config, uid, Engine::Memory(MemoryEngine::default()), None)?))
    }

    /// A node on the configured engine, with its background tasks (expiry of session
    /// entries, online status). With `redis` this connects to Redis (an unreachable
    /// Redis is an error here, at start), starts the fleet tasks — delivery of
    /// PUB/SUB messages, heartbeats, presence refresh — and loads the stored
    /// revocations and blocks before the node serves anyone.
    pub async fn start(config: Config) -> anyhow::Result<Arc<Self>> {
        if config.engine.kind != EngineKind::Redis {
            let node = Self::new(config)?;
            revocation::spawn_sweeps(&node);
            user_status::spawn_online(&node);
            return Ok(node);
        }
        let uid = uuid::Uuid::new_v4().to_string();
        let (tx, rx, dropped) = crate::engine::redis::handoff();
        let redis = crate::engine::redis::RedisEngine::connect(&config.engine.redis, &uid, tx)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start on the Redis engine: {e}"))?;
        let f = Arc::new(fleet::Fleet::new(redis.clone(), &config.engine.redis, dropped));
        let node = Arc::new(Self::build(config, uid, Engine::Redis(redis), Some(f))?);
        fleet::spawn_tasks(&node, rx);
        let loaded = node
            .load_session_entries()
            .await
            .map_err(|e| anyhow::anyhow!("cannot load revocations and blocks from Redis: {e}"))?;
        tracing::info!(entries = loaded, "session entries loaded from Redis");
        revocation::spawn_sweeps(&node);
        user_status::spawn_online(&node);
        Ok(node)
    }

    fn build(
        config: Config,
        uid: String,
        engine: Engine,
        fleet: Option<Arc<fleet::Fleet>>,
    ) -> Result<Self, crate::auth::AuthError> {
        let verifier = Verifier::new(&config.client)?;
        let name = if config.node.name.is_empty() {
            format!("{}_{}", hostname(), config.http_server.port)
        } else {
            config.node.name.clone()
        };
        let metrics = Arc::new(crate::metrics::Metrics::new(VERSION, crate::api::METHODS));
        Ok(Self {
            proxies: crate::proxy::Proxies::new(&config).with_metrics(metrics.clone()),
            metrics,
            channels: ChannelRules::new(&config.channel),
            emulated: EmulatedSessions::default(),
            hub: Hub::new().with_max_label_keys(config.client.labels.max_keys_per_node),
            config: Arc::new(config),
            engine,
            fleet,
            verifier,
            uid,
            name,
            started: Instant::now(),
            sessions: Sessions::default(),
            timers: timers::Timers::new(),
            statuses: Default::default(),
            shutting_down: AtomicBool::new(false),
            shutdown_tx: watch::channel(false).0,
        })
    }

    /// Starts shutdown: every client gets disconnect 3001 (reconnect), new
    /// connections are refused the same way. The flag is set before the hub is
    /// walked and `connect` re-checks it after registering, so no session is missed.
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        if let Some(f) = &self.fleet {
            f.announce_leaving(&self.uid);
        }
        let _ = self.shutdown_tx.send(true);
        for session in self.hub.all() {
            session.queue.close(Disconnect::shutdown(), true);
        }
    }

    /// The Prometheus exposition, gauges read from the hub and the fleet now.
    pub fn metrics_text(&self) -> String {
        let channels = self.hub.channels();
        let nodes = self.fleet.as_ref().map_or(1, |f| f.peers().len() + 1);
        if let Some(f) = &self.fleet {
            let d = &self.metrics.activity.pub_sub_dropped;
            for (counter, total) in [(&d.client, &f.dropped.client), (&d.control, &f.dropped.control)] {
                let total = total.load(std::sync::atomic::Ordering::Relaxed);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
        }
        self.metrics.encode(crate::metrics::Snapshot {
            clients: self.hub.len(),
            users: self.hub.num_users(),
            subscriptions: channels.num_subscriptions(),
            channels: channels.num_channels(),
            nodes,
        })
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Resolves once shutdown has started.
    pub async fn shutdown_signal(&self) {
        let mut rx = self.shutdown_tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "rotor".into())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Seconds from now until the Unix time `at`, as a `ttl` field: 0 once `at` has passed,
/// at most `u32::MAX`. Expiry times come from token claims and API requests and may be
/// any `i64`, so nothing here may overflow.
pub fn ttl_until(at: i64) -> u32 {
    at.saturating_sub(now_secs()).clamp(0, i64::from(u32::MAX)) as u32
}

/// A Redis failure as the client and API see it: error 100.
fn internal(e: EngineError) -> crate::protocol::ErrorCode {
    tracing::warn!("{e}");
    crate::protocol::ErrorCode::Internal
}
