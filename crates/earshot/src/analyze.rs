//! `earshot analyze`: every call in one or more capture files, with per-stream quality.

use crate::report;
use anyhow::{anyhow, Result};
use earshot_core::{Config, Engine, NullSink};
use earshot_wire::{CaptureError, CaptureReader};
use std::io::Write;
use std::path::PathBuf;

/// Show every call in capture files, with its RTP streams and their quality.
///
/// Files are read in the order given, as one capture (like mergecap's append mode), so a call
/// split across rotated files is still one call. pcap, pcapng and gzip-compressed files are
/// accepted. Damaged packets are skipped and counted as malformed.
///
/// Examples:
///   earshot analyze call.pcap
///   earshot analyze --json rotated-*.pcap.gz > calls.json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Capture files (pcap, pcapng, optionally .gz).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print one JSON document (schema: docs/analyze-json.md) instead of the table.
    #[arg(long)]
    json: bool,
    /// End calls after this many seconds without SIP or RTP.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    idle_timeout: u64,
}

pub fn run(args: Args) -> Result<()> {
    let cfg = Config {
        idle_timeout_ns: i64::try_from(args.idle_timeout.saturating_mul(1_000_000_000))
            .unwrap_or(i64::MAX),
        ..Config::default()
    };
    let mut engine = Engine::new(cfg);
    for path in &args.files {
        feed_file(&mut engine, path)?;
    }
    if let Some(last) = engine.counters().last_ts {
        engine.expire(last, &mut NullSink);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report::document(&engine))?;
        writeln!(out)?;
    } else {
        report::write_table(&mut out, &engine)?;
    }
    out.flush()?;
    Ok(())
}

/// Runs one file through the engine. A file that cannot be opened is an error; a damaged tail
/// is reported on stderr and the frames before it are kept.
pub fn feed_file(engine: &mut Engine, path: &std::path::Path) -> Result<()> {
    let mut reader = CaptureReader::open(path).map_err(|e| match e {
        CaptureError::Open { .. } => anyhow!("{e}"),
        other => anyhow!("{}: {other}", path.display()),
    })?;
    let mut sink = NullSink;
    while let Some(frame) = reader.next_frame() {
        match frame {
            Ok(f) => engine.handle_frame(f.ts, f.link, f.data, &mut sink),
            Err(e) => {
                eprintln!(
                    "earshot: {}: {e}; analysed the packets before it",
                    path.display()
                );
                break;
            }
        }
    }
    Ok(())
}
