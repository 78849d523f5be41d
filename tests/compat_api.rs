//! The official server API clients against the live server: PyPI `cent` 5.x
//! (`tests/compat/py/cent_client.py`) and npm `cent.js` 6.x
//! (`tests/compat/js/cent_client.mjs`). Each script drives every method its client has
//! and checks the effect on a live uni_http_stream connection of user 42. A missing
//! interpreter or package fails the test with the install command; it is never skipped.

#[path = "support/rotor_process.rs"]
mod support;

use std::path::Path;

use serde_json::json;
use support::*;

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
    let install = "pip install -r tests/compat/py/requirements.txt";
    assert!(tool_works("python3", &["--version"]), "python3 is not installed; then run: {install}");
    assert!(
        tool_works("python3", &["-c", "import cent, cent.dto; cent.dto.ConnectionsRequest"]),
        "the PyPI package `cent` (5.x) is not importable by python3; install it with: {install}"
    );
    let mut server = start();
    run_script("python3", &root.join("tests/compat/py/cent_client.py"), &mut server, &[]);
}

#[test]
fn javascript_cent_js_client() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let install = "npm install --prefix tests/compat/js";
    assert!(tool_works("node", &["--version"]), "node (20+) is not installed; then run: {install}");
    assert!(
        root.join("tests/compat/js/node_modules/cent.js/package.json").exists(),
        "the npm package `cent.js` (6.x) is not installed in tests/compat/js; install it with: {install}"
    );
    let mut server = start();
    run_script("node", &root.join("tests/compat/js/cent_client.mjs"), &mut server, &[]);
}
