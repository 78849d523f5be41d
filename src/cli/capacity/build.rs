//! Populating a real node's hub with synthetic connections, and measuring what they
//! cost in resident memory.
//!
//! Every connection is a real [`Session`] built by [`Node::new_session`] from a
//! token-shaped [`ConnectToken`] — the same constructor a WebSocket connect uses — and
//! registered with [`NodeHub::add`](crate::hub::Hub::add), so label columns, the user
//! index and the per-connection queue are all the production ones. What is *not*
//! counted is the socket and its transport task (see `rotor bench` for those).
//! Channel subscriptions, when the population has channels, are made through
//! [`Node::subscribe_sessions`] — the server API's `subscribe` — and the `subscribe`
//! push each one queues is dropped, as a client would have read it.

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use crate::auth::ConnectToken;
use crate::cli::population::Population;
use crate::config::Config;
use crate::node::{Node, Queue, ServerSubscribe, Session, Transport};
use crate::protocol::client::ConnectRequest;

/// Resident set size of this process in bytes, from `/proc/self/status`.
pub(super) fn rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow::anyhow!("/proc/self/status has no VmRSS line"))?;
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(kib * 1024)
}

/// A node with `n` synthetic connections, and the RSS growth they caused.
pub(super) struct Built {
    pub node: Arc<Node>,
    pub memory_bytes: u64,
}

/// Builds a memory-engine node and registers `n` connections of `population`.
pub(super) fn build(n: usize, population: &Population, progress: bool) -> anyhow::Result<Built> {
    let node = Node::new(Config::default()).map_err(|e| anyhow::anyhow!("node: {e}"))?;
    populate(node, n, population, progress)
}

/// Registers `n` connections of `population` in `node`'s hub (any engine).
pub(super) fn populate(node: Arc<Node>, n: usize, population: &Population, progress: bool) -> anyhow::Result<Built> {
    let queue_size = node.config.client.queue_max_size;
    let bar = if progress { ProgressBar::new(n as u64) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("building {n}"));
    let request = ConnectRequest { name: "capacity".into(), version: "1.0.0".into(), ..Default::default() };
    let before = rss_bytes()?;
    let mut subscribers: Vec<Vec<Arc<Session>>> = vec![Vec::new(); population.channels.len()];
    for i in 0..n as u64 {
        let token = ConnectToken {
            user: population.user(i),
            meta: population.meta(i),
            labels: population.labels(i),
            ..Default::default()
        };
        let queue = Arc::new(Queue::new(queue_size));
        let session = Arc::new(node.new_session(&request, Transport::WebSocket, Some(&token), queue));
        node.hub.add(session.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        for (c, subs) in subscribers.iter_mut().enumerate() {
            if population.subscribes(i, c) {
                subs.push(session.clone());
            }
        }
        if i % 4096 == 4095 {
            bar.inc(4096);
        }
    }
    subscribe(&node, population, subscribers)?;
    let after = rss_bytes()?;
    bar.finish_and_clear();
    Ok(Built { node, memory_bytes: after.saturating_sub(before) })
}

/// Subscribes `subscribers[c]` to channel `c` of `population`, then empties their
/// queues of the `subscribe` pushes. Runs on the caller's runtime when there is one
/// (fleet mode builds inside a blocking task), else on a runtime of its own.
fn subscribe(node: &Node, population: &Population, subscribers: Vec<Vec<Arc<Session>>>) -> anyhow::Result<()> {
    if subscribers.iter().all(Vec::is_empty) {
        return Ok(());
    }
    let work = async {
        for (ch, subs) in population.channels.iter().zip(&subscribers) {
            let p = ServerSubscribe { channel: ch.name.clone(), ..Default::default() };
            node.subscribe_sessions(subs, &p).await.map_err(|e| {
                anyhow::anyhow!(
                    "--channel {}: subscribing failed: {} ({}); capacity's node runs the default \
                         configuration, which has no channel namespaces",
                    ch.name,
                    e.message(),
                    e.code()
                )
            })?;
        }
        anyhow::Ok(())
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(work)?,
        Err(_) => tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(work)?,
    }
    let mut pushes = Vec::new();
    for s in subscribers.iter().flatten() {
        s.queue.drain(&mut pushes);
        pushes.clear();
    }
    Ok(())
}
