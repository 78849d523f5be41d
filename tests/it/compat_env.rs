//! The compatibility tests' own environments, so `cargo test` needs nothing installed
//! by hand beyond the toolchains (node/npm, python3 with `venv`): the npm packages of
//! `tests/compat/js/package-lock.json` (`npm ci`) and a Python virtual environment with
//! `tests/compat/py/requirements.txt` and `tests/schemathesis/requirements.txt`.
//!
//! Each environment is built once per target directory, under
//! `CARGO_TARGET_TMPDIR/compat-env/<kind>-<hash of its inputs>`: editing a lockfile or a
//! requirements file gives a new directory, an unchanged one is reused. Test binaries
//! run in parallel, so the build happens under an exclusive `File::lock` on a sibling
//! `.lock` file and is marked done by a `.complete` file written last; a build that
//! died half-way (no marker) is removed and redone by the next test. A missing
//! toolchain or a failed install panics with what to install; nothing is skipped.

#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root (where `tests/` lives).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Files (relative to the root) whose content decides each environment.
const NPM_INPUTS: &[&str] = &["tests/compat/js/package.json", "tests/compat/js/package-lock.json"];
const PYTHON_INPUTS: &[&str] = &["tests/compat/py/requirements.txt", "tests/schemathesis/requirements.txt"];

/// The `node_modules` directory holding `centrifuge`, `ws` and `cent.js` exactly as
/// locked; run node with `NODE_PATH` set to it (the scripts load packages with
/// `createRequire`, which honours `NODE_PATH`).
pub fn node_modules() -> PathBuf {
    require_tool("node", &["--version"], "node (20 or newer)");
    require_tool("npm", &["--version"], "npm (it comes with node)");
    let dir = prepared("npm", NPM_INPUTS, |dir| {
        for input in NPM_INPUTS {
            let name = Path::new(input).file_name().unwrap();
            fs::copy(root().join(input), dir.join(name)).unwrap_or_else(|e| panic!("copy {input}: {e}"));
        }
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(dir);
        run_setup(npm, "npm ci (tests/compat/js/package-lock.json)");
    });
    dir.join("node_modules")
}

/// The virtual environment's `bin` directory: its `python` imports `cent` and
/// `centrifuge`, and it holds the `schemathesis` command.
pub fn python_bin() -> PathBuf {
    require_tool("python3", &["--version"], "python3");
    require_tool("python3", &["-c", "import venv, ensurepip"], "the python3 venv module (Debian: python3-venv)");
    let dir = prepared("python", PYTHON_INPUTS, |dir| {
        let mut venv = Command::new("python3");
        venv.args(["-m", "venv"]).arg(dir.join("venv"));
        run_setup(venv, "python3 -m venv");
        let mut pip = Command::new(dir.join("venv/bin/python"));
        pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
        for input in PYTHON_INPUTS {
            pip.arg("-r").arg(root().join(input));
        }
        run_setup(pip, "pip install -r tests/compat/py/requirements.txt -r tests/schemathesis/requirements.txt");
    });
    dir.join("venv/bin")
}

/// `PATH` with `bin` in front, for commands that look tools up by name.
pub fn path_with(bin: &Path) -> std::ffi::OsString {
    let mut paths = vec![bin.to_path_buf()];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).expect("PATH entries join")
}

/// The directory for `kind` built from `inputs` by `build`, building it first unless a
/// complete one exists. Safe across processes: the check and the build happen under an
/// exclusive lock, and only a finished build carries the `.complete` marker.
fn prepared(kind: &str, inputs: &[&str], build: impl FnOnce(&Path)) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compat-env");
    fs::create_dir_all(&base).unwrap_or_else(|e| panic!("create {}: {e}", base.display()));
    let dir = base.join(format!("{kind}-{:016x}", inputs_hash(inputs)));
    let marker = dir.join(".complete");
    if marker.exists() {
        return dir;
    }
    let lock_path = base.join(format!("{kind}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    lock.lock().unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if !marker.exists() {
        // Another process may have died half-way: start from nothing.
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        eprintln!("setting up the {kind} environment for the compatibility tests in {}", dir.display());
        build(&dir);
        File::create(&marker).unwrap_or_else(|e| panic!("create {}: {e}", marker.display()));
    }
    drop(lock); // closing the file releases the lock
    dir
}

/// FNV-1a over the inputs' names and contents: stable across Rust versions, so an
/// unchanged lockfile keeps its directory.
fn inputs_hash(inputs: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for input in inputs {
        let content = fs::read(root().join(input)).unwrap_or_else(|e| panic!("read {input}: {e}"));
        for byte in input.bytes().chain([0]).chain(content).chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Panics with what to install when `program args…` cannot run successfully.
fn require_tool(program: &str, args: &[&str], what: &str) {
    let works = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        works,
        "the compatibility tests need {what}, which is missing (`{program} {}` failed); \
         install it and run `cargo test` again — the tests install their own packages",
        args.join(" ")
    );
}

/// Runs one setup step, panicking with its output when it fails.
fn run_setup(mut cmd: Command, what: &str) {
    let output = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
