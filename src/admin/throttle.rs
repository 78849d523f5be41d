//! Per-address throttling of failed admin logins: an address that failed
//! `admin.max_failed_logins` times within `admin.login_window` is refused (429) until
//! the window that began with its first failure ends — even with the right password,
//! so guessing cannot continue. An attempt counts as a failure from the moment it is
//! admitted (before its body is read) until it succeeds, so many concurrent attempts
//! cannot all slip past the check. The table is bounded: when it is full, expired
//! windows are dropped, then the oldest window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Most addresses tracked at once.
const MAX_ADDRESSES: usize = 10_000;

pub(super) struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl LoginThrottle {
    pub(super) fn new(max_failures: u32, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    /// Admits an attempt from `addr` and counts it as failed until [`Self::succeeded`];
    /// `Err(retry_after)` while `addr` may not try.
    pub(super) fn attempt(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut map = self.failures.lock();
        if let Some(w) = map.get(&addr)
            && w.count >= self.max_failures
            && now < w.started + self.window
        {
            return Err(w.started + self.window - now);
        }
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&addr) {
            map.retain(|_, w| now < w.started + self.window);
            if map.len() >= MAX_ADDRESSES
                && let Some(oldest) = map.iter().min_by_key(|(_, w)| w.started).map(|(a, _)| *a)
            {
                map.remove(&oldest);
            }
        }
        let w = map.entry(addr).or_insert(Window { started: now, count: 0 });
        if now >= w.started + self.window {
            *w = Window { started: now, count: 0 };
        }
        w.count += 1;
        Ok(())
    }

    pub(super) fn succeeded(&self, addr: IpAddr) {
        self.failures.lock().remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_the_window_ends() {
        let t = LoginThrottle::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.attempt(a, t0).is_ok());
        }
        assert_eq!(t.attempt(a, t0 + Duration::from_secs(10)), Err(Duration::from_secs(50)));
        assert!(t.attempt(b, t0).is_ok(), "another address is not affected");
        assert!(t.attempt(a, t0 + Duration::from_secs(60)).is_ok(), "a new window starts counting afresh");
        assert!(t.attempt(a, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn success_clears_and_the_table_stays_bounded() {
        let t = LoginThrottle::new(2, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(t.attempt(a, t0).is_ok());
        assert!(t.attempt(a, t0).is_ok());
        t.succeeded(a);
        assert!(t.attempt(a, t0).is_ok());
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            let _ = t.attempt(IpAddr::from(i.to_be_bytes()), t0 + Duration::from_millis(i.into()));
        }
        assert!(t.failures.lock().len() <= MAX_ADDRESSES);
    }
}
