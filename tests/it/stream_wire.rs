//! The streaming transports' own HTTP/1.1 path (`server/stream.rs`) on raw sockets:
//! requests that arrive in pieces, requests it hands to hyper (chunked bodies,
//! HTTP/1.0), bytes pipelined after a stream, and the chunked framing of its answers.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::hardening_io::{closed_by_server, raw, response_head};
use crate::harness::*;

/// Reads the answer's body until `done` holds for what arrived (chunk framing included).
async fn read_until(stream: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while !done(&text) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            other => panic!("stream ended or stalled ({other:?}); got {text:?}"),
        }
    }
    text
}

/// Sends `req` on a new connection, checks the answer's status line, and reads until
/// the connect push (`marker`) has arrived.
async fn opened(s: &Server, req: &str, marker: &str) -> (TcpStream, String) {
    let mut stream = raw(s).await;
    stream.write_all(req.as_bytes()).await.unwrap();
    let head = response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") || head.starts_with("HTTP/1.0 200 OK\r\n"), "{head:?}");
    read_until(&mut stream, |t| t.contains(marker)).await;
    (stream, head)
}

/// The node's connection count (`info`).
async fn num_clients(s: &Server) -> u64 {
    let (_, r) = s.api("info", json!({})).await;
    r["result"]["nodes"][0]["num_clients"].as_u64().unwrap_or(u64::MAX)
}

/// Waits until the node has no connection left; panics with `what` after [`WAIT`].
async fn until_no_clients(s: &Server, what: &str) {
    let deadline = Instant::now() + WAIT;
    while num_clients(s).await != 0 {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn connect_body(user: &str, channel: &str) -> String {
    json!({"token": token(user, json!({"channels": [channel]}))}).to_string()
}

#[tokio::test]
async fn a_request_sent_in_pieces_is_streamed_chunked() {
    let s = Server::start(json!({})).await;
    let body = connect_body("7", "pieces");
    let head = format!(
        "POST /connection/uni_http_stream HTTP/1.1\r\nHost: rotor\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = raw(&s).await;
    // The request line, the rest of the headers, half the body, the other half.
    let (line, rest) = head.split_at(20);
    let (b1, b2) = body.split_at(body.len() / 2);
    for piece in [line, rest, b1, b2] {
        stream.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    let status = response_head(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200 OK\r\n"), "{status:?}");
    let lower = status.to_ascii_lowercase();
    assert!(lower.contains("transfer-encoding: chunked\r\n"), "{status:?}");
    assert!(lower.contains("connection: close\r\n"), "{status:?}");
    assert!(lower.contains("date: "), "{status:?}");
    let first = read_until(&mut stream, |t| t.contains("\"connect\"")).await;
    // One chunk: hex size line, then the push line.
    let (size, push) = first.split_once("\r\n").unwrap();
    assert!(usize::from_str_radix(size, 16).is_ok(), "{first:?}");
    assert!(push.starts_with("{\"connect\":"), "{first:?}");
    s.publish("pieces", json!({"n": 1})).await;
    read_until(&mut stream, |t| t.contains("\"pub\":{\"data\":{\"n\":1}")).await;
}

#[tokio::test]
async fn chunked_bodies_and_http10_are_still_served() {
    let s = Server::start(json!({})).await;
    // A chunked body is not read on the streaming path: hyper serves it, as before.
    let body = connect_body("8", "c");
    let req = format!(
        "POST /connection/uni_http_stream HTTP/1.1\r\nHost: rotor\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    opened(&s, &req, "\"connect\"").await;
    // So is an HTTP/1.0 client (no chunked framing: the body runs to the close).
    let query: String = connect_body("9", "c").bytes().map(|b| format!("%{b:02X}")).collect();
    let req = format!("GET /connection/uni_sse?cf_connect={query} HTTP/1.0\r\n\r\n");
    opened(&s, &req, "data: {\"connect\":").await;
}

#[tokio::test]
async fn bytes_pipelined_after_a_stream_are_not_served_and_the_end_is_framed() {
    let s = Server::start(json!({})).await;
    let body = connect_body("10", "p");
    let req = format!(
        "POST /connection/uni_http_stream HTTP/1.1\r\nHost: rotor\r\nContent-Length: {}\r\n\r\n{body}GET /health HTTP/1.1\r\nHost: rotor\r\n\r\n",
        body.len()
    );
    let (mut stream, head) = opened(&s, &req, "\"connect\"").await;
    assert!(head.to_ascii_lowercase().contains("connection: close\r\n"), "not the streaming path: {head:?}");
    let (status, _) = s.api("disconnect", json!({"user": "10"})).await;
    assert_eq!(status, 200);
    // The disconnect push, the last chunk, then the close; no second answer.
    let rest = read_until(&mut stream, |t| t.ends_with("0\r\n\r\n")).await;
    assert!(rest.contains("\"disconnect\""), "{rest:?}");
    assert!(!rest.contains("HTTP/1.1"), "pipelined request was served: {rest:?}");
    assert!(closed_by_server(&mut stream).await);
}

#[tokio::test]
async fn a_client_that_closes_its_stream_leaves_the_node() {
    let s = Server::start(json!({})).await;
    let body = connect_body("11", "gone");
    let req = format!("POST /connection/uni_http_stream HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let (stream, _) = opened(&s, &req, "\"connect\"").await;
    assert_eq!(num_clients(&s).await, 1);
    drop(stream);
    until_no_clients(&s, "a closed stream stayed connected").await;
}

/// A stream whose client stops reading ends at the write timeout and leaves the node:
/// the session runs inside the writer's task, so a writer stuck on a full socket must
/// still give the session up. The queue is large enough that "slow" (3008) does not
/// end it first.
#[tokio::test]
async fn a_stream_whose_client_stops_reading_ends_at_the_write_timeout() {
    let s = Server::start(json!({
        "client": {"queue_max_size": 256 * 1024 * 1024},
        "websocket": {"write_timeout": "1s"},
    }))
    .await;
    let body = connect_body("12", "flood");
    let req = format!("POST /connection/uni_http_stream HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let (_stream, _) = opened(&s, &req, "\"connect\"").await;
    assert_eq!(num_clients(&s).await, 1);
    // 64 MB of publications: more than loopback socket buffers hold.
    let one = json!({"publish": {"channel": "flood", "data": {"big": "x".repeat(64 * 1024)}}});
    for _ in 0..8 {
        let (status, r) = s.api("batch", json!({"commands": vec![one.clone(); 128]})).await;
        assert_eq!(status, 200, "{r}");
    }
    until_no_clients(&s, "a stream whose client stopped reading stayed connected").await;
}

#[tokio::test]
async fn a_stream_request_with_unfinished_headers_is_closed_at_the_header_timeout() {
    let s = Server::start(json!({"http_server": {"read_header_timeout": "1s"}})).await;
    let mut half = raw(&s).await;
    half.write_all(b"GET /connection/uni_sse?cf_connect=%7B%7D HTTP/1.1\r\nHost: rotor\r\n").await.unwrap();
    assert!(closed_by_server(&mut half).await, "a half-sent stream request stays open");
}
