//! Prometheus metrics under Centrifugo's names, types and labels (so its Grafana
//! dashboard reads Rotor unchanged), plus Rotor's own `rotor_connections_*`.
//!
//! Every counter and histogram a hot path touches is a handle resolved once, here, at
//! start: per transport × frame type, per client command, per API method, per proxy,
//! per survey op. Recording is an atomic add (histograms: a few atomics) — no lock, no
//! allocation, no label lookup. Only rare events (error replies, server disconnects)
//! resolve their `code` label when they happen. Gauges (clients, users, channels…) are
//! set at scrape time from the node, and the summaries Centrifugo exposes beside each
//! `*_histogram` are derived from that histogram at scrape time too (`summary.rs`).
//!
//! This module knows nothing of the node, transports or HTTP: callers pass indexes
//! into the tables below and the node fills the gauges before [`Metrics::encode`].

mod activity;
mod summary;

pub use activity::{Action, Activity, PubSubDropped, client_kind};

use std::array;

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Transports in the order of `node::Transport` (its discriminants index tables here).
pub const TRANSPORTS: [&str; 6] = ["websocket", "uni_http_stream", "uni_sse", "uni_websocket", "http_stream", "sse"];

/// Client commands in the order of [`Frame`]'s first variants.
pub const COMMANDS: [&str; 11] = [
    "connect",
    "subscribe",
    "unsubscribe",
    "publish",
    "presence",
    "presence_stats",
    "history",
    "rpc",
    "send",
    "refresh",
    "sub_refresh",
];

/// The `frame_type` of a message a transport carries: a command or its reply (the
/// first eleven, as [`COMMANDS`]), a push, or a ping/pong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Connect,
    Subscribe,
    Unsubscribe,
    Publish,
    Presence,
    PresenceStats,
    History,
    Rpc,
    Send,
    Refresh,
    SubRefresh,
    Publication,
    Join,
    Leave,
    Ping,
    Pong,
}

const FRAMES: [&str; 16] = [
    "connect",
    "subscribe",
    "unsubscribe",
    "publish",
    "presence",
    "presence_stats",
    "history",
    "rpc",
    "send",
    "refresh",
    "sub_refresh",
    "publication",
    "join",
    "leave",
    "ping",
    "pong",
];

impl Frame {
    /// The command frame of [`COMMANDS`]`[i]`.
    pub fn command(i: usize) -> Frame {
        use Frame::*;
        [Connect, Subscribe, Unsubscribe, Publish, Presence, PresenceStats, History, Rpc, Send, Refresh, SubRefresh][i]
    }
}

/// What the node sends to or receives from its broker (`type` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Publication,
    Join,
    Leave,
}

const MESSAGES: [&str; 3] = ["publication", "join", "leave"];

/// Proxies in the order of `crate::proxy::Proxies`' endpoints (`type` label).
pub const PROXIES: [&str; 6] = ["connect", "refresh", "subscribe", "publish", "sub_refresh", "rpc"];

/// Fleet survey ops (`op` label); others count under `other`.
pub const SURVEY_OPS: [&str; 4] = ["channels", "connections", "user_connections", "other"];

/// Centrifugo's client command duration buckets (seconds).
const COMMAND_BUCKETS: [f64; 15] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Centrifugo's survey duration buckets (seconds).
const SURVEY_BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A message count and its bytes.
pub struct Counted {
    pub count: IntCounter,
    pub size: IntCounter,
}

impl Counted {
    #[inline]
    pub fn add(&self, bytes: usize) {
        self.count.inc();
        self.size.inc_by(bytes as u64);
    }
}

/// A proxy's latency and failures.
pub struct ProxyMetrics {
    pub duration: Histogram,
    pub errors: IntCounter,
}

/// Rotor's connections-API metrics.
pub struct ConnectionsMetrics {
    /// Connections a survey or scan looked at.
    pub rows_scanned: IntCounter,
    /// Connections that matched and were returned or acted on.
    pub matches: IntCounter,
    pub filter_compile_errors: IntCounter,
    pub cel_compile_errors: IntCounter,
    /// Time a request that may survey waited for its turn.
    pub survey_queue_wait: Histogram,
}

/// Values of the gauges, read from the node at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Snapshot {
    pub clients: usize,
    pub users: usize,
    pub subscriptions: usize,
    pub channels: usize,
    pub nodes: usize,
}

pub struct Metrics {
    registry: Registry,
    gauges: [IntGauge; 5],
    /// `centrifugo_transport_messages_sent{transport,frame_type}` (+ `_size`).
    pub sent: [[Counted; FRAMES.len()]; TRANSPORTS.len()],
    /// `centrifugo_transport_messages_received{transport,frame_type}` (+ `_size`).
    pub received: [[Counted; FRAMES.len()]; TRANSPORTS.len()],
    /// `centrifugo_transport_connect_count{transport}`.
    pub connects: [IntCounter; TRANSPORTS.len()],
    /// `centrifugo_client_command_duration_seconds{method}`, per [`COMMANDS`].
    pub commands: [Histogram; COMMANDS.len()],
    /// `centrifugo_node_messages_sent_count{type}` / `_received_count{type}`.
    pub node_sent: [IntCounter; 3],
    pub node_received: [IntCounter; 3],
    /// `centrifugo_api_command_duration_seconds{protocol="http",method}`, per
    /// `api_methods` given to [`Metrics::new`] (the last one is `unknown`).
    api: Vec<Histogram>,
    api_methods: Vec<&'static str>,
    /// `centrifugo_node_survey_duration_seconds{op}`, per [`SURVEY_OPS`].
    pub surveys: [Histogram; SURVEY_OPS.len()],
    pub proxies: [ProxyMetrics; PROXIES.len()],
    pub connections: ConnectionsMetrics,
    /// Connections, subscriptions, node actions, broadcasts (`activity.rs`).
    pub activity: Activity,
    reply_errors: IntCounterVec,
    server_disconnects: IntCounterVec,
}

fn ns(subsystem: &str, name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("centrifugo").subsystem(subsystem)
}

fn hist(opts: Opts, buckets: &[f64]) -> HistogramOpts {
    HistogramOpts { common_opts: opts, buckets: buckets.to_vec() }
}

impl Metrics {
    /// Registers every metric; `api_methods` are the server API's method names.
    #[allow(
        clippy::expect_used,
        reason = "static names and options that the unit tests register; a mistake fails every test, not a server"
    )]
    pub fn new(version: &str, api_methods: &[&'static str]) -> Metrics {
        let r = Registry::new();
        let reg = |c: Box<dyn Collector>| r.register(c).expect("metric names are unique");
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::with_opts(ns("node", name, help)).expect("valid gauge");
            reg(Box::new(g.clone()));
            g
        };
        let gauges = [
            gauge("num_clients", "Number of clients connected."),
            gauge("num_users", "Number of unique users connected."),
            gauge("num_subscriptions", "Number of subscriptions."),
            gauge("num_channels", "Number of channels with one or more subscribers."),
            gauge("num_nodes", "Number of nodes in the cluster."),
        ];
        let build = IntGaugeVec::new(ns("node", "build", "Node build info."), &["version"]).expect("valid");
        build.with_label_values(&[version]).set(1);
        reg(Box::new(build));

        let counters = |sub: &str, name: &str, help: &str, labels: &[&str]| {
            let v = IntCounterVec::new(ns(sub, name, help), labels).expect("valid counter");
            reg(Box::new(v.clone()));
            v
        };
        let per_frame = |name: &str, help: &str| {
            let count = counters("transport", name, help, &["transport", "frame_type", "channel_namespace"]);
            let size = counters(
                "transport",
                &format!("{name}_size"),
                "Size in bytes.",
                &["transport", "frame_type", "channel_namespace"],
            );
            array::from_fn(|t| {
                array::from_fn(|f| Counted {
                    count: count.with_label_values(&[TRANSPORTS[t], FRAMES[f], ""]),
                    size: size.with_label_values(&[TRANSPORTS[t], FRAMES[f], ""]),
                })
            })
        };
        let sent = per_frame("messages_sent", "Number of messages sent to client connections over specific transport.");
        let received = per_frame(
            "messages_received",
            "Number of messages received from client connections over specific transport.",
        );
        let connect =
            counters("transport", "connect_count", "Number of connections to specific transport.", &["transport"]);
        let connects = array::from_fn(|t| connect.with_label_values(&[TRANSPORTS[t]]));

        let histograms = |sub: &str, name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let opts = hist(ns(sub, &format!("{name}_histogram"), help), buckets);
            let v = prometheus::HistogramVec::new(opts, labels).expect("valid histogram");
            reg(Box::new(v.clone()));
            v
        };
        let cmd = histograms(
            "client",
            "command_duration_seconds",
            "Client command duration histogram.",
            &["method", "channel_namespace"],
            &COMMAND_BUCKETS,
        );
        let commands = array::from_fn(|i| cmd.with_label_values(&[COMMANDS[i], ""]));

        let node_msgs = |name: &str, help: &str| {
            let v = counters("node", name, help, &["type", "channel_namespace"]);
            array::from_fn(|i| v.with_label_values(&[MESSAGES[i], ""]))
        };
        let node_sent = node_msgs("messages_sent_count", "Number of messages sent by node to broker.");
        let node_received = node_msgs("messages_received_count", "Number of messages received by node from broker.");

        let api_vec = histograms(
            "api",
            "command_duration_seconds",
            "Server API command duration histogram.",
            &["protocol", "method"],
            &COMMAND_BUCKETS,
        );
        let mut api_methods = api_methods.to_vec();
        api_methods.push("unknown");
        let api = api_methods.iter().map(|m| api_vec.with_label_values(&["http", m])).collect();

        let survey =
            histograms("node", "survey_duration_seconds", "Survey duration histogram.", &["op"], &SURVEY_BUCKETS);
        let surveys = array::from_fn(|i| survey.with_label_values(&[SURVEY_OPS[i]]));

        let proxy_duration = histograms(
            "proxy",
            "duration_seconds",
            "Proxy request duration histogram.",
            &["protocol", "type"],
            &COMMAND_BUCKETS,
        );
        let proxy_errors = counters("proxy", "errors", "Number of failed proxy requests.", &["protocol", "type"]);
        let proxies = array::from_fn(|i| ProxyMetrics {
            duration: proxy_duration.with_label_values(&["http", PROXIES[i]]),
            errors: proxy_errors.with_label_values(&["http", PROXIES[i]]),
        });

        let rotor = |name: &str, help: &str| {
            let c = IntCounter::with_opts(Opts::new(name, help).namespace("rotor").subsystem("connections"))
                .expect("valid counter");
            reg(Box::new(c.clone()));
            c
        };
        let wait = Histogram::with_opts(hist(
            Opts::new("survey_queue_wait_seconds", "Time a request that may survey waited for its turn.")
                .namespace("rotor")
                .subsystem("connections"),
            &COMMAND_BUCKETS,
        ))
        .expect("valid histogram");
        reg(Box::new(wait.clone()));
        let connections = ConnectionsMetrics {
            rows_scanned: rotor("rows_scanned", "Connections examined by connections-API surveys and scans."),
            matches: rotor("matches", "Connections selected by connections-API filters."),
            filter_compile_errors: rotor("filter_compile_errors", "label_filter values refused at compile time."),
            cel_compile_errors: rotor("cel_compile_errors", "CEL expressions refused at compile time."),
            survey_queue_wait: wait,
        };
        let reply_errors = counters(
            "client",
            "num_reply_errors",
            "Number of errors in replies sent to clients.",
            &["method", "code", "channel_namespace"],
        );
        let server_disconnects =
            counters("client", "num_server_disconnects", "Number of server initiated disconnects.", &["code"]);
        let activity = Activity::new(&reg);
        Metrics {
            registry: r,
            gauges,
            sent,
            received,
            connects,
            commands,
            node_sent,
            node_received,
            api,
            api_methods,
            surveys,
            proxies,
            connections,
            activity,
            reply_errors,
            server_disconnects,
        }
    }

    #[inline]
    pub fn sent(&self, transport: usize, frame: Frame, bytes: usize) {
        self.sent[transport][frame as usize].add(bytes);
    }

    #[inline]
    pub fn received(&self, transport: usize, frame: Frame, bytes: usize) {
        self.received[transport][frame as usize].add(bytes);
    }

    #[inline]
    pub fn node_sent(&self, m: Message) {
        self.node_sent[m as usize].inc();
    }

    #[inline]
    pub fn node_received(&self, m: Message) {
        self.node_received[m as usize].inc();
    }

    /// The API duration histogram of `method` (a linear scan of a short static list).
    pub fn api(&self, method: &str) -> &Histogram {
        let i = self.api_methods.iter().position(|m| *m == method).unwrap_or(self.api_methods.len() - 1);
        &self.api[i]
    }

    /// The survey duration histogram of `op`.
    pub fn survey(&self, op: &str) -> &Histogram {
        let i = SURVEY_OPS.iter().position(|o| *o == op).unwrap_or(SURVEY_OPS.len() - 1);
        &self.surveys[i]
    }

    /// Counts an error reply to a client command (rare: resolves its labels here).
    pub fn reply_error(&self, command: usize, code: u32) {
        let mut buf = itoa_buf();
        self.reply_errors.with_label_values(&[COMMANDS[command], fmt_u32(&mut buf, code), ""]).inc();
    }

    /// Counts a disconnect the server initiated (rare: resolves its label here).
    pub fn server_disconnect(&self, code: u32) {
        let mut buf = itoa_buf();
        self.server_disconnects.with_label_values(&[fmt_u32(&mut buf, code)]).inc();
    }

    /// The text exposition (format 0.0.4) with the gauges set from `now`.
    pub fn encode(&self, now: Snapshot) -> String {
        let values = [now.clients, now.users, now.subscriptions, now.channels, now.nodes];
        for (g, v) in self.gauges.iter().zip(values) {
            g.set(v as i64);
        }
        let families = summary::with_summaries(self.registry.gather());
        let mut out = String::new();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut out) {
            tracing::warn!("metrics exposition failed: {e}");
        }
        out
    }
}

fn itoa_buf() -> [u8; 10] {
    [0; 10]
}

/// `code` in decimal, written into `buf` (no allocation).
fn fmt_u32(buf: &mut [u8; 10], mut code: u32) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (code % 10) as u8;
        code /= 10;
        if code == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or_default()
}

/// Content-Type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the tables had 4 transports when emulation added two more, and the
    /// first emulated connect panicked indexing them.
    #[test]
    fn every_transport_has_its_row_in_the_tables() {
        use crate::node::Transport;
        assert_eq!(Transport::ALL.len(), TRANSPORTS.len());
        for t in Transport::ALL {
            assert_eq!(TRANSPORTS[t as usize], t.name());
        }
    }

    #[test]
    fn names_labels_and_handles() {
        let m = Metrics::new("1.0", &["publish", "info"]);
        m.sent(0, Frame::Publication, 10);
        m.sent(0, Frame::Publication, 5);
        m.received(2, Frame::Connect, 7);
        m.connects[1].inc();
        m.node_sent(Message::Join);
        m.api("publish").observe(0.002);
        m.api("nope").observe(0.002);
        m.survey("channels").observe(0.02);
        m.reply_error(1, 103);
        m.server_disconnect(3005);
        let text = m.encode(Snapshot { clients: 3, users: 2, subscriptions: 4, channels: 1, nodes: 1 });
        for line in [
            "centrifugo_node_num_clients 3",
            "centrifugo_node_num_users 2",
            "centrifugo_node_build{version=\"1.0\"} 1",
            "centrifugo_transport_messages_sent{channel_namespace=\"\",frame_type=\"publication\",transport=\"websocket\"} 2",
            "centrifugo_transport_messages_sent_size{channel_namespace=\"\",frame_type=\"publication\",transport=\"websocket\"} 15",
            "centrifugo_transport_messages_received{channel_namespace=\"\",frame_type=\"connect\",transport=\"uni_sse\"} 1",
            "centrifugo_transport_connect_count{transport=\"uni_http_stream\"} 1",
            "centrifugo_node_messages_sent_count{channel_namespace=\"\",type=\"join\"} 1",
            "centrifugo_api_command_duration_seconds_count{method=\"publish\",protocol=\"http\"} 1",
            "centrifugo_api_command_duration_seconds_count{method=\"unknown\",protocol=\"http\"} 1",
            "centrifugo_api_command_duration_seconds_histogram_count{method=\"publish\",protocol=\"http\"} 1",
            "centrifugo_node_survey_duration_seconds_count{op=\"channels\"} 1",
            "centrifugo_client_num_reply_errors{channel_namespace=\"\",code=\"103\",method=\"subscribe\"} 1",
            "centrifugo_client_num_server_disconnects{code=\"3005\"} 1",
            "# TYPE centrifugo_api_command_duration_seconds summary",
            "# TYPE centrifugo_api_command_duration_seconds_histogram histogram",
            "# TYPE rotor_connections_rows_scanned counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn codes_format_without_allocating() {
        let mut b = itoa_buf();
        assert_eq!(fmt_u32(&mut b, 0), "0");
        let mut b = itoa_buf();
        assert_eq!(fmt_u32(&mut b, u32::MAX), "4294967295");
    }
}
