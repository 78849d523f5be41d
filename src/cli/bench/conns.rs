//! The connect phase and the fleet of open connections: at most `--connect-concurrency`
//! clients handshake at once, each outcome is tallied as it arrives (with a progress
//! bar), and the whole phase stops spawning after [`CONNECT_PHASE_LIMIT`]. Closing the
//! fleet tells every client to close and waits a bounded time for them.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::client::{self, Outcome, Shared};
use super::report::{ErrorTally, Histogram};

/// The connect phase never takes longer than this (clients still handshaking then
/// finish within their own timeout).
const CONNECT_PHASE_LIMIT: Duration = Duration::from_secs(600);
/// Closing the fleet waits at most this long for clients to finish.
const CLOSE_LIMIT: Duration = Duration::from_secs(30);

/// What the connect phase observed.
#[derive(Default)]
pub(super) struct ConnectPhase {
    pub requested: u64,
    pub connected: u64,
    pub errors: ErrorTally,
    pub latency: Histogram,
    pub seconds: f64,
    pub subscribed: u64,
    pub subscribe_errors: ErrorTally,
}

impl ConnectPhase {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Connected { latency, subscribe } => {
                self.connected += 1;
                self.latency.record(latency);
                match subscribe {
                    Some(Ok(())) => self.subscribed += 1,
                    Some(Err(e)) => self.subscribe_errors.add(&e),
                    None => {}
                }
            }
            Outcome::Failed(why) => self.errors.add(&why),
        }
    }

    fn seen(&self) -> u64 {
        self.connected + self.errors.total()
    }
}

/// Open connections and the handle to close them.
pub(super) struct Fleet {
    shared: Arc<Shared>,
    clients: Vec<JoinHandle<Option<u64>>>,
    stop: watch::Sender<bool>,
    pub phase: ConnectPhase,
}

/// What the clients reported when the fleet closed.
pub(super) struct Closed {
    pub phase: ConnectPhase,
    /// Fewest publications any connected client received (`None`: no client).
    pub min_per_client: Option<u64>,
    pub dropped: u64,
    pub drop_reasons: ErrorTally,
}

impl Fleet {
    /// A fleet with no connection yet (see [`Fleet::grow`]).
    pub(super) fn empty(shared: Shared) -> Fleet {
        let (stop, _) = watch::channel(false);
        Fleet { shared: Arc::new(shared), clients: Vec::new(), stop, phase: ConnectPhase::default() }
    }

    /// Opens the connections numbered `range` (user, labels and token follow the
    /// number), `concurrency` at a time, adding their outcomes to the connect phase.
    pub(super) async fn grow(&mut self, range: Range<u64>, concurrency: usize, bar: &ProgressBar) {
        let n = range.end.saturating_sub(range.start);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let halt = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let stop_rx = self.stop.subscribe();
        let spawner = tokio::spawn(spawn_clients(self.shared.clone(), range, concurrency, stop_rx, tx, halt.clone()));
        let phase = &mut self.phase;
        phase.requested += n;
        let target = phase.seen() + n;
        let deadline = tokio::time::Instant::now() + CONNECT_PHASE_LIMIT;
        while phase.seen() < target {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(outcome)) => {
                    phase.add(outcome);
                    bar.set_position(phase.seen());
                    bar.set_message(format!("{} errors", phase.errors.total()));
                }
                Ok(None) => break,
                Err(_) => {
                    halt.store(true, Ordering::Relaxed);
                    let missing = target - phase.seen();
                    for _ in 0..missing {
                        phase.errors.add("not connected within the connect phase limit");
                    }
                    break;
                }
            }
        }
        phase.seconds += started.elapsed().as_secs_f64();
        self.clients.extend(spawner.await.unwrap_or_default());
    }

    /// Publication pushes received so far by all clients.
    pub(super) fn delivery_latency(&self) -> super::report::Latency {
        self.shared.delivery_latency.lock().summary()
    }

    /// Wire bytes of the publication pushes counted in [`Fleet::delivered`].
    pub(super) fn publication_bytes(&self) -> u64 {
        self.shared.publication_bytes.load(Ordering::Relaxed)
    }

    pub(super) fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }

    /// Tells every client to close and collects what they counted.
    pub(super) async fn close(self) -> Closed {
        self.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + CLOSE_LIMIT;
        let mut min_per_client: Option<u64> = None;
        for mut client in self.clients {
            match tokio::time::timeout_at(deadline, &mut client).await {
                Ok(Ok(Some(n))) => min_per_client = Some(min_per_client.map_or(n, |m| m.min(n))),
                Ok(_) => {}
                Err(_) => client.abort(),
            }
        }
        let drop_reasons = self.shared.drop_reasons.lock().clone();
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        Closed { phase: self.phase, min_per_client, dropped, drop_reasons }
    }
}

async fn spawn_clients(
    shared: Arc<Shared>,
    range: Range<u64>,
    concurrency: usize,
    stop: watch::Receiver<bool>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    halt: Arc<AtomicBool>,
) -> Vec<JoinHandle<Option<u64>>> {
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut clients = Vec::with_capacity(range.end.saturating_sub(range.start) as usize);
    for i in range {
        let Ok(permit) = gate.clone().acquire_owned().await else { break };
        if halt.load(Ordering::Relaxed) {
            break;
        }
        clients.push(tokio::spawn(client::run(shared.clone(), i, permit, stop.clone(), outcomes.clone())));
    }
    clients
}
