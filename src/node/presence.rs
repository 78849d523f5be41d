//! `presence` and `presence_stats`: the feature must be on for the namespace (108)
//! and the asker allowed (103).

use crate::protocol::{ErrorCode, PresenceResult, PresenceStatsResult};

use super::channels::Asker;
use super::{Node, Session, internal};

impl Node {
    fn check_presence(&self, s: Option<&Session>, channel: &str) -> Result<(), ErrorCode> {
        let name = self.channels.resolve(channel)?;
        if !name.options.presence {
            return Err(ErrorCode::NotAvailable);
        }
        if let Some(s) = s {
            let asker =
                Asker { user: &s.user, subscribed: s.is_subscribed(channel), insecure: self.config.client.insecure };
            if !asker.may_presence(name.options) {
                return Err(ErrorCode::PermissionDenied);
            }
        }
        Ok(())
    }

    /// Presence of a channel; `s` is the asking client (None for the server API).
    pub async fn presence(&self, s: Option<&Session>, channel: &str) -> Result<PresenceResult, ErrorCode> {
        self.check_presence(s, channel)?;
        self.metrics.activity.action(crate::metrics::Action::Presence);
        Ok(PresenceResult { presence: self.engine.presence(channel).await.map_err(internal)? })
    }

    pub async fn presence_stats(&self, s: Option<&Session>, channel: &str) -> Result<PresenceStatsResult, ErrorCode> {
        self.check_presence(s, channel)?;
        self.metrics.activity.action(crate::metrics::Action::PresenceStats);
        let (num_clients, num_users) = self.engine.presence_stats(channel).await.map_err(internal)?;
        Ok(PresenceStatsResult { num_clients, num_users })
    }
}
