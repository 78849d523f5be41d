//! `rotor bench`: a load generator against a running Rotor server on this machine.
//! It opens N real connections (WebSocket, uni_http_stream or uni_sse) whose tokens carry
//! labels from a synthetic population, optionally subscribes them to a channel,
//! drives the server API (`publish`, `broadcast` or `connections`, over HTTP or gRPC)
//! for a fixed time, and reports the connect rate, deliveries, API throughput and latency, and the
//! server's memory per connection. Everything is bounded — connections, duration,
//! payload, every wait — and only loopback servers are ever loaded.
//!
//! Rooms: `target` (the URL and the loopback rule), `client` (one connection),
//! `conns` (the connect phase and the open fleet), `load` (API load), `grpc` (its
//! gRPC requests), `baseline` (the
//! trivial axum handler to compare with), `procfs` (server pid and RSS), `report`
//! (numbers and output), `phases` (the run in order), `compare` (the same run against
//! a peer server and the ratios). This file parses the arguments into a [`Plan`] and
//! runs it.

mod baseline;
mod client;
mod compare;
mod conns;
mod grpc;
mod load;
mod phases;
mod procfs;
mod report;
mod target;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use serde::Deserialize as _;
use serde_json::{Value, json};

use self::load::{Expect, Pacing, Request};
use self::target::Target;
use crate::cli::population::{LabelKey, Population};
use crate::config::Overrides;

/// Most connections one run may open.
const MAX_CONNECTIONS: u64 = 200_000;
/// Open files the bench needs besides its connections and API workers.
const FD_MARGIN: u64 = 64;
/// With a load, connections settle this long before the server's memory is read.
const SETTLE: Duration = Duration::from_secs(1);
const DEFAULT_FILTER: &str = r#"{"key":"region","cmp":"eq","val":"region-0"}"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Transport {
    #[value(name = "websocket")]
    WebSocket,
    #[value(name = "uni_http_stream")]
    UniHttpStream,
    #[value(name = "uni_sse")]
    UniSse,
    #[value(name = "uni_websocket")]
    UniWebSocket,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::UniHttpStream => "uni_http_stream",
            Transport::UniSse => "uni_sse",
            Transport::UniWebSocket => "uni_websocket",
        }
    }

    /// Server-to-client only: subscriptions come from the token's `channels`.
    fn unidirectional(self) -> bool {
        matches!(self, Transport::UniHttpStream | Transport::UniSse | Transport::UniWebSocket)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Protocol {
    Json,
    Protobuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum LoadKind {
    None,
    Publish,
    Broadcast,
    Connections,
}

impl LoadKind {
    fn name(self) -> &'static str {
        match self {
            LoadKind::None => "none",
            LoadKind::Publish => "publish",
            LoadKind::Broadcast => "broadcast",
            LoadKind::Connections => "connections",
        }
    }

    /// The server API method the load calls.
    fn method(self) -> &'static str {
        self.name()
    }
}

/// The server API the load drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Api {
    /// `POST /api/<method>` on `--url` with JSON bodies.
    Http,
    /// `centrifugal.centrifugo.api.CentrifugoApi` on `--grpc-url`.
    Grpc,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Http => "http",
            Api::Grpc => "grpc",
        }
    }
}

#[derive(clap::Args)]
pub(super) struct Args {
    /// Server base URL; only loopback hosts (127.0.0.0/8, ::1, localhost) are accepted.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Rotor config to read the HMAC secret and the API key from (default ./config.json
    /// when present).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// HMAC secret for connection tokens (overrides the config's).
    #[arg(long)]
    hmac_secret: Option<String>,
    /// Server API key (overrides the config's).
    #[arg(long)]
    api_key: Option<String>,
    /// Connections to open.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS))]
    connections: u64,
    #[arg(long, value_enum, default_value_t = Transport::WebSocket)]
    transport: Transport,
    /// Client protocol encoding (protobuf: WebSocket only, the centrifuge-protobuf
    /// subprotocol).
    #[arg(long, value_enum, default_value_t = Protocol::Json)]
    protocol: Protocol,
    /// Connections handshaking at once.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    connect_concurrency: u64,
    /// Label distribution `name:cardinality[:share]` (repeatable; default region:5,
    /// tier:3, app_version:20, beta:2:0.1).
    #[arg(long = "label")]
    labels: Vec<LabelKey>,
    /// Distinct users (connection i belongs to user i % users).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    users: u64,
    /// Channel every connection subscribes to.
    #[arg(long)]
    subscribe: Option<String>,
    /// API load to drive once connected.
    #[arg(long, value_enum, default_value_t = LoadKind::None)]
    load: LoadKind,
    /// Which server API the load drives.
    #[arg(long, value_enum, default_value_t = Api::Http)]
    api: Api,
    /// The gRPC API's address for --api grpc (loopback only, plaintext).
    #[arg(long, default_value = "http://127.0.0.1:10000")]
    grpc_url: String,
    /// API requests in flight (closed loop), or the cap on them with --rate.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    concurrency: u64,
    /// Open-loop pacing: API requests per second (0 < R ≤ 1000000).
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Seconds of load, or of idling with --load none.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    duration: u64,
    /// Bytes of payload in published data.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    payload_size: u64,
    /// label_filter JSON for --load connections (default: region eq region-0, unless
    /// --expression is given).
    #[arg(long)]
    filter: Option<String>,
    /// CEL expression for --load connections (AND-ed with --filter when both are given).
    #[arg(long)]
    expression: Option<String>,
    /// The server's pid for memory readings (default: the process listening on the port).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Run the same phases against this second Centrifugo-compatible server (same
    /// credentials, loopback only) after the first, and print peer ÷ this ratios.
    #[arg(long)]
    compare_url: Option<String>,
    /// The peer's pid for memory readings (default: the process listening on its port).
    #[arg(long, requires = "compare_url")]
    compare_pid: Option<u32>,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    json: bool,
    /// Also drive a trivial axum handler with the same load and report the ratio.
    #[arg(long)]
    baseline: bool,
    /// Internal: serve the baseline handler (the child process of --baseline).
    #[arg(long = "serve-baseline", hide = true)]
    serve_baseline: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1_000_000.0 => Ok(r),
        _ => Err("expected a number of requests per second in (0, 1000000]".into()),
    }
}

/// A validated run.
struct Plan {
    target: Target,
    secret: String,
    transport: Transport,
    /// Clients speak protobuf.
    protobuf: bool,
    connections: u64,
    connect_concurrency: usize,
    population: Population,
    subscribe: Option<String>,
    load: Option<LoadPlan>,
    /// How long the connections idle before the server's memory is read.
    idle: Duration,
    server_pid: Option<u32>,
    /// `--compare-url`: the peer server and its pid, if given.
    compare: Option<(Target, Option<u32>)>,
    json: bool,
}

struct LoadPlan {
    kind: LoadKind,
    api: Api,
    /// The channel publish and broadcast loads send to.
    channel: String,
    spec: load::Spec,
    rate: Option<f64>,
    baseline: bool,
}

impl Plan {
    fn from_args(a: Args) -> anyhow::Result<Plan> {
        let target = Target::parse(&a.url)?;
        let (secret, api_key) = credentials(&a)?;
        if let Some(ch) = &a.subscribe
            && (ch.is_empty() || ch.len() > 255)
        {
            bail!("--subscribe: a channel name of 1–255 bytes is required");
        }
        if a.protocol == Protocol::Protobuf && a.transport != Transport::WebSocket {
            bail!("--protocol protobuf needs --transport websocket");
        }
        if (a.filter.is_some() || a.expression.is_some()) && a.load != LoadKind::Connections {
            bail!("--filter and --expression select what --load connections lists: give --load connections");
        }
        if a.baseline && a.load == LoadKind::None {
            bail!("--baseline compares API throughput: give a --load too");
        }
        if a.baseline && a.compare_url.is_some() {
            bail!("--baseline and --compare-url are separate comparisons: give one of them");
        }
        if a.api == Api::Grpc && (a.baseline || a.compare_url.is_some()) {
            bail!("--baseline and --compare-url compare HTTP API loads: drop --api grpc");
        }
        let compare = match &a.compare_url {
            Some(url) => Some((Target::parse(url).context("--compare-url")?, a.compare_pid)),
            None => None,
        };
        let load = match a.load {
            LoadKind::None => None,
            kind => Some(load_plan(&a, kind, &target, api_key)?),
        };
        let keys = if a.labels.is_empty() { Population::default_keys() } else { a.labels.clone() };
        let duration = Duration::from_secs(a.duration);
        Ok(Plan {
            target,
            secret,
            transport: a.transport,
            protobuf: a.protocol == Protocol::Protobuf,
            connections: a.connections,
            connect_concurrency: a.connect_concurrency as usize,
            population: Population { keys, users: a.users, meta: false, channels: Vec::new() },
            subscribe: a.subscribe,
            idle: if load.is_some() { SETTLE } else { duration },
            load,
            server_pid: a.server_pid,
            compare,
            json: a.json,
        })
    }

    /// The same run aimed at `target` (the HTTP API load's URL follows it; gRPC loads
    /// are never compared).
    fn retarget(&mut self, target: Target, server_pid: Option<u32>) {
        if let Some(lp) = &mut self.load
            && let Request::Http { url, .. } = &mut lp.spec.request
        {
            *url = target.api(lp.kind.method());
        }
        self.target = target;
        self.server_pid = server_pid;
    }

    /// Open files the run needs: connections, API connections, the runtime.
    fn files_needed(&self) -> u64 {
        let api = self.load.as_ref().map_or(0, |l| l.spec.pacing.in_flight() as u64);
        self.connections + api + FD_MARGIN
    }
}

/// The HMAC secret and API key (`http_api.key`, or `grpc_api.key` with `--api grpc`):
/// flags first, then the config (`-c`, else `./config.json` when present, with `ROTOR_`
/// variables — as the server loads it).
fn credentials(a: &Args) -> anyhow::Result<(String, Option<String>)> {
    let mut secret = a.hmac_secret.clone().unwrap_or_default();
    let mut api_key = a.api_key.clone().unwrap_or_default();
    let wants_key = a.load != LoadKind::None;
    if a.config.is_some() || secret.is_empty() || (wants_key && api_key.is_empty()) {
        let cfg = super::load_config(a.config.as_deref(), &Overrides::default())?.config;
        if secret.is_empty() {
            secret = cfg.client.token.hmac_secret_key;
        }
        if api_key.is_empty() {
            api_key = match a.api {
                Api::Http => cfg.http_api.key,
                Api::Grpc => cfg.grpc_api.key,
            };
        }
    }
    if secret.is_empty() {
        bail!("no HMAC secret for connection tokens: give -c/--config FILE or --hmac-secret");
    }
    if api_key.is_empty() && wants_key {
        bail!("--load {} needs the server API key: give -c/--config FILE or --api-key", a.load.name());
    }
    Ok((secret, Some(api_key).filter(|k| !k.is_empty())))
}

fn load_plan(a: &Args, kind: LoadKind, target: &Target, api_key: Option<String>) -> anyhow::Result<LoadPlan> {
    let channel = a.subscribe.clone().unwrap_or_else(|| "bench".into());
    // Publications carry their send time (`"t"`, see `load::STAMP`) so subscribers
    // measure delivery latency.
    let data = json!({"t": 0, "p": "x".repeat(a.payload_size as usize)});
    let method = kind.method();
    let body = match kind {
        LoadKind::Publish => json!({"channel": channel, "data": data}),
        LoadKind::Broadcast => json!({"channels": [channel], "data": data}),
        LoadKind::Connections => {
            let mut body = json!({});
            if let Some(expr) = a.expression.as_deref() {
                if expr.trim().is_empty() {
                    bail!("--expression: a CEL expression is required");
                }
                body["expression"] = json!(expr);
            }
            let default = a.expression.is_none().then_some(DEFAULT_FILTER);
            if let Some(text) = a.filter.as_deref().or(default) {
                let filter: Value = serde_json::from_str(text).context("--filter is not valid JSON")?;
                if !filter.is_object() {
                    bail!("--filter must be a JSON object (a FilterNode)");
                }
                body["label_filter"] = filter;
            }
            body
        }
        LoadKind::None => unreachable!("no load plan without a load"),
    };
    let k = a.concurrency as usize;
    let pacing = match a.rate {
        Some(per_sec) => Pacing::Rate { per_sec, in_flight: k },
        None => Pacing::Concurrency(k),
    };
    let request = match a.api {
        Api::Http => Request::Http {
            url: target.api(method),
            body: Bytes::from(body.to_string()),
            api_key,
            expect: Expect::ApiResult,
        },
        Api::Grpc => {
            let url = Target::parse(&a.grpc_url).context("--grpc-url")?.base;
            let call = grpc_call(kind, &channel, &body)?;
            let request = grpc::Request::new(&url, api_key.as_deref(), call, load::REQUEST_TIMEOUT);
            Request::Grpc(Box::new(request.map_err(anyhow::Error::msg)?))
        }
    };
    let spec = load::Spec {
        request,
        stamp: matches!(kind, LoadKind::Publish | LoadKind::Broadcast),
        pacing,
        duration: Duration::from_secs(a.duration),
    };
    Ok(LoadPlan { kind, api: a.api, channel, spec, rate: a.rate, baseline: a.baseline })
}

/// The protobuf message of the load's request, built from the HTTP API's JSON body so
/// both APIs send the same thing.
fn grpc_call(kind: LoadKind, channel: &str, body: &Value) -> anyhow::Result<grpc::Call> {
    use crate::grpc::proto::{BroadcastRequest, ConnectionsRequest, FilterNode, PublishRequest};
    let data = || body["data"].to_string().into_bytes();
    Ok(match kind {
        LoadKind::Publish => {
            grpc::Call::Publish(PublishRequest { channel: channel.into(), data: data(), ..Default::default() })
        }
        LoadKind::Broadcast => grpc::Call::Broadcast(BroadcastRequest {
            channels: vec![channel.into()],
            data: data(),
            ..Default::default()
        }),
        LoadKind::Connections => {
            let filter = match body.get("label_filter") {
                Some(f) => Some(FilterNode::deserialize(f).context("--filter is not a FilterNode")?),
                None => None,
            };
            let expression = body["expression"].as_str().unwrap_or_default().to_owned();
            grpc::Call::Connections(ConnectionsRequest { label_filter: filter, expression, ..Default::default() })
        }
        LoadKind::None => unreachable!("no load plan without a load"),
    })
}

pub(super) fn run(a: Args) -> anyhow::Result<()> {
    if a.serve_baseline {
        return baseline::serve();
    }
    let mut plan = Plan::from_args(a)?;
    let nofile = raise_nofile(plan.files_needed(), plan.connections)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting runtime")?;
    let json = plan.json;
    let report = runtime.block_on(phases::execute(&plan, nofile))?;
    if let Some((peer, pid)) = plan.compare.take() {
        plan.retarget(peer, pid);
        let peer = runtime.block_on(phases::execute(&plan, nofile))?;
        let failed = report.connect.connected == 0 || peer.connect.connected == 0;
        let c = compare::Comparison::new(report, peer);
        if json {
            println!("{}", c.to_json());
        } else {
            print!("{}", c.to_text());
        }
        if failed {
            bail!("no connection succeeded on one of the servers");
        }
        return Ok(());
    }
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.connect.connected == 0 {
        bail!("no connection succeeded");
    }
    Ok(())
}

/// Lifts the soft NOFILE limit to the hard one; fails when `needed` still exceeds it.
fn raise_nofile(needed: u64, connections: u64) -> anyhow::Result<u64> {
    let soft = rlimit::increase_nofile_limit(u64::MAX).context("raising the open files limit")?;
    if needed > soft {
        let (_, hard) = rlimit::Resource::NOFILE.get().context("reading the open files limit")?;
        bail!(
            "{connections} connections need about {needed} open files but the limit is {soft} \
             (hard limit {hard}): lower --connections or raise the hard limit (ulimit -Hn)"
        );
    }
    Ok(soft)
}

/// An error and its sources, `: `-separated (reqwest and tungstenite hide the cause).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
