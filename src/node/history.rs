//! `history`: the namespace must keep history (108), the asker be allowed (103);
//! a `since` position from another epoch or already trimmed is 112.

use crate::engine::{HistoryError, HistoryQuery};
use crate::metrics::Action;
use crate::protocol::{ErrorCode, HistoryResult, StreamPosition};

use super::channels::Asker;
use super::{Node, Session, internal};

impl Node {
    /// History of a channel. `limit`: None = position only, Some(n) = up to n.
    pub async fn history(
        &self,
        s: Option<&Session>,
        channel: &str,
        limit: Option<usize>,
        since: Option<StreamPosition>,
        reverse: bool,
    ) -> Result<HistoryResult, ErrorCode> {
        let name = self.channels.resolve(channel)?;
        if !name.options.history_enabled() {
            return Err(ErrorCode::NotAvailable);
        }
        if let Some(s) = s {
            let asker =
                Asker { user: &s.user, subscribed: s.is_subscribed(channel), insecure: self.config.client.insecure };
            if !asker.may_history(name.options) {
                return Err(ErrorCode::PermissionDenied);
            }
        }
        self.metrics.activity.action(Action::History);
        let q = HistoryQuery { limit: Some(limit.unwrap_or(0)), since, reverse };
        let read = self.engine.history(channel, &q, self.channels.history_meta_ttl()).await;
        match read.map_err(internal)? {
            Ok(h) => {
                Ok(HistoryResult { publications: h.publications, epoch: h.position.epoch, offset: h.position.offset })
            }
            Err(HistoryError::Unrecoverable) => Err(ErrorCode::UnrecoverablePosition),
        }
    }

    /// The client's `limit`: 0 = position only; negative or above the configured
    /// maximum is clamped to the maximum.
    pub fn client_history_limit(&self, limit: i32) -> Option<usize> {
        let max = self.config.client.history_max_publication_limit;
        match limit {
            0 => None,
            n if n < 0 || n as usize > max => Some(max),
            n => Some(n as usize),
        }
    }

    /// Drops a channel's retained publications.
    pub async fn history_remove(&self, channel: &str) -> Result<(), ErrorCode> {
        let name = self.channels.resolve(channel)?;
        if !name.options.history_enabled() {
            return Err(ErrorCode::NotAvailable);
        }
        self.metrics.activity.action(Action::HistoryRemove);
        self.engine.remove_history(channel).await.map_err(internal)
    }
}
