//! `rotor checktoken TOKEN`: verifies a connection token with the configuration.

use std::path::PathBuf;

use anyhow::bail;

use crate::config::Overrides;

#[derive(clap::Args)]
pub(super) struct Args {
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    token: Option<String>,
}

pub(super) fn run(a: Args) -> anyhow::Result<()> {
    let Some(token) = a.token else { bail!("provide token to check [rotor checktoken <TOKEN>]") };
    let cfg = super::load_config(a.config.as_deref(), &Overrides::default())?.config;
    let verifier = crate::auth::Verifier::new(&cfg.client)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match rt.block_on(verifier.verify_connect(&token)) {
        Ok(t) => {
            let who = if t.user.is_empty() { "anonymous user".to_string() } else { format!("user {}", t.user) };
            println!("valid token for {who}\npayload: {}", t.claims);
            Ok(())
        }
        Err(e) => bail!("{e}"),
    }
}
