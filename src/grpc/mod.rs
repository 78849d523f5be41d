//! The gRPC server API: `centrifugal.centrifugo.api.CentrifugoApi` on
//! `grpc_api.address:port`, wire-compatible with Centrifugo's generated clients.
//! Every method is the HTTP API's own implementation behind a protobuf front
//! (`service.rs`, bridged by `json.rs`); this file binds the port, applies the
//! `authorization: apikey <KEY>` check (before a request body is decoded), the
//! `max_receive_message_size` limit, optional TLS and reflection, and serves until the
//! node shuts down. Depends on `api`, `node` and `config`; nothing depends on it but
//! the command line.

pub mod json;
mod listing;
pub mod proto;
mod service;

use std::net::SocketAddr;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Status};

use crate::config::GrpcApi;
use crate::node::Node;

use self::proto::centrifugo_api_server::CentrifugoApiServer;

pub use self::service::status_of;

/// gRPC's customary limit on a received message when `max_receive_message_size` is 0.
pub const DEFAULT_MAX_RECEIVE: usize = 4 * 1024 * 1024;

/// The bound port and the server with its TLS acceptor built, ready to serve.
pub struct Bound {
    listener: TcpListener,
    server: Server,
}

impl Bound {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Binds `grpc_api.address:port` and builds the TLS acceptor when `grpc_api.enabled`
/// (`None` otherwise), so that a bad port, certificate or key stops startup. TLS needs
/// a process-wide rustls crypto provider (the command line installs ring).
pub async fn bind(node: &Node) -> std::io::Result<Option<Bound>> {
    let c = &node.config.grpc_api;
    if !c.enabled {
        return Ok(None);
    }
    let mut server = Server::builder();
    if c.tls.enabled {
        server = server.tls_config(tls_config(c)?).map_err(|e| tls_error(&e))?;
    }
    let host = if c.address.is_empty() { "0.0.0.0" } else { c.address.as_str() };
    let listener = crate::server::listen(host, c.port).await?;
    Ok(Some(Bound { listener, server }))
}

/// Serves the API until the node starts shutting down, then lets calls in flight finish.
pub async fn serve(node: Arc<Node>, bound: Bound) -> Result<(), tonic::transport::Error> {
    let c = &node.config.grpc_api;
    let limit = if c.max_receive_message_size == 0 { DEFAULT_MAX_RECEIVE } else { c.max_receive_message_size };
    let api = CentrifugoApiServer::new(service::Api::new(node.clone())).max_decoding_message_size(limit);
    let api = InterceptedService::new(api, key_check(&c.key));
    let reflection = c.reflection.then(|| {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .build_v1()
            .inspect_err(|e| tracing::error!("gRPC reflection unavailable: {e}"))
            .ok()
    });
    let reflection = reflection.flatten();
    let mut server = bound.server;
    if let Ok(addr) = bound.listener.local_addr() {
        tracing::info!(%addr, tls = c.tls.enabled, reflection = c.reflection, "gRPC API listening");
    }
    // tonic's own `tcp_nodelay` applies only to listeners it binds; without it here,
    // Nagle's algorithm holds a response's last segment for the client's delayed ACK
    // (~40 ms per large answer, measured with `rotor bench --api grpc`).
    let incoming = tokio_stream::StreamExt::map(TcpListenerStream::new(bound.listener), |conn| {
        conn.and_then(|stream| stream.set_nodelay(true).map(|()| stream))
    });
    let shutdown = node.clone();
    server
        .add_service(api)
        .add_optional_service(reflection)
        .serve_with_incoming_shutdown(incoming, async move { shutdown.shutdown_signal().await })
        .await
}

/// The interceptor admitting calls whose `authorization` metadata is `apikey <key>`
/// (scheme in any case, key compared in constant time); UNAUTHENTICATED otherwise.
/// An empty key admits nothing (validation refuses that configuration anyway).
fn key_check(key: &str) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone + use<> {
    let key: Arc<[u8]> = key.as_bytes().into();
    move |req: Request<()>| {
        let presented = req.metadata().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| {
            let (scheme, k) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("apikey").then(|| k.trim().to_owned())
        });
        match presented {
            Some(k) if !key.is_empty() && bool::from(k.as_bytes().ct_eq(&key)) => Ok(req),
            _ => Err(Status::unauthenticated("unauthenticated")),
        }
    }
}

/// The server identity of `grpc_api.tls`: `cert_pem` and `key_pem` each PEM text, a
/// file path, or base64 of PEM text (Centrifugo's three forms).
fn tls_config(c: &GrpcApi) -> std::io::Result<ServerTlsConfig> {
    let cert = pem(&c.tls.cert_pem, "grpc_api.tls.cert_pem")?;
    let key = pem(&c.tls.key_pem, "grpc_api.tls.key_pem")?;
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
}

/// tonic's error says only "transport error"; the reason is in its sources.
fn tls_error(e: &dyn std::error::Error) -> std::io::Error {
    let mut text = format!("grpc_api.tls: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    std::io::Error::other(text)
}

fn pem(value: &str, what: &str) -> std::io::Result<Vec<u8>> {
    use base64::Engine as _;
    if value.contains("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    if let Ok(bytes) = std::fs::read(value) {
        return Ok(bytes);
    }
    match base64::engine::general_purpose::STANDARD.decode(value.trim()) {
        Ok(bytes) if bytes.starts_with(b"-----BEGIN") => Ok(bytes),
        _ => Err(std::io::Error::other(format!("{what}: neither PEM text, a readable file, nor base64 of PEM"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: Option<&str>) -> Request<()> {
        let mut req = Request::new(());
        if let Some(v) = value {
            req.metadata_mut().insert("authorization", v.parse().unwrap());
        }
        req
    }

    #[test]
    fn key_check_admits_only_the_key() {
        let check = key_check("secret");
        assert!(check(with_auth(Some("apikey secret"))).is_ok());
        assert!(check(with_auth(Some("APIKEY secret"))).is_ok());
        for bad in
            [None, Some("apikey"), Some("apikey wrong"), Some("bearer secret"), Some("secret"), Some("apikey secretx")]
        {
            let status = check(with_auth(bad)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
        let open = key_check("");
        assert!(open(with_auth(Some("apikey "))).is_err());
    }

    #[test]
    fn pem_forms() {
        let text = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(pem(text, "x").unwrap(), text.as_bytes());
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(pem(&b64, "x").unwrap(), text.as_bytes());
        let e = pem("no/such/file.pem", "grpc_api.tls.cert_pem").unwrap_err();
        assert!(e.to_string().starts_with("grpc_api.tls.cert_pem"), "{e}");
    }
}
