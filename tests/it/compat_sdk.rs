//! The official client SDKs against the live server: npm `centrifuge` 5.x over `ws`
//! (`tests/compat/js/sdk_client.mjs`) and PyPI `centrifuge-python` 0.7
//! (`tests/compat/py/sdk_client.py`). The server pings every second so the
//! "stay connected across several ping intervals while publications flow" scenario
//! takes seconds, not minutes. The packages are installed by the test itself (see
//! `compat_env.rs`); a missing toolchain fails the test, it is never skipped.

use std::path::Path;

use crate::process::*;
use serde_json::json;

const PING_SECONDS: &str = "1";

fn start() -> Rotor {
    let mut config = base_config(free_port());
    config["client"]["ping_interval"] = json!(format!("{PING_SECONDS}s"));
    config["client"]["pong_timeout"] = json!("500ms");
    Rotor::start(&config)
}

#[test]
fn javascript_centrifuge_sdk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node_modules = crate::compat_env::node_modules();
    let mut server = start();
    run_script(
        "node",
        &root.join("tests/compat/js/sdk_client.mjs"),
        &mut server,
        &[("ROTOR_PING_SECONDS", PING_SECONDS), ("NODE_PATH", &node_modules.to_string_lossy())],
    );
}

#[test]
fn python_centrifuge_sdk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = crate::compat_env::python_bin().join("python");
    let mut server = start();
    run_script(
        python,
        &root.join("tests/compat/py/sdk_client.py"),
        &mut server,
        &[("ROTOR_PING_SECONDS", PING_SECONDS)],
    );
}

/// centrifuge-js over `http_stream` and `sse` (commands through `/emulation`), and
/// its fallback from WebSocket (disabled here) to `http_stream`.
#[test]
fn javascript_centrifuge_sdk_emulation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node_modules = crate::compat_env::node_modules();
    let mut config = base_config(free_port());
    config["http_stream"] = json!({"enabled": true});
    config["sse"] = json!({"enabled": true});
    config["websocket"] = json!({"disabled": true});
    let mut server = Rotor::start(&config);
    run_script(
        "node",
        &root.join("tests/compat/js/emulation_client.mjs"),
        &mut server,
        &[("NODE_PATH", &node_modules.to_string_lossy())],
    );
}
