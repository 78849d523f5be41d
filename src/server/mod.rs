//! The HTTP server: composes the transport and API routers with `/health`, binds,
//! accepts connections under the read limits (`conn.rs`, `body.rs`), and runs until
//! SIGINT/SIGTERM, then shuts down gracefully — every client gets a reconnect-able
//! 3001 disconnect and in-flight streams end before the process exits (bounded by
//! `shutdown.timeout`).

mod body;
mod conn;

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::HttpServer;
use crate::node::Node;

/// Every route of the server.
pub fn app(node: &Arc<Node>) -> Router {
    let mut r = crate::transport::router(node).merge(crate::api::router(node)).merge(crate::admin::router(node));
    if node.config.health.enabled {
        r = r.route(&node.config.health.handler_prefix, get(crate::api::health));
    }
    r.with_state(node.clone())
}

/// Binds `http_server.address:port` (`""` = all interfaces).
pub async fn bind(node: &Node) -> std::io::Result<TcpListener> {
    let c = &node.config.http_server;
    let host = if c.address.is_empty() { "0.0.0.0" } else { c.address.as_str() };
    TcpListener::bind((host, c.port)).await
}

/// Serves until a shutdown signal, then drains.
pub async fn serve(node: Arc<Node>, listener: TcpListener) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, node = %node.name, "rotor listening");
    let app = app(&node);
    let signal_node = node.clone();
    let shutdown = async move {
        wait_for_signal().await;
        tracing::info!("shutting down: disconnecting clients");
        signal_node.shutdown();
    };
    let server = accept_loop(listener, app, &node.config.http_server, shutdown);
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
async fn accept_loop(listener: TcpListener, app: Router, c: &HttpServer, shutdown: impl Future<Output = ()>) {
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
        tokio::spawn(conn::serve(accepted, app.clone(), limits));
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
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
