//! The one session loop every transport runs: it reads frames of commands from a
//! [`Stream`] of [`Inbound`] events, hands them to the [`Conn`], writes what the
//! connection queued (replies, pushes, pings) to a [`Sink`] of [`Outbound`] frames, and
//! arms the connection's deadlines in the node's timer wheel (`node/timers.rs`). The
//! transports only adapt their socket or response
//! body to that stream and sink, so a connection can be driven by in-memory channels.
//!
//! How queued messages become wire frames is the [`Codec`]'s business (JSON lines in
//! one WebSocket text frame, one SSE event per message…), so another encoding is
//! another `Codec`, not another loop. Every write is bounded by the write timeout; a
//! write that fails or times out ends the session.
//!
//! An idle connection's task holds no buffers: a drain's batch and frames live only
//! until they are written (see [`write_batch`]), and the queue gives its storage away
//! with its items. What an idle session still costs is the task itself, the
//! transport's stream state and the hub entry — see docs/performance.md.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::Instant;

use crate::node::{Conn, Queue, Signal};
use crate::protocol::Disconnect;

/// What a transport read from its client.
#[derive(Debug)]
pub enum Inbound {
    /// A frame of newline-separated commands.
    Frame(Bytes),
    /// A frame this transport cannot carry commands in (binary on a JSON WebSocket).
    Unsupported,
    /// The peer closed cleanly; the transport answers the close.
    PeerClosed,
    /// The peer broke the transport's rules (`Some`: what to tell it) or is gone.
    Broken(Option<Disconnect>),
}

/// What the loop asks the transport to write.
#[derive(Debug, PartialEq)]
pub enum Outbound<F> {
    Frame(F),
    /// The session ends for this reason: tell the peer (close frame, disconnect push).
    Close(Disconnect),
    /// Answer the peer's close.
    EchoClose,
}

/// Turns a batch of queued messages (each one encoded Reply or Push) into frames. The
/// batch is given by value, so a codec whose frame is the batch itself takes it whole.
pub trait Codec {
    type Frame;
    fn frames(&self, batch: Vec<Bytes>, out: &mut Vec<Self::Frame>);
}

/// Whether the client's frames are commands (bidirectional) or ignored (uni).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bidirectional,
    Unidirectional,
}

/// Drives `conn` over a transport given as two ends (an inbound stream and an
/// outbound sink); see [`run_duplex`].
pub async fn run<I, S, C>(conn: &mut Conn, inbound: I, sink: S, codec: &C, mode: Mode)
where
    I: Stream<Item = Inbound> + Unpin,
    S: Sink<Outbound<C::Frame>> + Unpin,
    C: Codec,
{
    run_duplex(conn, Duplex { inbound, sink }, codec, mode).await
}

/// Drives `conn` until the session ends: the queue closed (its reason is written
/// as [`Outbound::Close`]), the peer closed or broke the rules, the inbound stream
/// ended, or a write failed. `io` is one value for both directions (a WebSocket
/// owns its socket whole, see `ws_socket`), so nothing is shared between halves.
/// Every write is bounded by `websocket.write_timeout`, read when it is needed so the
/// future (which every idle connection keeps) does not carry it.
pub async fn run_duplex<D, C>(conn: &mut Conn, mut io: D, codec: &C, mode: Mode)
where
    D: Stream<Item = Inbound> + Sink<Outbound<C::Frame>> + Unpin,
    C: Codec,
{
    let queue = conn.queue().clone();
    loop {
        // The next deadline is armed in the node's timer wheel, which wakes the loop
        // through the queue: the loop keeps no timer of its own. (One already passed
        // fires at the wheel's next tick.)
        conn.node().timers.arm(&queue, conn.deadline());
        // A hand-made `select!` (queue first): it keeps no future of its own across the
        // wait, only its two borrows. What the event sets off runs in a box of its
        // own (writing a batch, running commands: large state machines that live only
        // while they run, not in every idle connection's task). No value is bound
        // across that await, so the loop's own state stays a few words.
        let go_on = Box::pin(work(
            match next_step(
                poll_fn(|cx| {
                    if let Poll::Ready(signal) = queue.poll_signal(cx) {
                        return Poll::Ready(Event::Signal(signal));
                    }
                    io.poll_next_unpin(cx).map(Event::Read)
                })
                .await,
                conn,
                &queue,
                mode,
            ) {
                Step::Next => continue,
                Step::End => return,
                Step::Work(w) => w,
            },
            conn,
            &mut io,
            codec,
            &queue,
        ))
        .await;
        if !go_on {
            return;
        }
    }
}

/// What woke the session loop.
enum Event {
    Signal(Signal),
    Read(Option<Inbound>),
}

/// What the loop does about an event.
enum Step {
    /// Nothing more: wait for the next event.
    Next,
    /// The session is over (the peer is gone).
    End,
    Work(Work),
}

/// An event's part that waits for something (a write, a command's answer).
enum Work {
    /// Write what was queued (and the close, once the queue closed).
    Drain,
    /// Run a frame of commands.
    Commands(Bytes),
    /// Answer the peer's close, and end the session.
    EchoClose,
    /// Tell the peer why the session ends, and end it.
    Close(Disconnect),
}

/// The synchronous part of an event: deadlines, frames that are ignored or refused.
fn next_step(event: Event, conn: &mut Conn, queue: &Queue, mode: Mode) -> Step {
    match event {
        Event::Signal(signal) => {
            // A wheel's entry fires at a tick boundary at or after its deadline; one
            // the connection moved later since fires early, and is only re-armed.
            if signal.due()
                && conn.deadline() <= Instant::now()
                && let Err(d) = conn.on_deadline()
            {
                queue.close(d, true);
            }
            if signal.queued() || queue.is_closed() { Step::Work(Work::Drain) } else { Step::Next }
        }
        Event::Read(msg) => match msg {
            Some(Inbound::Frame(f)) if mode == Mode::Bidirectional => Step::Work(Work::Commands(f)),
            Some(Inbound::Unsupported) if mode == Mode::Bidirectional => {
                queue.close(Disconnect::bad_request(), true);
                Step::Next
            }
            Some(Inbound::Frame(_) | Inbound::Unsupported) => Step::Next,
            Some(Inbound::PeerClosed) => Step::Work(Work::EchoClose),
            Some(Inbound::Broken(Some(d))) => Step::Work(Work::Close(d)),
            Some(Inbound::Broken(None)) | None => Step::End,
        },
    }
}

/// Does an event's waiting part; false when the session is over.
async fn work<D, C>(work: Work, conn: &mut Conn, io: &mut D, codec: &C, queue: &Queue) -> bool
where
    D: Sink<Outbound<C::Frame>> + Unpin,
    C: Codec,
{
    match work {
        Work::Drain => {
            let mut batch = Vec::new();
            let closed = queue.drain(&mut batch);
            if !write_batch(io, codec, batch, write_timeout(conn)).await {
                return false;
            }
            if let Some(d) = closed {
                conn.node().metrics.server_disconnect(d.code);
                write(io, Outbound::Close(d), write_timeout(conn)).await;
                return false;
            }
            true
        }
        Work::Commands(f) => {
            if let Err(d) = conn.handle_frame(&f).await {
                queue.close(d, true);
            }
            true
        }
        Work::EchoClose => {
            write(io, Outbound::EchoClose, write_timeout(conn)).await;
            false
        }
        Work::Close(d) => {
            write(io, Outbound::Close(d), write_timeout(conn)).await;
            false
        }
    }
}

fn write_timeout(conn: &Conn) -> Duration {
    conn.node().config.websocket.write_timeout.std()
}

/// Two ends as one duplex.
pub struct Duplex<I, S> {
    inbound: I,
    sink: S,
}

impl<I, S> Duplex<I, S> {
    pub fn new(inbound: I, sink: S) -> Self {
        Duplex { inbound, sink }
    }

    pub fn into_parts(self) -> (I, S) {
        (self.inbound, self.sink)
    }
}

impl<I: Stream + Unpin, S: Unpin> Stream for Duplex<I, S> {
    type Item = I::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<I::Item>> {
        self.inbound.poll_next_unpin(cx)
    }
}

impl<T, I: Unpin, S: Sink<T> + Unpin> Sink<T> for Duplex<I, S> {
    type Error = S::Error;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.sink.poll_ready_unpin(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: T) -> Result<(), S::Error> {
        self.sink.start_send_unpin(item)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.sink.poll_flush_unpin(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.sink.poll_close_unpin(cx)
    }
}

/// Frames and writes one drained batch; false when a write failed. The batch and its
/// frames are dropped here, so nothing of a burst stays with an idle connection.
async fn write_batch<S, C>(sink: &mut S, codec: &C, batch: Vec<Bytes>, timeout: Duration) -> bool
where
    S: Sink<Outbound<C::Frame>> + Unpin,
    C: Codec,
{
    if batch.is_empty() {
        return true;
    }
    let mut frames = Vec::new();
    codec.frames(batch, &mut frames);
    for f in frames {
        if !write(sink, Outbound::Frame(f), timeout).await {
            return false;
        }
    }
    true
}

/// One write under the timeout; false when it failed or took too long.
async fn write<S, F>(sink: &mut S, item: Outbound<F>, timeout: Duration) -> bool
where
    S: Sink<Outbound<F>> + Unpin,
{
    matches!(tokio::time::timeout(timeout, sink.send(item)).await, Ok(Ok(())))
}

/// Messages joined with `\n` into one frame (bidirectional WebSocket, joined uni WS).
pub struct JoinedLines;

impl Codec for JoinedLines {
    type Frame = Bytes;
    fn frames(&self, batch: Vec<Bytes>, out: &mut Vec<Bytes>) {
        out.push(join_lines(&batch));
    }
}

/// Each message its own frame (uni WebSocket without joining); a batch's frames are
/// written together.
pub struct OnePerMessage;

impl Codec for OnePerMessage {
    type Frame = super::ws_socket::Messages;
    fn frames(&self, batch: Vec<Bytes>, out: &mut Vec<Self::Frame>) {
        out.push(super::ws_socket::Messages(batch));
    }
}

/// Messages concatenated into one frame (protobuf: each is length-prefixed already).
pub struct Concatenated;

impl Codec for Concatenated {
    type Frame = Bytes;
    fn frames(&self, mut batch: Vec<Bytes>, out: &mut Vec<Bytes>) {
        out.push(match batch.len() {
            1 => batch.swap_remove(0),
            _ => Bytes::from(batch.concat()),
        });
    }
}

/// Joins messages with `\n`.
pub fn join_lines(items: &[Bytes]) -> Bytes {
    let len = items.iter().map(|b| b.len() + 1).sum();
    let mut out = Vec::with_capacity(len);
    for (i, b) in items.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(b);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
