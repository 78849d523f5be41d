//! One synthetic client: its token (user and labels from the population), its
//! connection over WebSocket (JSON or protobuf), uni_http_stream, uni_sse or
//! uni_websocket, the connect (and subscribe) handshake, then an idle loop that
//! answers pings (bidirectional WebSocket only), counts publication pushes and
//! closes cleanly when told to. A client sends nothing but connect, subscribe, pongs
//! and a close frame; every wait in the handshake is bounded by the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::report::ErrorTally;
use super::target::{CONNECTIONS_PER_SOURCE_IP, Target};
use super::{Transport, error_chain};
use crate::cli::population::Population;

/// Connection tokens expire this long after the run starts.
const TOKEN_TTL_SECS: i64 = 3 * 3600;
/// TCP connect + handshake + connect reply (+ subscribe reply) of one client.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a closing client waits for the server's side of the close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// A uni_http_stream line longer than this is an error, not a reason to grow.
const MAX_LINE: usize = 1 << 20;

/// What every client of a run shares: the plan and the counters clients update.
pub(super) struct Shared {
    pub target: Target,
    pub transport: Transport,
    pub secret: String,
    pub population: Population,
    pub subscribe: Option<String>,
    /// WebSocket clients speak protobuf (the `centrifuge-protobuf` subprotocol).
    pub protobuf: bool,
    /// Publication pushes received by all clients.
    pub delivered: AtomicU64,
    /// Wire bytes of those pushes (WebSocket: a JSON line and its separator, or a
    /// length-prefixed protobuf Reply).
    pub publication_bytes: AtomicU64,
    /// Connected clients whose connection ended before they were told to close.
    pub dropped: AtomicU64,
    pub drop_reasons: Mutex<ErrorTally>,
    /// Send-to-receive time of stamped publications (publisher and subscribers share
    /// this machine's clock).
    pub delivery_latency: Mutex<super::report::Histogram>,
    /// uni_http_stream clients, one per source address bucket.
    http: Vec<reqwest::Client>,
}

impl Shared {
    pub(super) fn new(
        target: Target,
        transport: Transport,
        secret: String,
        population: Population,
        subscribe: Option<String>,
        connections: u64,
    ) -> anyhow::Result<Shared> {
        let mut http = Vec::new();
        if transport.unidirectional() {
            for bucket in 0..connections.div_ceil(CONNECTIONS_PER_SOURCE_IP) {
                let builder = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).tcp_nodelay(true);
                http.push(builder.local_address(target.source_ip(bucket)).build()?);
            }
        }
        Ok(Shared {
            target,
            transport,
            secret,
            population,
            subscribe,
            protobuf: false,
            delivered: AtomicU64::new(0),
            publication_bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            drop_reasons: Mutex::new(ErrorTally::default()),
            delivery_latency: Mutex::new(Default::default()),
            http,
        })
    }

    /// The connection token of client `i`: population user and labels, expiring in a
    /// few hours; uni clients get the subscribed channel in `channels`.
    fn token(&self, i: u64) -> String {
        let labels: Map<String, Value> =
            self.population.labels(i).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let now = crate::node::now_secs();
        let mut claims = json!({
            "sub": self.population.user(i),
            "iat": now,
            "exp": now + TOKEN_TTL_SECS,
            "labels": labels,
        });
        if let (true, Some(ch)) = (self.transport.unidirectional(), &self.subscribe) {
            claims["channels"] = json!([ch]);
        }
        crate::auth::sign_hs256(&claims, &self.secret)
    }

    fn dropped(&self, why: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.drop_reasons.lock().add(why);
    }
}

/// How a client's connect phase ended.
pub(super) enum Outcome {
    /// Connected; with `--subscribe`, whether the subscription worked.
    Connected {
        latency: Duration,
        subscribe: Option<Result<(), String>>,
    },
    Failed(String),
}

/// Runs client `i`: connects (holding `permit` meanwhile), reports the outcome, idles
/// until `stop`; returns the publications it received, `None` if it never connected.
pub(super) async fn run(
    shared: Arc<Shared>,
    i: u64,
    permit: OwnedSemaphorePermit,
    stop: watch::Receiver<bool>,
    outcomes: mpsc::UnboundedSender<Outcome>,
) -> Option<u64> {
    let started = Instant::now();
    let opened = tokio::time::timeout(CONNECT_TIMEOUT, open(&shared, i)).await;
    drop(permit);
    let (session, subscribe, mut delivered) = match opened {
        Ok(Ok(o)) => o,
        Ok(Err(why)) => {
            let _ = outcomes.send(Outcome::Failed(why));
            return None;
        }
        Err(_) => {
            let _ = outcomes.send(Outcome::Failed(format!("no connect reply within {CONNECT_TIMEOUT:?}")));
            return None;
        }
    };
    let _ = outcomes.send(Outcome::Connected { latency: started.elapsed(), subscribe });
    match session {
        Session::Ws(ws) => ws_idle(ws, &shared, stop, &mut delivered).await,
        Session::Uni(uni) => uni_idle(uni, &shared, stop, &mut delivered).await,
    }
    Some(delivered)
}

type Ws = WebSocketStream<TcpStream>;

enum Session {
    Ws(Box<Ws>),
    Uni(Uni),
}

/// A connected session, the subscription result, publications already received.
type Opened = (Session, Option<Result<(), String>>, u64);

async fn open(shared: &Shared, i: u64) -> Result<Opened, String> {
    match shared.transport {
        Transport::WebSocket => ws_open(shared, i).await,
        Transport::UniHttpStream | Transport::UniSse => uni_open(shared, i).await,
        Transport::UniWebSocket => uni_ws_open(shared, i).await,
    }
}

async fn tcp_connect(target: &Target, i: u64) -> std::io::Result<TcpStream> {
    let socket = if target.addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = target.source_ip(i / CONNECTIONS_PER_SOURCE_IP) {
        socket.bind((ip, 0).into())?;
    }
    let stream = socket.connect(target.addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A WebSocket to `url` (with the protobuf subprotocol when the run speaks it).
async fn ws_handshake(shared: &Shared, i: u64, url: String) -> Result<Box<Ws>, String> {
    let stream = tcp_connect(&shared.target, i).await.map_err(|e| format!("TCP connect: {e}"))?;
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let mut request = url.into_client_request().map_err(|e| format!("WebSocket URL: {e}"))?;
    if shared.protobuf {
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(pb_bench::SUBPROTOCOL));
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("WebSocket handshake: {}", error_chain(&e)))?;
    Ok(Box::new(ws))
}

async fn ws_open(shared: &Shared, i: u64) -> Result<Opened, String> {
    let mut ws = ws_handshake(shared, i, shared.target.websocket()).await?;
    let mut delivered = 0;
    if shared.protobuf {
        return pb_bench::handshake(ws, shared, i).await;
    }
    let connect = json!({"id": 1, "connect": {"token": shared.token(i), "name": "rotor-bench"}});
    send(&mut ws, connect.to_string()).await?;
    reply(&mut ws, 1, shared, &mut delivered).await?.map_err(|e| format!("connect: {e}"))?;
    let mut subscribe = None;
    if let Some(ch) = &shared.subscribe {
        send(&mut ws, json!({"id": 2, "subscribe": {"channel": ch}}).to_string()).await?;
        subscribe = Some(reply(&mut ws, 2, shared, &mut delivered).await?);
    }
    Ok((Session::Ws(ws), subscribe, delivered))
}

async fn send(ws: &mut Ws, text: String) -> Result<(), String> {
    ws.send(Message::text(text)).await.map_err(|e| format!("WebSocket send: {e}"))
}

/// Reads frames until the reply to command `id`; the outer error is a dead
/// connection, the inner one the server's error reply.
async fn reply(ws: &mut Ws, id: u64, shared: &Shared, delivered: &mut u64) -> Result<Result<(), String>, String> {
    loop {
        let msg = match ws.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(format!("WebSocket: {e}")),
            None => return Err("connection closed before the reply".into()),
        };
        if let Message::Binary(b) = &msg
            && shared.protobuf
        {
            match pb_bench::scan(ws, b, shared, delivered).await? {
                Some(found) if found.0 == id as u32 => return Ok(found.1),
                _ => continue,
            }
        }
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(frame) => return Err(close_reason(frame.as_ref())),
            _ => continue,
        };
        let mut found = None;
        let scan = scan_frame(text.as_str(), |line| {
            if found.is_none() && line.contains("\"id\"") {
                found = serde_json::from_str::<Value>(line).ok().filter(|v| v["id"] == id);
            }
        });
        count(shared, delivered, scan.pubs);
        shared.publication_bytes.fetch_add(scan.pub_bytes, Ordering::Relaxed);
        record_latency(shared, text.as_bytes());
        if scan.ping {
            send(ws, "{}".into()).await?;
        }
        if let Some(v) = found {
            return Ok(match v.get("error") {
                Some(e) => Err(format!("error {}: {}", e["code"], e["message"].as_str().unwrap_or_default())),
                None => Ok(()),
            });
        }
    }
}

/// What one frame of newline-separated JSON lines holds.
#[derive(Debug, Default, PartialEq)]
struct Scan {
    pubs: u64,
    /// Bytes of the publication lines, each with its `\n` separator.
    pub_bytes: u64,
    ping: bool,
}

/// Counts publication pushes and pings in `frame`; other lines go to `other`.
fn scan_frame(frame: &str, mut other: impl FnMut(&str)) -> Scan {
    let mut scan = Scan::default();
    for line in frame.split('\n') {
        if line == "{}" {
            scan.ping = true;
        } else if is_publication(line.as_bytes()) {
            scan.pubs += 1;
            scan.pub_bytes += line.len() as u64 + 1;
        } else {
            other(line);
        }
    }
    scan
}

fn is_publication(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"\"pub\"").is_some()
}

/// Records the delivery latency of every stamped publication (`"t":<unix µs>`) in
/// `frame`.
fn record_latency(shared: &Shared, frame: &[u8]) {
    let mut found = Vec::new();
    latencies(frame, super::load::unix_us(), &mut found);
    if !found.is_empty() {
        let mut h = shared.delivery_latency.lock();
        found.into_iter().for_each(|d| h.record(d));
    }
}

/// The delivery latency, as of `now` (unix µs), of every stamped publication in `frame`.
fn latencies(frame: &[u8], now: u64, out: &mut Vec<Duration>) {
    for at in memchr::memmem::find_iter(frame, b"\"t\":") {
        let digits = &frame[at + 4..];
        let end = digits.iter().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
        if let Some(sent) = std::str::from_utf8(&digits[..end]).ok().and_then(|d| d.parse::<u64>().ok())
            && sent > 0
        {
            out.push(Duration::from_micros(now.saturating_sub(sent)));
        }
    }
}

/// Frames a WebSocket client read in one burst (those ready without waiting), counted
/// and their latencies recorded together when the burst ends: one histogram lock and
/// one shared counter update per burst instead of per frame, which matters when each
/// publication is a frame of its own (uni_websocket without joined pushes).
#[derive(Default)]
struct Tally {
    frames: usize,
    pubs: u64,
    pub_bytes: u64,
    latencies: Vec<Duration>,
}

impl Tally {
    /// Most frames a burst takes before it is flushed (and the stop signal looked at).
    const BURST: usize = 256;

    fn frame(&mut self, frame: &[u8], scan: &Scan) {
        self.frames += 1;
        self.pubs += scan.pubs;
        self.pub_bytes += scan.pub_bytes;
        latencies(frame, super::load::unix_us(), &mut self.latencies);
    }

    fn flush(&mut self, shared: &Shared, delivered: &mut u64) {
        count(shared, delivered, self.pubs);
        if self.pub_bytes > 0 {
            shared.publication_bytes.fetch_add(self.pub_bytes, Ordering::Relaxed);
        }
        if !self.latencies.is_empty() {
            let mut h = shared.delivery_latency.lock();
            self.latencies.drain(..).for_each(|d| h.record(d));
        }
        (self.frames, self.pubs, self.pub_bytes) = (0, 0, 0);
    }
}

fn count(shared: &Shared, delivered: &mut u64, pubs: u64) {
    if pubs > 0 {
        *delivered += pubs;
        shared.delivered.fetch_add(pubs, Ordering::Relaxed);
    }
}

fn close_reason(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) => format!("closed by the server: {} {}", u16::from(f.code), f.reason),
        None => "closed by the server".into(),
    }
}

async fn ws_idle(mut ws: Box<Ws>, shared: &Shared, mut stop: watch::Receiver<bool>, delivered: &mut u64) {
    let mut tally = Tally::default();
    loop {
        // Frames already read are taken without waiting; the burst is flushed before
        // waiting for more, and every `Tally::BURST` frames.
        let ready = if tally.frames < Tally::BURST { ws.next().now_or_never() } else { None };
        let msg = match ready {
            Some(msg) => msg,
            None => {
                tally.flush(shared, delivered);
                if *stop.borrow() {
                    break;
                }
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    msg = ws.next() => msg,
                }
            }
        };
        match msg {
            Some(Ok(Message::Binary(b))) if shared.protobuf => {
                if let Err(e) = pb_bench::scan(&mut ws, &b, shared, delivered).await {
                    return shared.dropped(&e);
                }
            }
            Some(Ok(Message::Text(t))) => {
                let scan = scan_frame(t.as_str(), |_| {});
                tally.frame(t.as_bytes(), &scan);
                let answer = scan.ping && shared.transport == Transport::WebSocket;
                if answer && send(&mut ws, "{}".into()).await.is_err() {
                    return shared.dropped("pong could not be sent");
                }
            }
            Some(Ok(Message::Close(frame))) => {
                tally.flush(shared, delivered);
                return shared.dropped(&close_reason(frame.as_ref()));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tally.flush(shared, delivered);
                return shared.dropped(&format!("WebSocket: {e}"));
            }
            None => {
                tally.flush(shared, delivered);
                return shared.dropped("connection closed");
            }
        }
    }
    let close = async {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        if WebSocketStream::close(&mut ws, Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, close).await;
}

/// A uni_http_stream or uni_sse response read message by message.
struct Uni {
    response: reqwest::Response,
    pending: Vec<u8>,
    /// `text/event-stream`: messages are the `data:` lines of events.
    sse: bool,
}

impl Uni {
    /// The next message (a JSON line, or an SSE event's data), `None` at the end.
    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            let Some(line) = self.next_raw_line().await? else { return Ok(None) };
            if !self.sse {
                return Ok(Some(line));
            }
            if let Some(data) = sse_data(&line) {
                return Ok(Some(data.to_vec()));
            }
        }
    }

    /// Takes every complete message in `pending`, keeping an incomplete last line for
    /// the next chunk: how many are publications, and the first disconnect push.
    fn take_messages(&mut self) -> Result<Taken, String> {
        let mut taken = Taken::default();
        let mut start = 0;
        while let Some(at) = memchr::memchr(b'\n', &self.pending[start..]) {
            let line = &self.pending[start..start + at];
            start += at + 1;
            let message = if self.sse {
                match sse_data(line) {
                    Some(data) => data,
                    None => continue,
                }
            } else {
                line
            };
            if is_publication(message) {
                taken.pubs += 1;
            } else if memchr::memmem::find(message, b"\"disconnect\"").is_some() {
                taken.disconnect = Some(String::from_utf8_lossy(message).into_owned());
                break;
            }
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_LINE {
            return Err(format!("a line longer than {MAX_LINE} bytes"));
        }
        Ok(taken)
    }

    /// The next complete line without its `\n`, `None` at the end of the stream.
    async fn next_raw_line(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(at) = memchr::memchr(b'\n', &self.pending) {
                let mut line: Vec<u8> = self.pending.drain(..=at).collect();
                line.pop();
                return Ok(Some(line));
            }
            if self.pending.len() > MAX_LINE {
                return Err(format!("a line longer than {MAX_LINE} bytes"));
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self.pending.extend_from_slice(&bytes),
                Ok(None) => return Ok(None),
                Err(e) => return Err(format!("stream: {}", error_chain(&e))),
            }
        }
    }
}

/// What [`Uni::take_messages`] found.
#[derive(Debug, Default, PartialEq)]
struct Taken {
    pubs: u64,
    disconnect: Option<String>,
}

/// The data of one SSE line (`data:` field, one optional space, `\r` trimmed); `None`
/// for other fields, comments and the blank line between events.
fn sse_data(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let data = line.strip_prefix(b"data:")?;
    Some(data.strip_prefix(b" ").unwrap_or(data))
}

async fn uni_open(shared: &Shared, i: u64) -> Result<Opened, String> {
    let client = &shared.http[(i / CONNECTIONS_PER_SOURCE_IP) as usize];
    let (url, sse) = match shared.transport {
        Transport::UniSse => (shared.target.uni_sse(), true),
        _ => (shared.target.uni_http_stream(), false),
    };
    let name = shared.transport.name();
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(json!({"token": shared.token(i), "name": "rotor-bench"}).to_string())
        .send()
        .await
        .map_err(|e| format!("{name} request: {}", error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{name}: HTTP {status}"));
    }
    let mut uni = Uni { response, pending: Vec::new(), sse };
    let first = uni.next_line().await?.ok_or("stream ended before the connect push")?;
    let subscribe = connect_push(shared, &first)?;
    Ok((Session::Uni(uni), subscribe, 0))
}

/// uni_websocket: the ConnectRequest as the first text message, then the connect
/// push as the first message back; later pushes are read by the WebSocket idle loop.
async fn uni_ws_open(shared: &Shared, i: u64) -> Result<Opened, String> {
    let mut ws = ws_handshake(shared, i, shared.target.uni_websocket()).await?;
    send(&mut ws, json!({"token": shared.token(i), "name": "rotor-bench"}).to_string()).await?;
    let first = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(Message::Close(frame))) => return Err(close_reason(frame.as_ref())),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("WebSocket: {e}")),
            None => return Err("connection closed before the connect push".into()),
        }
    };
    // With `join_push_messages` the connect push is the first of the frame's lines.
    let line = first.as_str().split('\n').next().unwrap_or_default();
    let subscribe = connect_push(shared, line.as_bytes())?;
    Ok((Session::Ws(ws), subscribe, 0))
}

/// A unidirectional stream's first message, which must be the connect push; the
/// subscription result is whether the run's channel is among its `subs`.
fn connect_push(shared: &Shared, first: &[u8]) -> Result<Option<Result<(), String>>, String> {
    let push: Value = serde_json::from_slice(first).map_err(|e| format!("connect push is not JSON: {e}"))?;
    let Some(connect) = push.get("connect") else {
        return Err(format!("expected a connect push, got {}", String::from_utf8_lossy(first)));
    };
    Ok(shared.subscribe.as_ref().map(|ch| match connect["subs"].get(ch) {
        Some(_) => Ok(()),
        None => Err(format!("channel {ch:?} missing from the connect push's subs")),
    }))
}

/// Reads a stream chunk by chunk: the complete messages of each chunk are counted and
/// their stamps recorded together (one histogram lock per chunk, no copy per
/// message), as the WebSocket loop does per frame, so the client spends on a stream
/// about what it spends on a socket carrying the same messages.
async fn uni_idle(mut uni: Uni, shared: &Shared, mut stop: watch::Receiver<bool>, delivered: &mut u64) {
    loop {
        if let Some(last) = memchr::memrchr(b'\n', &uni.pending) {
            record_latency(shared, &uni.pending[..last]);
        }
        match uni.take_messages() {
            Ok(Taken { pubs, disconnect: None }) => count(shared, delivered, pubs),
            Ok(Taken { disconnect: Some(d), .. }) => return shared.dropped(&format!("disconnect push: {d}")),
            Err(e) => return shared.dropped(&e),
        }
        let chunk = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            chunk = uni.response.chunk() => chunk,
        };
        match chunk {
            Ok(Some(bytes)) => uni.pending.extend_from_slice(&bytes),
            Ok(None) => return shared.dropped("stream ended"),
            Err(e) => return shared.dropped(&format!("stream: {}", error_chain(&e))),
        }
    }
}

/// The protobuf client: the same handshake and idle loop over binary frames of
/// length-prefixed `Command` / `Reply` messages.
mod pb_bench {
    use prost::Message as _;

    use super::*;
    use crate::protocol::pb::{decode_replies, wire};

    pub(super) const SUBPROTOCOL: &str = "centrifuge-protobuf";

    fn frame(cmd: wire::Command) -> Message {
        Message::Binary(cmd.encode_length_delimited_to_vec().into())
    }

    pub(super) async fn handshake(mut ws: Box<Ws>, shared: &Shared, i: u64) -> Result<Opened, String> {
        let mut delivered = 0;
        let connect = wire::ConnectRequest { token: shared.token(i), name: "rotor-bench".into(), ..Default::default() };
        let cmd = wire::Command { id: 1, connect: Some(connect), ..Default::default() };
        ws.send(frame(cmd)).await.map_err(|e| format!("WebSocket send: {e}"))?;
        reply(&mut ws, 1, shared, &mut delivered).await?.map_err(|e| format!("connect: {e}"))?;
        let mut subscribe = None;
        if let Some(ch) = &shared.subscribe {
            let req = wire::SubscribeRequest { channel: ch.clone(), ..Default::default() };
            let cmd = wire::Command { id: 2, subscribe: Some(req), ..Default::default() };
            ws.send(frame(cmd)).await.map_err(|e| format!("WebSocket send: {e}"))?;
            subscribe = Some(reply(&mut ws, 2, shared, &mut delivered).await?);
        }
        Ok((Session::Ws(ws), subscribe, delivered))
    }

    /// Counts the publications of one binary frame (and their bytes), answers a ping
    /// with an empty Command; returns the first command reply as (id, outcome).
    pub(super) async fn scan(
        ws: &mut Ws,
        frame: &[u8],
        shared: &Shared,
        delivered: &mut u64,
    ) -> Result<Option<(u32, Result<(), String>)>, String> {
        let replies = decode_replies(frame).ok_or("a frame that is not length-prefixed Replies")?;
        let (mut pubs, mut ping, mut found) = (0, false, None);
        for r in &replies {
            if let Some(p) = r.push.as_ref().and_then(|p| p.r#pub.as_ref()) {
                pubs += 1;
                record_latency(shared, &p.data);
            } else if r.id > 0 {
                let outcome = match &r.error {
                    Some(e) => Err(format!("error {}: {}", e.code, e.message)),
                    None => Ok(()),
                };
                found.get_or_insert((r.id, outcome));
            } else if *r == wire::Reply::default() {
                ping = true;
            }
        }
        if pubs > 0 {
            // Publication pushes are the frame's bulk: count the frame minus the rest.
            let other: usize = replies
                .iter()
                .filter(|r| r.push.as_ref().is_none_or(|p| p.r#pub.is_none()))
                .map(|r| {
                    let n = r.encoded_len();
                    n + prost::length_delimiter_len(n)
                })
                .sum();
            shared.publication_bytes.fetch_add((frame.len() - other) as u64, Ordering::Relaxed);
        }
        count(shared, delivered, pubs);
        if ping {
            ws.send(Message::Binary(vec![0].into())).await.map_err(|e| format!("WebSocket send: {e}"))?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sse_data_lines() {
        assert_eq!(sse_data(b"data: {\"a\":1}\r"), Some(&b"{\"a\":1}"[..]));
        assert_eq!(sse_data(b"data:{}"), Some(&b"{}"[..]));
        assert_eq!(sse_data(b"data:"), Some(&b""[..]));
        for other in [&b""[..], b"\r", b": comment", b"event: x", b"id: 1", b"dat: {}"] {
            assert_eq!(sse_data(other), None, "{other:?}");
        }
    }

    #[test]
    fn stream_messages_are_taken_whole_lines_at_a_time() {
        // A response is only needed to build a Uni; nothing is read from it here.
        let response = reqwest::Response::from(axum::http::Response::new(Vec::<u8>::new()));
        let pubs = "data: {\"push\":{\"channel\":\"a\",\"pub\":{\"data\":{\"t\":1}}}}\n\n";
        let mut uni = Uni { response, pending: Vec::new(), sse: true };
        uni.pending.extend_from_slice(format!("{pubs}: ping\n{pubs}data: {{\"push\":{{\"ch").as_bytes());
        assert_eq!(uni.take_messages(), Ok(Taken { pubs: 2, disconnect: None }));
        assert_eq!(uni.pending, b"data: {\"push\":{\"ch", "the incomplete line waits for the next chunk");
        uni.pending.extend_from_slice(b"annel\":\"a\",\"pub\":{}}}\r\n\r\ndata: {\"disconnect\":{\"code\":3001}}\n\n");
        let taken = uni.take_messages().unwrap();
        assert_eq!(taken.pubs, 1);
        assert_eq!(taken.disconnect.as_deref(), Some("{\"disconnect\":{\"code\":3001}}"));
        // JSON lines: every line is a message.
        uni.sse = false;
        uni.pending = b"{\"push\":{\"pub\":{}}}\n{}\n{\"push\":{\"pub\":{}}}\n{\"pu".to_vec();
        assert_eq!(uni.take_messages(), Ok(Taken { pubs: 2, disconnect: None }));
        uni.pending = vec![b'x'; MAX_LINE + 1];
        assert!(uni.take_messages().is_err(), "a line over the limit is an error");
    }

    #[test]
    fn a_burst_of_frames_is_counted_and_timed_at_its_flush() {
        let population = Population { keys: Vec::new(), users: 1, meta: false, channels: Vec::new() };
        let target = Target::parse("http://127.0.0.1:1").unwrap();
        let shared = Shared::new(target, Transport::UniWebSocket, "s".into(), population, None, 1).unwrap();
        let sent = super::super::load::unix_us() - 5_000;
        let publication = format!("{{\"push\":{{\"channel\":\"a\",\"pub\":{{\"data\":{{\"t\":{sent}}}}}}}}}");
        let mut tally = Tally::default();
        for frame in [publication.as_str(), publication.as_str(), "{}"] {
            tally.frame(frame.as_bytes(), &scan_frame(frame, |_| {}));
        }
        assert_eq!(shared.delivered.load(Ordering::Relaxed), 0, "nothing is shared before the flush");
        let mut delivered = 0;
        tally.flush(&shared, &mut delivered);
        assert_eq!((delivered, shared.delivered.load(Ordering::Relaxed)), (2, 2));
        assert_eq!(shared.publication_bytes.load(Ordering::Relaxed), 2 * (publication.len() as u64 + 1));
        assert!(shared.delivery_latency.lock().quantile_us(1.0) >= 5_000, "both stamps were recorded");
        tally.flush(&shared, &mut delivered);
        assert_eq!((delivered, tally.frames), (2, 0), "a second flush adds nothing");
    }

    #[test]
    fn scans_frames() {
        let mut other = Vec::new();
        let frame = "{}\n{\"push\":{\"channel\":\"a\",\"pub\":{\"data\":{}}}}\n{\"id\":2,\"subscribe\":{}}";
        let scan = scan_frame(frame, |l| other.push(l.to_string()));
        assert_eq!(scan, Scan { pubs: 1, pub_bytes: 43, ping: true });
        assert_eq!(other, vec!["{\"id\":2,\"subscribe\":{}}"]);
        assert_eq!(scan_frame("{\"push\":{\"join\":{}}}", |_| {}), Scan::default());
    }

    #[tokio::test]
    async fn tokens_carry_population_labels() {
        let shared = Shared::new(
            Target::parse("http://127.0.0.1:1").unwrap(),
            Transport::UniHttpStream,
            "s3cret".into(),
            Population { keys: Population::default_keys(), users: 10, meta: false, channels: Vec::new() },
            Some("news".into()),
            1,
        )
        .unwrap();
        let token = shared.token(13);
        let mut cfg = crate::config::Config::default();
        cfg.client.token.hmac_secret_key = "s3cret".into();
        let verifier = crate::auth::Verifier::new(&cfg.client).unwrap();
        let t = verifier.verify_connect(&token).await.unwrap();
        assert_eq!(t.user, "3");
        assert_eq!(t.labels, shared.population.labels(13));
        assert_eq!(t.channels, vec!["news".to_string()]);
    }
}
