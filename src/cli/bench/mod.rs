//! `rotor bench`: a load generator against a running Rotor server.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("rotor bench is being built")
}
