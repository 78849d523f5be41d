//! The node's timer wheel: when each connection's next deadline falls (a ping to
//! send, a pong or a connect that is late, an expiry or a refresh to check).
//!
//! Every session used to keep a tokio `Sleep` in its task (112 B, inline in a future
//! that stays allocated for the connection's life). Here a connection costs one
//! 16-byte entry in a slot of the wheel, and the queue it already has is what wakes it:
//! when an entry's tick passes, the driver task marks the connection's queue *due* and
//! wakes its writer, which runs the session loop (`transport::session_loop`).
//!
//! The layout:
//! - time is cut into [`TICK`]s counted from the wheel's epoch; a deadline fires at the
//!   first tick boundary at or after it (never early, at most one tick late);
//! - [`SLOTS`] slots, each a mutex over the entries of the ticks that map to it, so
//!   arming and firing contend only within one slot; a deadline further than the
//!   wheel's horizon is armed at the horizon and re-armed when that fires;
//! - each queue records the tick of its one live entry. Arming earlier than that adds
//!   an entry and makes the older one stale; arming later adds nothing (the earlier
//!   entry fires, the loop finds nothing due and arms again). A stale entry is dropped
//!   silently when its tick passes, so a connection is woken once per deadline;
//! - entries hold the queue weakly, and a connection that ends removes its entry
//!   ([`Timers::disarm`]), so an ended connection's queue is freed at once.
//!
//! One driver task per node ticks the wheel while any entry is armed and sleeps on a
//! [`Notify`] while none is.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Queue;

/// The wheel's resolution: a deadline fires within one tick after it.
pub const TICK: Duration = Duration::from_millis(10);

/// Slots of the wheel: with [`TICK`], a horizon of ~41 s (pings default to 25 s).
pub const SLOTS: u64 = 4096;

/// A node's timer wheel (cheap to share: the state is behind an `Arc`).
pub struct Timers {
    inner: Arc<Inner>,
}

struct Inner {
    epoch: Instant,
    slots: Box<[Mutex<Vec<Entry>>]>,
    /// The last tick the driver fired; a slot's entries for ticks up to it are gone.
    /// Written under the lock of that tick's slot.
    fired: AtomicU64,
    /// Entries in the wheel, stale ones included (the driver idles at zero).
    entries: AtomicUsize,
    /// Wakes an idle driver.
    armed: Notify,
    driver: AtomicBool,
}

struct Entry {
    tick: u64,
    queue: Weak<Queue>,
}

impl Default for Timers {
    fn default() -> Self {
        Self::new()
    }
}

/// A moment in 8 bytes: nanoseconds from the wheel's epoch, plus one (a tokio
/// `Instant` takes 16, and every connection keeps a few deadlines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(NonZeroU64);

impl Timers {
    pub fn new() -> Self {
        let slots = (0..SLOTS).map(|_| Mutex::new(Vec::new())).collect();
        let inner = Inner {
            epoch: Instant::now(),
            slots,
            fired: AtomicU64::new(0),
            entries: AtomicUsize::new(0),
            armed: Notify::new(),
            driver: AtomicBool::new(false),
        };
        Timers { inner: Arc::new(inner) }
    }

    /// Makes `queue` due at `at` (at the first tick boundary at or after it), unless it
    /// is due earlier already. Called by the connection's writer only; the first call
    /// starts the driver on the current runtime.
    pub fn arm(&self, queue: &Arc<Queue>, at: Instant) {
        let inner = &self.inner;
        if !inner.driver.load(Ordering::Relaxed) && !inner.driver.swap(true, Ordering::AcqRel) {
            tokio::spawn(drive(inner.clone()));
        }
        let wanted = inner.tick_at_or_after(at);
        let current = queue.armed_tick();
        if current != 0 && current <= wanted {
            return;
        }
        loop {
            let fired = inner.fired.load(Ordering::Acquire);
            // Past ticks fire at the next one; beyond the horizon, at the horizon.
            let horizon = inner.tick_before_or_at(Instant::now()) + SLOTS - 1;
            let tick = wanted.min(horizon).max(fired + 1);
            let mut slot = inner.slots[(tick % SLOTS) as usize].lock();
            // The driver marks a tick fired under its slot's lock: if it has not, the
            // entry is seen when it does.
            if inner.fired.load(Ordering::Acquire) >= tick {
                continue;
            }
            slot.push(Entry { tick, queue: Arc::downgrade(queue) });
            queue.set_armed_tick(tick);
            break;
        }
        if inner.entries.fetch_add(1, Ordering::AcqRel) == 0 {
            inner.armed.notify_one();
        }
    }

    /// Removes `queue`'s live entry (its connection ended).
    pub fn disarm(&self, queue: &Arc<Queue>) {
        let tick = queue.armed_tick();
        if tick == 0 {
            return;
        }
        queue.set_armed_tick(0);
        let mut slot = self.inner.slots[(tick % SLOTS) as usize].lock();
        let before = slot.len();
        slot.retain(|e| !std::ptr::eq(e.queue.as_ptr(), Arc::as_ptr(queue)));
        let removed = before - slot.len();
        if slot.is_empty() {
            *slot = Vec::new();
        }
        drop(slot);
        self.inner.entries.fetch_sub(removed, Ordering::AcqRel);
    }

    /// `at` as a [`Stamp`] (a moment before the epoch is the epoch).
    pub fn stamp(&self, at: Instant) -> Stamp {
        let nanos = at.saturating_duration_since(self.inner.epoch).as_nanos();
        Stamp(NonZeroU64::MIN.saturating_add(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    /// The moment a [`Stamp`] stands for.
    pub fn instant(&self, s: Stamp) -> Instant {
        self.inner.epoch + Duration::from_nanos(s.0.get() - 1)
    }

    /// Entries in the wheel, stale ones included (for tests).
    pub fn len(&self) -> usize {
        self.inner.entries.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn tick_at_or_after(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        nanos.div_ceil(TICK.as_nanos()) as u64
    }

    fn tick_before_or_at(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.epoch).as_nanos() / TICK.as_nanos()) as u64
    }

    fn instant_of(&self, tick: u64) -> Instant {
        self.epoch + Duration::from_nanos(TICK.as_nanos() as u64 * tick)
    }

    /// Fires the entries of `tick`: each live one makes its queue due.
    fn fire(&self, tick: u64, due: &mut Vec<Arc<Queue>>) {
        let mut slot = self.slots[(tick % SLOTS) as usize].lock();
        self.fired.store(tick, Ordering::Release);
        if slot.is_empty() {
            return;
        }
        let before = slot.len();
        slot.retain(|e| {
            if e.tick > tick {
                return true;
            }
            if let Some(q) = e.queue.upgrade()
                && q.take_armed_tick(e.tick)
            {
                due.push(q);
            }
            false
        });
        let removed = before - slot.len();
        if slot.is_empty() {
            // A burst's storage goes with it.
            *slot = Vec::new();
        }
        drop(slot);
        self.entries.fetch_sub(removed, Ordering::AcqRel);
    }
}

/// The driver: sleeps to each tick boundary and fires the ticks that passed; idles
/// while the wheel is empty.
async fn drive(inner: Arc<Inner>) {
    let mut due = Vec::new();
    loop {
        if inner.entries.load(Ordering::Acquire) == 0 {
            let armed = inner.armed.notified();
            if inner.entries.load(Ordering::Acquire) == 0 {
                armed.await;
            }
        }
        let next = inner.fired.load(Ordering::Acquire) + 1;
        tokio::time::sleep_until(inner.instant_of(next)).await;
        let now = inner.tick_before_or_at(Instant::now()).max(next);
        // Behind by more than a turn (an idle wheel, a stalled runtime): each slot is
        // fired once, at the latest tick that maps to it, which covers every entry.
        for t in next.max((now + 1).saturating_sub(SLOTS))..=now {
            inner.fire(t, &mut due);
        }
        for q in due.drain(..) {
            q.make_due();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Arc<Queue> {
        Arc::new(Queue::new(1024))
    }

    /// Waits for the queue's next wake-up and says whether it was a deadline.
    async fn next_due(q: &Queue) -> bool {
        std::future::poll_fn(|cx| q.poll_signal(cx)).await.due()
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_fires_at_its_tick_not_before() {
        let timers = Timers::new();
        let q = queue();
        let start = Instant::now();
        timers.arm(&q, start + Duration::from_millis(25));
        assert!(next_due(&q).await);
        let waited = Instant::now() - start;
        assert!(waited >= Duration::from_millis(25) && waited <= Duration::from_millis(25) + TICK, "{waited:?}");
        assert!(timers.is_empty(), "the fired entry left the wheel");
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_replaces_a_later_one_and_a_later_adds_nothing() {
        let timers = Timers::new();
        let q = queue();
        let start = Instant::now();
        timers.arm(&q, start + Duration::from_secs(5));
        timers.arm(&q, start + Duration::from_secs(9));
        assert_eq!(timers.len(), 1, "a later deadline adds no entry");
        timers.arm(&q, start + Duration::from_secs(1));
        assert!(next_due(&q).await);
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
        // The 5 s entry is stale: it passes without waking the queue.
        let woken = tokio::time::timeout(Duration::from_secs(10), next_due(&q)).await;
        assert!(woken.is_err(), "a stale entry woke the queue");
        assert!(timers.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_horizon_fires_at_the_horizon_and_a_past_deadline_at_once() {
        let timers = Timers::new();
        let q = queue();
        let start = Instant::now();
        timers.arm(&q, start + Duration::from_secs(3600));
        assert!(next_due(&q).await);
        let waited = Instant::now() - start;
        assert!(waited <= TICK * SLOTS as u32 && waited >= TICK * (SLOTS as u32 - 2), "{waited:?}");
        let at = Instant::now();
        timers.arm(&q, at - Duration::from_secs(1));
        assert!(next_due(&q).await);
        assert!(Instant::now() - at <= TICK);
    }

    #[tokio::test(start_paused = true)]
    async fn disarm_removes_the_entry_and_an_ended_queue_is_not_kept() {
        let timers = Timers::new();
        let q = queue();
        timers.arm(&q, Instant::now() + Duration::from_secs(2));
        assert_eq!(timers.len(), 1);
        timers.disarm(&q);
        assert!(timers.is_empty());
        // A queue dropped without disarming is skipped when its tick passes.
        let gone = queue();
        timers.arm(&gone, Instant::now() + Duration::from_secs(1));
        let weak = Arc::downgrade(&gone);
        drop(gone);
        assert!(weak.upgrade().is_none());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(timers.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stamp_is_the_moment_to_the_nanosecond() {
        let timers = Timers::new();
        let now = Instant::now();
        for d in
            [Duration::ZERO, Duration::from_nanos(1), Duration::from_millis(1234), Duration::from_secs(86_400 * 400)]
        {
            assert_eq!(timers.instant(timers.stamp(now + d)), now + d);
        }
        assert!(timers.stamp(now + Duration::from_nanos(1)) > timers.stamp(now));
        assert_eq!(std::mem::size_of::<Option<Stamp>>(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn many_queues_each_fire_once() {
        let timers = Timers::new();
        let start = Instant::now();
        let queues: Vec<_> = (0..200).map(|_| queue()).collect();
        for (i, q) in queues.iter().enumerate() {
            timers.arm(q, start + Duration::from_millis(7 * i as u64 + 1));
        }
        for q in &queues {
            assert!(next_due(q).await);
        }
        assert!(timers.is_empty());
    }
}
