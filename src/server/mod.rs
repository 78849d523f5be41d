//! The HTTP server: composes the transport and API routers with `/health` and
//! `/metrics`, binds, accepts connections under the read limits (`conn.rs`,
//! `body.rs`; first requests to streaming transports in `stream.rs`), and runs until SIGINT/SIGTERM, then shuts down gracefully — every
//! client gets a reconnect-able 3001 disconnect and in-flight streams end before the
//! process exits (bounded by `shutdown.timeout`).
//!
//! With `http_server.internal_port` set there are two listeners, as in Centrifugo:
//! the public one serves only the client transports; the server API, admin, metrics
//! and health move to the internal one. Both accept under the same limits.

mod body;
mod conn;
#[doc(hidden)]
pub mod stream;

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::HttpServer;
use crate::node::Node;

/// Every route of the server (one listener).
pub fn app(node: &Arc<Node>) -> Router {
    crate::transport::router(node).merge(internal_routes(node)).with_state(node.clone())
}

/// The routes of the public listener when an internal port is set: transports only.
pub fn public_app(node: &Arc<Node>) -> Router {
    crate::transport::router(node).with_state(node.clone())
}

/// The routes of the internal listener: API, admin, metrics, health.
pub fn internal_app(node: &Arc<Node>) -> Router {
    internal_routes(node).with_state(node.clone())
}

fn internal_routes(node: &Arc<Node>) -> Router<Arc<Node>> {
    let mut r = crate::api::router(node).merge(crate::admin::router(node));
    if node.config.health.enabled {
        r = r.route(&node.config.health.handler_prefix, get(crate::api::health));
    }
    let p = &node.config.prometheus;
    if p.enabled {
        r = r.route(&p.handler_prefix, get(metrics));
    }
    r
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let mut resp = (StatusCode::OK, node.metrics_text()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE));
    resp
}

/// The bound sockets: the public one, and the internal one when configured.
pub struct Listeners {
    pub public: TcpListener,
    pub internal: Option<TcpListener>,
}

/// Binds `http_server.address:port` (`""` = all interfaces) and, when
/// `internal_port` is set, `internal_address:internal_port`.
pub async fn bind(node: &Node) -> std::io::Result<Listeners> {
    let c = &node.config.http_server;
    let host = |a: &str| if a.is_empty() { "0.0.0.0".to_string() } else { a.to_string() };
    let public = listen(&host(&c.address), c.port).await?;
    let internal = match c.internal_port {
        0 => None,
        port => Some(listen(&host(&c.internal_address), port).await?),
    };
    Ok(Listeners { public, internal })
}

/// How many connections the kernel may hold completed but not yet accepted (it caps
/// this at `net.core.somaxconn`, 4096 by default). A short queue drops the SYNs of a
/// burst of connects, and each dropped client retries only after a second: with the
/// 128 that `TcpListener::bind` asks for, 1,000 clients connecting 200 at a time saw
/// p99 connect latency of ~1 s.
const BACKLOG: u32 = 4096;

/// A listener on `host:port` (the first address it resolves to that binds) with a
/// [`BACKLOG`] accept queue and `SO_REUSEADDR`, as `TcpListener::bind` sets it.
pub async fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        let bound = socket.set_reuseaddr(true).and_then(|()| socket.bind(addr)).and_then(|()| socket.listen(BACKLOG));
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, format!("{host}: no address"))))
}

/// Serves until a shutdown signal, then drains.
pub async fn serve(node: Arc<Node>, listeners: Listeners) -> std::io::Result<()> {
    let addr: SocketAddr = listeners.public.local_addr()?;
    tracing::info!(%addr, node = %node.name, "rotor listening");
    let (stop_tx, stop_rx) = watch::channel(false);
    let signal_node = node.clone();
    let shutdown = async move {
        wait_for_signal().await;
        tracing::info!("shutting down: disconnecting clients");
        signal_node.shutdown();
        let _ = stop_tx.send(true);
    };
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let c = &node.config.http_server;
    let (public_app, internal) = match listeners.internal {
        Some(l) => {
            tracing::info!(addr = %l.local_addr()?, "internal endpoints (API, admin, metrics, health) listening");
            (public_app(&node), Some((l, internal_app(&node))))
        }
        None => (app(&node), None),
    };
    let internal = async {
        if let Some((l, app)) = internal {
            accept_loop(l, app, stream::Routes::default(), c, stopped(stop_rx.clone())).await;
        }
    };
    let public = accept_loop(listeners.public, public_app, stream::Routes::of(&node), c, shutdown);
    let server = async {
        tokio::join!(public, internal);
        // An upgraded WebSocket is no longer a connection hyper waits for: wait until
        // every session has ended (its 3001 close written), bounded by `drained`.
        while !node.hub.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    let timeout = node.config.shutdown.timeout.std();
    let drained = async {
        node.shutdown_signal().await;
        tokio::time::sleep(timeout).await;
    };
    tokio::select! {
        () = server => Ok(()),
        _ = drained => {
            tracing::warn!("shutdown timeout reached; exiting with connections still open");
            Ok(())
        }
    }
}

/// Accepts connections until `shutdown` completes, then tells every connection to
/// finish its request in flight and waits for them. A connection accepted while
/// `max_pending_connections` others still owe their first request's headers is closed
/// at once: a flood of idle or half-sent connections costs a bounded amount.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    streams: stream::Routes,
    c: &HttpServer,
    shutdown: impl Future<Output = ()>,
) {
    let nonzero = |d: crate::config::Duration| (!d.is_zero()).then(|| d.std());
    let limits = conn::Limits { header: nonzero(c.read_header_timeout), body: nonzero(c.read_body_timeout) };
    let pending_cap = (c.max_pending_connections > 0).then(|| Arc::new(Semaphore::new(c.max_pending_connections)));
    let (stop, _) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let pending = match &pending_cap {
            Some(cap) => match cap.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    tracing::debug!("too many connections without a request yet; closing a new one");
                    continue;
                }
            },
            None => None,
        };
        let accepted = conn::Accepted { stream, pending, shutdown: stop.subscribe() };
        tokio::spawn(conn::serve(accepted, app.clone(), limits, streams.clone()));
    }
    drop(listener);
    let _ = stop.send(());
    stop.closed().await;
}

/// Connection-level errors (the peer gave up before accept) are routine; anything
/// else (out of file descriptors) is logged and retried after a pause, as axum does.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            },
            Err(e) => {
                tracing::warn!("no SIGTERM handler ({e}); only Ctrl-C stops the server gracefully");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    /// A burst of connects completes while nothing accepts: the accept queue holds
    /// them all. With `TcpListener::bind`'s queue of 128, every connect past it would
    /// have its SYN dropped, and wait until the test's deadline.
    #[tokio::test]
    async fn the_accept_queue_holds_a_burst_of_connects() {
        let listener = super::listen("127.0.0.1", 0).await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The kernel caps the queue at net.core.somaxconn (4096 on current kernels).
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        let burst = 600.min(somaxconn.saturating_sub(8));
        let connects = (0..burst).map(|_| tokio::net::TcpStream::connect(addr));
        let burst = futures_util::future::join_all(connects);
        let streams = tokio::time::timeout(std::time::Duration::from_secs(30), burst)
            .await
            .expect("every connect completes without an accept");
        assert!(streams.iter().all(Result::is_ok));
        drop(listener);
    }

    #[tokio::test]
    async fn a_host_that_does_not_resolve_is_an_error() {
        assert!(super::listen("no-such-host.invalid", 0).await.is_err());
    }
}
