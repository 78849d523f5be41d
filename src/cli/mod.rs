//! The `rotor` command line: with no subcommand it runs the server; subcommands
//! generate configs and tokens, check them, and print the version. Errors print one
//! line `error: …` and exit 1. This is the only module that uses `anyhow`.

mod bench;
mod capacity;
mod checkconfig;
mod checktoken;
mod genconfig;
mod gentoken;
pub mod population;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{Loaded, Overrides};

#[derive(Parser)]
#[command(
    name = "rotor",
    about = "Real-time messaging server speaking Centrifugo's protocols",
    disable_version_flag = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Args)]
struct ServeArgs {
    /// Configuration file (JSON, YAML or TOML).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// HTTP port (http_server.port).
    #[arg(short = 'p', long = "port")]
    port: Option<u16>,
    /// Address to listen on (http_server.address).
    #[arg(short = 'a', long = "address")]
    address: Option<String>,
    #[arg(long = "log.level")]
    log_level: Option<String>,
    #[arg(long = "engine.type")]
    engine_type: Option<String>,
    #[arg(long = "uni_http_stream.enabled", num_args = 0..=1, default_missing_value = "true")]
    uni_http_stream: Option<bool>,
    #[arg(long = "uni_sse.enabled", num_args = 0..=1, default_missing_value = "true")]
    uni_sse: Option<bool>,
    #[arg(long = "uni_websocket.enabled", num_args = 0..=1, default_missing_value = "true")]
    uni_websocket: Option<bool>,
    #[arg(long = "http_stream.enabled", num_args = 0..=1, default_missing_value = "true")]
    http_stream: Option<bool>,
    #[arg(long = "sse.enabled", num_args = 0..=1, default_missing_value = "true")]
    sse: Option<bool>,
    #[arg(long = "client.insecure", num_args = 0..=1, default_missing_value = "true")]
    client_insecure: Option<bool>,
    #[arg(long = "http_api.insecure", num_args = 0..=1, default_missing_value = "true")]
    http_api_insecure: Option<bool>,
    #[arg(long = "health.enabled", num_args = 0..=1, default_missing_value = "true")]
    health: Option<bool>,
}

#[derive(Subcommand)]
enum Command {
    /// Write a configuration file with fresh random secrets.
    Genconfig(genconfig::Args),
    /// Generate a connection token (HS256).
    Gentoken(gentoken::TokenArgs),
    /// Generate a subscription token (HS256).
    Gensubtoken(gentoken::SubTokenArgs),
    /// Verify a connection token with the configuration.
    Checktoken(checktoken::Args),
    /// Validate the configuration.
    Checkconfig(checkconfig::Args),
    /// Print the version.
    Version,
    /// Size a node: memory per connection and survey latency of an in-process hub.
    Capacity(capacity::Args),
    /// Load-generate against a running server: connections, API throughput, latency.
    Bench(bench::Args),
}

pub fn main() -> ExitCode {
    install_crypto_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        None => run_server(cli.serve),
        Some(Command::Genconfig(a)) => genconfig::run(a),
        Some(Command::Gentoken(a)) => gentoken::run_token(a),
        Some(Command::Gensubtoken(a)) => gentoken::run_subtoken(a),
        Some(Command::Checktoken(a)) => checktoken::run(a),
        Some(Command::Checkconfig(a)) => checkconfig::run(a),
        Some(Command::Capacity(a)) => capacity::run(a),
        Some(Command::Bench(a)) => bench::run(a),
        Some(Command::Version) => {
            println!("Rotor v{} (Rust)", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Makes ring the process's rustls crypto provider. The dependency tree enables both
/// of rustls's providers (reqwest brings aws-lc-rs, tonic's `tls-ring` ring), and with
/// two compiled in rustls has no default, so the first TLS config built without an
/// explicit provider — the gRPC API's server config — would panic. Installing fails
/// only when a provider is already installed, which is as good.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl ServeArgs {
    fn overrides(&self) -> Overrides {
        let mut v = Vec::new();
        let mut put = |k: &str, val: Option<String>| {
            if let Some(val) = val {
                v.push((k.to_string(), val));
            }
        };
        put("http_server.port", self.port.map(|p| p.to_string()));
        put("http_server.address", self.address.clone());
        put("log.level", self.log_level.clone());
        put("engine.type", self.engine_type.clone());
        put("uni_http_stream.enabled", self.uni_http_stream.map(|b| b.to_string()));
        put("uni_sse.enabled", self.uni_sse.map(|b| b.to_string()));
        put("uni_websocket.enabled", self.uni_websocket.map(|b| b.to_string()));
        put("http_stream.enabled", self.http_stream.map(|b| b.to_string()));
        put("sse.enabled", self.sse.map(|b| b.to_string()));
        put("client.insecure", self.client_insecure.map(|b| b.to_string()));
        put("http_api.insecure", self.http_api_insecure.map(|b| b.to_string()));
        put("health.enabled", self.health.map(|b| b.to_string()));
        Overrides { values: v }
    }
}

const DEFAULT_CONFIG: &str = "config.json";

/// Loads and validates `path` (or `config.json` when it exists).
pub(crate) fn load_config(path: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Loaded> {
    let default = Path::new(DEFAULT_CONFIG);
    let path = path.or_else(|| default.exists().then_some(default));
    let loaded = crate::config::load(path, overrides)?;
    crate::config::validate(&loaded.config)?;
    // Token keys are the auth module's to judge (config does not depend on auth).
    crate::auth::Verifier::new(&loaded.config.client).context("client.token")?;
    Ok(loaded)
}

fn run_server(args: ServeArgs) -> anyhow::Result<()> {
    if args.config.is_none() && !Path::new(DEFAULT_CONFIG).exists() {
        let secrets = genconfig::write(Path::new(DEFAULT_CONFIG))?;
        eprintln!(
            "No config file given and no {DEFAULT_CONFIG} here: wrote a new one with fresh secrets to ./{DEFAULT_CONFIG} (mode 0600)."
        );
        eprintln!("  get a connection token:  rotor gentoken -u 42");
        eprintln!("  server API key:          {}", secrets.api_key);
        eprintln!(
            "  e.g. curl -H 'X-API-Key: {}' -d '{{\"channel\":\"news\",\"data\":{{}}}}' http://localhost:8000/api/publish",
            secrets.api_key
        );
    }
    let loaded = load_config(args.config.as_deref(), &args.overrides())?;
    serve::run(loaded)
}
