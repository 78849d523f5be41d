//! Rotor's own WebSocket server side: the opening handshake ([`Upgrade`], an axum
//! extractor for HTTP/1.1 `GET` + `Upgrade: websocket` and HTTP/2 extended CONNECT)
//! and [`WsSocket`], the upgraded stream as the session loop's duplex of
//! [`Inbound`] events and [`Outbound`] frames, framed by [`super::ws_frame`].
//!
//! Built for idle cost: one value owns both directions (no split halves and no lock
//! between them), reads go through a buffer on the poll's stack and are kept only
//! while a frame is incomplete, and a frame being written is its 10-byte header plus
//! the payload's `Bytes`, written vectored without a copy. An idle connection's
//! socket is the stream, a few flags and two empty options.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::session_loop::{Inbound, Outbound};
use super::ws_frame::{self, Event, Reader, Violation};
use crate::protocol::Disconnect;

/// The upgraded connection a session runs on. (hyper-util's auto builder wraps the
/// accepted stream in a private type, so it cannot be unwrapped back to the
/// `TcpStream`; the boxed wrapper costs ~100 bytes per connection.)
pub type Io = TokioIo<Upgraded>;

/// The most bytes one read asks for (the stack buffer's size).
pub const MAX_READ_CHUNK: usize = 16 * 1024;
/// The fewest (`websocket.read_buffer_size` is clamped to this range).
pub const MIN_READ_CHUNK: usize = 256;

/// A valid WebSocket opening request, not yet answered.
pub struct Upgrade {
    /// `Sec-WebSocket-Key` (HTTP/1.1 only; HTTP/2 has none).
    key: Option<HeaderValue>,
    on_upgrade: OnUpgrade,
    /// `Sec-WebSocket-Protocol` values the client sent.
    offered: Vec<HeaderValue>,
    protocol: Option<&'static str>,
}

/// Why a request is not a WebSocket opening (axum's statuses and wording).
#[derive(Debug)]
pub struct Refused(StatusCode, &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Refused> {
        let h = &parts.headers;
        let key = if parts.version <= Version::HTTP_11 {
            if parts.method != Method::GET {
                return Err(Refused(StatusCode::METHOD_NOT_ALLOWED, "Request method must be `GET`"));
            }
            if !has_token(h, header::CONNECTION, "upgrade") {
                return Err(Refused(StatusCode::BAD_REQUEST, "Connection header did not include 'upgrade'"));
            }
            if !has_token(h, header::UPGRADE, "websocket") {
                return Err(Refused(StatusCode::BAD_REQUEST, "`Upgrade` header did not include 'websocket'"));
            }
            let Some(key) = h.get(header::SEC_WEBSOCKET_KEY) else {
                return Err(Refused(StatusCode::BAD_REQUEST, "`Sec-WebSocket-Key` header missing"));
            };
            Some(key.clone())
        } else {
            if parts.method != Method::CONNECT {
                return Err(Refused(StatusCode::METHOD_NOT_ALLOWED, "Request method must be `CONNECT`"));
            }
            if parts.extensions.get::<hyper::ext::Protocol>().is_none_or(|p| p.as_str() != "websocket") {
                return Err(Refused(StatusCode::BAD_REQUEST, "`:protocol` pseudo-header did not include 'websocket'"));
            }
            None
        };
        if h.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
            return Err(Refused(StatusCode::BAD_REQUEST, "`Sec-WebSocket-Version` header did not include '13'"));
        }
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(Refused(
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ));
        };
        let offered = h.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter().cloned().collect();
        Ok(Self { key, on_upgrade, offered, protocol: None })
    }
}

/// Whether a comma-separated header has `token` (ASCII case-insensitive).
fn has_token(h: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    tokens(h.get_all(name).iter()).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// The trimmed items of comma-separated header values.
fn tokens<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> impl Iterator<Item = &'a [u8]> {
    values.flat_map(|v| v.as_bytes().split(|&b| b == b',')).map(<[u8]>::trim_ascii)
}

impl Upgrade {
    /// Picks `ours` as the subprotocol when the client offered it.
    pub fn protocol(mut self, ours: &'static str) -> Self {
        if tokens(self.offered.iter()).any(|t| t == ours.as_bytes()) {
            self.protocol = Some(ours);
        }
        self
    }

    pub fn selected_protocol(&self) -> Option<&'static str> {
        self.protocol
    }

    /// Answers the handshake and spawns `session`, the connection's task, which gets
    /// the stream from [`Pending::socket`] once hyper has written this response.
    /// The task is the session's future itself, nothing wrapped around it: every idle
    /// connection keeps it for its whole life.
    pub fn on_upgrade<F, Fut>(self, session: F) -> Response
    where
        F: FnOnce(Pending) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Self { key, on_upgrade, protocol, .. } = self;
        tokio::spawn(session(Pending(on_upgrade)));
        let mut response = match key {
            Some(key) => {
                let mut r = StatusCode::SWITCHING_PROTOCOLS.into_response();
                let h = r.headers_mut();
                h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(header::SEC_WEBSOCKET_ACCEPT, accept_key(key.as_bytes()));
                r
            }
            None => StatusCode::OK.into_response(),
        };
        if let Some(p) = protocol {
            response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
        }
        response
    }
}

/// An answered handshake whose stream hyper has not handed over yet.
pub struct Pending(OnUpgrade);

impl Pending {
    /// The upgraded socket; `None` when the upgrade failed (the client went away).
    pub async fn socket(self, o: Options) -> Option<WsSocket<Io>> {
        match self.0.await {
            Ok(upgraded) => Some(WsSocket::new(TokioIo::new(upgraded), o)),
            Err(e) => {
                tracing::trace!(error = %e, "WebSocket upgrade failed");
                None
            }
        }
    }
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2): base64 of SHA-1 of the key
/// followed by the protocol's GUID.
pub fn accept_key(key: &[u8]) -> HeaderValue {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let encoded = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    // Base64's alphabet is all visible ASCII, so this never falls back.
    HeaderValue::from_str(&encoded).unwrap_or(HeaderValue::from_static(""))
}

/// A frame being written: its header and the rest of its payload (or frames written
/// together: no header, and all of them as the payload).
pub struct OutFrame {
    head: [u8; 10],
    head_len: u8,
    head_pos: u8,
    body: Bytes,
}

impl OutFrame {
    /// A final frame; when the stream cannot write vectored, header and payload are
    /// joined so the frame still goes out in one write.
    fn new(opcode: u8, body: Bytes, vectored: bool) -> Self {
        let mut head = [0; 10];
        let n = ws_frame::header(opcode, body.len(), &mut head);
        if vectored {
            return Self { head, head_len: n as u8, head_pos: 0, body };
        }
        let mut joined = Vec::with_capacity(n + body.len());
        joined.extend_from_slice(&head[..n]);
        joined.extend_from_slice(&body);
        Self { head, head_len: 0, head_pos: 0, body: Bytes::from(joined) }
    }

    fn close(code: u16, reason: &str, vectored: bool) -> Self {
        Self::new(ws_frame::OP_CLOSE, ws_frame::close_payload(code, reason), vectored)
    }

    /// Several final frames, one per message, in one buffer: written together, as one
    /// write, where a frame each would cost a system call per message.
    fn each(opcode: u8, messages: &[Bytes]) -> Self {
        let mut joined = Vec::with_capacity(messages.iter().map(|m| m.len() + 10).sum());
        let mut head = [0; 10];
        for m in messages {
            let n = ws_frame::header(opcode, m.len(), &mut head);
            joined.extend_from_slice(&head[..n]);
            joined.extend_from_slice(m);
        }
        Self { head, head_len: 0, head_pos: 0, body: Bytes::from(joined) }
    }
}

/// What a [`WsSocket`] sends as data: one message as one frame, or several as a
/// frame each ([`Messages`]).
pub trait Payload {
    fn out_frame(self, opcode: u8, vectored: bool) -> OutFrame;
}

impl Payload for Bytes {
    fn out_frame(self, opcode: u8, vectored: bool) -> OutFrame {
        OutFrame::new(opcode, self, vectored)
    }
}

/// A batch of messages to send as a frame each, written together (unidirectional
/// WebSocket without `join_push_messages`).
pub struct Messages(pub Vec<Bytes>);

impl Payload for Messages {
    fn out_frame(self, opcode: u8, vectored: bool) -> OutFrame {
        match self.0.as_slice() {
            [one] => OutFrame::new(opcode, one.clone(), vectored),
            many => OutFrame::each(opcode, many),
        }
    }
}

/// How a [`WsSocket`] maps messages to the session loop's frames.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Protobuf: commands and frames are binary messages; JSON: text.
    pub binary: bool,
    /// Precede a close with a bare disconnect push (unidirectional WebSocket).
    pub push_disconnect: bool,
    /// Largest message (and frame) accepted; larger is closed with 1009.
    pub message_size_limit: usize,
    /// Bytes asked of the stream per read, clamped to 256–16384.
    pub read_chunk: usize,
}

/// An upgraded WebSocket as one duplex: a [`Stream`] of [`Inbound`] events and a
/// [`Sink`] of [`Outbound`] frames. Pings are answered with pongs, a client's Close is
/// reported as [`Inbound::PeerClosed`] and echoed by [`Outbound::EchoClose`], a broken
/// rule is reported with its close code.
pub struct WsSocket<T> {
    io: T,
    reader: Reader,
    /// The frame being written, and the one after it (the close after a disconnect
    /// push: rare, so boxed rather than kept inline in every connection's task).
    out: Option<OutFrame>,
    then: Option<Box<OutFrame>>,
    /// The client's close code, once it sent a Close (`Some(None)`: without a code).
    peer_close: Option<Option<u16>>,
    /// Nothing more will be read (Close, violation, end of stream or error).
    done: bool,
    vectored: bool,
    binary: bool,
    push_disconnect: bool,
    read_chunk: u16,
}

impl<T: AsyncRead + AsyncWrite + Unpin> WsSocket<T> {
    pub fn new(io: T, o: Options) -> Self {
        Self {
            vectored: io.is_write_vectored(),
            io,
            reader: Reader::new(o.message_size_limit),
            out: None,
            then: None,
            peer_close: None,
            done: false,
            binary: o.binary,
            push_disconnect: o.push_disconnect,
            read_chunk: o.read_chunk.clamp(MIN_READ_CHUNK, MAX_READ_CHUNK) as u16,
        }
    }

    /// Writes the pending frames; ready once none is left.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(f) = self.out.as_mut() {
            while f.head_pos < f.head_len || f.body.has_remaining() {
                let head = &f.head[f.head_pos as usize..f.head_len as usize];
                let io = Pin::new(&mut self.io);
                let mut n = if head.is_empty() {
                    ready!(io.poll_write(cx, &f.body))?
                } else if self.vectored {
                    ready!(io.poll_write_vectored(cx, &[io::IoSlice::new(head), io::IoSlice::new(&f.body)]))?
                } else {
                    ready!(io.poll_write(cx, head))?
                };
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                let from_head = n.min(head.len());
                f.head_pos += from_head as u8;
                n -= from_head;
                f.body.advance(n);
            }
            self.out = self.then.take().map(|f| *f);
        }
        Poll::Ready(Ok(()))
    }

    /// Reads once from the stream into the reader, through a buffer on this poll's
    /// stack; false at the end of the stream or on an error.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut chunk = [MaybeUninit::<u8>::uninit(); MAX_READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk[..self.read_chunk as usize]);
        match ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf)) {
            Ok(()) if !buf.filled().is_empty() => {
                self.reader.push(buf.filled());
                Poll::Ready(true)
            }
            _ => Poll::Ready(false),
        }
    }

    fn data_opcode(&self) -> u8 {
        if self.binary { ws_frame::OP_BINARY } else { ws_frame::OP_TEXT }
    }
}

/// The close a violation calls for.
fn disconnect(v: Violation) -> Disconnect {
    match v {
        Violation::Protocol => Disconnect::protocol_error(),
        Violation::InvalidPayload => Disconnect::invalid_payload(),
        Violation::TooBig => Disconnect::message_too_big(),
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream for WsSocket<T> {
    type Item = Inbound;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let this = self.get_mut();
        loop {
            if this.out.is_some() {
                // A pong still owed: keep writing it while reading.
                if let Poll::Ready(Err(_)) = this.poll_write_out(cx) {
                    this.done = true;
                    return Poll::Ready(Some(Inbound::Broken(None)));
                }
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.reader.next_event() {
                Err(v) => {
                    this.done = true;
                    return Poll::Ready(Some(Inbound::Broken(Some(disconnect(v)))));
                }
                Ok(Some(Event::Message { binary, data })) => {
                    return Poll::Ready(Some(if binary == this.binary {
                        Inbound::Frame(data)
                    } else {
                        Inbound::Unsupported
                    }));
                }
                Ok(Some(Event::Ping(payload))) => {
                    // Only the latest ping needs an answer (RFC 6455 §5.5.3): one that
                    // arrives while a pong is being written is dropped.
                    if this.out.is_none() {
                        this.out = Some(OutFrame::new(ws_frame::OP_PONG, payload, this.vectored));
                    }
                    continue;
                }
                Ok(Some(Event::Pong)) => continue,
                Ok(Some(Event::Close(code))) => {
                    this.done = true;
                    this.peer_close = Some(code);
                    return Poll::Ready(Some(Inbound::PeerClosed));
                }
                Ok(None) => {}
            }
            if !ready!(this.poll_fill(cx)) {
                this.done = true;
                return Poll::Ready(Some(Inbound::Broken(None)));
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin, P: Payload> Sink<Outbound<P>> for WsSocket<T> {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_write_out(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Outbound<P>) -> io::Result<()> {
        let this = self.get_mut();
        let v = this.vectored;
        let frame = match item {
            Outbound::Frame(p) => p.out_frame(this.data_opcode(), v),
            Outbound::Close(d) => {
                let close = OutFrame::close(d.code as u16, d.close_reason(), v);
                if this.push_disconnect {
                    this.then = Some(Box::new(close));
                    OutFrame::new(ws_frame::OP_TEXT, super::http_body::disconnect_push(true, &d), v)
                } else {
                    close
                }
            }
            // The client's code comes back (RFC 6455 §5.5.1); no code, no payload.
            Outbound::EchoClose => match this.peer_close.flatten() {
                Some(code) => OutFrame::close(code, "", v),
                None => OutFrame::new(ws_frame::OP_CLOSE, Bytes::new(), v),
            },
        };
        debug_assert!(this.out.is_none(), "start_send without poll_ready");
        this.out = Some(frame);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
