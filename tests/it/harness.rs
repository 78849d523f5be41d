//! Test harness: starts the real `rotor` binary on a free loopback port with a config
//! written to a fresh temporary directory, and gives WebSocket, uni stream and API
//! clients over real sockets. Every wait has a deadline; nothing sleeps blindly.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "test-secret-key-for-rotor-integration-tests";
pub const API_KEY: &str = "test-api-key";
pub const WAIT: Duration = Duration::from_secs(5);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty temporary directory unique to this process and call.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("rotor-it-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Merges `patch` into `base` recursively (objects merge, everything else replaces).
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// The config every test starts from: permissive channels, fast timers off.
pub fn base_config(port: u16) -> Value {
    json!({
        "http_server": {"address": "127.0.0.1", "port": port},
        "log": {"level": "warn"},
        "client": {"token": {"hmac_secret_key": SECRET}, "allowed_origins": ["*"]},
        "http_api": {"key": API_KEY},
        "uni_http_stream": {"enabled": true},
        "uni_sse": {"enabled": true},
        "uni_websocket": {"enabled": true},
        "shutdown": {"timeout": "5s"},
        "channel": {
            "without_namespace": {
                "allow_subscribe_for_client": true,
                "allow_publish_for_subscriber": true,
                "presence": true,
                "join_leave": true,
                "allow_presence_for_subscriber": true,
                "history_size": 10,
                "history_ttl": "300s",
                "allow_recovery": true,
                "allow_positioning": true,
                "allow_history_for_subscriber": true
            },
            "namespaces": [
                {"name": "chat", "allow_subscribe_for_client": true, "allow_user_limited_channels": true},
                {"name": "locked"},
                {"name": "dm", "allow_user_limited_channels": true},
                {"name": "tags", "allow_subscribe_for_client": true, "allow_tags_filter": true,
                 "history_size": 10, "history_ttl": "300s", "allow_recovery": true}
            ]
        }
    })
}

pub struct Server {
    child: Child,
    pub port: u16,
    /// `http_server.internal_port` when the test set one: API, admin, metrics, health.
    pub internal_port: Option<u16>,
    pub dir: PathBuf,
}

impl Server {
    /// Starts the server with `base_config` patched by `patch`.
    pub async fn start(patch: Value) -> Server {
        Self::start_with_env(patch, &[]).await
    }

    pub async fn start_with_env(patch: Value, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let dir = temp_dir("server");
        let mut cfg = base_config(port);
        merge(&mut cfg, &patch);
        std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rotor"));
        cmd.arg("-c").arg(dir.join("config.json")).current_dir(&dir).stdout(Stdio::null()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start rotor");
        let internal_port = cfg["http_server"]["internal_port"].as_u64().filter(|p| *p != 0).map(|p| p as u16);
        let server = Server { child, port, internal_port, dir };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = reqwest::Client::new();
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/health", self.internal_http())).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rotor did not become healthy on port {}", self.port);
    }

    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the API, admin, metrics and health are served.
    pub fn internal_http(&self) -> String {
        format!("http://127.0.0.1:{}", self.internal_port.unwrap_or(self.port))
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/connection/websocket", self.port)
    }

    /// POST /api/<method> with the API key; returns (status, body JSON or Null).
    pub async fn api(&self, method: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/api/{method}", self.internal_http()))
            .header("X-API-Key", API_KEY)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Publishes through the API and asserts success.
    pub async fn publish(&self, channel: &str, data: Value) -> Value {
        let (status, body) = self.api("publish", json!({"channel": channel, "data": data})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("result").is_some(), "publish failed: {body}");
        body["result"].clone()
    }

    /// SIGKILL: the node vanishes without a word to its peers.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "rotor did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An HS256 connection token for `user` with extra claims.
pub fn token(user: &str, extra: Value) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut claims = json!({"sub": user, "iat": now, "exp": now + 3600});
    merge(&mut claims, &extra);
    rotor::auth::sign_hs256(&claims, SECRET)
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// How a WebSocket session ended.
#[derive(Debug, PartialEq)]
pub enum Closed {
    Code(u16, String),
    NoFrame,
}

/// A bidirectional WebSocket client speaking JSON lines.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: std::collections::VecDeque<Value>,
    next_id: u32,
}

impl Ws {
    pub async fn open(url: &str) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connect");
        Ws { stream, pending: Default::default(), next_id: 1 }
    }

    /// Opens with extra HTTP headers on the upgrade request.
    pub async fn open_with_headers(url: &str, headers: &[(&str, &str)]) -> Ws {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
            req.headers_mut().insert(name, v.parse().unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("websocket connect");
        Ws { stream, pending: Default::default(), next_id: 1 }
    }

    /// Opens and connects with a token; returns the client and the connect result.
    pub async fn connect(server: &Server, token: &str) -> (Ws, Value) {
        let mut ws = Ws::open(&server.ws_url()).await;
        let reply = ws.call("connect", json!({"token": token, "name": "it"})).await;
        assert!(reply.get("connect").is_some(), "connect failed: {reply}");
        let result = reply["connect"].clone();
        (ws, result)
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::Text(text.into())).await.unwrap();
    }

    /// Sends `{"id":N,"<method>":params}` and returns the reply with that id
    /// (pushes received meanwhile stay queued for `recv`).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_text(&json!({"id": id, method: params}).to_string()).await;
        self.reply(id).await
    }

    pub async fn reply(&mut self, id: u32) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(pos) = self.pending.iter().position(|m| m["id"] == id) {
                return self.pending.remove(pos).unwrap();
            }
            assert!(Instant::now() < deadline, "no reply to command {id}; pending {:?}", self.pending);
            self.read_frame(deadline).await.expect("connection closed while waiting for a reply");
        }
    }

    /// A push already received matching `pred`, if any (no waiting).
    pub fn take_push(&mut self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let pos = self.pending.iter().position(|m| m.get("push").is_some() && pred(&m["push"]))?;
        Some(self.pending.remove(pos).unwrap()["push"].clone())
    }

    /// Next push (message without id) matching `pred`.
    pub async fn push_where(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(pos) = self.pending.iter().position(|m| m.get("push").is_some() && pred(&m["push"])) {
                return self.pending.remove(pos).unwrap()["push"].clone();
            }
            assert!(Instant::now() < deadline, "no matching push; pending {:?}", self.pending);
            self.read_frame(deadline).await.expect("connection closed while waiting for a push");
        }
    }

    /// Waits for the next raw frame; returns Err(Closed) when the server closed.
    pub async fn read_frame(&mut self, deadline: Instant) -> Result<String, Closed> {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, self.stream.next()).await.map_err(|_| Closed::NoFrame)?;
        match msg {
            Some(Ok(Message::Text(t))) => {
                for line in t.split('\n') {
                    self.pending.push_back(serde_json::from_str(line).expect("server sent invalid JSON"));
                }
                Ok(t.to_string())
            }
            Some(Ok(Message::Close(Some(f)))) => Err(Closed::Code(f.code.into(), f.reason.to_string())),
            Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame on the JSON protocol"),
            Some(Ok(_)) => Ok(String::new()),
            _ => Err(Closed::NoFrame),
        }
    }

    /// Reads until the server closes; returns the close code and reason.
    pub async fn closed(&mut self) -> Closed {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Err(c) = self.read_frame(deadline).await {
                return c;
            }
        }
    }
}

/// A `uni_http_stream` (or any line-per-push HTTP stream) reader.
pub struct UniStream {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: Vec<u8>,
}

impl UniStream {
    pub async fn open(server: &Server, body: Value) -> UniStream {
        Self::open_url(&format!("{}/connection/uni_http_stream", server.http()), &body).await
    }

    pub async fn open_url(url: &str, body: &Value) -> UniStream {
        let r = reqwest::Client::new().post(url).body(body.to_string()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        UniStream { body: Box::pin(r.bytes_stream()), buf: Vec::new() }
    }

    /// Next line as JSON (pings included), or None when the stream ended.
    pub async fn next(&mut self) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line[..line.len() - 1]).expect("stream line is JSON"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.body.next()).await.expect("stream stalled") {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    /// Next non-ping line.
    pub async fn next_push(&mut self) -> Option<Value> {
        loop {
            let v = self.next().await?;
            if v != json!({}) {
                return Some(v);
            }
        }
    }
}
