//! The writer of a streamed answer: a hand-written future that owns the socket and the
//! response body, and is the connection task's state for the life of the stream.
//!
//! Written by hand rather than as an `async fn` so that an idle stream's state is only
//! what it must be: the socket, the body, the shutdown signal it holds and a few words
//! of bookkeeping (136 B). An
//! `async` writer kept a `select!` over the body and the socket, a timeout future and a
//! write future in its state whether or not anything was being written (~830 B, in a
//! box of its own).
//!
//! Each poll:
//! 1. takes the chunks the body has ready (for a session body this runs the session
//!    loop), framing them chunked unless the length is known, up to [`COALESCE`] bytes;
//! 2. writes what it holds; a write that cannot finish arms the write deadline, which
//!    ends the stream when it passes first (a client that stopped reading);
//! 3. when everything is written it gives its buffer back, and watches the socket for
//!    the client closing its side (anything the client sends is read and dropped).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use bytes::{BufMut, BytesMut};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Sleep;

/// Ready chunks are joined into one write up to this size.
pub(super) const COALESCE: usize = 16 * 1024;

/// Writes a response whose head is already encoded, then its body, then shuts the
/// socket's sending side.
pub(crate) struct Writer {
    stream: TcpStream,
    body: Body,
    /// Bytes to write; `sent` of them are written. Empty (no allocation) when idle.
    out: BytesMut,
    sent: usize,
    /// Armed while a write waits for the socket.
    deadline: Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    chunked: bool,
    /// The body ended: write what is left, then close.
    ended: bool,
    /// Held, not read: the server's shutdown signal, which a shutting-down server waits
    /// on until every holder is gone (see `conn.rs`).
    draining: Option<watch::Receiver<()>>,
}

impl Writer {
    pub(super) fn new(stream: TcpStream, head: BytesMut, body: Body, chunked: bool, timeout: Duration) -> Writer {
        Writer { stream, body, out: head, sent: 0, deadline: None, timeout, chunked, ended: false, draining: None }
    }

    /// Holds `draining` for as long as the answer is written.
    pub(in crate::server) fn holding(mut self, draining: watch::Receiver<()>) -> Writer {
        self.draining = Some(draining);
        self
    }

    /// Takes the body's ready chunks into `out`, up to [`COALESCE`] bytes.
    fn gather(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while !self.ended && self.out.len() < COALESCE {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(chunk) = frame.into_data() else { continue };
                    if chunk.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        self.out.reserve(chunk.len() + 20);
                        put_hex(&mut self.out, chunk.len());
                        self.out.put_slice(b"\r\n");
                        self.out.put_slice(&chunk);
                        self.out.put_slice(b"\r\n");
                    } else {
                        self.out.put_slice(&chunk);
                    }
                }
                Poll::Ready(Some(Err(e))) => return Err(io::Error::other(e)),
                Poll::Ready(None) => {
                    if self.chunked {
                        self.out.put_slice(b"0\r\n\r\n");
                    }
                    self.ended = true;
                }
                Poll::Pending => break,
            }
        }
        Ok(())
    }

    /// Writes what `out` holds; Ready when all of it is written.
    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.out[self.sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    let timeout = self.timeout;
                    let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "client not reading")));
                    }
                    return Poll::Pending;
                }
            }
        }
        // Written: nothing of it stays with an idle stream.
        self.out = BytesMut::new();
        self.sent = 0;
        self.deadline = None;
        Poll::Ready(Ok(()))
    }

    /// Ready when the client has closed its side or the socket failed; bytes the client
    /// sends after its request are dropped (the connection closes when the stream ends,
    /// so nothing after it is served).
    fn client_gone(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Err(e) = std::task::ready!(self.stream.poll_read_ready(cx)) {
                return Poll::Ready(Err(e));
            }
            let mut scrap = [0u8; 256];
            match self.stream.try_read(&mut scrap) {
                Ok(0) => return Poll::Ready(Ok(())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl Future for Writer {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            this.gather(cx)?;
            if this.sent < this.out.len() {
                std::task::ready!(this.flush(cx))?;
                // Written: the body may have more ready.
                continue;
            }
            if this.ended {
                return Pin::new(&mut this.stream).poll_shutdown(cx);
            }
            // Idle: the body is pending, and so is the socket unless the client left.
            return this.client_gone(cx);
        }
    }
}

/// Appends `n` in lowercase hex (a chunk's size line).
fn put_hex(out: &mut BytesMut, n: usize) {
    let digits = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.put_u8(b"0123456789abcdef"[(n >> (i * 4)) & 0xf]);
    }
}

#[cfg(test)]
mod tests {
    use super::put_hex;
    use bytes::BytesMut;

    #[test]
    fn chunk_sizes_are_lowercase_hex() {
        for n in [0usize, 1, 9, 10, 15, 16, 255, 256, 4096, 16 * 1024, 0xabcdef, usize::MAX] {
            let mut out = BytesMut::new();
            put_hex(&mut out, n);
            assert_eq!(out.as_ref(), format!("{n:x}").as_bytes());
        }
    }
}
