//! What proxy answers mean for a session: connect credentials, server-side refresh
//! of proxy-issued connections, and the subscribe, publish, sub_refresh and RPC
//! proxies namespaces switch on (plus the built-in `update_user_status` RPC). The HTTP calls and wire shapes live in `crate::proxy`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::auth::{ConnectToken, SubscribeToken, TokenError};
use crate::protocol::{ConnectRequest, Disconnect, Encoding, ErrorCode, Raw, RpcRequest, RpcResult};
use crate::proxy::{self, Base, ChannelProxy, Endpoint, ProxyError};

use super::conn::Fail;
use super::{ConnectError, Node, Session, Transport, now_secs};

/// The client RPC method that marks the caller's user active (Centrifugo PRO's name).
pub(super) const USER_STATUS_RPC: &str = "update_user_status";

/// How long a failed refresh waits before it is tried again.
const REFRESH_RETRY: Duration = Duration::from_secs(3);

impl From<ProxyError> for Fail {
    fn from(e: ProxyError) -> Self {
        match e {
            ProxyError::Error(e) => Fail::Error(e),
            ProxyError::Disconnect(d) => Fail::Disconnect(d),
            ProxyError::Unavailable(_) => ErrorCode::Internal.into(),
        }
    }
}

impl From<ProxyError> for ConnectError {
    fn from(e: ProxyError) -> Self {
        match e {
            ProxyError::Error(e) => ConnectError::Error(e),
            ProxyError::Disconnect(d) => ConnectError::Disconnect(d),
            // 100 for bidirectional clients; unidirectional ones get 3004 from it.
            ProxyError::Unavailable(_) => ErrorCode::Internal.into(),
        }
    }
}

fn base(ep: &Endpoint, client: &str, transport: (Transport, Encoding), user: &str, meta: Option<&Raw>) -> Base {
    let (transport, encoding) = transport;
    Base {
        client: client.to_string(),
        transport: transport.name(),
        protocol: encoding.name(),
        encoding: if ep.cfg.binary_encoding { "binary" } else { "json" },
        user: user.to_string(),
        meta: meta.filter(|_| ep.cfg.include_connection_meta).cloned(),
    }
}

fn session_base(ep: &Endpoint, s: &Session) -> Base {
    base(ep, &s.client(), (s.transport, s.encoding), &s.user, s.meta.get().as_ref())
}

impl Node {
    /// Credentials from the connect proxy for a connect without token, and the `data`
    /// for the connect reply. No result means no credentials: anonymous when allowed.
    pub(super) async fn connect_proxy(
        &self,
        req: &ConnectRequest,
        transport: (Transport, Encoding),
        client: &str,
        headers: &proxy::Headers,
    ) -> Result<(Option<ConnectToken>, Option<Raw>), ConnectError> {
        let Some(ep) = &self.proxies.connect else { return Ok((self.authenticate("").await?, None)) };
        let (data, b64data) = proxy::outgoing_data(&ep.cfg, req.data.as_ref());
        let body = proxy::ConnectRequest {
            base: base(ep, client, transport, "", None),
            data,
            b64data,
            name: req.name.clone(),
            version: req.version.clone(),
            channels: req.subs.keys().cloned().collect(),
        };
        let Some(result) = self.proxies.call::<Value>(ep, headers, &body).await? else {
            return Ok((self.authenticate("").await?, None));
        };
        let token = match self.verifier.proxy_credentials(&result) {
            Ok(t) => t,
            Err(TokenError::Expired) => return Err(ErrorCode::Expired.into()),
            Err(TokenError::Labels(why)) => {
                tracing::info!(reason = %why, "connect proxy labels out of bounds");
                return Err(ConnectError::Disconnect(Disconnect::new(3500, format!("invalid labels: {why}"))));
            }
            Err(TokenError::Invalid(why)) => {
                tracing::warn!(reason = %why, "connect proxy result refused");
                return Err(ErrorCode::Internal.into());
            }
        };
        let text = |k: &str| result.get(k).and_then(Value::as_str).map(str::to_string);
        let plain = result.get("data").and_then(|d| serde_json::value::to_raw_value(d).ok());
        let data = proxy::payload(plain, text("b64data").as_deref())?;
        Ok((Some(token), data))
    }

    /// Refreshes a proxy-issued connection in the background until the backend
    /// answers: a new expiry, with `info` / `b64info` and `meta` replacing the
    /// connection's when present (later presence, join/leave and client publications
    /// carry the new info; the connections API shows the new meta), `expired` (3005)
    /// or a disconnect. Errors, timeouts and undecodable `b64info` are retried; the
    /// connection stays.
    pub(super) fn spawn_refresh(self: &Arc<Self>, s: Arc<Session>, busy: Arc<RefreshFlags>) {
        let node = self.clone();
        tokio::spawn(async move {
            while !s.queue.is_closed() {
                match node.refresh_once(&s).await {
                    Ok(()) => break,
                    Err(Some(d)) => {
                        s.queue.close(d, true);
                        break;
                    }
                    Err(None) => tokio::time::sleep(REFRESH_RETRY).await,
                }
            }
            busy.conn.store(false, Ordering::Release);
            // Wake the connection so it schedules the next refresh.
            s.queue.wake();
        });
    }

    /// One refresh call; `Err(None)` is a failure worth retrying.
    async fn refresh_once(&self, s: &Session) -> Result<(), Option<Disconnect>> {
        let Some(ep) = &self.proxies.refresh else { return Ok(()) };
        let body = proxy::RefreshRequest { base: session_base(ep, s) };
        let r = match self.proxies.call::<proxy::RefreshResult>(ep, &s.proxy_headers, &body).await {
            Ok(Some(r)) => r,
            // No result: the backend no longer vouches for it (as Centrifugo does).
            Ok(None) => proxy::RefreshResult { expired: true, ..Default::default() },
            Err(ProxyError::Disconnect(d)) => return Err(Some(d)),
            Err(e) => {
                tracing::debug!(client = %s.client(), error = ?e, "refresh proxy failed; will retry");
                return Err(None);
            }
        };
        if r.expired || (r.expire_at != 0 && r.expire_at < now_secs()) {
            return Err(Some(Disconnect::expired()));
        }
        let info = proxy::payload(r.info, r.b64info.as_deref()).map_err(|e| {
            tracing::debug!(client = %s.client(), error = ?e, "refresh proxy info undecodable; will retry");
            None
        })?;
        let meta = r.meta.map(|m| crate::json::to_raw(&m));
        if let Some(info) = info {
            s.info.set(Some(crate::protocol::one_line(info)));
            self.readd_presence(s);
        }
        if let Some(meta) = meta {
            s.meta.set(Some(Raw::from(meta)));
        }
        let at = (r.expire_at != 0).then(|| r.expire_at.min(now_secs() + 365 * 24 * 3600));
        s.state.lock().expire_at = at;
        Ok(())
    }

    /// The sub_refresh proxy extends subscriptions with an expiry in this channel's
    /// namespace (`sub_refresh_proxy_enabled`).
    pub fn server_refreshes_sub(&self, channel: &str) -> bool {
        self.sub_refresh_endpoint(channel).is_some()
    }

    /// The sub_refresh proxy this channel's namespace picked, when it switched one on.
    fn sub_refresh_endpoint(&self, channel: &str) -> Option<&Endpoint> {
        let n = self.channels.resolve(channel).ok()?;
        let o = &n.options;
        if !o.sub_refresh_proxy_enabled {
            return None;
        }
        self.proxies.channel(ChannelProxy::SubRefresh, &o.sub_refresh_proxy_name)
    }

    /// Refreshes one subscription in the background until the backend answers: a
    /// new expiry (and channel info), `expired` (unsubscribe 2501) or a disconnect.
    /// Errors are retried; the subscription stays meanwhile.
    pub(super) fn spawn_sub_refresh(self: &Arc<Self>, s: Arc<Session>, channel: String, busy: Arc<RefreshFlags>) {
        let node = self.clone();
        tokio::spawn(async move {
            while !s.queue.is_closed() && s.is_subscribed(&channel) {
                match node.sub_refresh_once(&s, &channel).await {
                    Ok(()) => break,
                    Err(Some(d)) => {
                        s.queue.close(d, true);
                        break;
                    }
                    Err(None) => tokio::time::sleep(REFRESH_RETRY).await,
                }
            }
            busy.subs.lock().remove(&channel);
            // Wake the connection so it schedules the next refresh.
            s.queue.wake();
        });
    }

    async fn sub_refresh_once(&self, s: &Session, channel: &str) -> Result<(), Option<Disconnect>> {
        let Some(ep) = self.sub_refresh_endpoint(channel) else { return Ok(()) };
        let body = proxy::SubRefreshRequest { base: session_base(ep, s), channel: channel.to_string() };
        let r = match self.proxies.call::<proxy::SubRefreshResult>(ep, &s.proxy_headers, &body).await {
            Ok(Some(r)) => r,
            Ok(None) => proxy::SubRefreshResult { expired: true, ..Default::default() },
            Err(ProxyError::Disconnect(d)) => return Err(Some(d)),
            Err(e) => {
                tracing::debug!(client = %s.client(), channel, error = ?e, "sub_refresh proxy failed; will retry");
                return Err(None);
            }
        };
        if r.expired || (r.expire_at != 0 && r.expire_at < now_secs()) {
            self.unsubscribe_session(s, channel, crate::protocol::codes::unsubscribe::EXPIRED);
            return Ok(());
        }
        let info = proxy::payload(r.info, r.b64info.as_deref()).map_err(|_| None)?;
        let mut st = s.state.lock();
        if let Some(sub) = st.subs.get_mut(channel) {
            sub.expire_at = (r.expire_at != 0).then_some(r.expire_at);
            if info.is_some() {
                sub.chan_info = info;
            }
        }
        Ok(())
    }

    /// A subscribe without token to a channel whose namespace has
    /// `subscribe_proxy_enabled`: the backend decides, its result is read like a
    /// subscription token (`expire_at`, `info`, `data`, `override`).
    pub(super) async fn subscribe_proxy(
        &self,
        s: &Session,
        req: &crate::protocol::SubscribeRequest,
        proxy_name: &str,
    ) -> Result<SubscribeToken, Fail> {
        let ep = self.proxies.channel(ChannelProxy::Subscribe, proxy_name).ok_or(ErrorCode::Internal)?;
        let (data, b64data) = proxy::outgoing_data(&ep.cfg, req.data.as_ref());
        let body = proxy::SubscribeRequest {
            base: session_base(ep, s),
            channel: req.channel.clone(),
            token: String::new(),
            data,
            b64data,
        };
        let r = self.proxies.call::<proxy::SubscribeResult>(ep, &s.proxy_headers, &body).await?.unwrap_or_default();
        if r.expire_at != 0 && r.expire_at < now_secs() {
            return Err(ErrorCode::Expired.into());
        }
        let raw = |r: Option<Raw>| r.map(|r| crate::json::to_raw(&r));
        Ok(SubscribeToken {
            user: s.user.clone(),
            channel: req.channel.clone(),
            exp: None,
            iat: None,
            jti: None,
            expire_at: (r.expire_at != 0).then_some(r.expire_at),
            info: raw(proxy::payload(r.info, r.b64info.as_deref())?),
            data: raw(proxy::payload(r.data, r.b64data.as_deref())?),
            overrides: crate::auth::ChannelOverrides::from_value(r.overrides.as_ref()),
            client: None,
        })
    }

    /// A client publication through the publish proxy: it may refuse, or replace the
    /// data, set tags or skip history.
    pub(super) async fn publish_proxy(
        &self,
        s: &Session,
        channel: &str,
        data: &Raw,
        proxy_name: &str,
    ) -> Result<(Raw, super::PublishOptions), Fail> {
        let ep = self.proxies.channel(ChannelProxy::Publish, proxy_name).ok_or(ErrorCode::Internal)?;
        let (d, b64data) = proxy::outgoing_data(&ep.cfg, Some(data));
        let body = proxy::PublishRequest { base: session_base(ep, s), channel: channel.to_string(), data: d, b64data };
        let r = self.proxies.call::<proxy::PublishResult>(ep, &s.proxy_headers, &body).await?.unwrap_or_default();
        let data = proxy::payload(r.data, r.b64data.as_deref())?.unwrap_or_else(|| data.clone());
        let opts = super::PublishOptions { skip_history: r.skip_history, tags: r.tags, ..Default::default() };
        Ok((data, opts))
    }

    /// Client `rpc`: the built-in ping, then the RPC proxy when the method's
    /// namespace has `proxy_enabled`; anything else is 104.
    pub(super) async fn client_rpc(&self, s: &Session, req: RpcRequest) -> Result<RpcResult, Fail> {
        let rpc = &self.config.rpc;
        if req.method == USER_STATUS_RPC {
            // Built in, as in Centrifugo PRO: the caller's own user is active now.
            if s.user.is_empty() {
                return Err(ErrorCode::PermissionDenied.into());
            }
            self.update_user_status(std::slice::from_ref(&s.user), None).await.map_err(super::internal)?;
            return Ok(RpcResult { data: None });
        }
        if rpc.ping.enabled && req.method == rpc.ping.method {
            return Ok(RpcResult { data: None });
        }
        let options = match req.method.split_once(rpc.namespace_boundary.as_str()) {
            Some((ns, _)) if !rpc.namespace_boundary.is_empty() => {
                rpc.namespaces.iter().find(|n| n.name == ns).map(|n| &n.options)
            }
            _ => Some(&rpc.without_namespace),
        };
        let ep = match options {
            Some(o) if o.proxy_enabled => self.proxies.channel(ChannelProxy::Rpc, &o.proxy_name),
            _ => None,
        };
        let Some(ep) = ep else { return Err(ErrorCode::MethodNotFound.into()) };
        let (data, b64data) = proxy::outgoing_data(&ep.cfg, req.data.as_ref());
        let body = proxy::RpcRequest { base: session_base(ep, s), method: req.method, data, b64data };
        let r = self.proxies.call::<proxy::RpcResult>(ep, &s.proxy_headers, &body).await?.unwrap_or_default();
        Ok(RpcResult { data: proxy::payload(r.data, r.b64data.as_deref())? })
    }
}

/// Background refreshes of one connection (owned by its `Conn`). The flags are
/// allocated on first use: most connections never run a refresh proxy, and an idle
/// connection should not pay for one.
#[derive(Default)]
pub(super) struct RefreshTimer(std::sync::OnceLock<Arc<RefreshFlags>>);

/// What a connection's refresh tasks are doing.
#[derive(Default)]
pub(super) struct RefreshFlags {
    /// A connection refresh task is running; its result lands in the session's `expire_at`.
    pub conn: AtomicBool,
    /// Channels whose sub_refresh task is running.
    pub subs: parking_lot::Mutex<std::collections::HashSet<String>>,
}

impl RefreshTimer {
    pub(super) fn flags(&self) -> &Arc<RefreshFlags> {
        self.0.get_or_init(Arc::default)
    }
}
