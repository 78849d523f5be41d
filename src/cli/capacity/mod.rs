//! `rotor capacity`: sizes a node from an in-process hub of synthetic connections.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_a: Args) -> anyhow::Result<()> {
    anyhow::bail!("rotor capacity is being built")
}
