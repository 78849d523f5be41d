//! A connection's outgoing queue, bounded in bytes.
//!
//! Backpressure policy: producers (fan-out, replies) never wait. When a push would
//! take the queue past `client.queue_max_size`, the queue drops its backlog and closes
//! with disconnect 3008 "slow"; the writer then ends the connection. Memory per
//! connection therefore never grows without bound. The first close wins.
//!
//! Memory while idle: an empty queue owns no buffer. [`Queue::drain`] hands the
//! backlog's storage to the writer, so the deque is allocated again by the next push
//! instead of keeping the capacity of its largest burst for the life of the
//! connection (most connections are idle most of the time).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::{Mutex, MutexGuard};

use crate::protocol::Disconnect;

pub struct Queue {
    state: Mutex<QueueState>,
    /// The writer's wake-up: [`QUEUED`] set by every push or close, [`DUE`] by the
    /// node's timer wheel; both taken by [`Queue::poll_signal`]. A waker slot and flags
    /// rather than a `Notify` and a timer, whose futures (64 and 112 B) would sit in
    /// every idle connection's task.
    signaled: AtomicU8,
    writer: AtomicWaker,
    /// The tick of this connection's live entry in the timer wheel (0: none); see
    /// `node/timers.rs`.
    armed: AtomicU64,
}

/// Something was queued, or the queue closed.
const QUEUED: u8 = 1;
/// The connection's deadline passed (the timer wheel fired).
const DUE: u8 = 2;

/// What woke a queue's writer (see [`Queue::poll_signal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal(u8);

impl Signal {
    /// Something was queued or the queue closed: drain it.
    pub fn queued(self) -> bool {
        self.0 & QUEUED != 0
    }

    /// The deadline the connection armed passed.
    pub fn due(self) -> bool {
        self.0 & DUE != 0
    }
}

#[derive(Default)]
pub struct QueueState {
    items: VecDeque<Bytes>,
    bytes: usize,
    /// Boxed: a close is rare, and every connection's queue would carry its 32 bytes.
    closed: Option<Box<Disconnect>>,
    max_bytes: usize,
}

impl QueueState {
    /// Queues one message (already framed JSON, no trailing newline). Returns false if
    /// the queue is closed or just overflowed.
    pub fn push(&mut self, msg: Bytes) -> bool {
        if self.closed.is_some() {
            return false;
        }
        if self.bytes + msg.len() > self.max_bytes {
            self.items.clear();
            self.bytes = 0;
            self.closed = Some(Box::new(Disconnect::slow()));
            return false;
        }
        self.bytes += msg.len();
        self.items.push_back(msg);
        true
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }
}

impl Queue {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(QueueState { max_bytes: max_bytes.max(1), ..Default::default() }),
            signaled: AtomicU8::new(0),
            writer: AtomicWaker::new(),
            armed: AtomicU64::new(0),
        }
    }

    pub fn push(&self, msg: Bytes) -> bool {
        let ok = self.state.lock().push(msg);
        self.wake();
        ok
    }

    /// Holds the queue so several messages (or a subscribe reply and the registration
    /// that precedes it) land atomically. Call [`Queue::wake`] after dropping the guard.
    pub fn hold(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock()
    }

    pub fn wake(&self) {
        self.signaled.fetch_or(QUEUED, Ordering::Release);
        self.writer.wake();
    }

    /// The timer wheel fired this connection's deadline.
    pub(super) fn make_due(&self) {
        self.signaled.fetch_or(DUE, Ordering::Release);
        self.writer.wake();
    }

    pub(super) fn armed_tick(&self) -> u64 {
        self.armed.load(Ordering::Acquire)
    }

    pub(super) fn set_armed_tick(&self, tick: u64) {
        self.armed.store(tick, Ordering::Release);
    }

    /// Whether `tick` is still this connection's live entry (then it is no more).
    pub(super) fn take_armed_tick(&self, tick: u64) -> bool {
        self.armed.compare_exchange(tick, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Closes the queue. With `flush`, already-queued messages are still written first.
    pub fn close(&self, d: Disconnect, flush: bool) {
        let mut s = self.state.lock();
        if s.closed.is_none() {
            if !flush {
                s.items.clear();
                s.bytes = 0;
            }
            s.closed = Some(Box::new(d));
        }
        drop(s);
        self.wake();
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().closed.is_some()
    }

    /// Moves everything queued into `out`; returns the close reason once closed.
    /// The queue's storage leaves with its items: an empty queue holds no buffer.
    pub fn drain(&self, out: &mut Vec<Bytes>) -> Option<Disconnect> {
        let mut s = self.state.lock();
        let items = std::mem::take(&mut s.items);
        s.bytes = 0;
        let closed = s.closed.as_deref().cloned();
        drop(s);
        out.extend(items);
        closed
    }

    /// Ready with what happened since the last Ready: something queued or the queue
    /// closed, the deadline passed, or both (a wake-up before the writer polls is kept,
    /// as a permit). One writer polls this.
    pub fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        match self.signaled.swap(0, Ordering::Acquire) {
            0 => {}
            s => return Poll::Ready(Signal(s)),
        }
        self.writer.register(cx.waker());
        match self.signaled.swap(0, Ordering::Acquire) {
            0 => Poll::Pending,
            s => Poll::Ready(Signal(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A push before the writer polls is kept; a push, close or deadline while it waits
    /// wakes it; a poll with nothing new is Pending.
    #[test]
    fn the_writer_is_woken_once_per_push_close_or_deadline() {
        use futures_util::task::{ArcWake, waker};
        use std::sync::atomic::AtomicUsize;
        struct Count(AtomicUsize);
        impl ArcWake for Count {
            fn wake_by_ref(me: &std::sync::Arc<Self>) {
                me.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = std::sync::Arc::new(Count(AtomicUsize::new(0)));
        let w = waker(count.clone());
        let mut cx = Context::from_waker(&w);
        let q = Queue::new(1000);
        assert!(q.poll_signal(&mut cx).is_pending());
        q.push(Bytes::from_static(b"a"));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "a push wakes the waiting writer");
        assert_eq!(q.poll_signal(&mut cx), Poll::Ready(Signal(QUEUED)));
        assert!(q.poll_signal(&mut cx).is_pending(), "one push is one wake-up");
        q.close(Disconnect::slow(), true);
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "a close wakes it too");
        q.make_due();
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "the writer was woken already");
        let Poll::Ready(s) = q.poll_signal(&mut cx) else { panic!("signalled") };
        assert!(s.queued() && s.due(), "both kept until taken");
        assert!(q.poll_signal(&mut cx).is_pending());
        q.make_due();
        assert_eq!(count.0.load(Ordering::SeqCst), 3, "a deadline wakes the writer");
        assert_eq!(q.poll_signal(&mut cx), Poll::Ready(Signal(DUE)));
    }

    /// Every connection keeps one queue in an `Arc` (16 bytes of counts more): at 112 B
    /// and under, that block takes mimalloc's 128-byte size class (the next is 160).
    #[test]
    fn a_queue_stays_in_its_size_class() {
        let size = std::mem::size_of::<Queue>();
        // 136 bytes with the close reason inline and the size limit kept twice.
        assert!(size <= 112, "a queue grew to {size} bytes");
    }

    #[test]
    fn overflow_closes_as_slow() {
        let q = Queue::new(10);
        assert!(q.push(Bytes::from_static(b"12345")));
        assert!(!q.push(Bytes::from_static(b"1234567")));
        let mut out = Vec::new();
        assert_eq!(q.drain(&mut out).unwrap().code, 3008);
        assert!(out.is_empty(), "backlog of a slow client is dropped");
        assert!(!q.push(Bytes::from_static(b"1")));
    }

    #[test]
    fn drained_queue_keeps_no_storage() {
        let q = Queue::new(1000);
        for _ in 0..10 {
            q.push(Bytes::from_static(b"abc"));
        }
        let mut out = Vec::new();
        assert!(q.drain(&mut out).is_none());
        assert_eq!(out.len(), 10);
        assert_eq!(q.hold().items.capacity(), 0, "an idle queue owns no buffer");
        assert!(q.push(Bytes::from_static(b"d")), "and still takes the next push");
        out.clear();
        q.drain(&mut out);
        assert_eq!(out, vec![Bytes::from_static(b"d")]);
    }

    #[test]
    fn flush_close_keeps_backlog() {
        let q = Queue::new(100);
        q.push(Bytes::from_static(b"a"));
        q.close(Disconnect::force_no_reconnect(), true);
        q.close(Disconnect::shutdown(), true);
        let mut out = Vec::new();
        assert_eq!(q.drain(&mut out).unwrap().code, 3503, "first close wins");
        assert_eq!(out.len(), 1);
    }
}
