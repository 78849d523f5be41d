//! `rotor checkconfig [--strict]`: validates; `--strict` also fails on unknown keys.

use std::path::PathBuf;

use anyhow::bail;

use crate::config::Overrides;

#[derive(clap::Args)]
pub(super) struct Args {
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Fail on unknown keys (in the file or among ROTOR_ variables).
    #[arg(long)]
    strict: bool,
}

pub(super) fn run(a: Args) -> anyhow::Result<()> {
    let path = a.config.unwrap_or_else(|| PathBuf::from(super::DEFAULT_CONFIG));
    if !path.exists() {
        bail!("config file not found: {}", path.display());
    }
    let loaded = super::load_config(Some(&path), &Overrides::default())?;
    if a.strict && !loaded.unknown_keys.is_empty() {
        bail!("unknown keys in config: {}", loaded.unknown_keys.join(", "));
    }
    for k in &loaded.unknown_keys {
        eprintln!("warning: unknown key {k}");
    }
    Ok(())
}
