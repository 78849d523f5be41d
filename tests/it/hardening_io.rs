//! Hostile I/O on raw sockets: slow or half-sent requests (header and body read
//! timeouts, the cap on connections without a request yet) and bodies sent without
//! the API key.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// Long enough for a slow, shared machine; the limits under test are 1 s.
const DEADLINE: Duration = Duration::from_secs(15);

async fn raw(s: &Server) -> TcpStream {
    TcpStream::connect(("127.0.0.1", s.port)).await.unwrap()
}

/// Reads until the server closes the connection; false if it is still open at the deadline.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
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
async fn response_head(stream: &mut TcpStream) -> String {
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

#[tokio::test]
async fn connections_past_the_pending_cap_are_closed_and_the_cap_frees() {
    let s = Server::start(json!({"http_server": {"max_pending_connections": 3, "read_header_timeout": "60s"}})).await;
    let mut pending = Vec::new();
    for _ in 0..3 {
        pending.push(raw(&s).await);
    }
    let mut excess = raw(&s).await;
    assert!(closed_by_server(&mut excess).await, "a connection past the cap was kept");
    // The pending ones were kept: the first can still make its request.
    let first = &mut pending[0];
    first.write_all(b"GET /health HTTP/1.1\r\nHost: rotor\r\nConnection: close\r\n\r\n").await.unwrap();
    assert!(response_head(first).await.starts_with("HTTP/1.1 200"));
    drop(pending);
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
