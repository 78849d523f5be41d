//! Hostile I/O on raw sockets: slow or half-sent requests (header and body read
//! timeouts, the cap on connections without a request yet), bodies sent without the
//! API key, and WebSocket frames a library would refuse to send (unmasked, reserved
//! opcodes, invalid UTF-8), a client's Close, and an Origin that is not ASCII.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// Long enough for a slow, shared machine; the limits under test are 1 s.
const DEADLINE: Duration = Duration::from_secs(15);

pub async fn raw(s: &Server) -> TcpStream {
    TcpStream::connect(("127.0.0.1", s.port)).await.unwrap()
}

/// Reads until the server closes the connection; false if it is still open at the deadline.
pub async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(DEADLINE, read_to_end).await.is_ok()
}

/// The response status line and headers, read before the deadline.
pub async fn response_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                break;
            }
            head.push(byte[0]);
        }
    };
    let _ = tokio::time::timeout(DEADLINE, read).await;
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn half_sent_or_silent_connections_are_closed_after_read_header_timeout() {
    let s = Server::start(json!({"http_server": {"read_header_timeout": "1s"}})).await;
    let mut silent = raw(&s).await;
    let mut half = raw(&s).await;
    half.write_all(b"GET /health HTTP/1.1\r\nHost: rotor\r\n").await.unwrap();
    assert!(closed_by_server(&mut silent).await, "a connection that never sends a byte stays open");
    assert!(closed_by_server(&mut half).await, "a request with unfinished headers stays open");
}

/// True when the server has closed `stream` (EOF or reset); false when nothing came
/// within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(wait, stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test]
async fn connections_past_the_pending_cap_are_closed_and_the_cap_frees() {
    const CAP: usize = 3;
    let s = Server::start(json!({"http_server": {"max_pending_connections": CAP, "read_header_timeout": "60s"}})).await;
    // Two more than the cap. Which ones are refused depends on when the server's own
    // earlier connections (the harness's health check) let go of their permits, so
    // the test counts rather than naming the last two.
    let mut conns = Vec::new();
    for _ in 0..CAP + 2 {
        conns.push(raw(&s).await);
    }
    let deadline = Instant::now() + DEADLINE;
    let mut open: Vec<TcpStream> = Vec::new();
    let mut closed = 0;
    while let Some(mut c) = conns.pop() {
        if closed_within(&mut c, Duration::from_millis(200)).await {
            closed += 1;
        } else {
            open.push(c);
        }
        if conns.is_empty() && open.len() > CAP && Instant::now() < deadline {
            conns = std::mem::take(&mut open);
        }
    }
    assert!(open.len() <= CAP, "{} connections without a request kept; the cap is {CAP}", open.len());
    assert!(closed >= 2, "only {closed} connections past the cap were closed");
    // The kept ones were really kept: each can still make its request.
    for c in &mut open {
        c.write_all(b"GET /health HTTP/1.1\r\nHost: rotor\r\nConnection: close\r\n\r\n").await.unwrap();
        assert!(response_head(c).await.starts_with("HTTP/1.1 200"));
    }
    drop(open);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut c = raw(&s).await;
        c.write_all(b"GET /health HTTP/1.1\r\nHost: rotor\r\nConnection: close\r\n\r\n").await.unwrap();
        if response_head(&mut c).await.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the cap never freed after the pending connections left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Headers for a body of `len` bytes, then only `sent` of it, never the rest.
async fn stalled_post(s: &Server, path: &str, key: Option<&str>, len: usize, sent: &[u8]) -> TcpStream {
    let mut c = raw(s).await;
    let key = key.map(|k| format!("X-API-Key: {k}\r\n")).unwrap_or_default();
    let head = format!("POST {path} HTTP/1.1\r\nHost: rotor\r\n{key}Content-Length: {len}\r\n\r\n");
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(sent).await.unwrap();
    c
}

#[tokio::test]
async fn bodies_that_never_complete_get_408_after_read_body_timeout() {
    let s = Server::start(json!({"http_server": {"read_body_timeout": "1s"}})).await;
    let cases = [
        ("/connection/uni_http_stream", None),
        ("/connection/uni_sse", None),
        ("/api/publish", Some(API_KEY)),
        ("/api", Some(API_KEY)),
    ];
    for (path, key) in cases {
        let mut c = stalled_post(&s, path, key, 100, b"{\"chan").await;
        let head = response_head(&mut c).await;
        assert!(head.starts_with("HTTP/1.1 408"), "{path}: {head:?}");
        assert!(closed_by_server(&mut c).await, "{path}: connection kept after 408");
    }
}

#[tokio::test]
async fn api_key_is_checked_before_the_body_is_read() {
    // A body timeout far past the deadline: only an answer from the headers passes.
    let s = Server::start(json!({"http_server": {"read_body_timeout": "600s"}})).await;
    for path in ["/api/publish", "/api", "/api/no_such_method"] {
        for key in [Some("wrong-key"), None] {
            let mut c = stalled_post(&s, path, key, 10_000_000, b"{\"channel\":").await;
            let head = response_head(&mut c).await;
            assert!(head.starts_with("HTTP/1.1 401"), "{path} key {key:?}: {head:?}");
        }
    }
    // The right key still reaches the method.
    let (status, body) = s.api("publish", json!({"channel": "c", "data": {}})).await;
    assert_eq!(status, 200, "{body}");
}

/// A WebSocket client on a raw socket, free to send frames no library would.
struct RawWs(TcpStream);

impl RawWs {
    async fn open(s: &Server, path_and_query: &str) -> RawWs {
        let mut c = raw(s).await;
        let req = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: rotor\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        c.write_all(req.as_bytes()).await.unwrap();
        let head = response_head(&mut c).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{path_and_query}: {head:?}");
        RawWs(c)
    }

    /// One frame with the given first byte (FIN + opcode), masked or not.
    async fn send(&mut self, first: u8, payload: &[u8], masked: bool) {
        assert!(payload.len() < 126);
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![first, payload.len() as u8 | if masked { 0x80 } else { 0 }];
        if masked {
            frame.extend_from_slice(&mask);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        } else {
            frame.extend_from_slice(payload);
        }
        self.0.write_all(&frame).await.unwrap();
    }

    /// Skips data frames until a close frame; its code, or None if the socket ended
    /// without one (what a client reports as 1006).
    async fn close_code(&mut self) -> Option<u16> {
        let read = async {
            loop {
                let mut hdr = [0u8; 2];
                self.0.read_exact(&mut hdr).await.ok()?;
                let len = match hdr[1] & 0x7f {
                    126 => self.0.read_u16().await.ok()? as usize,
                    127 => self.0.read_u64().await.ok()? as usize,
                    n => n as usize,
                };
                let mut payload = vec![0u8; len];
                self.0.read_exact(&mut payload).await.ok()?;
                if hdr[0] & 0x0f == 0x8 {
                    return Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
                }
            }
        };
        tokio::time::timeout(DEADLINE, read).await.ok().flatten()
    }
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

#[tokio::test]
async fn websocket_protocol_edges_get_rfc6455_closes() {
    let s = Server::start(json!({})).await;
    let connect = json!({"token": token("1", json!({}))}).to_string();
    let preset = format!("/connection/uni_websocket?cf_connect={}", urlencode(&connect));
    let endpoints = ["/connection/websocket", "/connection/uni_websocket", preset.as_str()];
    // (what, first byte, payload, masked, expected close code)
    let cases: [(&str, u8, Vec<u8>, bool, u16); 6] = [
        ("client close is echoed", 0x88, close_payload(4000, "bye"), true, 4000),
        ("client close 1000 is echoed", 0x88, close_payload(1000, ""), true, 1000),
        ("text that is not UTF-8", 0x81, vec![b'{', 0xff, 0xfe, b'}'], true, 1007),
        ("unmasked client frame", 0x81, b"{}".to_vec(), false, 1002),
        ("reserved data opcode", 0x83, b"{}".to_vec(), true, 1002),
        ("reserved control opcode", 0x8b, Vec::new(), true, 1002),
    ];
    for endpoint in endpoints {
        for (what, first, payload, masked, code) in &cases {
            let mut ws = RawWs::open(&s, endpoint).await;
            ws.send(*first, payload, *masked).await;
            assert_eq!(ws.close_code().await, Some(*code), "{endpoint}: {what}");
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn an_origin_that_is_not_ascii_is_refused() {
    for allowed in [json!([]), json!(["*"])] {
        let s = Server::start(json!({"client": {"allowed_origins": allowed}})).await;
        for path in ["/connection/websocket", "/connection/uni_websocket"] {
            let mut c = raw(&s).await;
            let mut req = format!(
                "GET {path} HTTP/1.1\r\nHost: rotor\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://"
            )
            .into_bytes();
            req.extend_from_slice(b"\xffevil.test\r\n\r\n");
            c.write_all(&req).await.unwrap();
            let head = response_head(&mut c).await;
            assert!(head.starts_with("HTTP/1.1 403"), "{path} with allowed_origins {allowed}: {head:?}");
        }
    }
}
