//! `earshot synth`: placeholder replaced below.
use anyhow::Result;

/// Write a capture of synthetic concurrent calls.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    anyhow::bail!("not yet")
}
