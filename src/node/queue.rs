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
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::{Mutex, MutexGuard};

use crate::protocol::Disconnect;

pub struct Queue {
    state: Mutex<QueueState>,
    /// The writer's wake-up: set by every push or close, taken by
    /// [`Queue::poll_notified`]. A waker slot and a flag rather than a `Notify`, whose
    /// waiting future (64 B) would sit in every idle connection's task.
    signaled: AtomicBool,
    writer: AtomicWaker,
    max_bytes: usize,
}

#[derive(Default)]
pub struct QueueState {
    items: VecDeque<Bytes>,
    bytes: usize,
    closed: Option<Disconnect>,
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
            self.closed = Some(Disconnect::slow());
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
            signaled: AtomicBool::new(false),
            writer: AtomicWaker::new(),
            max_bytes,
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
        self.signaled.store(true, Ordering::Release);
        self.writer.wake();
    }

    /// Closes the queue. With `flush`, already-queued messages are still written first.
    pub fn close(&self, d: Disconnect, flush: bool) {
        let mut s = self.state.lock();
        if s.closed.is_none() {
            if !flush {
                s.items.clear();
                s.bytes = 0;
            }
            s.closed = Some(d);
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
        let closed = s.closed.clone();
        drop(s);
        out.extend(items);
        closed
    }

    /// Ready when something was queued or the queue closed since the last Ready (a
    /// wake-up before the writer polls is kept, as a permit). One writer polls this.
    pub fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.signaled.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.writer.register(cx.waker());
        if self.signaled.swap(false, Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A push before the writer polls is kept; a push while it waits wakes it; a poll
    /// with nothing new is Pending.
    #[test]
    fn the_writer_is_woken_once_per_push_or_close() {
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
        assert!(q.poll_notified(&mut cx).is_pending());
        q.push(Bytes::from_static(b"a"));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "a push wakes the waiting writer");
        assert!(q.poll_notified(&mut cx).is_ready());
        assert!(q.poll_notified(&mut cx).is_pending(), "one push is one wake-up");
        q.close(Disconnect::slow(), true);
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "a close wakes it too");
        q.push(Bytes::from_static(b"b"));
        assert!(q.poll_notified(&mut cx).is_ready());
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
