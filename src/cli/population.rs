//! Synthetic connection populations for `rotor capacity` and `rotor bench`: a label
//! distribution given on the command line, and a deterministic assignment of labels
//! and users to the i-th synthetic connection.
//!
//! A distribution is a list of keys, each `name:cardinality[:share]` — `region:5`
//! gives every connection a `region` label with one of 5 values (`region-0` …
//! `region-4`), `beta:2:0.1` gives a tenth of the connections a `beta` label with one
//! of 2 values. Values are spread evenly; which connections carry a partial key is
//! decided by a hash of (connection, key), so keys are independent of each other.
//! Channels are given the same way, `name:share`: `room:0.01` subscribes a hundredth
//! of the connections to `room`.

use std::fmt;
use std::str::FromStr;

/// One label key of a distribution.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelKey {
    pub name: String,
    /// Number of distinct values (≥ 1).
    pub cardinality: u32,
    /// Share of connections that carry the key, in (0, 1].
    pub share: f64,
}

impl FromStr for LabelKey {
    type Err = String;

    fn from_str(s: &str) -> Result<LabelKey, String> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default().trim();
        if name.is_empty() || name.len() > 64 {
            return Err(format!("label key {s:?}: expected name:cardinality[:share] with a name of 1–64 bytes"));
        }
        let cardinality: u32 = match parts.next() {
            Some(c) => c.trim().parse().map_err(|_| format!("label key {s:?}: cardinality must be a whole number"))?,
            None => return Err(format!("label key {s:?}: expected name:cardinality[:share]")),
        };
        if !(1..=1_000_000).contains(&cardinality) {
            return Err(format!("label key {s:?}: cardinality must be 1–1000000"));
        }
        let share: f64 = match parts.next() {
            Some(v) => v.trim().parse().map_err(|_| format!("label key {s:?}: share must be a number in (0, 1]"))?,
            None => 1.0,
        };
        if !(share > 0.0 && share <= 1.0) {
            return Err(format!("label key {s:?}: share must be in (0, 1]"));
        }
        if parts.next().is_some() {
            return Err(format!("label key {s:?}: expected name:cardinality[:share]"));
        }
        Ok(LabelKey { name: name.to_string(), cardinality, share })
    }
}

impl fmt::Display for LabelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.name, self.cardinality, self.share)
    }
}

/// A channel of a population and the share of connections subscribed to it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelShare {
    pub name: String,
    /// Share of connections subscribed, in (0, 1].
    pub share: f64,
}

impl FromStr for ChannelShare {
    type Err = String;

    fn from_str(s: &str) -> Result<ChannelShare, String> {
        let (name, share) =
            s.rsplit_once(':').ok_or_else(|| format!("channel {s:?}: expected name:share, e.g. room:0.01"))?;
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(format!("channel {s:?}: the name must be 1–255 bytes without control characters"));
        }
        let share: f64 =
            share.trim().parse().map_err(|_| format!("channel {s:?}: share must be a number in (0, 1]"))?;
        if !(share > 0.0 && share <= 1.0) {
            return Err(format!("channel {s:?}: share must be in (0, 1]"));
        }
        Ok(ChannelShare { name: name.to_string(), share })
    }
}

impl fmt::Display for ChannelShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.share)
    }
}

/// The labels and users of a synthetic population.
#[derive(Clone, Debug)]
pub struct Population {
    pub keys: Vec<LabelKey>,
    /// Number of distinct users; connection `i` belongs to user `i % users`.
    pub users: u64,
    /// Whether connections carry a `meta` object (see [`Population::meta`]).
    pub meta: bool,
    /// Channels the connections subscribe to (see [`Population::subscribes`]).
    pub channels: Vec<ChannelShare>,
}

impl Population {
    /// The default distribution: `region` (5 values), `tier` (3), `app_version` (20)
    /// on every connection and `beta` (2) on a tenth of them.
    pub fn default_keys() -> Vec<LabelKey> {
        let key = |name: &str, cardinality, share| LabelKey { name: name.into(), cardinality, share };
        vec![key("region", 5, 1.0), key("tier", 3, 1.0), key("app_version", 20, 1.0), key("beta", 2, 0.1)]
    }

    /// The value of key `k` for connection `i`: `"<name>-<n>"`.
    pub fn value(k: &LabelKey, n: u32) -> String {
        format!("{}-{}", k.name, n)
    }

    /// The user id of connection `i`.
    pub fn user(&self, i: u64) -> String {
        (i % self.users.max(1)).to_string()
    }

    /// The `meta` of connection `i` when the population has one:
    /// `{"plan":"plan-<i % 3>","n":<i>,"geo":{"country":"country-<i % 5>"}}`.
    pub fn meta(&self, i: u64) -> Option<Box<serde_json::value::RawValue>> {
        if !self.meta {
            return None;
        }
        let text = format!(r#"{{"plan":"plan-{}","n":{i},"geo":{{"country":"country-{}"}}}}"#, i % 3, i % 5);
        serde_json::value::RawValue::from_string(text).ok()
    }

    /// The labels of connection `i`, sorted by key.
    pub fn labels(&self, i: u64) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(self.keys.len());
        for (ki, k) in self.keys.iter().enumerate() {
            let h = mix(i, ki as u64);
            if !share_holds(h, k.share) {
                continue;
            }
            // Spread values evenly and independently of other keys.
            let n = (mix(h, 0x9e37) % u64::from(k.cardinality)) as u32;
            out.push((k.name.clone(), Self::value(k, n)));
        }
        out.sort();
        out
    }

    /// Whether connection `i` subscribes to channel `c` of [`Population::channels`]:
    /// decided by a hash of (connection, channel), independent of the labels.
    pub fn subscribes(&self, i: u64, c: usize) -> bool {
        self.channels.get(c).is_some_and(|ch| share_holds(mix(i, 0x5eed_0000 + c as u64), ch.share))
    }
}

/// Whether hash `h` falls in the first `share` of the hash space.
fn share_holds(h: u64, share: f64) -> bool {
    share >= 1.0 || ((h >> 11) as f64 / (1u64 << 53) as f64) < share
}

/// A 64-bit mix (splitmix64 finaliser) of two numbers.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_add(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            "beta:2:0.1".parse::<LabelKey>().unwrap(),
            LabelKey { name: "beta".into(), cardinality: 2, share: 0.1 }
        );
        assert_eq!("region:5".parse::<LabelKey>().unwrap().share, 1.0);
        for bad in ["", "region", ":5", "region:0", "region:x", "region:5:0", "region:5:1.5", "a:1:0.5:9", "r:5:nan"] {
            assert!(bad.parse::<LabelKey>().is_err(), "{bad:?} should be rejected");
        }
        let ch: ChannelShare = "chat:room:0.5".parse().unwrap();
        assert_eq!(ch, ChannelShare { name: "chat:room".into(), share: 0.5 });
        assert_eq!(ch.to_string().parse::<ChannelShare>().unwrap(), ch);
        for bad in ["", "room", ":0.5", "room:0", "room:1.5", "room:x", "room:nan", "a\nb:0.5"] {
            assert!(bad.parse::<ChannelShare>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn shares_and_cardinalities_hold() {
        let channels = vec!["room:0.25".parse().unwrap(), "all:1".parse().unwrap()];
        let p = Population { keys: Population::default_keys(), users: 1000, meta: false, channels };
        let n = 20_000u64;
        let mut beta = 0;
        let mut regions = std::collections::HashSet::new();
        let mut room = 0;
        for i in 0..n {
            room += usize::from(p.subscribes(i, 0));
            assert!(p.subscribes(i, 1) && !p.subscribes(i, 2), "share 1 holds for all; no third channel");
            let l = p.labels(i);
            beta += l.iter().filter(|(k, _)| k == "beta").count();
            regions.extend(l.iter().filter(|(k, _)| k == "region").map(|(_, v)| v.clone()));
            assert!(l.windows(2).all(|w| w[0].0 < w[1].0), "sorted and unique keys");
        }
        assert_eq!(regions.len(), 5);
        let share = beta as f64 / n as f64;
        assert!((0.08..0.12).contains(&share), "beta share {share}");
        let share = room as f64 / n as f64;
        assert!((0.23..0.27).contains(&share), "room share {share}");
        assert_eq!(p.labels(7), p.labels(7), "deterministic");
    }
}
