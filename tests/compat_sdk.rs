//! The official client SDKs against the live server: npm `centrifuge` 5.x over `ws`
//! (`tests/compat/js/sdk_client.mjs`) and PyPI `centrifuge-python` 0.7
//! (`tests/compat/py/sdk_client.py`). The server pings every second so the
//! "stay connected across several ping intervals while publications flow" scenario
//! takes seconds, not minutes. A missing interpreter or package fails the test with
//! the install command; it is never skipped.

#[path = "support/rotor_process.rs"]
mod support;

use std::path::Path;

use serde_json::json;
use support::*;

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
    let install = "npm ci --prefix tests/compat/js";
    assert!(tool_works("node", &["--version"]), "node (20+) is not installed; then run: {install}");
    for package in ["centrifuge", "ws"] {
        assert!(
            root.join(format!("tests/compat/js/node_modules/{package}/package.json")).exists(),
            "the npm package `{package}` is not installed in tests/compat/js; install it with: {install}"
        );
    }
    let mut server = start();
    run_script(
        "node",
        &root.join("tests/compat/js/sdk_client.mjs"),
        &mut server,
        &[("ROTOR_PING_SECONDS", PING_SECONDS)],
    );
}

#[test]
fn python_centrifuge_sdk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let install = "pip install -r tests/compat/py/requirements.txt";
    assert!(tool_works("python3", &["--version"]), "python3 is not installed; then run: {install}");
    assert!(
        tool_works("python3", &["-c", "import centrifuge; centrifuge.Client"]),
        "the PyPI package `centrifuge-python` is not importable by python3; install it with: {install}"
    );
    let mut server = start();
    run_script(
        "python3",
        &root.join("tests/compat/py/sdk_client.py"),
        &mut server,
        &[("ROTOR_PING_SECONDS", PING_SECONDS)],
    );
}
