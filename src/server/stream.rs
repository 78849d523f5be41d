//! Long-lived streaming answers without hyper. A connection whose first request is an
//! HTTP/1.1 `GET` or `POST` to a streaming transport (`uni_http_stream`, `uni_sse`,
//! and the emulated `http_stream` and `sse`) is served here:
//!
//! 1. the request is *peeked* at: nothing is taken off the socket until it is known to
//!    be one of ours, so every other request (the API, WebSocket upgrades, HTTP/2, a
//!    request this path does not take) reaches hyper untouched;
//! 2. it then runs through the same router as any other request;
//! 3. its answer is written to the socket here, chunked, and the connection closes
//!    when the answer ends.
//!
//! hyper keeps an 8–16 KiB read buffer and an 8 KiB write buffer for the whole life of
//! a response; a stream idle for hours would hold both. Here an idle stream holds the
//! socket and the body, and a chunk's bytes only while they are written.
//!
//! A request is taken only when all of it is simple: complete headers within
//! [`MAX_PEEK`], no `Transfer-Encoding`, `Expect` or `Upgrade`, and a `Content-Length`
//! body within the route's limit that has arrived whole. Anything else goes to hyper,
//! which answers it as before (413, 417, chunked bodies).

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, Version};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::node::Node;

pub(super) mod writer;

use writer::Writer;

/// The most a request (headers and body) may take to be served here; larger ones go
/// to hyper.
pub const MAX_PEEK: usize = 16 * 1024;

/// The first peek reads into the poll's stack; only a request longer than this needs a
/// heap buffer to be judged.
const FIRST_PEEK: usize = 2048;

/// Headers a request may carry to be judged here (more: hyper).
const MAX_HEADERS: usize = 48;

/// The longest wait between two peeks at a request that is still arriving.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// The streaming routes of one listener: path and body limit. Empty for a listener
/// that serves no transports.
#[derive(Clone, Default)]
pub struct Routes {
    routes: Arc<[(Box<str>, usize)]>,
    /// The bound on one socket write of a stream (`websocket.write_timeout`).
    write_timeout: Duration,
}

impl Routes {
    /// Routes from `(path, body limit)` pairs, with the default write bound (the tests
    /// and the fuzz target use this; the server uses [`Routes::of`]).
    pub fn new(routes: impl IntoIterator<Item = (String, usize)>) -> Routes {
        let routes: Vec<(Box<str>, usize)> = routes.into_iter().map(|(p, l)| (p.into_boxed_str(), l)).collect();
        Routes { routes: routes.into(), write_timeout: Duration::from_secs(10) }
    }

    /// The enabled streaming transports of `node`'s config.
    pub(super) fn of(node: &Node) -> Routes {
        let c = &node.config;
        let mut routes: Vec<(Box<str>, usize)> = Vec::new();
        if c.uni_http_stream.enabled {
            routes.push((c.uni_http_stream_prefix().into(), c.uni_http_stream.max_request_body_size));
        }
        if c.uni_sse.enabled {
            routes.push((c.uni_sse_prefix().into(), c.uni_sse.max_request_body_size));
        }
        if c.http_stream.enabled {
            routes.push((c.http_stream_prefix().into(), c.http_stream.max_request_body_size));
        }
        if c.sse.enabled {
            routes.push((c.sse_prefix().into(), c.sse.max_request_body_size));
        }
        let write_timeout = match c.websocket.write_timeout.std() {
            d if d.is_zero() => Duration::from_secs(10),
            d => d,
        };
        Routes { routes: routes.into(), write_timeout }
    }

    pub(super) fn write_timeout(&self) -> Duration {
        self.write_timeout
    }

    pub(super) fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The body limit of the route at `path` (query string ignored).
    fn limit(&self, path: &str) -> Option<usize> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        self.routes.iter().find(|(p, _)| **p == *path).map(|&(_, limit)| limit)
    }
}

/// What the bytes so far say about a connection's first request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not decided yet; `head` once the headers are complete.
    More { head: Option<usize> },
    /// Not one this path takes: hyper serves the connection.
    Hyper,
    /// Ours: `len` bytes of headers and body.
    Take { len: usize },
}

/// Judges the start of a connection (pure: the tests and the fuzz target drive it).
pub fn judge(buf: &[u8], routes: &Routes) -> Verdict {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            // The request line alone can rule a request out.
            if let (Some(method), Some(path)) = (req.method, req.path)
                && (!matches!(method, "GET" | "POST") || routes.limit(path).is_none())
            {
                return Verdict::Hyper;
            }
            return if buf.len() >= MAX_PEEK { Verdict::Hyper } else { Verdict::More { head: None } };
        }
        Err(_) => return Verdict::Hyper,
    };
    let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
        return Verdict::Hyper;
    };
    let Some(limit) = routes.limit(path).filter(|_| matches!(method, "GET" | "POST")) else {
        return Verdict::Hyper;
    };
    let mut body = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let parsed = std::str::from_utf8(h.value).ok().and_then(|v| {
                let v = v.trim();
                // Digits only: no sign, no list.
                v.bytes().all(|b| b.is_ascii_digit()).then(|| v.parse::<usize>().ok()).flatten()
            });
            match (body, parsed) {
                (None, Some(n)) => body = Some(n),
                _ => return Verdict::Hyper,
            }
        } else if ["transfer-encoding", "expect", "upgrade"].iter().any(|n| h.name.eq_ignore_ascii_case(n)) {
            return Verdict::Hyper;
        }
    }
    let body = body.unwrap_or(0);
    if body > limit || head + body > MAX_PEEK {
        return Verdict::Hyper;
    }
    if buf.len() < head + body { Verdict::More { head: Some(head) } } else { Verdict::Take { len: head + body } }
}

/// What peeking decided.
pub(super) enum Peeked {
    /// hyper serves the connection (nothing was consumed).
    Hyper,
    /// The client left, or sent no complete headers before the deadline.
    Gone,
    /// Ours: the request is the first `len` bytes.
    Take { len: usize },
}

/// Peeks at the connection until its first request is judged, or the header deadline
/// passes (a request whose headers are complete but whose body is late goes to hyper,
/// which gives bodies their own timeout).
pub(super) async fn peek(stream: &TcpStream, routes: &Routes, deadline: Option<Instant>) -> Peeked {
    let expired = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    // Whether the headers were complete (the body was still arriving).
    let head = AtomicBool::new(false);
    let judged = async {
        // First look: from the poll's stack, no allocation.
        let first = poll_fn(|cx| {
            let mut raw = [0u8; FIRST_PEEK];
            let mut buf = ReadBuf::new(&mut raw);
            match ready!(stream.poll_peek(cx, &mut buf)) {
                Ok(0) | Err(_) => Poll::Ready(None),
                Ok(n) => Poll::Ready(Some((judge(buf.filled(), routes), n))),
            }
        })
        .await;
        let (mut verdict, mut seen) = match first {
            None => return Peeked::Gone,
            Some(first) => first,
        };
        let mut buf = Vec::new();
        let mut backoff = Duration::from_millis(1);
        loop {
            match verdict {
                Verdict::Hyper => return Peeked::Hyper,
                Verdict::Take { len } => return Peeked::Take { len },
                Verdict::More { head: h } => head.store(h.is_some(), Ordering::Relaxed),
            }
            // Everything that had arrived was judged. Peeking again returns at once while
            // any byte waits, so wait a little (longer each time) for the rest.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            buf.resize((seen * 2).clamp(FIRST_PEEK * 2, MAX_PEEK), 0);
            let n = match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return Peeked::Gone,
                Ok(n) => n,
            };
            if n > seen {
                backoff = Duration::from_millis(1);
            }
            seen = n;
            verdict = judge(&buf[..n], routes);
        }
    };
    tokio::select! {
        peeked = judged => peeked,
        () = expired => if head.load(Ordering::Relaxed) { Peeked::Hyper } else { Peeked::Gone },
    }
}

/// What serving a taken request starts from. Boxed, and unpacked inside the task:
/// an `async` block's captures keep their place in its future for the task's whole
/// life, even once moved out, so the task captures only this pointer.
pub(super) struct Taken {
    pub stream: TcpStream,
    pub len: usize,
    pub app: Router,
    pub write_timeout: Duration,
    pub peer: Option<SocketAddr>,
}

/// Reads the request off the socket, runs it through the router, and makes the writer
/// of its answer; None when the connection is done already (a read failed, or the
/// request was refused with a 400). Large and short-lived: the connection's task runs
/// it in a box of its own, and then holds only the [`Writer`], which is sized for an
/// idle stream.
pub(super) async fn answer(taken: Box<Taken>) -> Option<Writer> {
    let Taken { mut stream, len, app, write_timeout, peer } = *taken;
    let mut raw = vec![0u8; len];
    // The bytes were peeked: they are here.
    stream.read_exact(&mut raw).await.ok()?;
    let Some(mut req) = request(Bytes::from(raw), peer) else {
        // Judged simple, yet not a valid request for `http` (a header byte it refuses).
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        return None;
    };
    let _ = stream.set_nodelay(true);
    // The answer's body is polled by the writer, whose writes are bounded: a session
    // may run inside it.
    req.extensions_mut().insert(crate::transport::InlineSession);
    let response = app.oneshot(req).await.unwrap_or_else(|e| match e {});
    let (head, body, chunked) = head(response);
    Some(Writer::new(stream, head, body, chunked, write_timeout))
}

/// The `http` request of bytes `judge` took; None when `http` refuses a part of it.
pub fn request(raw: Bytes, peer: Option<SocketAddr>) -> Option<Request<Body>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = parsed.parse(&raw).ok()? else {
        return None;
    };
    let method = Method::from_bytes(parsed.method?.as_bytes()).ok()?;
    let mut req = Request::builder().method(method).uri(parsed.path?).version(Version::HTTP_11);
    for h in parsed.headers.iter() {
        req = req.header(HeaderName::from_bytes(h.name.as_bytes()).ok()?, HeaderValue::from_bytes(h.value).ok()?);
    }
    if let Some(peer) = peer {
        req = req.extension(ConnectInfo(peer));
    }
    req.body(Body::from(raw.slice(head..))).ok()
}

/// The encoded head of `response` (`connection: close`; chunked unless the body's
/// length is known), its body, and whether the body is to be chunked. The response's
/// headers are dropped here, not kept for the life of the stream.
fn head(response: Response) -> (BytesMut, Body, bool) {
    let (parts, body) = response.into_parts();
    let length = body.size_hint().exact();
    let mut head = BytesMut::with_capacity(512);
    head.put_slice(b"HTTP/1.1 ");
    head.put_slice(parts.status.as_str().as_bytes());
    head.put_u8(b' ');
    head.put_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    head.put_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if matches!(name.as_str(), "connection" | "transfer-encoding" | "content-length" | "date") {
            continue;
        }
        head.put_slice(name.as_str().as_bytes());
        head.put_slice(b": ");
        head.put_slice(value.as_bytes());
        head.put_slice(b"\r\n");
    }
    head.put_slice(b"date: ");
    head.put_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    head.put_slice(b"\r\nconnection: close\r\n");
    match length {
        Some(n) => head.put_slice(format!("content-length: {n}\r\n\r\n").as_bytes()),
        None => head.put_slice(b"transfer-encoding: chunked\r\n\r\n"),
    }
    (head, body, length.is_none())
}

#[cfg(test)]
mod tests;
