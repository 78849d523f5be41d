//! Session management that sticks: revoked token ids (`jti`), per-user token
//! invalidation times (connection tokens, or subscription tokens of one channel) and
//! blocked users — each with an optional `expire_at` — and the checks connect,
//! refresh, subscribe and sub_refresh make against them.
//!
//! The tables are this node's replica: lock-free `papaya` maps, so a check is one
//! hash lookup per table and never a scan or a network round trip. Writers (the API,
//! fleet control messages, the load at start) replace whole values under one mutex.
//! Entries past their `expire_at` are ignored by the checks at once and dropped by
//! [`Sessions::sweep`]. Persistence and distribution across nodes are the node's
//! business (`revocation.rs`); this file does no I/O.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// One change to the tables, as the API makes it, Redis stores it and the fleet's
/// control channel carries it. `expire_at` 0 = never.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// Tokens with this `jti` are refused (connection and subscription tokens).
    Revoked { uid: String, expire_at: i64 },
    /// The user's tokens issued before `issued_before` (their `iat`) are refused:
    /// connection tokens when `channel` is empty, else subscription tokens of `channel`.
    Invalidated { user: String, channel: String, issued_before: i64, expire_at: i64 },
    /// The user may not connect.
    Blocked { user: String, expire_at: i64 },
    /// Lifts a block.
    Unblocked { user: String },
}

impl Entry {
    /// The entry's identity in storage: a later entry with the same id replaces it.
    pub fn id(&self) -> String {
        match self {
            Entry::Revoked { uid, .. } => format!("r:{uid}"),
            Entry::Invalidated { user, channel, .. } => format!("i:{}:{user}:{channel}", user.len()),
            Entry::Blocked { user, .. } | Entry::Unblocked { user } => format!("b:{user}"),
        }
    }

    /// Unix seconds when the entry goes away (0 = never; an unblock is never stored).
    pub fn expire_at(&self) -> i64 {
        match self {
            Entry::Revoked { expire_at, .. }
            | Entry::Invalidated { expire_at, .. }
            | Entry::Blocked { expire_at, .. } => *expire_at,
            Entry::Unblocked { .. } => 0,
        }
    }
}

/// Why a token or user is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Revoked by `jti` or issued before the user's invalidation time.
    TokenRevoked,
    UserBlocked,
}

/// An invalidation time and when it expires (0 = never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Until {
    value: i64,
    expire_at: i64,
}

impl Until {
    fn live(&self, now: i64) -> bool {
        self.expire_at == 0 || self.expire_at > now
    }
}

/// What is known about one user.
#[derive(Debug, Clone, Default)]
struct UserEntry {
    /// Blocked until this entry expires.
    blocked: Option<Until>,
    /// Connection tokens issued before `value` are refused.
    issued_before: Option<Until>,
    /// Subscription tokens of a channel issued before `value` are refused.
    channels: HashMap<String, Until>,
}

impl UserEntry {
    fn is_empty(&self) -> bool {
        self.blocked.is_none() && self.issued_before.is_none() && self.channels.is_empty()
    }

    /// Whether something in the entry expired (the sweep then replaces it).
    fn has_expired(&self, now: i64) -> bool {
        let dead = |u: &Until| !u.live(now);
        self.blocked.as_ref().is_some_and(dead)
            || self.issued_before.as_ref().is_some_and(dead)
            || self.channels.values().any(dead)
    }

    /// Drops what expired.
    fn sweep(&mut self, now: i64) {
        self.blocked = self.blocked.filter(|u| u.live(now));
        self.issued_before = self.issued_before.filter(|u| u.live(now));
        self.channels.retain(|_, u| u.live(now));
    }
}

/// The node's tables of revocations, invalidations and blocks.
#[derive(Default)]
pub struct Sessions {
    /// jti → expire_at (0 = never).
    revoked: papaya::HashMap<String, i64>,
    users: papaya::HashMap<String, Arc<UserEntry>>,
    /// Serializes writers of `users` (read, copy, replace).
    write: Mutex<()>,
}

/// Numbers for `info`-like reporting and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub revoked: usize,
    pub users: usize,
}

impl Sessions {
    /// Applies one entry. An entry already expired at `now` removes what it names.
    pub fn apply(&self, e: &Entry, now: i64) {
        let live = e.expire_at() == 0 || e.expire_at() > now;
        match e {
            Entry::Revoked { uid, expire_at } => {
                let m = self.revoked.pin();
                if live {
                    m.insert(uid.clone(), *expire_at);
                } else {
                    m.remove(uid);
                }
            }
            Entry::Invalidated { user, channel, issued_before, expire_at } => {
                let until = Until { value: *issued_before, expire_at: *expire_at };
                self.update_user(user, |u| {
                    if channel.is_empty() {
                        u.issued_before = live.then_some(until);
                    } else if live {
                        u.channels.insert(channel.clone(), until);
                    } else {
                        u.channels.remove(channel);
                    }
                });
            }
            Entry::Blocked { user, expire_at } => {
                self.update_user(user, |u| u.blocked = live.then_some(Until { value: 0, expire_at: *expire_at }));
            }
            Entry::Unblocked { user } => self.update_user(user, |u| u.blocked = None),
        }
    }

    fn update_user(&self, user: &str, f: impl FnOnce(&mut UserEntry)) {
        let _w = self.write.lock();
        let m = self.users.pin();
        let mut entry = m.get(user).map(|e| (**e).clone()).unwrap_or_default();
        f(&mut entry);
        if entry.is_empty() {
            m.remove(user);
        } else {
            m.insert(user.to_string(), Arc::new(entry));
        }
    }

    /// Replaces every table with `entries` (a load from storage).
    pub fn replace_all(&self, entries: &[Entry], now: i64) {
        {
            let _w = self.write.lock();
            self.revoked.pin().clear();
            self.users.pin().clear();
        }
        for e in entries {
            self.apply(e, now);
        }
    }

    /// Whether a connection of `user` with a token (`jti`, `iat`; `None` without a
    /// token) may connect or stay. Two hash lookups at most.
    pub fn check_connection(&self, user: &str, token: Option<(&str, i64)>, now: i64) -> Result<(), Refusal> {
        if let Some(u) = self.users.pin().get(user) {
            if u.blocked.is_some_and(|b| b.live(now)) {
                return Err(Refusal::UserBlocked);
            }
            if let (Some(ib), Some((_, iat))) = (u.issued_before, token)
                && ib.live(now)
                && iat < ib.value
            {
                return Err(Refusal::TokenRevoked);
            }
        }
        match token {
            Some((jti, _)) => self.check_jti(jti, now),
            None => Ok(()),
        }
    }

    /// Whether a subscription token (`jti`, `iat`) of `user` for `channel` is good.
    pub fn check_subscription(&self, user: &str, channel: &str, jti: &str, iat: i64, now: i64) -> Result<(), Refusal> {
        if let Some(u) = self.users.pin().get(user)
            && let Some(ib) = u.channels.get(channel)
            && ib.live(now)
            && iat < ib.value
        {
            return Err(Refusal::TokenRevoked);
        }
        self.check_jti(jti, now)
    }

    fn check_jti(&self, jti: &str, now: i64) -> Result<(), Refusal> {
        if jti.is_empty() {
            return Ok(());
        }
        match self.revoked.pin().get(jti) {
            Some(exp) if *exp == 0 || *exp > now => Err(Refusal::TokenRevoked),
            _ => Ok(()),
        }
    }

    /// Drops expired entries; returns how many revoked ids and users were touched.
    pub fn sweep(&self, now: i64) -> usize {
        let mut dropped = 0;
        {
            let m = self.revoked.pin();
            let dead: Vec<String> =
                m.iter().filter(|(_, exp)| **exp != 0 && **exp <= now).map(|(k, _)| k.clone()).collect();
            for k in dead {
                m.remove(&k);
                dropped += 1;
            }
        }
        let stale: Vec<String> = {
            let m = self.users.pin();
            m.iter().filter(|(_, u)| u.has_expired(now)).map(|(k, _)| k.clone()).collect()
        };
        for user in stale {
            self.update_user(&user, |u| u.sweep(now));
            dropped += 1;
        }
        dropped
    }

    pub fn counts(&self) -> Counts {
        Counts { revoked: self.revoked.len(), users: self.users.len() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn revoked(uid: &str, expire_at: i64) -> Entry {
        Entry::Revoked { uid: uid.into(), expire_at }
    }

    #[test]
    fn revoked_jti_is_refused_until_it_expires() {
        let s = Sessions::default();
        s.apply(&revoked("t1", NOW + 10), NOW);
        assert_eq!(s.check_connection("u", Some(("t1", NOW)), NOW), Err(Refusal::TokenRevoked));
        assert_eq!(s.check_connection("u", Some(("t2", NOW)), NOW), Ok(()));
        assert_eq!(s.check_subscription("u", "ch", "t1", NOW, NOW), Err(Refusal::TokenRevoked));
        // Expired entries stop counting at once and are swept later.
        assert_eq!(s.check_connection("u", Some(("t1", NOW)), NOW + 10), Ok(()));
        assert_eq!(s.sweep(NOW + 10), 1);
        assert_eq!(s.counts(), Counts::default());
        // An entry that arrives already expired is not kept.
        s.apply(&revoked("t3", NOW - 1), NOW);
        assert_eq!(s.counts().revoked, 0);
        // A token without jti is never "revoked by jti".
        s.apply(&revoked("", 0), NOW);
        assert_eq!(s.check_connection("u", Some(("", NOW)), NOW), Ok(()));
    }

    #[test]
    fn invalidation_refuses_older_tokens_only() {
        let s = Sessions::default();
        let inv = |channel: &str| Entry::Invalidated {
            user: "u".into(),
            channel: channel.into(),
            issued_before: NOW,
            expire_at: 0,
        };
        s.apply(&inv(""), NOW);
        assert_eq!(s.check_connection("u", Some(("a", NOW - 1)), NOW), Err(Refusal::TokenRevoked));
        assert_eq!(s.check_connection("u", Some(("a", NOW)), NOW), Ok(()));
        assert_eq!(s.check_connection("other", Some(("a", 0)), NOW), Ok(()));
        // Connection-level invalidation does not touch subscription tokens.
        assert_eq!(s.check_subscription("u", "ch", "", NOW - 1, NOW), Ok(()));
        s.apply(&inv("ch"), NOW);
        assert_eq!(s.check_subscription("u", "ch", "", NOW - 1, NOW), Err(Refusal::TokenRevoked));
        assert_eq!(s.check_subscription("u", "other", "", NOW - 1, NOW), Ok(()));
        assert_eq!(s.check_subscription("u", "ch", "", NOW + 5, NOW), Ok(()));
    }

    #[test]
    fn block_unblock_and_expiry() {
        let s = Sessions::default();
        s.apply(&Entry::Blocked { user: "u".into(), expire_at: NOW + 5 }, NOW);
        assert_eq!(s.check_connection("u", None, NOW), Err(Refusal::UserBlocked));
        assert_eq!(s.check_connection("u", Some(("x", NOW)), NOW + 4), Err(Refusal::UserBlocked));
        assert_eq!(s.check_connection("u", None, NOW + 5), Ok(()));
        s.apply(&Entry::Unblocked { user: "u".into() }, NOW);
        assert_eq!(s.check_connection("u", None, NOW), Ok(()));
        assert_eq!(s.counts().users, 0, "an empty user entry is removed");
        s.apply(&Entry::Blocked { user: "u".into(), expire_at: NOW + 5 }, NOW);
        s.apply(
            &Entry::Invalidated { user: "u".into(), channel: String::new(), issued_before: NOW, expire_at: 0 },
            NOW,
        );
        assert_eq!(s.sweep(NOW + 6), 1);
        assert_eq!(s.check_connection("u", None, NOW + 6), Ok(()));
        assert_eq!(s.check_connection("u", Some(("x", NOW - 1)), NOW + 6), Err(Refusal::TokenRevoked));
    }

    #[test]
    fn replace_all_and_ids() {
        let s = Sessions::default();
        s.apply(&revoked("old", 0), NOW);
        s.replace_all(&[revoked("new", 0)], NOW);
        assert_eq!(s.check_connection("u", Some(("old", 0)), NOW), Ok(()));
        assert_eq!(s.check_connection("u", Some(("new", 0)), NOW), Err(Refusal::TokenRevoked));
        // Ids cannot collide across users and channels containing the separator.
        let a = Entry::Invalidated { user: "a:b".into(), channel: "c".into(), issued_before: 0, expire_at: 0 };
        let b = Entry::Invalidated { user: "a".into(), channel: "b:c".into(), issued_before: 0, expire_at: 0 };
        assert_ne!(a.id(), b.id());
        assert_eq!(Entry::Unblocked { user: "x".into() }.id(), Entry::Blocked { user: "x".into(), expire_at: 1 }.id());
    }
}
