//! gRPC API load (`--api grpc`): the publish, broadcast and connections requests of the
//! HTTP load, sent with the crate's generated tonic client to `--grpc-url`. Each
//! request in flight has its own channel (one HTTP/2 connection), as the HTTP load
//! keeps one keep-alive connection per request in flight, so the two APIs are driven
//! alike. A call succeeds when it returns OK with a `result` and no `error`.

use std::time::Duration;

use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::grpc::proto::centrifugo_api_client::CentrifugoApiClient;
use crate::grpc::proto::{BroadcastRequest, ConnectionsRequest, Error, PublishRequest};

use super::error_chain;

/// A generated client on one channel.
pub(super) type Client = CentrifugoApiClient<Channel>;

/// One of the loads' requests as a protobuf message.
#[derive(Clone, Debug)]
pub(super) enum Call {
    Publish(PublishRequest),
    Broadcast(BroadcastRequest),
    Connections(ConnectionsRequest),
}

/// Where and how the gRPC load calls: the server, the API key's metadata, the message.
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub endpoint: Endpoint,
    pub auth: Option<AsciiMetadataValue>,
    pub call: Call,
}

impl Request {
    /// `url` is a validated loopback `http://ip:port`; `api_key` becomes
    /// `authorization: apikey <key>`.
    pub(super) fn new(url: &str, api_key: Option<&str>, call: Call, timeout: Duration) -> Result<Request, String> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("--grpc-url {url:?}: {e}"))?
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        let auth = match api_key {
            Some(k) => {
                Some(format!("apikey {k}").parse().map_err(|_| "the API key is not valid gRPC metadata".to_string())?)
            }
            None => None,
        };
        Ok(Request { endpoint, auth, call })
    }

    /// `n` clients, each on its own lazily connected channel.
    pub(super) fn clients(&self, n: usize) -> Vec<Client> {
        (0..n.max(1)).map(|_| CentrifugoApiClient::new(self.endpoint.connect_lazy())).collect()
    }

    fn authed<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(auth) = &self.auth {
            r.metadata_mut().insert("authorization", auth.clone());
        }
        r
    }

    /// Sends the call once on `client`; `stamp` replaces the data's send-time
    /// placeholder. Returns the connections in a Connections answer (0 otherwise).
    pub(super) async fn send(&self, client: &Client, stamp: impl Fn(&[u8]) -> Vec<u8>) -> Result<usize, String> {
        let mut client = client.clone();
        match &self.call {
            Call::Publish(p) => {
                let p = PublishRequest { data: stamp(&p.data), ..p.clone() };
                let r = client.publish(self.authed(p)).await.map_err(|s| status_text(&s))?.into_inner();
                answer(r.error, r.result).map(|_| 0)
            }
            Call::Broadcast(b) => {
                let b = BroadcastRequest { data: stamp(&b.data), ..b.clone() };
                let r = client.broadcast(self.authed(b)).await.map_err(|s| status_text(&s))?.into_inner();
                answer(r.error, r.result).map(|_| 0)
            }
            Call::Connections(c) => {
                let r = client.connections(self.authed(c.clone())).await.map_err(|s| status_text(&s))?.into_inner();
                answer(r.error, r.result).map(|r| r.connections.len())
            }
        }
    }
}

fn answer<T>(error: Option<Error>, result: Option<T>) -> Result<T, String> {
    match (error, result) {
        (Some(e), _) => Err(format!("error {}: {}", e.code, e.message)),
        (None, Some(r)) => Ok(r),
        (None, None) => Err("a response with neither result nor error".into()),
    }
}

fn status_text(s: &tonic::Status) -> String {
    let mut text = format!("gRPC {:?}: {}", s.code(), s.message());
    if let Some(source) = std::error::Error::source(s) {
        text.push_str(": ");
        text.push_str(&error_chain(source));
    }
    text
}
