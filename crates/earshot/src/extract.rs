//! `earshot extract`: placeholder, replaced by the audio work.
use anyhow::Result;

/// Write the audio of calls or streams in a capture as WAV files.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    anyhow::bail!("earshot extract is not implemented yet")
}
