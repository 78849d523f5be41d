//! `client.connection_limit` and `client.connection_rate_limit`: connection requests
//! beyond the node's cap of live connections, or beyond its rate of new ones, are
//! answered HTTP 503 before any handshake, and counted in
//! `centrifugo_node_client_connection_limit` (as Centrifugo's middleware does). They
//! guard every connection endpoint except `/emulation`, whose requests belong to
//! sessions already counted.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use crate::node::Node;

/// A token bucket refilled at `rate` per second, holding at most `rate` tokens.
pub(super) struct RateLimiter {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub(super) fn new(rate: usize) -> Self {
        let rate = rate as f64;
        Self { rate, state: Mutex::new((rate, Instant::now())) }
    }

    /// Takes a token if one is there.
    pub(super) fn allow(&self, now: Instant) -> bool {
        let mut s = self.state.lock();
        let (tokens, last) = *s;
        let refilled = (tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate).min(self.rate);
        if refilled >= 1.0 {
            *s = (refilled - 1.0, now);
            true
        } else {
            *s = (refilled, now);
            false
        }
    }
}

/// The limits of one node; the middleware's state.
#[derive(Clone)]
pub(super) struct Limits {
    node: Arc<Node>,
    rate: Option<Arc<RateLimiter>>,
}

impl Limits {
    /// None when neither limit is set.
    pub(super) fn of(node: &Arc<Node>) -> Option<Self> {
        let c = &node.config.client;
        if c.connection_limit == 0 && c.connection_rate_limit == 0 {
            return None;
        }
        let rate = (c.connection_rate_limit > 0).then(|| Arc::new(RateLimiter::new(c.connection_rate_limit)));
        Some(Self { node: node.clone(), rate })
    }
}

pub(super) async fn guard(State(l): State<Limits>, req: Request, next: Next) -> Response {
    let cap = l.node.config.client.connection_limit;
    let over_rate = l.rate.as_ref().is_some_and(|r| !r.allow(Instant::now()));
    let over_cap = cap > 0 && l.node.hub.len() >= cap;
    if over_rate || over_cap {
        l.node.metrics.activity.connection_limit.inc();
        if over_cap {
            tracing::debug!(limit = cap, "node connection limit reached");
        }
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_bucket_allows_its_rate_per_second() {
        let r = RateLimiter::new(3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| r.allow(t0)));
        assert!(!r.allow(t0));
        assert!(!r.allow(t0 + Duration::from_millis(300)));
        assert!(r.allow(t0 + Duration::from_millis(400)));
        // A long pause refills to the rate, not beyond it.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| r.allow(later)));
        assert!(!r.allow(later));
    }
}
