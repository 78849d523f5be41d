//! `rotor genconfig [-c file]`: a minimal configuration with fresh random secrets,
//! format by extension, file mode 0600, never overwriting an existing file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use rand::RngCore;
use serde_json::json;

#[derive(clap::Args)]
pub(super) struct Args {
    /// Output file (json, yaml, yml or toml).
    #[arg(short = 'c', long = "config", default_value = "config.json")]
    config: PathBuf,
}

pub(super) struct Secrets {
    pub api_key: String,
}

fn secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub(super) fn run(args: Args) -> anyhow::Result<()> {
    write(&args.config).map(|_| ())
}

/// Writes a new config; returns its secrets.
pub(super) fn write(path: &Path) -> anyhow::Result<Secrets> {
    let api_key = secret(64);
    let config = json!({
        "client": {"token": {"hmac_secret_key": secret(64)}, "allowed_origins": []},
        "admin": {"enabled": false, "password": secret(16), "secret": secret(64)},
        "http_api": {"key": api_key},
    });
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let text = match ext {
        "json" => serde_json::to_string_pretty(&config)? + "\n",
        "yaml" | "yml" => serde_yaml::to_string(&config)?,
        "toml" => toml::to_string(&config)?,
        other => bail!("unsupported config format {other:?} (use .json, .yaml, .yml or .toml)"),
    };
    let mut file = create_private(path)?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(Secrets { api_key })
}

fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow::anyhow!("output config file already exists: {}", path.display()),
        _ => anyhow::anyhow!("creating {}: {e}", path.display()),
    })
}
