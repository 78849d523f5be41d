//! Connection token refresh (the client `refresh` command): an expired token is
//! disconnect 3005, an invalid one or one for another user 3500, a revoked one 3510
//! and any token of a blocked user 3511.

use crate::auth::TokenError;
use crate::protocol::{Disconnect, RefreshResult};

use super::{Node, Session, TokenInfo, now_secs, ttl_until};

impl Node {
    pub(super) async fn client_refresh(&self, s: &Session, token: &str) -> Result<RefreshResult, Disconnect> {
        if token.is_empty() || (s.proxied && self.proxies.refresh.is_some()) {
            return Err(Disconnect::bad_request());
        }
        let t = match self.verifier.verify_connect(token).await {
            Ok(t) => t,
            Err(TokenError::Expired) => return Err(Disconnect::expired()),
            Err(_) => return Err(Disconnect::invalid_token()),
        };
        if t.user != s.user {
            return Err(Disconnect::invalid_token());
        }
        let token = TokenInfo { uid: t.jti.clone().unwrap_or_default(), issued_at: t.iat.unwrap_or(0) };
        self.check_connection(&s.user, Some(&token))?;
        s.state.lock().refreshed = Some(token);
        let expire_at = t.expire_at.map(|e| e.min(now_secs() + 365 * 24 * 3600));
        s.state.lock().expire_at = expire_at;
        Ok(match expire_at {
            Some(e) => RefreshResult { expires: true, ttl: ttl_until(e) },
            None => RefreshResult::default(),
        })
    }
}
