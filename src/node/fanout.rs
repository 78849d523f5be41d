//! Fan-out to this node's subscribers: a publication (or join/leave) is encoded once
//! per transport family and encoding actually present among the subscribers (JSON
//! bidirectional, JSON unidirectional, protobuf) and the same bytes are queued for
//! every subscriber of that kind. The
//! channel index lock is held only to copy the subscriber list, never while pushing.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;

use crate::metrics::{Frame, Message};
use crate::protocol::codec::encode_push_raw;
use crate::protocol::pb::{self, PbPush};
use crate::protocol::{ClientInfo, Encoding, JoinLeave, Publication};

use super::{Node, Subscriber};

/// A message encoded lazily once for bidirectional and once for unidirectional JSON
/// clients (from the JSON `body`) and once for protobuf clients (from `typed`).
struct Framed<'a> {
    channel: &'a str,
    kind: &'a str,
    body: Vec<u8>,
    typed: &'a dyn PbPush,
    bidi: Option<Bytes>,
    uni: Option<Bytes>,
    protobuf: Option<Bytes>,
}

impl<'a> Framed<'a> {
    fn new(channel: &'a str, kind: &'a str, body: Vec<u8>, typed: &'a dyn PbPush) -> Self {
        Self { channel, kind, body, typed, bidi: None, uni: None, protobuf: None }
    }

    fn for_client(&mut self, uni: bool, encoding: Encoding) -> Bytes {
        if encoding == Encoding::Protobuf {
            let (channel, kind, typed) = (self.channel, self.kind, self.typed);
            return self.protobuf.get_or_insert_with(|| pb::encode_push(channel, kind, typed)).clone();
        }
        let slot = if uni { &mut self.uni } else { &mut self.bidi };
        slot.get_or_insert_with(|| encode_push_raw(uni, self.channel, self.kind, &self.body)).clone()
    }
}

impl Node {
    fn subscribers(&self, channel: &str) -> Vec<Subscriber> {
        let mut subs = Vec::new();
        self.hub.channels().for_each(channel, |s| subs.push(s.clone()));
        subs
    }

    /// Queues a publication for every local subscriber of `channel` whose tags filter
    /// (if any) accepts it; returns how many got it.
    pub fn fan_out(&self, channel: &str, publication: &Publication) -> usize {
        self.metrics.node_received(Message::Publication);
        let started = Instant::now();
        if publication.time > 0 {
            let lag_ms = (super::now_ms() - publication.time).unsigned_abs();
            self.metrics.activity.pub_sub_lag.observe(lag_ms as f64 / 1000.0);
        }
        let subs = self.subscribers(channel);
        if subs.is_empty() {
            return 0;
        }
        let body = crate::json::to_vec(publication);
        let mut framed = Framed::new(channel, "pub", body, publication);
        let mut sent = 0;
        for s in &subs {
            if s.tags_filter.as_ref().is_some_and(|f| !f.matches_map(&publication.tags)) {
                continue;
            }
            let push = framed.for_client(s.session.uni(), s.session.encoding);
            self.metrics.sent(s.session.transport as usize, Frame::Publication, push.len());
            s.session.push(push);
            sent += 1;
        }
        self.metrics.activity.broadcast.observe(started.elapsed().as_secs_f64());
        sent
    }

    /// Queues a join or leave push for subscribers that asked for them.
    pub fn fan_out_join_leave(&self, channel: &str, kind: &str, info: &ClientInfo) {
        let (message, frame) =
            if kind == "join" { (Message::Join, Frame::Join) } else { (Message::Leave, Frame::Leave) };
        self.metrics.node_received(message);
        let subs = self.subscribers(channel);
        if !subs.iter().any(|s| s.push_join_leave) {
            return;
        }
        let body = crate::json::to_vec(&JoinLeave { info: info.clone() });
        let mut framed = Framed::new(channel, kind, body, info);
        for s in subs.iter().filter(|s| s.push_join_leave) {
            let push = framed.for_client(s.session.uni(), s.session.encoding);
            self.metrics.sent(s.session.transport as usize, frame, push.len());
            s.session.push(push);
        }
    }

    /// Channel → local subscriber count, for the `channels` API.
    pub fn channel_counts(&self) -> HashMap<String, usize> {
        self.hub.channels().channels().into_iter().map(|(c, n)| (c.to_string(), n)).collect()
    }
}
