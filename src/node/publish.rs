//! Publishing: the node-level operation (server API and clients share it) and the
//! client `publish` command's permission checks.

use std::collections::HashMap;

use crate::engine::{Engine, HistoryOptions};
use crate::protocol::{ClientInfo, ErrorCode, Publication, PublishRequest, Raw, StreamPosition, one_line};

use super::channels::Asker;
use super::{Node, Session, internal};

#[derive(Debug, Default, Clone)]
pub struct PublishOptions {
    pub skip_history: bool,
    pub tags: HashMap<String, String>,
    pub info: Option<ClientInfo>,
    /// A repeat of this key within 5 minutes is not published again; it returns the
    /// first publish's position.
    pub idempotency_key: String,
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// A protocol error (unknown channel, engine failure…).
    Code(ErrorCode),
    /// The push a subscriber would receive (`size` bytes, framing included) exceeds
    /// `client.queue_max_size` (`limit`): queued, it would disconnect every subscriber
    /// with 3008, however fast it reads, so it is refused at publish time (107).
    TooLarge { size: usize, limit: usize },
}

impl PublishError {
    pub fn code(&self) -> ErrorCode {
        match self {
            PublishError::Code(code) => *code,
            PublishError::TooLarge { .. } => ErrorCode::BadRequest,
        }
    }
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Code(code) => f.write_str(code.message()),
            PublishError::TooLarge { size, limit } => write!(
                f,
                "publication of {size} bytes as pushed to subscribers exceeds client.queue_max_size ({limit} bytes)"
            ),
        }
    }
}

impl From<ErrorCode> for PublishError {
    fn from(code: ErrorCode) -> Self {
        PublishError::Code(code)
    }
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
    /// through Redis PUB/SUB. `idempotency_key` makes a repeat within 5 minutes return
    /// the first publish's position without publishing again (both engines).
    /// A publication whose push could not fit an empty subscriber queue is refused
    /// before it is stored or sent ([`PublishError::TooLarge`]).
    pub async fn publish(
        &self,
        channel: &str,
        data: Raw,
        opts: PublishOptions,
    ) -> Result<PublishOutcome, PublishError> {
        let name = self.channels.resolve(channel)?;
        let o = name.options;
        let publication =
            Publication { data: one_line(data), info: opts.info, offset: 0, tags: opts.tags, time: super::now_ms() };
        let (size, limit) = (push_size(channel, &publication), self.config.client.queue_max_size);
        if size > limit {
            return Err(PublishError::TooLarge { size, limit });
        }
        let history = (o.history_enabled() && !opts.skip_history).then(|| HistoryOptions {
            size: o.history_size,
            ttl: o.history_ttl.std(),
            meta_ttl: self.channels.history_meta_ttl(),
        });
        match &self.engine {
            Engine::Memory(m) => {
                let key = &opts.idempotency_key;
                if !key.is_empty()
                    && let Some(pos) = m.idempotent_result(channel, key)
                {
                    return Ok(PublishOutcome { offset: pos.offset, epoch: pos.epoch });
                }
                self.metrics.node_sent(crate::metrics::Message::Publication);
                let (publication, outcome) = match history {
                    Some(h) => {
                        let (p, pos) = m.add_history(channel, publication, h);
                        (p, PublishOutcome { offset: pos.offset, epoch: pos.epoch })
                    }
                    None => (publication, PublishOutcome::default()),
                };
                self.fan_out(channel, &publication);
                if !key.is_empty() {
                    let pos = StreamPosition { offset: outcome.offset, epoch: outcome.epoch.clone() };
                    m.remember_result(channel, key, pos);
                }
                Ok(outcome)
            }
            Engine::Redis(r) => {
                self.metrics.node_sent(crate::metrics::Message::Publication);
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
            let (data, opts) = self.publish_proxy(s, &req.channel, &data, &name.options.publish_proxy_name).await?;
            let opts = PublishOptions { info: Some(s.client_info(chan_info)), ..opts };
            return self.publish(&req.channel, data, opts).await.map(|_| ()).map_err(|e| e.code().into());
        }
        let asker =
            Asker { user: &s.user, subscribed: s.is_subscribed(&req.channel), insecure: self.config.client.insecure };
        if !asker.may_publish(name.options) {
            return Err(ErrorCode::PermissionDenied.into());
        }
        let data = req.data.ok_or(ErrorCode::BadRequest)?;
        let opts = PublishOptions { info: Some(s.client_info(chan_info)), ..Default::default() };
        self.publish(&req.channel, data, opts).await.map(|_| ()).map_err(|e| e.code().into())
    }
}

/// Bytes of the largest push of `publication` any subscriber gets: the bidirectional
/// framing `{"push":{"channel":…,"pub":…}}` with the longest offset history can give.
/// Counted, not encoded: publishing stays one encoding per transport family.
fn push_size(channel: &str, publication: &Publication) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    crate::json::write(&mut count, publication);
    crate::json::write(&mut count, channel);
    // The offset history assigns later (absent while it is 0).
    let offset = r#","offset":18446744073709551615"#.len();
    count.0 + offset + r#"{"push":{"channel":,"pub":}}"#.len()
}
