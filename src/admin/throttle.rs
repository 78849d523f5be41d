//! Per-address throttling of failed admin logins: an address that failed
//! `admin.max_failed_logins` times within `admin.login_window` is refused (429) until
//! the window that began with its first failure ends — even with the right password,
//! so guessing cannot continue. The table is bounded: when it is full, expired
//! windows are dropped, then the oldest window.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Most addresses tracked at once.
const MAX_ADDRESSES: usize = 10_000;

pub struct LoginThrottle {
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
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    /// `Err(retry_after)` while `addr` may not try again.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let map = self.failures.lock();
        match map.get(&addr) {
            Some(w) if w.count >= self.max_failures && now < w.started + self.window => {
                Err(w.started + self.window - now)
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, addr: IpAddr, now: Instant) {
        let mut map = self.failures.lock();
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
    }

    pub fn succeeded(&self, addr: IpAddr) {
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
            assert!(t.check(a, t0).is_ok());
            t.failed(a, t0);
        }
        assert_eq!(t.check(a, t0 + Duration::from_secs(10)), Err(Duration::from_secs(50)));
        assert!(t.check(b, t0).is_ok(), "another address is not affected");
        assert!(t.check(a, t0 + Duration::from_secs(60)).is_ok());
        t.failed(a, t0 + Duration::from_secs(61));
        assert!(t.check(a, t0 + Duration::from_secs(62)).is_ok(), "a new window starts counting afresh");
    }

    #[test]
    fn success_clears_and_the_table_stays_bounded() {
        let t = LoginThrottle::new(1, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        t.failed(a, t0);
        assert!(t.check(a, t0).is_err());
        t.succeeded(a);
        assert!(t.check(a, t0).is_ok());
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            t.failed(IpAddr::from(i.to_be_bytes()), t0 + Duration::from_millis(i.into()));
        }
        assert!(t.failures.lock().len() <= MAX_ADDRESSES);
    }
}
