//! `--baseline`: a trivial axum handler (`POST /` → `{}`) in a child process of the
//! current executable, driven with the same load as the server so the API's
//! throughput can be read as a share of what axum and this client manage on the same
//! machine in the same run. The child serves on 127.0.0.1:0, prints its port on
//! stdout, and exits when its stdin closes; the bench kills it when done.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The hidden flag of `rotor bench` that runs the baseline server instead.
pub(super) const SERVE_FLAG: &str = "--serve-baseline";
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// The child side: serve until stdin closes.
pub(super) fn serve() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let mut out = std::io::stdout();
        writeln!(out, "{port}")?;
        out.flush()?;
        let app =
            Router::new().route("/", post(|_body: Bytes| async { ([("content-type", "application/json")], "{}") }));
        tokio::select! {
            served = axum::serve(listener, app) => served?,
            () = stdin_closed() => {}
        }
        Ok(())
    })
}

async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// The running baseline child.
pub(super) struct Baseline {
    child: tokio::process::Child,
    pub url: String,
}

impl Baseline {
    /// Starts `<current exe> bench --serve-baseline` and waits for its port.
    pub(super) async fn spawn() -> anyhow::Result<Baseline> {
        let exe = std::env::current_exe().context("locating the rotor executable")?;
        let mut child = tokio::process::Command::new(exe)
            .args(["bench", SERVE_FLAG])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the baseline server")?;
        let stdout = child.stdout.take().context("the baseline server's stdout")?;
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        match tokio::time::timeout(STARTUP_LIMIT, reader.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => bail!("the baseline server did not report its port within {STARTUP_LIMIT:?}"),
        }
        let port: u16 = line.trim().parse().with_context(|| format!("baseline server printed {line:?}"))?;
        Ok(Baseline { child, url: format!("http://127.0.0.1:{port}/") })
    }

    /// Kills the child and reaps it.
    pub(super) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
