//! Publishing: the node-level operation (server API and clients share it) and the
//! client `publish` command's permission checks.

use std::collections::HashMap;

use crate::engine::{Engine, HistoryOptions};
use crate::protocol::{ClientInfo, ErrorCode, Publication, PublishRequest, Raw, one_line};

use super::channels::Asker;
use super::{Node, Session, internal};

#[derive(Debug, Default, Clone)]
pub struct PublishOptions {
    pub skip_history: bool,
    pub tags: HashMap<String, String>,
    pub info: Option<ClientInfo>,
    /// Redis engine: a repeat of this key within 5 minutes is not published again.
    pub idempotency_key: String,
}

/// Where the publication landed in the channel's stream (zero/empty without history).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    pub offset: u64,
    pub epoch: String,
}

impl Node {
    /// Publishes into a channel: history (when the namespace keeps it) then fan-out.
    /// With the Redis engine the publication reaches subscribers (this node's too)
    /// through Redis PUB/SUB; `idempotency_key` then makes a repeat within 5 minutes
    /// return the first publish's position without publishing again.
    pub async fn publish(&self, channel: &str, data: Raw, opts: PublishOptions) -> Result<PublishOutcome, ErrorCode> {
        let name = self.channels.resolve(channel)?;
        let o = name.options;
        let publication = Publication { data: one_line(data), info: opts.info, offset: 0, tags: opts.tags };
        let history = (o.history_enabled() && !opts.skip_history).then(|| HistoryOptions {
            size: o.history_size,
            ttl: o.history_ttl.std(),
            meta_ttl: self.channels.history_meta_ttl(),
        });
        match &self.engine {
            Engine::Memory(m) => {
                let (publication, outcome) = match history {
                    Some(h) => {
                        let (p, pos) = m.add_history(channel, publication, h);
                        (p, PublishOutcome { offset: pos.offset, epoch: pos.epoch })
                    }
                    None => (publication, PublishOutcome::default()),
                };
                self.fan_out(channel, &publication);
                Ok(outcome)
            }
            Engine::Redis(r) => {
                let done = r.publish(channel, &publication, history, &opts.idempotency_key).await.map_err(internal)?;
                Ok(PublishOutcome { offset: done.position.offset, epoch: done.position.epoch })
            }
        }
    }

    /// The client `publish` command.
    pub(super) async fn client_publish(&self, s: &Session, req: PublishRequest) -> Result<(), super::conn::Fail> {
        let name = self.channels.resolve(&req.channel)?;
        let chan_info = s.state.lock().subs.get(&req.channel).and_then(|sub| sub.chan_info.clone());
        if name.options.publish_proxy_enabled {
            let data = req.data.ok_or(ErrorCode::BadRequest)?;
            let (data, opts) = self.publish_proxy(s, &req.channel, &data).await?;
            let opts = PublishOptions { info: Some(s.client_info(chan_info)), ..opts };
            return Ok(self.publish(&req.channel, data, opts).await.map(|_| ())?);
        }
        let asker =
            Asker { user: &s.user, subscribed: s.is_subscribed(&req.channel), insecure: self.config.client.insecure };
        if !asker.may_publish(name.options) {
            return Err(ErrorCode::PermissionDenied.into());
        }
        let data = req.data.ok_or(ErrorCode::BadRequest)?;
        let opts = PublishOptions { info: Some(s.client_info(chan_info)), ..Default::default() };
        Ok(self.publish(&req.channel, data, opts).await.map(|_| ())?)
    }
}
