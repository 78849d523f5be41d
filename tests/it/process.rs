//! The blocking side of the harness, for tests that drive external tools
//! (schemathesis, the SDKs, the Python and JavaScript API clients, `rotor bench`)
//! against the real `rotor` binary: start it with [`harness::base_config`]'s shape
//! and wait for `GET /health` without a runtime, run a command with a hard deadline,
//! and clean up. Ports, temporary directories, keys and the config come from
//! [`harness`] — one harness, a blocking and an async face.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::harness::{API_KEY, SECRET, base_config, free_port, temp_dir};

/// Numbers the output files of commands run in one scratch directory.
static OUTPUTS: AtomicU32 = AtomicU32::new(0);

pub struct Rotor {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Rotor {
    /// Starts `rotor -c <dir>/config.json` with `config` and waits until `/health` answers.
    pub fn start(config: &Value) -> Rotor {
        let dir = temp_dir("server");
        let port = config["http_server"]["port"].as_u64().expect("config has http_server.port") as u16;
        std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
        let log = std::fs::File::create(dir.join("rotor.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_rotor"))
            .arg("-c")
            .arg(dir.join("config.json"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the rotor binary");
        let mut server = Rotor { child, port, dir };
        server.wait_healthy();
        server
    }

    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rotor.log")).unwrap_or_default()
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rotor exited during startup ({status}); log:\n{}", self.log());
            }
            if health_ok(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("rotor did not answer GET /health on port {} within 20s; log:\n{}", self.port, self.log());
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Rotor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET /health` over a raw socket answers 200.
fn health_ok(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200")
}

/// What a command did: its exit status (None when it was killed at the deadline) and
/// everything it printed (stdout and stderr interleaved as written to one file).
pub struct Outcome {
    pub status: Option<ExitStatus>,
    pub output: String,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `cmd` with a hard deadline; its output goes to a file so a chatty tool cannot
/// block on a full pipe.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration, scratch: &Path) -> Outcome {
    let out_path = scratch.join(format!("output-{}.txt", OUTPUTS.fetch_add(1, Ordering::SeqCst)));
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let end = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Outcome { status, output: std::fs::read_to_string(&out_path).unwrap_or_default() }
}

/// Runs a client script (`program script`) from its own directory against `server`,
/// with ROTOR_HTTP, ROTOR_WS, ROTOR_API_KEY and ROTOR_SECRET set plus `env`; panics with
/// the script's output and the server's log when the script fails or the server died.
/// The scripts stop themselves well before the 150 s backstop.
pub fn run_script(program: impl AsRef<std::ffi::OsStr>, script: &Path, server: &mut Rotor, env: &[(&str, &str)]) {
    let mut cmd = Command::new(program);
    cmd.arg(script)
        .current_dir(script.parent().unwrap())
        .env("ROTOR_HTTP", server.http())
        .env("ROTOR_WS", format!("ws://127.0.0.1:{}/connection/websocket", server.port))
        .env("ROTOR_API_KEY", API_KEY)
        .env("ROTOR_SECRET", SECRET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let outcome = run_with_deadline(cmd, Duration::from_secs(150), &server.dir);
    let alive = server.alive();
    if !outcome.success() || !alive {
        panic!(
            "{} failed (exit {:?}, server {}).\n--- output ---\n{}\n--- rotor log ---\n{}",
            script.display(),
            outcome.status,
            if alive { "still running" } else { "DIED" },
            outcome.output,
            server.log()
        );
    }
    println!("{}", outcome.output);
}
