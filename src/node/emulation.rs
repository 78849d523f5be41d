//! Bidirectional emulation's side of the node: which emulated sessions live here,
//! and delivering an `/emulation` request's commands to the session that owns them —
//! on this node straight into the session's inbound channel, on another node (Redis
//! engine) through the fleet's targeted control message to that node.
//!
//! The session ID is a random UUID given only in that session's connect reply; it is
//! what lets a request address a session. Each session's inbound channel is bounded:
//! a request that cannot be queued within [`DELIVERY_WAIT`] is refused as busy
//! rather than buffered without limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::Node;

/// Frames one session may have waiting for its loop.
const INBOUND_CAPACITY: usize = 32;
/// How long a request waits for room in a session's inbound channel.
pub(super) const DELIVERY_WAIT: Duration = Duration::from_secs(1);

/// Why an `/emulation` request was not delivered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmulationError {
    #[error("unknown node")]
    UnknownNode,
    #[error("unknown session")]
    UnknownSession,
    #[error("session busy")]
    Busy,
    #[error("owning node did not answer: {0}")]
    Unreachable(String),
}

impl EmulationError {
    /// The wire form in a fleet answer (see [`EmulationError::from_wire`]).
    pub fn wire(&self) -> &'static str {
        match self {
            EmulationError::UnknownNode => "unknown node",
            EmulationError::UnknownSession => "unknown session",
            EmulationError::Busy => "session busy",
            EmulationError::Unreachable(_) => "unreachable",
        }
    }

    pub fn from_wire(s: &str) -> Self {
        match s {
            "unknown node" => EmulationError::UnknownNode,
            "unknown session" => EmulationError::UnknownSession,
            "session busy" => EmulationError::Busy,
            other => EmulationError::Unreachable(other.to_string()),
        }
    }
}

/// Emulated sessions on this node, by session ID.
#[derive(Default)]
pub struct EmulatedSessions {
    map: Mutex<HashMap<String, mpsc::Sender<Bytes>>>,
}

impl EmulatedSessions {
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sender(&self, session: &str) -> Option<mpsc::Sender<Bytes>> {
        self.map.lock().get(session).cloned()
    }
}

/// A registered session: dropping it unregisters, so requests for it get 404.
pub struct Registration {
    node: Arc<Node>,
    session: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.node.emulated.map.lock().remove(&self.session);
    }
}

impl Node {
    /// Registers an emulated session; its loop reads the returned receiver.
    pub fn register_emulated(self: &Arc<Self>, session: &str) -> (Registration, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        self.emulated.map.lock().insert(session.to_string(), tx);
        (Registration { node: self.clone(), session: session.to_string() }, rx)
    }

    /// Delivers a frame of commands to `session` on node `node` (this one or a peer).
    pub async fn emulate(&self, node: &str, session: &str, data: Bytes) -> Result<(), EmulationError> {
        if node == self.uid {
            return self.emulate_local(session, data).await;
        }
        match &self.fleet {
            Some(f) => f.emulate(&self.uid, node, session, data).await,
            None => Err(EmulationError::UnknownNode),
        }
    }

    /// Delivers a frame to a session of this node.
    pub async fn emulate_local(&self, session: &str, data: Bytes) -> Result<(), EmulationError> {
        let tx = self.emulated.sender(session).ok_or(EmulationError::UnknownSession)?;
        match tokio::time::timeout(DELIVERY_WAIT, tx.send(data)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(EmulationError::UnknownSession),
            Err(_) => Err(EmulationError::Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_delivery_and_unregister() {
        let node = Node::new(crate::config::Config::default()).unwrap();
        let (reg, mut rx) = node.register_emulated("s1");
        node.emulate(&node.uid.clone(), "s1", Bytes::from_static(b"{}")).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"{}"));
        assert_eq!(node.emulate("other-node", "s1", Bytes::new()).await, Err(EmulationError::UnknownNode));
        assert_eq!(node.emulate(&node.uid.clone(), "s2", Bytes::new()).await, Err(EmulationError::UnknownSession));
        drop(reg);
        assert!(node.emulated.is_empty());
        assert_eq!(node.emulate(&node.uid.clone(), "s1", Bytes::new()).await, Err(EmulationError::UnknownSession));
    }

    #[tokio::test]
    async fn full_inbound_is_busy() {
        let node = Node::new(crate::config::Config::default()).unwrap();
        let (_reg, _rx) = node.register_emulated("s");
        let uid = node.uid.clone();
        for _ in 0..INBOUND_CAPACITY {
            node.emulate(&uid, "s", Bytes::from_static(b"{}")).await.unwrap();
        }
        assert_eq!(node.emulate(&uid, "s", Bytes::from_static(b"{}")).await, Err(EmulationError::Busy));
    }

    #[test]
    fn wire_round_trip() {
        for e in [EmulationError::UnknownNode, EmulationError::UnknownSession, EmulationError::Busy] {
            assert_eq!(EmulationError::from_wire(e.wire()), e);
        }
    }
}
