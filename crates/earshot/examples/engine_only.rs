//! The analysis half of `earshot analyze` alone: loads a capture's frames into memory first,
//! then times only the engine over them (`Engine::handle_frames` in 1 MB runs, as analyze
//! feeds it), so the engine's cost per packet can be measured apart from reading the file.
//!
//!   cargo run --release -p earshot --example engine_only -- FILE

use anyhow::{Context, Result};
use earshot_core::{Config, Engine, NullSink};
use earshot_wire::{CaptureReader, Frame, FrameBatch};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: engine_only FILE")?
        .into();
    let mut reader = CaptureReader::open(&path)?;
    let mut all = FrameBatch::default();
    while let Some(frame) = reader.next_frame() {
        let f = frame?;
        all.push(f.ts, f.link, f.data);
    }
    let frames: Vec<Frame<'_>> = all.frames().collect();
    let mut engine = Engine::new(Config::default());
    let started = Instant::now();
    let (mut run, mut bytes) = (0, 0);
    for (i, f) in frames.iter().enumerate() {
        bytes += f.data.len();
        if bytes >= 1 << 20 || i + 1 == frames.len() {
            engine.handle_frames(&frames[run..=i], &mut NullSink);
            run = i + 1;
            bytes = 0;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "frames {}  calls {}  seconds {secs:.3}  frames/s {:.0}",
        frames.len(),
        engine.calls().len(),
        frames.len() as f64 / secs
    );
    Ok(())
}
