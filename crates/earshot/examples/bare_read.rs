//! The bare-read ceiling for BENCHMARKS.md: iterate every frame of a capture with
//! `earshot_wire::CaptureReader` and do nothing else, so `earshot analyze` can be compared
//! with the cost of merely reading the file.
//!
//!   cargo run --release -p earshot --example bare_read -- FILE

use anyhow::{Context, Result};
use earshot_wire::CaptureReader;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: bare_read FILE")?
        .into();
    let started = Instant::now();
    let mut reader = CaptureReader::open(&path)?;
    let (mut frames, mut bytes) = (0u64, 0u64);
    while let Some(frame) = reader.next_frame() {
        let frame = frame?;
        frames += 1;
        // Touch the frame so the loop cannot be optimised into nothing.
        bytes += std::hint::black_box(frame.data).len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "frames {frames}  bytes {bytes}  seconds {secs:.3}  frames/s {:.0}",
        frames as f64 / secs
    );
    Ok(())
}
