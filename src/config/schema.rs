//! The configuration schema: every option Rotor has, under Centrifugo v6's nested key
//! names, with its default. Loading, environment variables and validation live in
//! sibling files; this file only describes shapes and defaults.
//!
//! Every struct serializes every field (nothing skipped) so that the serialized
//! default tree doubles as the list of known keys (see `load.rs`).

use serde::{Deserialize, Serialize};

use super::duration::Duration;

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub http_server: HttpServer,
    pub log: Log,
    pub engine: Engine,
    pub client: Client,
    pub channel: Channel,
    pub rpc: Rpc,
    pub http_api: HttpApi,
    pub grpc_api: GrpcApi,
    pub websocket: WebSocket,
    pub uni_http_stream: UniHttp,
    pub uni_sse: UniHttp,
    pub uni_websocket: UniWebSocket,
    /// Bidirectional emulation over HTTP streaming (`/connection/http_stream`).
    pub http_stream: UniHttp,
    /// Bidirectional emulation over Server-Sent Events (`/connection/sse`).
    pub sse: UniHttp,
    /// `POST /emulation`, served whenever `http_stream` or `sse` is enabled.
    pub emulation: Emulation,
    pub health: Health,
    pub prometheus: Prometheus,
    pub admin: Admin,
    pub node: Node,
    pub shutdown: Shutdown,
    pub connections: Connections,
    pub user_status: UserStatus,
    /// Named proxies (`proxies: [{name, endpoint, …}]`) that namespaces pick with
    /// `*_proxy_name`; the name `default` means `channel.proxy.*` / `rpc.proxy`.
    pub proxies: Vec<NamedProxy>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpServer {
    pub address: String,
    pub port: u16,
    /// Time a client has to send a request's headers: a new connection's first
    /// request counts from accept, a kept-alive connection's next one from when the
    /// server is ready to read it. `0` = no limit.
    pub read_header_timeout: Duration,
    /// Time a request body has to arrive in full, counted from its headers (server
    /// API, `uni_http_stream`, `uni_sse` POST). `0` = no limit.
    pub read_body_timeout: Duration,
    /// Accepted connections whose first request's headers are not parsed yet; past
    /// this, new connections are closed at once. `0` = no cap.
    pub max_pending_connections: usize,
    /// Address of the internal listener (`""` = all interfaces).
    pub internal_address: String,
    /// When set (non-zero), the server API, admin, `/metrics` and health are served
    /// only on this second listener, as in Centrifugo.
    pub internal_port: u16,
}

impl Default for HttpServer {
    fn default() -> Self {
        Self {
            address: String::new(),
            port: 8000,
            read_header_timeout: Duration::from_secs(5),
            read_body_timeout: Duration::from_secs(10),
            max_pending_connections: 4096,
            internal_address: String::new(),
            internal_port: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Log {
    pub level: LogLevel,
}

impl Default for Log {
    fn default() -> Self {
        Self { level: LogLevel::Info }
    }
}

/// `log.level`: how much the server writes to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    None,
}

impl LogLevel {
    /// The level's name in a `tracing` filter directive (`none` is `off`).
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::None => "off",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Engine {
    #[serde(rename = "type")]
    pub kind: EngineKind,
    pub redis: RedisEngine,
}

impl Default for Engine {
    fn default() -> Self {
        Self { kind: EngineKind::Memory, redis: RedisEngine::default() }
    }
}

/// `engine.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// One node; everything in this process.
    Memory,
    /// A fleet of nodes sharing Redis.
    Redis,
}

/// `engine.redis`: where the fleet's Redis is and how long to wait for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RedisEngine {
    /// `redis://[user:pass@]host:port[/db]` or `rediss://…` URLs (a single string is
    /// accepted too). Several addresses shard channels over them by a stable hash.
    #[serde(deserialize_with = "string_or_list")]
    pub address: Vec<String>,
    /// Seed nodes of a Redis Cluster; when set, `address` is ignored.
    #[serde(deserialize_with = "string_or_list")]
    pub cluster_address: Vec<String>,
    /// Prefix of every key and PUB/SUB channel name.
    pub prefix: String,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    /// How long a presence entry lives unless its connection refreshes it.
    pub presence_ttl: Duration,
    /// Rotor: how long a fleet-wide survey waits for a live node to answer.
    pub survey_timeout: Duration,
}

impl Default for RedisEngine {
    fn default() -> Self {
        Self {
            address: vec!["redis://127.0.0.1:6379".into()],
            cluster_address: Vec::new(),
            prefix: "rotor".into(),
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(4),
            presence_ttl: Duration::from_secs(60),
            survey_timeout: Duration::from_secs(5),
        }
    }
}

fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) if s.is_empty() => Vec::new(),
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Keys to verify JWTs with (`client.token` and `client.subscription_token`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenKeys {
    pub hmac_secret_key: String,
    pub hmac_previous_secret_key: String,
    /// Unix seconds after which the previous HMAC key stops being accepted (0 = no limit).
    pub hmac_previous_secret_key_valid_until: i64,
    pub rsa_public_key: String,
    pub ecdsa_public_key: String,
    pub jwks_public_endpoint: String,
    pub audience: String,
    pub issuer: String,
    /// Claim holding the user ID (default `sub`).
    pub user_id_claim: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SubscriptionToken {
    pub enabled: bool,
    #[serde(flatten)]
    pub keys: TokenKeys,
}

/// Bounds on connection labels (a Rotor extension; Centrifugo PRO has labels unbounded).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LabelLimits {
    pub max_count: usize,
    pub max_key_length: usize,
    pub max_value_length: usize,
    /// Distinct label keys the node's live connections may have between them (each
    /// costs a label column per shard); a connect that would add one more is refused
    /// with 3500. 0 = no limit.
    pub max_keys_per_node: usize,
    /// Claim paths of the connection token (`tenant`, `org.region` — dots walk into
    /// objects) whose scalar values become labels named by the path, so tokens already
    /// issued need not carry a `labels` claim. The `labels` claim wins on a clash.
    pub from_claims: Vec<String>,
}

impl Default for LabelLimits {
    fn default() -> Self {
        Self {
            max_count: 32,
            max_key_length: 64,
            max_value_length: 256,
            max_keys_per_node: 1024,
            from_claims: Vec::new(),
        }
    }
}

/// One HTTP proxy to the application backend (Centrifugo v6 `Proxy`; gRPC endpoints
/// are not supported).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Proxy {
    /// `http://` or `https://` URL the JSON request is POSTed to.
    pub endpoint: String,
    pub timeout: Duration,
    /// Headers of the client's HTTP request (upgrade or stream request) forwarded.
    pub http_headers: Vec<String>,
    /// Keys of the connect command's `headers` map forwarded as HTTP headers; a
    /// transport header of the same name wins.
    pub emulated_headers: Vec<String>,
    /// Send `b64data` (base64) instead of `data` and expect base64 back.
    pub binary_encoding: bool,
    /// Add the connection's `meta` to every request but connect.
    pub include_connection_meta: bool,
    pub http: ProxyHttp,
}

impl Default for Proxy {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            timeout: Duration::from_secs(1),
            http_headers: Vec::new(),
            emulated_headers: Vec::new(),
            binary_encoding: false,
            include_connection_meta: false,
            http: ProxyHttp::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxyHttp {
    /// Headers added to every request; forwarded client headers win.
    pub static_headers: std::collections::BTreeMap<String, String>,
    pub status_to_code_transforms: Vec<StatusToCode>,
}

/// A backend HTTP status turned into a protocol error or disconnect.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusToCode {
    pub status_code: u16,
    pub to_error: TransformError,
    pub to_disconnect: TransformDisconnect,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TransformError {
    pub code: u32,
    pub message: String,
    pub temporary: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TransformDisconnect {
    pub code: u32,
    pub reason: String,
}

/// `client.proxy.connect` / `client.proxy.refresh`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientProxy {
    pub enabled: bool,
    #[serde(flatten)]
    pub proxy: Proxy,
}

/// One entry of the top-level `proxies` list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedProxy {
    pub name: String,
    #[serde(flatten)]
    pub proxy: Proxy,
}

/// The proxy name that means the unnamed `channel.proxy.*` / `rpc.proxy` endpoint.
pub const DEFAULT_PROXY_NAME: &str = "default";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientProxies {
    pub connect: ClientProxy,
    pub refresh: ClientProxy,
}

/// `channel.proxy`: the proxies namespaces switch on with `*_proxy_enabled`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelProxies {
    pub subscribe: Proxy,
    pub publish: Proxy,
    pub sub_refresh: Proxy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Client {
    pub token: TokenKeys,
    pub subscription_token: SubscriptionToken,
    pub allowed_origins: Vec<String>,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub expired_close_delay: Duration,
    pub expired_sub_close_delay: Duration,
    pub stale_close_delay: Duration,
    pub channel_limit: usize,
    /// Bytes a connection's outgoing queue may hold before it is disconnected as slow.
    pub queue_max_size: usize,
    pub user_connection_limit: usize,
    /// Connections this node accepts at once; more get HTTP 503 (0: no limit).
    pub connection_limit: usize,
    /// New connections per second this node accepts; more get HTTP 503 (0: no limit).
    pub connection_rate_limit: usize,
    pub history_max_publication_limit: usize,
    pub recovery_max_publication_limit: usize,
    pub allow_anonymous_connect_without_token: bool,
    pub disallow_anonymous_connection_tokens: bool,
    pub insecure: bool,
    pub connect_include_server_time: bool,
    pub labels: LabelLimits,
    pub proxy: ClientProxies,
}

impl Default for Client {
    fn default() -> Self {
        Self {
            token: TokenKeys::default(),
            subscription_token: SubscriptionToken::default(),
            allowed_origins: Vec::new(),
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(8),
            expired_close_delay: Duration::from_secs(25),
            expired_sub_close_delay: Duration::from_secs(25),
            stale_close_delay: Duration::from_secs(10),
            channel_limit: 128,
            queue_max_size: 1_048_576,
            user_connection_limit: 0,
            connection_limit: 0,
            connection_rate_limit: 0,
            history_max_publication_limit: 300,
            recovery_max_publication_limit: 300,
            allow_anonymous_connect_without_token: false,
            disallow_anonymous_connection_tokens: false,
            insecure: false,
            connect_include_server_time: false,
            labels: LabelLimits::default(),
            proxy: ClientProxies::default(),
        }
    }
}

/// Options of one channel namespace (or of channels without a namespace).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChannelOptions {
    pub presence: bool,
    pub join_leave: bool,
    pub force_push_join_leave: bool,
    pub history_size: usize,
    pub history_ttl: Duration,
    pub force_positioning: bool,
    pub allow_positioning: bool,
    pub force_recovery: bool,
    pub allow_recovery: bool,
    pub allow_subscribe_for_client: bool,
    pub allow_subscribe_for_anonymous: bool,
    pub allow_publish_for_client: bool,
    pub allow_publish_for_subscriber: bool,
    pub allow_publish_for_anonymous: bool,
    pub allow_presence_for_client: bool,
    pub allow_presence_for_subscriber: bool,
    pub allow_presence_for_anonymous: bool,
    pub allow_history_for_client: bool,
    pub allow_history_for_subscriber: bool,
    pub allow_history_for_anonymous: bool,
    pub allow_user_limited_channels: bool,
    pub allow_tags_filter: bool,
    pub channel_regex: String,
    /// Ask `channel.proxy.subscribe` whether a client without a subscription token may subscribe.
    pub subscribe_proxy_enabled: bool,
    /// Send client publications through `channel.proxy.publish` (it decides and may rewrite data).
    pub publish_proxy_enabled: bool,
    /// Refresh proxy-issued subscriptions through `channel.proxy.sub_refresh`.
    pub sub_refresh_proxy_enabled: bool,
    /// Which proxy those switches use: `default` (or empty) for `channel.proxy.*`,
    /// otherwise the name of an entry in the top-level `proxies` list.
    pub subscribe_proxy_name: String,
    pub publish_proxy_name: String,
    pub sub_refresh_proxy_name: String,
}

impl ChannelOptions {
    /// History is on only when both size and ttl are set.
    pub fn history_enabled(&self) -> bool {
        self.history_size > 0 && !self.history_ttl.is_zero()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Namespace {
    pub name: String,
    #[serde(flatten)]
    pub options: ChannelOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Channel {
    pub proxy: ChannelProxies,
    pub without_namespace: ChannelOptions,
    pub namespaces: Vec<Namespace>,
    pub max_length: usize,
    pub private_prefix: String,
    pub namespace_boundary: String,
    pub user_boundary: String,
    pub user_separator: String,
    pub history_meta_ttl: Duration,
}

impl Default for Channel {
    fn default() -> Self {
        Self {
            proxy: ChannelProxies::default(),
            without_namespace: ChannelOptions::default(),
            namespaces: Vec::new(),
            max_length: 255,
            private_prefix: "$".into(),
            namespace_boundary: ":".into(),
            user_boundary: "#".into(),
            user_separator: ",".into(),
            history_meta_ttl: Duration::from_secs(720 * 3600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RpcPing {
    pub enabled: bool,
    pub method: String,
}

impl Default for RpcPing {
    fn default() -> Self {
        Self { enabled: false, method: "ping".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Rpc {
    pub ping: RpcPing,
    /// The RPC proxy; methods go to it when their namespace has `proxy_enabled`.
    pub proxy: Proxy,
    pub without_namespace: RpcOptions,
    pub namespaces: Vec<RpcNamespace>,
    pub namespace_boundary: String,
}

impl Default for Rpc {
    fn default() -> Self {
        Self {
            ping: RpcPing::default(),
            proxy: Proxy::default(),
            without_namespace: RpcOptions::default(),
            namespaces: Vec::new(),
            namespace_boundary: ":".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RpcOptions {
    pub proxy_enabled: bool,
    /// `default` (or empty) for `rpc.proxy`, otherwise a name from `proxies`.
    pub proxy_name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RpcNamespace {
    pub name: String,
    #[serde(flatten)]
    pub options: RpcOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpApi {
    pub disabled: bool,
    pub handler_prefix: String,
    pub key: String,
    pub error_mode: ErrorMode,
    pub insecure: bool,
    pub max_request_body_size: usize,
}

/// `http_api.error_mode`: where an API error goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorMode {
    /// `""`: in the body of an HTTP 200 (`{"error":{…}}`), Centrifugo's default.
    #[serde(rename = "")]
    Body,
    /// `"transport"`: as the HTTP status, with the bare error object as the body.
    #[serde(rename = "transport")]
    Transport,
}

impl Default for HttpApi {
    fn default() -> Self {
        Self {
            disabled: false,
            handler_prefix: "/api".into(),
            key: String::new(),
            error_mode: ErrorMode::Body,
            insecure: false,
            max_request_body_size: 10 * 1024 * 1024,
        }
    }
}

/// The gRPC server API (`src/grpc/`): the HTTP API's methods over protobuf.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpcApi {
    pub enabled: bool,
    /// Host to bind (`""` = all interfaces).
    pub address: String,
    pub port: u16,
    /// Required when enabled: calls carry `authorization: apikey <key>` metadata.
    pub key: String,
    /// `""` (errors in the response's `error` field) or `"transport"` (gRPC status codes).
    pub error_mode: ErrorMode,
    pub tls: GrpcTls,
    /// Serve gRPC server reflection (for tools such as `grpcurl`).
    pub reflection: bool,
    /// Largest request message in bytes; `0` = the gRPC default of 4 MiB.
    pub max_receive_message_size: usize,
}

impl Default for GrpcApi {
    fn default() -> Self {
        Self {
            enabled: false,
            address: String::new(),
            port: 10000,
            key: String::new(),
            error_mode: ErrorMode::Body,
            tls: GrpcTls::default(),
            reflection: false,
            max_receive_message_size: 0,
        }
    }
}

/// TLS of the gRPC API: `cert_pem` / `key_pem` each a file path or PEM text.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpcTls {
    pub enabled: bool,
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebSocket {
    pub disabled: bool,
    pub handler_prefix: String,
    pub message_size_limit: usize,
    pub write_timeout: Duration,
    /// Bytes asked of the socket per read (clamped to 256–16384). Reads go through a
    /// buffer on the stack and only an incomplete frame is kept, so this costs an
    /// idle connection nothing; larger means fewer reads for large messages.
    pub read_buffer_size: usize,
}

impl Default for WebSocket {
    fn default() -> Self {
        Self {
            disabled: false,
            handler_prefix: "/connection/websocket".into(),
            message_size_limit: 65536,
            write_timeout: Duration::from_millis(1000),
            read_buffer_size: 4096,
        }
    }
}

/// `uni_http_stream` and `uni_sse`, and the emulation streams `http_stream` and `sse`
/// (same keys; an empty `handler_prefix` means Centrifugo's default path).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UniHttp {
    pub enabled: bool,
    pub handler_prefix: String,
    pub max_request_body_size: usize,
}

impl Default for UniHttp {
    fn default() -> Self {
        Self { enabled: false, handler_prefix: String::new(), max_request_body_size: 65536 }
    }
}

/// The endpoint emulated transports post their commands to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Emulation {
    pub handler_prefix: String,
    pub max_request_body_size: usize,
}

impl Default for Emulation {
    fn default() -> Self {
        Self { handler_prefix: "/emulation".into(), max_request_body_size: 65536 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UniWebSocket {
    pub enabled: bool,
    pub handler_prefix: String,
    pub message_size_limit: usize,
    pub join_push_messages: bool,
    pub disable_disconnect_push: bool,
}

impl Default for UniWebSocket {
    fn default() -> Self {
        Self {
            enabled: false,
            handler_prefix: "/connection/uni_websocket".into(),
            message_size_limit: 65536,
            join_push_messages: false,
            disable_disconnect_push: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    pub enabled: bool,
    pub handler_prefix: String,
}

impl Default for Health {
    fn default() -> Self {
        Self { enabled: true, handler_prefix: "/health".into() }
    }
}

/// `prometheus`: the `/metrics` endpoint (metric list in docs/observability.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Prometheus {
    pub enabled: bool,
    pub handler_prefix: String,
}

impl Default for Prometheus {
    fn default() -> Self {
        Self { enabled: false, handler_prefix: "/metrics".into() }
    }
}

/// The admin web UI and its endpoints (`admin/`), Centrifugo v6 keys plus Rotor's
/// token lifetime and login throttle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Admin {
    pub enabled: bool,
    /// Path under which the UI and `/admin/*` are served (`""` = the server's root).
    pub handler_prefix: String,
    pub password: String,
    /// HMAC key of admin tokens.
    pub secret: String,
    /// No login at all: every request is an admin. Only when set explicitly; logged.
    pub insecure: bool,
    /// Lifetime of an admin token (Rotor extension; Centrifugo's is 30 days).
    pub token_ttl: Duration,
    /// Failed logins one client address may make per `login_window` before `/admin/auth`
    /// answers 429 (Rotor extension).
    pub max_failed_logins: u32,
    pub login_window: Duration,
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            enabled: false,
            handler_prefix: String::new(),
            password: String::new(),
            secret: String::new(),
            insecure: false,
            token_ttl: Duration::from_secs(12 * 3600),
            max_failed_logins: 5,
            login_window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Node {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Shutdown {
    pub timeout: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(30) }
    }
}

/// Limits of the connections API's filter language (Rotor extension).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Connections {
    pub filter_max_depth: usize,
    pub filter_max_nodes: usize,
    pub filter_max_values: usize,
    /// Highest estimated per-connection cost of a CEL expression (nodes, `in`-list
    /// lengths, macro bodies times their ranges); dearer expressions are refused (107).
    pub cel_max_cost: u64,
    /// Time one request may spend evaluating interpreted CEL; past it the request
    /// stops with 106 (0 = no budget).
    pub cel_time_budget: Duration,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            filter_max_depth: 32,
            filter_max_nodes: 1024,
            filter_max_values: 1024,
            cel_max_cost: 20_000,
            cel_time_budget: Duration::from_secs(5),
        }
    }
}

/// User status (`update_user_status` / `get_user_status`, as in Centrifugo PRO).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UserStatus {
    /// How long a user's status is kept after its last update (`active`, `online`).
    pub expire_interval: Duration,
    /// How often a node records `online` = now for every user connected to it.
    pub online_interval: Duration,
}

impl Default for UserStatus {
    fn default() -> Self {
        Self { expire_interval: Duration::from_secs(30 * 24 * 3600), online_interval: Duration::from_secs(10) }
    }
}

impl Config {
    /// Path prefix of a unidirectional transport, falling back to Centrifugo's default.
    pub fn uni_http_stream_prefix(&self) -> &str {
        prefix_or(&self.uni_http_stream.handler_prefix, "/connection/uni_http_stream")
    }

    pub fn uni_sse_prefix(&self) -> &str {
        prefix_or(&self.uni_sse.handler_prefix, "/connection/uni_sse")
    }

    pub fn http_stream_prefix(&self) -> &str {
        prefix_or(&self.http_stream.handler_prefix, "/connection/http_stream")
    }

    pub fn sse_prefix(&self) -> &str {
        prefix_or(&self.sse.handler_prefix, "/connection/sse")
    }

    /// Whether `/emulation` is served (either emulated transport is on).
    pub fn emulation_enabled(&self) -> bool {
        self.http_stream.enabled || self.sse.enabled
    }
}

fn prefix_or<'a>(configured: &'a str, default: &'a str) -> &'a str {
    if configured.is_empty() { default } else { configured }
}
