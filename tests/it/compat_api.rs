//! The official server API clients against the live server: PyPI `cent` 5.x
//! (`tests/compat/py/cent_client.py`) and npm `cent.js` 6.x
//! (`tests/compat/js/cent_client.mjs`). Each script drives every method its client has
//! and checks the effect on a live uni_http_stream connection of user 42. The packages
//! are installed by the test itself (see `compat_env.rs`); a missing toolchain
//! fails the test, it is never skipped.

use std::path::Path;

use crate::process::*;
use serde_json::json;

/// The server every script runs against: the shared base config (uni_http_stream on;
/// channels without a namespace permissive, with presence, join/leave and history).
fn start() -> Rotor {
    let mut config = base_config(free_port());
    config["uni_http_stream"] = json!({"enabled": true});
    config["channel"]["without_namespace"]["presence"] = json!(true);
    config["channel"]["without_namespace"]["history_size"] = json!(100);
    config["channel"]["without_namespace"]["history_ttl"] = json!("300s");
    Rotor::start(&config)
}

#[test]
fn python_cent_client() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = crate::compat_env::python_bin().join("python");
    let mut server = start();
    run_script(python, &root.join("tests/compat/py/cent_client.py"), &mut server, &[]);
}

#[test]
fn javascript_cent_js_client() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node_modules = crate::compat_env::node_modules();
    let mut server = start();
    run_script(
        "node",
        &root.join("tests/compat/js/cent_client.mjs"),
        &mut server,
        &[("NODE_PATH", &node_modules.to_string_lossy())],
    );
}

/// A Python gRPC client generated from `proto/rotor_api.proto` with `grpcio-tools`
/// (`tests/compat/py/grpc_client.py`): every CentrifugoApi method, Connections and
/// Disconnect by label filter over live WebSocket clients, auth failures, an
/// oversized message.
#[test]
fn python_grpc_client() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = crate::compat_env::python_bin().join("python");
    let grpc_port = free_port();
    let mut config = base_config(free_port());
    config["grpc_api"] = json!({"enabled": true, "address": "127.0.0.1", "port": grpc_port, "key": "py-grpc-key"});
    let mut server = Rotor::start(&config);
    let target = format!("127.0.0.1:{grpc_port}");
    let proto = root.join("proto");
    run_script(
        python,
        &root.join("tests/compat/py/grpc_client.py"),
        &mut server,
        &[("ROTOR_GRPC", &target), ("ROTOR_GRPC_KEY", "py-grpc-key"), ("ROTOR_PROTO_DIR", &proto.to_string_lossy())],
    );
}
