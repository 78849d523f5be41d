//! Key and PUB/SUB channel names (`<prefix>.stream.<channel>` and so on, as
//! Centrifugo names them) and the choice of shard for a channel. In Redis Cluster
//! mode the channel part is wrapped in a hash tag, so every key of one channel lands
//! in one slot and a script may touch them together.

#[derive(Clone)]
pub(super) struct Keys {
    prefix: String,
    cluster: bool,
    node_uid: String,
}

impl Keys {
    pub(super) fn new(prefix: &str, cluster: bool, node_uid: &str) -> Self {
        Self { prefix: prefix.to_string(), cluster, node_uid: node_uid.to_string() }
    }

    fn key(&self, kind: &str, channel: &str) -> String {
        if self.cluster {
            format!("{}.{kind}.{{{channel}}}", self.prefix)
        } else {
            format!("{}.{kind}.{channel}", self.prefix)
        }
    }

    pub(super) fn client_channel(&self, channel: &str) -> String {
        self.key("client", channel)
    }

    /// The channel name inside a `client_channel` PUB/SUB name, if it is one.
    pub(super) fn channel_of<'a>(&self, pubsub_name: &'a str) -> Option<&'a str> {
        let rest = pubsub_name.strip_prefix(self.prefix.as_str())?.strip_prefix(".client.")?;
        if self.cluster { rest.strip_prefix('{')?.strip_suffix('}') } else { Some(rest) }
    }

    pub(super) fn stream(&self, channel: &str) -> String {
        self.key("stream", channel)
    }

    pub(super) fn stream_meta(&self, channel: &str) -> String {
        self.key("stream.meta", channel)
    }

    pub(super) fn result(&self, channel: &str, idempotency_key: &str) -> String {
        format!("{}.{idempotency_key}", self.key("result", channel))
    }

    pub(super) fn presence_data(&self, channel: &str) -> String {
        self.key("presence.data", channel)
    }

    pub(super) fn presence_expire(&self, channel: &str) -> String {
        self.key("presence.expire", channel)
    }

    /// The hash of session entries (revocations, invalidations, blocks) by id, and
    /// the sorted set of their expiry times. One hash tag in cluster mode: a script
    /// touches both.
    pub(super) fn session_entries(&self) -> (String, String) {
        if self.cluster {
            (format!("{}.{{sessions}}.entries", self.prefix), format!("{}.{{sessions}}.expiry", self.prefix))
        } else {
            (format!("{}.sessions.entries", self.prefix), format!("{}.sessions.expiry", self.prefix))
        }
    }

    /// A user's status hash (`active`, `online`, `state`).
    pub(super) fn user_status(&self, user: &str) -> String {
        self.key("user_status", user)
    }

    /// Control messages for every node.
    pub(super) fn control(&self) -> String {
        format!("{}.control", self.prefix)
    }

    /// Control messages for one node (survey replies).
    pub(super) fn node(&self, uid: &str) -> String {
        format!("{}.node.{uid}", self.prefix)
    }

    /// This node's own control channel.
    pub(super) fn own_node(&self) -> String {
        self.node(&self.node_uid)
    }
}

/// The shard of a channel among `n`: jump consistent hash of the FNV-1a hash of its
/// name, so the mapping is stable across nodes and restarts and adding a shard moves
/// only about 1/n of the channels.
pub(super) fn shard_index(channel: &str, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in channel.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    jump_hash(h, n as i64) as usize
}

/// Lamping and Veach's jump consistent hash.
fn jump_hash(mut key: u64, buckets: i64) -> i64 {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hash_tags() {
        let k = Keys::new("rotor", false, "n1");
        assert_eq!(k.stream("news"), "rotor.stream.news");
        assert_eq!(k.channel_of("rotor.client.a:b"), Some("a:b"));
        assert_eq!(k.channel_of("rotor.control"), None);
        let c = Keys::new("rotor", true, "n1");
        assert_eq!(c.presence_data("news"), "rotor.presence.data.{news}");
        assert_eq!(c.channel_of(&c.client_channel("x.y")), Some("x.y"));
        assert_eq!(c.own_node(), "rotor.node.n1");
    }

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_index("anything", 1), 0);
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            let s = shard_index(&format!("ch{i}"), 3);
            assert_eq!(s, shard_index(&format!("ch{i}"), 3));
            counts[s] += 1;
        }
        assert!(counts.iter().all(|c| *c > 800), "{counts:?}");
    }
}
