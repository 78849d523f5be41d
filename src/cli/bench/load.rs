//! API load against one endpoint for a fixed time, over HTTP or gRPC (`grpc.rs`):
//! closed-loop (`--concurrency K` workers, each sending its next request when the
//! previous one is answered) or
//! open-loop (`--rate R` requests per second on a fixed schedule, at most K in flight;
//! latency is measured from the scheduled time, so a slow server cannot hide its
//! queueing). Counts and latencies go into fixed-size structures; every request has a
//! timeout, so the phase ends within its duration plus that timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use indicatif::ProgressBar;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::error_chain;
use super::grpc;
use super::report::{ErrorTally, Histogram};

/// No single request may take longer than this.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How requests are paced.
#[derive(Clone, Copy, Debug)]
pub(super) enum Pacing {
    /// Closed loop: this many workers, each with one request in flight.
    Concurrency(usize),
    /// Open loop: `per_sec` requests per second, at most `in_flight` at once.
    Rate { per_sec: f64, in_flight: usize },
}

impl Pacing {
    pub(super) fn in_flight(self) -> usize {
        match self {
            Pacing::Concurrency(k) | Pacing::Rate { in_flight: k, .. } => k,
        }
    }
}

/// What counts as a successful answer.
#[derive(Clone, Copy, Debug)]
pub(super) enum Expect {
    /// HTTP 200 with a `{"result":…}` body (Rotor's server API).
    ApiResult,
    /// HTTP 200, any body (the baseline handler).
    Ok200,
}

/// What one request of the load is.
#[derive(Clone)]
pub(super) enum Request {
    /// `POST url` with a JSON body and, when given, the `X-API-Key` header.
    Http { url: String, body: Bytes, api_key: Option<String>, expect: Expect },
    /// A `CentrifugoApi` call.
    Grpc(Box<grpc::Request>),
}

/// One load phase.
#[derive(Clone)]
pub(super) struct Spec {
    pub request: Request,
    /// Replace the first [`STAMP`] of the body (HTTP) or of the publication data (gRPC)
    /// by the send time (Unix microseconds) so subscribers can measure delivery latency.
    pub stamp: bool,
    pub pacing: Pacing,
    pub duration: Duration,
}

/// What a load phase measured.
#[derive(Default)]
pub(super) struct Outcome {
    /// Requests answered (successfully or not) or failed.
    pub requests: u64,
    pub errors: ErrorTally,
    pub latency: Histogram,
    pub seconds: f64,
}

impl Outcome {
    pub(super) fn successes(&self) -> u64 {
        self.requests - self.errors.total()
    }
}

#[derive(Default)]
struct Recorder {
    done: AtomicU64,
    latency: Mutex<Histogram>,
    errors: Mutex<ErrorTally>,
}

impl Recorder {
    fn record(&self, took: Duration, result: Result<(), String>) {
        self.latency.lock().record(took);
        if let Err(e) = result {
            self.errors.lock().add(&e);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

#[allow(
    clippy::expect_used,
    reason = "a client without TLS, proxies or custom resolvers has nothing that can fail to build"
)]
fn http_client(in_flight: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(in_flight)
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true)
        .build()
        .expect("an HTTP client without TLS or proxies builds")
}

/// How requests are sent: one pooled HTTP client, or one gRPC client per slot (a
/// worker, or a request's turn in the open loop).
#[derive(Clone)]
enum Caller {
    Http(reqwest::Client),
    Grpc(Arc<[grpc::Client]>),
}

impl Caller {
    fn new(spec: &Spec) -> Caller {
        let in_flight = spec.pacing.in_flight();
        match &spec.request {
            Request::Http { .. } => Caller::Http(http_client(in_flight)),
            Request::Grpc(g) => Caller::Grpc(g.clients(in_flight).into()),
        }
    }

    /// Sends `spec`'s request once from `slot`.
    async fn call(&self, spec: &Spec, slot: usize) -> Result<(), String> {
        match (self, &spec.request) {
            (Caller::Http(client), Request::Http { .. }) => call(client, spec).await,
            (Caller::Grpc(clients), Request::Grpc(g)) => {
                let stamp = |data: &[u8]| if spec.stamp { stamped(data) } else { data.to_vec() };
                g.send(&clients[slot % clients.len()], stamp).await.map(drop)
            }
            _ => Err("internal: the caller does not match the request".into()),
        }
    }
}

/// Runs the load described by `spec`, showing progress on `bar`.
pub(super) async fn drive(spec: Spec, bar: &ProgressBar) -> Outcome {
    let client = Caller::new(&spec);
    let rec = Arc::new(Recorder::default());
    let started = Instant::now();
    let end = started + spec.duration;
    let spec = Arc::new(spec);
    let work = match spec.pacing {
        Pacing::Concurrency(k) => tokio::spawn(closed_loop(client, spec.clone(), rec.clone(), k, end)),
        Pacing::Rate { per_sec, in_flight } => {
            tokio::spawn(open_loop(client, spec.clone(), rec.clone(), per_sec, in_flight, end))
        }
    };
    show_progress(work, bar, &rec, started).await;
    let latency = rec.latency.lock().clone();
    let errors = rec.errors.lock().clone();
    Outcome { requests: rec.done.load(Ordering::Relaxed), errors, latency, seconds: started.elapsed().as_secs_f64() }
}

async fn show_progress(mut work: tokio::task::JoinHandle<()>, bar: &ProgressBar, rec: &Recorder, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = &mut work => break,
            _ = tick.tick() => {
                bar.set_position(started.elapsed().as_millis() as u64);
                bar.set_message(format!("{} requests", rec.done.load(Ordering::Relaxed)));
            }
        }
    }
}

async fn closed_loop(client: Caller, spec: Arc<Spec>, rec: Arc<Recorder>, workers: usize, end: Instant) {
    let mut set = JoinSet::new();
    for slot in 0..workers {
        let (client, spec, rec) = (client.clone(), spec.clone(), rec.clone());
        set.spawn(async move {
            while Instant::now() < end {
                let sent = Instant::now();
                let result = client.call(&spec, slot).await;
                rec.record(sent.elapsed(), result);
            }
        });
    }
    while set.join_next().await.is_some() {}
}

async fn open_loop(client: Caller, spec: Arc<Spec>, rec: Arc<Recorder>, per_sec: f64, in_flight: usize, end: Instant) {
    let gate = Arc::new(Semaphore::new(in_flight));
    let interval = Duration::from_secs_f64(1.0 / per_sec);
    let start = Instant::now();
    let mut set = JoinSet::new();
    for i in 0u32.. {
        let due = start + interval * i;
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due).await;
        let Ok(permit) = gate.clone().acquire_owned().await else { break };
        let (client, spec, rec) = (client.clone(), spec.clone(), rec.clone());
        set.spawn(async move {
            let result = client.call(&spec, i as usize).await;
            rec.record(due.elapsed(), result);
            drop(permit);
        });
        while set.try_join_next().is_some() {}
    }
    while set.join_next().await.is_some() {}
}

async fn call(client: &reqwest::Client, spec: &Spec) -> Result<(), String> {
    let (status, body) = post(client, spec).await?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}: {}", snippet(&body)));
    }
    match &spec.request {
        Request::Http { expect: Expect::ApiResult, .. } if !body.starts_with(b"{\"result\"") => Err(snippet(&body)),
        _ => Ok(()),
    }
}

/// The placeholder a stamped body carries: `"t":0`, replaced by `"t":<unix µs>`.
pub(super) const STAMP: &str = "\"t\":0";

/// Microseconds since the Unix epoch (publisher and subscribers share the clock).
pub(super) fn unix_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// `text` with its first [`STAMP`] holding the current time (unchanged without one).
fn stamped(text: &[u8]) -> Vec<u8> {
    match memchr::memmem::find(text, STAMP.as_bytes()) {
        Some(at) => {
            let mut out = Vec::with_capacity(text.len() + 16);
            out.extend_from_slice(&text[..at]);
            out.extend_from_slice(format!("\"t\":{}", unix_us()).as_bytes());
            out.extend_from_slice(&text[at + STAMP.len()..]);
            out
        }
        None => text.to_vec(),
    }
}

async fn post(client: &reqwest::Client, spec: &Spec) -> Result<(reqwest::StatusCode, Bytes), String> {
    let Request::Http { url, body, api_key, .. } = &spec.request else {
        return Err("internal: not an HTTP request".into());
    };
    let body = if spec.stamp { Bytes::from(stamped(body)) } else { body.clone() };
    let mut req = client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
    if let Some(key) = api_key {
        req = req.header("X-API-Key", key);
    }
    let resp = req.send().await.map_err(|e| error_chain(&e))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| error_chain(&e))?;
    Ok((status, body))
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned()
}

/// Sends `spec`'s request once and counts the connections in the answer
/// (`result.connections`), for the `connections` load's report.
pub(super) async fn count_matched(spec: &Spec) -> Result<u64, String> {
    if let Request::Grpc(g) = &spec.request {
        let clients = g.clients(1);
        return g.send(&clients[0], <[u8]>::to_vec).await.map(|n| n as u64);
    }
    let (status, body) = post(&http_client(1), spec).await?;
    let v: Value = serde_json::from_slice(&body).map_err(|_| format!("HTTP {status}: {}", snippet(&body)))?;
    match v["result"]["connections"].as_object() {
        Some(m) => Ok(m.len() as u64),
        None => Err(format!("HTTP {status}: {}", snippet(&body))),
    }
}
