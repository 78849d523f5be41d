//! HTTP proxies to the application backend (reference §7): connect, refresh,
//! subscribe, publish, sub_refresh and RPC. This module owns the wire shapes, which
//! client headers may be forwarded, and how a backend answer (or its absence) becomes
//! a result, a protocol error or a disconnect. It holds no connection state and never
//! decides what a result means for a session — `node` does.

mod wire;

use std::collections::HashMap;

use axum::http::HeaderMap;
use base64::Engine;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::config::{self, Config};
use crate::protocol::{Disconnect, ErrorReply, Raw};

pub use wire::*;

/// Why a proxy call gave no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// The backend answered `error` (or a status transform said so).
    Error(ErrorReply),
    /// The backend answered `disconnect` (or a status transform said so).
    Disconnect(Disconnect),
    /// Network error, timeout, a non-200 status without a transform, or a body that
    /// is not a proxy response. Callers map it to error 100 / disconnect 3004.
    Unavailable(String),
}

/// One configured proxy endpoint.
#[derive(Debug)]
pub struct Endpoint {
    pub cfg: config::Proxy,
    /// `connect`, `refresh`, … for logs.
    pub kind: &'static str,
}

/// Headers a connection brought that some proxy may forward (names lowercased).
#[derive(Debug, Default, Clone)]
pub struct Headers {
    /// From the client's HTTP request.
    pub transport: Vec<(String, String)>,
    /// From the connect command's `headers` map (header emulation).
    pub emulated: Vec<(String, String)>,
}

impl Headers {
    /// Shared by every connection that brought none a proxy forwards (the common
    /// case): one allocation per process instead of one per connection.
    pub fn shared(self) -> std::sync::Arc<Headers> {
        static NONE: std::sync::LazyLock<std::sync::Arc<Headers>> = std::sync::LazyLock::new(Default::default);
        if self.transport.is_empty() && self.emulated.is_empty() { NONE.clone() } else { std::sync::Arc::new(self) }
    }
}

/// The proxies a namespace switches on, each picked by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelProxy {
    Subscribe,
    Publish,
    SubRefresh,
    Rpc,
}

impl ChannelProxy {
    const ALL: [ChannelProxy; 4] = [Self::Subscribe, Self::Publish, Self::SubRefresh, Self::Rpc];

    /// The proxy type, as in metrics and logs.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Publish => "publish",
            Self::SubRefresh => "sub_refresh",
            Self::Rpc => "rpc",
        }
    }
}

/// Every proxy of the configuration and one HTTP client they share.
pub struct Proxies {
    http: reqwest::Client,
    pub connect: Option<Endpoint>,
    pub refresh: Option<Endpoint>,
    /// Subscribe, publish, sub_refresh and RPC endpoints by proxy name (indexed by
    /// [`ChannelProxy`]); `default` holds `channel.proxy.*` and `rpc.proxy`, the
    /// others come from the top-level `proxies` list.
    by_name: HashMap<String, [Option<Endpoint>; 4]>,
    /// Union of every proxy's `http_headers` / `emulated_headers`, lowercased.
    wanted_transport: Vec<String>,
    wanted_emulated: Vec<String>,
    /// Where calls record their duration and failures.
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

fn endpoint(cfg: &config::Proxy, on: bool, kind: &'static str) -> Option<Endpoint> {
    (on && !cfg.endpoint.is_empty()).then(|| Endpoint { cfg: cfg.clone(), kind })
}

impl Proxies {
    /// Channel and RPC proxies exist when their endpoint is set; namespaces switch them on.
    pub fn new(c: &Config) -> Self {
        let p = &c.client.proxy;
        let ch = &c.channel.proxy;
        let connect = endpoint(&p.connect.proxy, p.connect.enabled, "connect");
        let refresh = endpoint(&p.refresh.proxy, p.refresh.enabled, "refresh");
        let mut by_name = HashMap::new();
        let defaults = [&ch.subscribe, &ch.publish, &ch.sub_refresh, &c.rpc.proxy];
        by_name.insert(
            config::DEFAULT_PROXY_NAME.to_string(),
            std::array::from_fn(|i| endpoint(defaults[i], true, ChannelProxy::ALL[i].kind())),
        );
        for named in &c.proxies {
            let one = |i: usize| endpoint(&named.proxy, true, ChannelProxy::ALL[i].kind());
            by_name.insert(named.name.clone(), std::array::from_fn(one));
        }
        let mut wanted_transport = Vec::new();
        let mut wanted_emulated = Vec::new();
        let channel_side = by_name.values().flat_map(|e| e.iter().flatten());
        for e in connect.iter().chain(refresh.iter()).chain(channel_side) {
            wanted_transport.extend(e.cfg.http_headers.iter().map(|h| h.to_ascii_lowercase()));
            wanted_emulated.extend(e.cfg.emulated_headers.iter().map(|h| h.to_ascii_lowercase()));
        }
        wanted_transport.sort();
        wanted_transport.dedup();
        wanted_emulated.sort();
        wanted_emulated.dedup();
        Self {
            http: reqwest::Client::new(),
            connect,
            refresh,
            by_name,
            wanted_transport,
            wanted_emulated,
            metrics: None,
        }
    }

    /// The `which` proxy named `name` (`""` and `default`: the unnamed one), if it
    /// has an endpoint.
    pub fn channel(&self, which: ChannelProxy, name: &str) -> Option<&Endpoint> {
        let name = if name.is_empty() { config::DEFAULT_PROXY_NAME } else { name };
        self.by_name.get(name)?[which as usize].as_ref()
    }

    /// Records every call's duration and failures in `m`
    /// (`centrifugo_proxy_duration_seconds`, `centrifugo_proxy_errors`).
    pub fn with_metrics(mut self, m: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(m);
        self
    }

    /// The transport headers of a client request that some proxy forwards.
    pub fn capture(&self, h: &HeaderMap) -> Vec<(String, String)> {
        self.wanted_transport
            .iter()
            .filter_map(|name| Some((name.clone(), h.get(name.as_str())?.to_str().ok()?.to_string())))
            .collect()
    }

    /// The connect command's emulated headers that some proxy forwards.
    pub fn capture_emulated(&self, h: &HashMap<String, String>) -> Vec<(String, String)> {
        h.iter()
            .filter_map(|(k, v)| {
                let k = k.to_ascii_lowercase();
                self.wanted_emulated.binary_search(&k).is_ok().then(|| (k, v.clone()))
            })
            .collect()
    }

    /// POSTs `body` to `ep` and reads `{"result"|"error"|"disconnect"}`
    /// (`disconnect` > `error` > `result`). `Ok(None)` is a response without result.
    /// Its duration is recorded, and an unavailable backend counts as a proxy error.
    pub async fn call<R: DeserializeOwned>(
        &self,
        ep: &Endpoint,
        headers: &Headers,
        body: &impl Serialize,
    ) -> Result<Option<R>, ProxyError> {
        let started = std::time::Instant::now();
        let out = self.send(ep, headers, body).await;
        let slot = crate::metrics::PROXIES.iter().position(|k| *k == ep.kind);
        if let (Some(m), Some(i)) = (&self.metrics, slot) {
            m.proxies[i].duration.observe(started.elapsed().as_secs_f64());
            if matches!(out, Err(ProxyError::Unavailable(_))) {
                m.proxies[i].errors.inc();
            }
        }
        out
    }

    async fn send<R: DeserializeOwned>(
        &self,
        ep: &Endpoint,
        headers: &Headers,
        body: &impl Serialize,
    ) -> Result<Option<R>, ProxyError> {
        let resp = self
            .http
            .post(&ep.cfg.endpoint)
            .timeout(ep.cfg.timeout.std())
            .headers(outgoing_headers(&ep.cfg, headers))
            .json(body)
            .send()
            .await
            .map_err(|e| unavailable(ep, format!("request failed: {}", chain(&e))))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(status_error(ep, status));
        }
        let bytes = resp.bytes().await.map_err(|e| unavailable(ep, format!("reading body: {e}")))?;
        let env: Envelope<R> =
            serde_json::from_slice(&bytes).map_err(|e| unavailable(ep, format!("bad response: {e}")))?;
        if let Some(d) = env.disconnect {
            return Err(ProxyError::Disconnect(Disconnect::new(d.code, d.reason)));
        }
        if let Some(e) = env.error {
            return Err(ProxyError::Error(ErrorReply { code: e.code, message: e.message, temporary: e.temporary }));
        }
        Ok(env.result)
    }
}

/// An error and its sources, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn unavailable(ep: &Endpoint, why: String) -> ProxyError {
    tracing::warn!(proxy = ep.kind, endpoint = %ep.cfg.endpoint, "{why}");
    ProxyError::Unavailable(why)
}

fn status_error(ep: &Endpoint, status: u16) -> ProxyError {
    let t = ep.cfg.http.status_to_code_transforms.iter().find(|t| t.status_code == status);
    match t {
        Some(t) if t.to_disconnect.code > 0 => {
            ProxyError::Disconnect(Disconnect::new(t.to_disconnect.code, t.to_disconnect.reason.clone()))
        }
        Some(t) if t.to_error.code > 0 => ProxyError::Error(ErrorReply {
            code: t.to_error.code,
            message: t.to_error.message.clone(),
            temporary: t.to_error.temporary,
        }),
        _ => unavailable(ep, format!("unexpected HTTP status {status}")),
    }
}

/// Static headers, then allowed emulated ones, then allowed transport ones (each
/// later source wins); `Content-Type` is always JSON.
fn outgoing_headers(cfg: &config::Proxy, h: &Headers) -> reqwest::header::HeaderMap {
    use reqwest::header::{HeaderName, HeaderValue};
    let mut out = reqwest::header::HeaderMap::new();
    let mut put = |k: &str, v: &str| {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            out.insert(k, v);
        }
    };
    for (k, v) in &cfg.http.static_headers {
        put(k, v);
    }
    let pick = |list: &[(String, String)], allowed: &[String]| -> Vec<(String, String)> {
        list.iter().filter(|(k, _)| allowed.iter().any(|a| a.eq_ignore_ascii_case(k))).cloned().collect()
    };
    for (k, v) in pick(&h.emulated, &cfg.emulated_headers) {
        put(&k, &v);
    }
    for (k, v) in pick(&h.transport, &cfg.http_headers) {
        put(&k, &v);
    }
    put("content-type", "application/json");
    out
}

/// Client data as a request carries it: raw JSON in `data`, or base64 in `b64data`
/// with `binary_encoding`.
pub fn outgoing_data(cfg: &config::Proxy, data: Option<&Raw>) -> (Option<Raw>, Option<String>) {
    match data {
        Some(d) if cfg.binary_encoding => {
            (None, Some(base64::engine::general_purpose::STANDARD.encode(d.get().as_bytes())))
        }
        Some(d) => (Some(d.clone()), None),
        None => (None, None),
    }
}

/// A payload of a result: `b64*` (base64 of JSON — the JSON protocol carries no
/// binary) wins over the plain field.
pub fn payload(plain: Option<Box<RawValue>>, b64: Option<&str>) -> Result<Option<Raw>, ProxyError> {
    if let Some(text) = b64.filter(|t| !t.is_empty()) {
        let bad = |why: String| ProxyError::Unavailable(format!("b64 payload: {why}"));
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| bad(e.to_string()))?;
        let raw: Box<RawValue> = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        return Ok(Some(crate::protocol::one_line(Raw::from(raw))));
    }
    Ok(plain.filter(|p| p.get() != "null").map(|p| crate::protocol::one_line(Raw::from(p))))
}

#[cfg(test)]
mod tests;
