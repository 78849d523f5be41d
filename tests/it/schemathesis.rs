//! schemathesis against the live server: `tests/schemathesis/run.sh` generates requests
//! for every operation of `docs/openapi.yaml` and checks that no response is a 5xx and
//! every response matches the documented status, content type and schema. schemathesis
//! is installed by the test itself into the compatibility tests' virtual environment
//! (see `compat_env.rs`); a missing python3 fails the test, it is never skipped.

use std::process::Command;
use std::time::Duration;

use crate::process::*;

#[test]
fn live_server_conforms_to_openapi_document() {
    let bin = crate::compat_env::python_bin();
    let mut server = Rotor::start(&base_config(free_port()));
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = Command::new("bash");
    cmd.arg(format!("{root}/tests/schemathesis/run.sh")).arg(server.http()).arg(API_KEY).current_dir(root);
    cmd.env("PATH", crate::compat_env::path_with(&bin));
    // run.sh has its own hard timeout (SCHEMATHESIS_TIMEOUT, 300 s); this one is the backstop.
    let outcome = run_with_deadline(cmd, Duration::from_secs(420), &server.dir);
    let alive = server.alive();
    if !outcome.success() || !alive {
        panic!(
            "schemathesis run failed (exit {:?}, server {}).\n--- run.sh output ---\n{}\n--- rotor log ---\n{}",
            outcome.status,
            if alive { "still running" } else { "DIED" },
            outcome.output,
            server.log()
        );
    }
    println!("{}", outcome.output);
}
