//! Generates the gRPC server API's Rust code from `proto/rotor_api.proto` and the
//! protobuf client protocol's messages from `proto/rotor_client.proto` at build time
//! with `protox`, a protobuf compiler written in Rust (no `protoc` needed), and writes
//! the encoded descriptor set that gRPC reflection serves.
//!
//! The generated messages carry serde derives so that `src/grpc/` can hand a request
//! to the HTTP API's own dispatcher as the JSON body it expects and read the JSON
//! result back: requests serialize, results deserialize. Binary fields that carry JSON
//! documents go through `src/grpc/json.rs`.

use std::path::PathBuf;

use prost::Message;

const PKG: &str = ".centrifugal.centrifugo.api";

/// Requests handed to the HTTP API's dispatcher (FilterNode and Command have their own
/// `Serialize` in `src/grpc/json.rs`).
const REQUESTS: &[&str] = &[
    "BatchRequest",
    "PublishRequest",
    "BroadcastRequest",
    "SubscribeRequest",
    "SubscribeOptionOverride",
    "BoolValue",
    "StreamPosition",
    "UnsubscribeRequest",
    "Disconnect",
    "DisconnectRequest",
    "RefreshRequest",
    "PresenceRequest",
    "PresenceStatsRequest",
    "HistoryRequest",
    "HistoryRemoveRequest",
    "ChannelsRequest",
    "InfoRequest",
    "RPCRequest",
    "ConnectionsRequest",
    "UpdateUserStatusRequest",
    "GetUserStatusRequest",
    "DeleteUserStatusRequest",
    "BlockUserRequest",
    "UnblockUserRequest",
    "RevokeTokenRequest",
    "InvalidateUserTokensRequest",
];

/// Binary request fields sent on as the JSON document they hold.
const JSON_IN: &[&str] = &[
    "PublishRequest.data",
    "BroadcastRequest.data",
    "SubscribeRequest.info",
    "SubscribeRequest.data",
    "RefreshRequest.info",
    "RPCRequest.params",
];

/// Binary result fields filled with the JSON document the HTTP API answers.
const JSON_OUT: &[&str] =
    &["Publication.data", "ClientInfo.conn_info", "ClientInfo.chan_info", "RPCResult.data", "ConnectionState.meta"];

/// Left out of the body when unset: the HTTP API routes a body that mentions
/// `label_filter` or `expression` through its survey pool, so only real ones may.
const SKIP_UNSET: &[(&str, &str)] = &[
    ("SubscribeRequest.label_filter", "Option::is_none"),
    ("UnsubscribeRequest.label_filter", "Option::is_none"),
    ("DisconnectRequest.label_filter", "Option::is_none"),
    ("RefreshRequest.label_filter", "Option::is_none"),
    ("ConnectionsRequest.label_filter", "Option::is_none"),
    ("ConnectionsRequest.expression", "String::is_empty"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/rotor_api.proto");
    println!("cargo:rerun-if-changed=proto/rotor_client.proto");
    println!("cargo:rerun-if-changed=build.rs");
    client_protocol()?;
    let fds = protox::compile(["rotor_api.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("rotor_api_descriptor.bin"), fds.encode_to_vec())?;
    let mut b = tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .type_attribute(PKG, "#[derive(serde::Deserialize)] #[serde(default)]");
    for t in REQUESTS {
        b = b.type_attribute(format!("{PKG}.{t}"), "#[derive(serde::Serialize)]");
    }
    for f in JSON_IN {
        b = b.field_attribute(
            format!("{PKG}.{f}"),
            "#[serde(serialize_with = \"crate::grpc::json::ser_json_bytes\", skip_serializing_if = \"Vec::is_empty\")]",
        );
    }
    for f in JSON_OUT {
        b = b
            .field_attribute(format!("{PKG}.{f}"), "#[serde(deserialize_with = \"crate::grpc::json::de_json_bytes\")]");
    }
    for (f, test) in SKIP_UNSET {
        b = b.field_attribute(format!("{PKG}.{f}"), format!("#[serde(skip_serializing_if = \"{test}\")]"));
    }
    b.compile_fds(fds)?;
    Ok(())
}

/// The client protocol: plain messages (no service); `FilterNode` serializes to the
/// JSON tree the node's tags filter compiler reads.
fn client_protocol() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["rotor_client.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .type_attribute(".centrifugal.centrifuge.protocol.FilterNode", "#[derive(serde::Serialize)]")
        .compile_fds(fds)?;
    Ok(())
}
