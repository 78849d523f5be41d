//! The HTTP server: composes the transport and API routers with `/health`, binds, and
//! runs until SIGINT/SIGTERM, then shuts down gracefully — every client gets a
//! reconnect-able 3001 disconnect and in-flight streams end before the process exits
//! (bounded by `shutdown.timeout`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::node::Node;

/// Every route of the server.
pub fn app(node: &Arc<Node>) -> Router {
    let mut r = crate::transport::router(node).merge(crate::api::router(node));
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
    let server = axum::serve(listener, app.into_make_service()).with_graceful_shutdown(shutdown);
    let timeout = node.config.shutdown.timeout.std();
    let drained = async {
        node.shutdown_signal().await;
        tokio::time::sleep(timeout).await;
    };
    tokio::select! {
        r = server => r,
        _ = drained => {
            tracing::warn!("shutdown timeout reached; exiting with connections still open");
            Ok(())
        }
    }
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
