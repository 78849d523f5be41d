//! One PUB/SUB connection per shard, kept up by its own task: it connects (trying
//! each seed address in turn), subscribes the node's control channels on shard 0,
//! reports `Reconnected` so the node resubscribes every channel of its registry, and
//! forwards every message as an [`Incoming`]. When the connection drops, subscribes
//! fail fast (the client sees error 100 and retries) until the task reconnects with
//! backoff (100 ms doubling to 2 s).
//!
//! The hand-off to the node is bounded ([`HANDOFF_CAPACITY`] messages): when the node
//! falls that far behind, further channel and control messages are dropped and
//! counted (Centrifugo's `centrifugo_broker_redis_pub_sub_dropped_messages`) rather
//! than queued without bound. Subscribers with recovery notice the gap by offset.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::PubSubSink;
use tokio::sync::{mpsc, watch};

use super::RedisError;
use super::keys::Keys;

/// What the PUB/SUB connections hand to the node.
#[derive(Debug)]
pub enum Incoming {
    /// A message of a channel's PUB/SUB.
    Channel { channel: String, payload: Vec<u8> },
    /// A node-to-node control message.
    Control(Vec<u8>),
    /// A shard's PUB/SUB connection is up (again): resubscribe its channels.
    Reconnected(usize),
    /// A shard's PUB/SUB connection dropped; publications on it are lost until it
    /// is back.
    Disconnected(usize),
}

/// Messages the readers may hand to the node before they start dropping.
pub const HANDOFF_CAPACITY: usize = 65_536;

/// Messages dropped at a full hand-off, by kind.
#[derive(Debug, Default)]
pub struct Dropped {
    pub client: AtomicU64,
    pub control: AtomicU64,
}

/// The sending side of the readers' hand-off to the node.
#[derive(Clone)]
pub struct Handoff {
    tx: mpsc::Sender<Incoming>,
    dropped: Arc<Dropped>,
}

/// A bounded hand-off and its receiving end; `dropped` counts what did not fit.
pub fn handoff() -> (Handoff, mpsc::Receiver<Incoming>, Arc<Dropped>) {
    let (tx, rx) = mpsc::channel(HANDOFF_CAPACITY);
    let dropped = Arc::new(Dropped::default());
    (Handoff { tx, dropped: dropped.clone() }, rx, dropped)
}

impl Handoff {
    /// Hands over a message without waiting: false once the node is gone. A full
    /// hand-off drops `event` and counts it.
    fn offer(&self, event: Incoming) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(e)) => {
                let counter = match e {
                    Incoming::Control(_) => &self.dropped.control,
                    _ => &self.dropped.client,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Hands over a connection event, waiting for room: these are never dropped.
    async fn event(&self, event: Incoming) {
        let _ = self.tx.send(event).await;
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

#[derive(Clone)]
pub(super) struct PubSub {
    sink: Arc<Mutex<Option<PubSubSink>>>,
    ready: watch::Receiver<bool>,
    io_timeout: Duration,
}

impl PubSub {
    /// Starts the connection task of shard `shard`.
    pub(super) fn start(
        clients: Vec<redis::Client>,
        shard: usize,
        keys: Keys,
        incoming: Handoff,
        connect_timeout: Duration,
    ) -> Self {
        let (ready_tx, ready) = watch::channel(false);
        let ps = Self {
            sink: Arc::new(Mutex::new(None)),
            ready,
            io_timeout: connect_timeout.max(Duration::from_secs(1)) * 2,
        };
        let task = Task { clients, shard, keys, incoming, connect_timeout, ps: ps.clone(), ready: ready_tx };
        tokio::spawn(task.run());
        ps
    }

    /// Waits until the connection is up the first time.
    pub(super) async fn wait_ready(&self, within: Duration) -> Result<(), RedisError> {
        let mut rx = self.ready.clone();
        match tokio::time::timeout(within, rx.wait_for(|up| *up)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(RedisError("PUB/SUB connection did not come up".into())),
        }
    }

    fn sink(&self) -> Result<PubSubSink, RedisError> {
        self.sink.lock().clone().ok_or_else(|| RedisError("PUB/SUB connection is down".into()))
    }

    pub(super) async fn subscribe(&self, name: String) -> Result<(), RedisError> {
        let mut sink = self.sink()?;
        match tokio::time::timeout(self.io_timeout, sink.subscribe(name)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError("SUBSCRIBE timed out".into())),
        }
    }

    pub(super) async fn subscribe_many(&self, names: Vec<String>) -> Result<(), RedisError> {
        if names.is_empty() {
            return Ok(());
        }
        let mut sink = self.sink()?;
        match tokio::time::timeout(self.io_timeout, sink.subscribe(names)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError("SUBSCRIBE timed out".into())),
        }
    }

    pub(super) async fn unsubscribe(&self, name: String) -> Result<(), RedisError> {
        let mut sink = self.sink()?;
        match tokio::time::timeout(self.io_timeout, sink.unsubscribe(name)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError("UNSUBSCRIBE timed out".into())),
        }
    }
}

struct Task {
    clients: Vec<redis::Client>,
    shard: usize,
    keys: Keys,
    incoming: Handoff,
    connect_timeout: Duration,
    ps: PubSub,
    ready: watch::Sender<bool>,
}

impl Task {
    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 0usize;
        loop {
            if self.incoming.is_closed() {
                return;
            }
            let client = &self.clients[attempt % self.clients.len()];
            attempt += 1;
            match tokio::time::timeout(self.connect_timeout, client.get_async_pubsub()).await {
                Ok(Ok(conn)) => {
                    if self.serve(conn).await {
                        backoff = Duration::from_millis(100);
                    }
                }
                Ok(Err(e)) => tracing::debug!(shard = self.shard, "PUB/SUB connect failed: {e}"),
                Err(_) => tracing::debug!(shard = self.shard, "PUB/SUB connect timed out"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Runs one connection until it drops; true if it came up at all.
    async fn serve(&self, conn: redis::aio::PubSub) -> bool {
        let (mut sink, mut stream) = conn.split();
        if self.shard == 0 {
            let names = vec![self.keys.control(), self.keys.own_node()];
            let subscribed = tokio::time::timeout(self.ps.io_timeout, sink.subscribe(names)).await;
            if !matches!(subscribed, Ok(Ok(()))) {
                tracing::warn!("could not subscribe to the control channels; retrying");
                return false;
            }
        }
        *self.ps.sink.lock() = Some(sink);
        let _ = self.ready.send(true);
        tracing::info!(shard = self.shard, "Redis PUB/SUB connected");
        self.incoming.event(Incoming::Reconnected(self.shard)).await;
        let control = self.keys.control();
        let own = self.keys.own_node();
        while let Some(msg) = stream.next().await {
            let name = msg.get_channel_name();
            let payload = msg.get_payload_bytes().to_vec();
            let event = if name == control || name == own {
                Incoming::Control(payload)
            } else if let Some(channel) = self.keys.channel_of(name) {
                Incoming::Channel { channel: channel.to_string(), payload }
            } else {
                continue;
            };
            if !self.incoming.offer(event) {
                return true;
            }
        }
        self.ps.sink.lock().take();
        let _ = self.ready.send(false);
        tracing::warn!(shard = self.shard, "Redis PUB/SUB connection lost; reconnecting");
        self.incoming.event(Incoming::Disconnected(self.shard)).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_handoff_drops_and_counts_by_kind_but_keeps_order() {
        let (tx, mut rx, dropped) = handoff();
        let msg = |n: usize| Incoming::Channel { channel: "c".into(), payload: n.to_string().into_bytes() };
        for n in 0..HANDOFF_CAPACITY {
            assert!(tx.offer(msg(n)));
        }
        assert!(tx.offer(msg(usize::MAX)));
        assert!(tx.offer(Incoming::Control(b"x".to_vec())));
        assert_eq!(dropped.client.load(Ordering::Relaxed), 1);
        assert_eq!(dropped.control.load(Ordering::Relaxed), 1);
        // Room again after the node caught up; what was kept arrives in order.
        assert!(matches!(rx.recv().await, Some(Incoming::Channel { payload, .. }) if payload == b"0"));
        tx.event(Incoming::Reconnected(0)).await;
        drop(rx);
        assert!(!tx.offer(msg(1)), "a closed hand-off reports the node gone");
    }
}
