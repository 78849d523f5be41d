//! Channel names and rules: namespace resolution, private (`$`) and user-limited (`#`)
//! channels, and the permission decisions of reference §6.4. Pure functions over the
//! configuration; no connection state.

use std::collections::HashMap;

use regex::Regex;

use crate::config::{Channel as ChannelConfig, ChannelOptions};
use crate::protocol::ErrorCode;

/// Resolved channel rules, built once from the configuration.
pub struct ChannelRules {
    cfg: ChannelConfig,
    namespaces: HashMap<String, (ChannelOptions, Option<Regex>)>,
    without_regex: Option<Regex>,
}

/// What a channel name says about itself.
pub struct ChannelName<'a> {
    pub options: &'a ChannelOptions,
    pub private: bool,
    /// Users allowed by a user-limited channel (`dialog#42,43`), empty if not one.
    pub allowed_users: Vec<&'a str>,
}

fn compile_regex(src: &str) -> Option<Regex> {
    if src.is_empty() { None } else { Regex::new(src).ok() }
}

impl ChannelRules {
    pub fn new(cfg: &ChannelConfig) -> Self {
        let namespaces = cfg
            .namespaces
            .iter()
            .map(|ns| (ns.name.clone(), (ns.options.clone(), compile_regex(&ns.options.channel_regex))))
            .collect();
        Self { without_regex: compile_regex(&cfg.without_namespace.channel_regex), cfg: cfg.clone(), namespaces }
    }

    /// Resolves a channel to its namespace options. Errors: empty or too long (107),
    /// unknown namespace (102), name not matching the namespace's rules (107).
    pub fn resolve<'a>(&'a self, channel: &'a str) -> Result<ChannelName<'a>, ErrorCode> {
        if channel.is_empty() || channel.len() > self.cfg.max_length {
            return Err(ErrorCode::BadRequest);
        }
        let private = !self.cfg.private_prefix.is_empty() && channel.starts_with(&self.cfg.private_prefix);
        let body = if private { &channel[self.cfg.private_prefix.len()..] } else { channel };
        let (options, regex, rest) = match body.split_once(self.cfg.namespace_boundary.as_str()) {
            Some((ns, rest)) if !self.cfg.namespace_boundary.is_empty() => {
                let (opts, re) = self.namespaces.get(ns).ok_or(ErrorCode::UnknownChannel)?;
                (opts, re.as_ref(), rest)
            }
            _ => (&self.cfg.without_namespace, self.without_regex.as_ref(), body),
        };
        match regex {
            Some(re) if !re.is_match(rest) => return Err(ErrorCode::BadRequest),
            None if !channel.is_ascii() => return Err(ErrorCode::BadRequest),
            _ => {}
        }
        let allowed_users = self.allowed_users(channel, options);
        Ok(ChannelName { options, private, allowed_users })
    }

    fn allowed_users<'a>(&self, channel: &'a str, options: &ChannelOptions) -> Vec<&'a str> {
        if !options.allow_user_limited_channels || self.cfg.user_boundary.is_empty() {
            return Vec::new();
        }
        match channel.rsplit_once(self.cfg.user_boundary.as_str()) {
            Some((_, users)) => users.split(self.cfg.user_separator.as_str()).filter(|u| !u.is_empty()).collect(),
            None => Vec::new(),
        }
    }

    pub fn history_meta_ttl(&self) -> std::time::Duration {
        self.cfg.history_meta_ttl.std()
    }
}

/// Who is asking, for permission decisions.
pub struct Asker<'a> {
    pub user: &'a str,
    pub subscribed: bool,
    pub insecure: bool,
}

impl Asker<'_> {
    fn anonymous(&self) -> bool {
        self.user.is_empty()
    }

    /// `allow_X_for_client` / `allow_X_for_subscriber` / `allow_X_for_anonymous`.
    fn allowed(&self, for_client: bool, for_subscriber: bool, for_anonymous: bool) -> bool {
        if self.insecure {
            return true;
        }
        if self.anonymous() && !for_anonymous {
            return false;
        }
        for_client || (for_subscriber && self.subscribed)
    }

    pub fn may_publish(&self, o: &ChannelOptions) -> bool {
        self.allowed(o.allow_publish_for_client, o.allow_publish_for_subscriber, o.allow_publish_for_anonymous)
    }

    pub fn may_presence(&self, o: &ChannelOptions) -> bool {
        self.allowed(o.allow_presence_for_client, o.allow_presence_for_subscriber, o.allow_presence_for_anonymous)
    }

    pub fn may_history(&self, o: &ChannelOptions) -> bool {
        self.allowed(o.allow_history_for_client, o.allow_history_for_subscriber, o.allow_history_for_anonymous)
    }

    /// Subscribe without a token: user-limited channel listing the user, or
    /// `allow_subscribe_for_client` (anonymous only with `_for_anonymous`), or insecure.
    pub fn may_subscribe(&self, name: &ChannelName<'_>) -> bool {
        if self.insecure {
            return true;
        }
        if name.private {
            return false;
        }
        if !self.anonymous() && name.allowed_users.contains(&self.user) {
            return true;
        }
        let o = name.options;
        o.allow_subscribe_for_client && (!self.anonymous() || o.allow_subscribe_for_anonymous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Namespace;

    fn rules() -> ChannelRules {
        let mut cfg = ChannelConfig::default();
        cfg.without_namespace.allow_subscribe_for_client = true;
        cfg.namespaces.push(Namespace {
            name: "dialog".into(),
            options: ChannelOptions { allow_user_limited_channels: true, ..Default::default() },
        });
        ChannelRules::new(&cfg)
    }

    #[test]
    fn resolves_namespaces_and_user_limits() {
        let r = rules();
        assert!(r.resolve("news").is_ok());
        assert_eq!(r.resolve("nope:x").err(), Some(ErrorCode::UnknownChannel));
        assert_eq!(r.resolve("").err(), Some(ErrorCode::BadRequest));
        assert_eq!(r.resolve(&"a".repeat(300)).err(), Some(ErrorCode::BadRequest));
        let n = r.resolve("dialog:chat#42,43").unwrap();
        assert_eq!(n.allowed_users, vec!["42", "43"]);
        let asker = Asker { user: "42", subscribed: false, insecure: false };
        assert!(asker.may_subscribe(&n));
        let other = Asker { user: "7", subscribed: false, insecure: false };
        assert!(!other.may_subscribe(&n));
        assert!(r.resolve("$news").unwrap().private);
    }
}
