//! Fuzzing regressions: every seed in `fuzz/seeds/<target>/` (which also holds each
//! input a fuzzer ever crashed on) replayed through the very property function the
//! cargo-fuzz target runs, so `cargo test` keeps them all passing without cargo-fuzz
//! or a nightly toolchain. The properties live in `fuzz/src/lib.rs`, included here as
//! a module; see that file and `fuzz/fuzz_targets/` for what each one checks.

use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod props;

/// The seed files of one target, sorted; a target without seeds is a mistake.
fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("seed entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

/// Runs `property` on every seed of `target`, naming the seed that fails.
fn replay(target: &str, property: fn(&[u8])) {
    for path in seeds(target) {
        let data = std::fs::read(&path).expect("seed readable");
        if let Err(panic) = std::panic::catch_unwind(|| property(&data)) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("non-string panic");
            panic!("{target} seed {} failed: {why}", path.display());
        }
    }
}

#[test]
fn filter_compile_seeds() {
    replay("filter_compile", props::filter_compile);
}

#[test]
fn filter_vm_vs_reference_seeds() {
    replay("filter_vm_vs_reference", props::filter_vm_vs_reference);
}

#[test]
fn cel_translate_vs_interp_seeds() {
    replay("cel_translate_vs_interp", props::cel_translate_vs_interp);
}

#[test]
fn client_command_seeds() {
    replay("client_command", props::client_command);
}

#[test]
fn api_request_seeds() {
    replay("api_request", props::api_request);
}

#[test]
fn jwt_parse_seeds() {
    replay("jwt_parse", props::jwt_parse);
}
