//! Hostile I/O on raw sockets: bodies sent without the API key.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// Long enough for a slow, shared machine.
const DEADLINE: Duration = Duration::from_secs(15);

async fn raw(s: &Server) -> TcpStream {
    TcpStream::connect(("127.0.0.1", s.port)).await.unwrap()
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
