//! `earshot analyze`: every call in one or more capture files, with per-stream quality.

use crate::report;
use anyhow::{anyhow, Result};
use earshot_core::{Config, Engine, NullSink, Peek, Peeker, TimelineMode};
use earshot_wire::{reuse_frame_list, CaptureError, CaptureReader, Frame, FrameBatch};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};

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
    /// With --json: each stream's quality per second (packets, loss, jitter, MOS), the
    /// first SECONDS of it (`--timeline=N`; default 14400, 4 hours; points beyond are counted,
    /// not listed).
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, require_equals = true, default_missing_value = "14400")]
    timeline: Option<u32>,
    /// End calls after this many seconds without SIP or RTP.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    idle_timeout: u64,
    #[command(flatten)]
    keylog: crate::tls_keylog::KeyLogArgs,
    #[command(flatten)]
    correlation: crate::correlate::CorrelationArgs,
}

pub fn run(args: Args) -> Result<()> {
    let cfg = Config {
        idle_timeout_ns: i64::try_from(args.idle_timeout.saturating_mul(1_000_000_000))
            .unwrap_or(i64::MAX),
        correlation: crate::correlate::build(&Default::default(), &args.correlation)?,
        // Offline, points cost memory for every stream of the capture: only when asked for.
        timeline: match args.timeline {
            Some(n) => TimelineMode::Series(n),
            None => TimelineMode::Off,
        },
        ..Config::default()
    };
    let mut engine = Engine::new(cfg);
    args.keylog.load_into(&mut engine)?;
    for path in &args.files {
        feed_file(&mut engine, path)?;
    }
    if let Some(last) = engine.counters().last_ts {
        engine.expire(last, &mut NullSink);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer_pretty(
            &mut out,
            &report::document(&engine, args.timeline.is_some()),
        )?;
        writeln!(out)?;
    } else {
        report::write_table(&mut out, &engine)?;
    }
    out.flush()?;
    Ok(())
}

/// Runs one file through the engine. A file that cannot be opened is an error; a damaged tail
/// is reported on stderr and the frames before it are kept.
///
/// A second thread reads the file and hands frames over in batches, so the reading (system
/// calls, decompression, record parsing) overlaps with the analysis instead of adding to it.
/// The engine still sees every frame, in file order, on this thread.
pub fn feed_file(engine: &mut Engine, path: &std::path::Path) -> Result<()> {
    let reader = CaptureReader::open(path).map_err(|e| match e {
        CaptureError::Open { .. } => anyhow!("{e}"),
        other => anyhow!("{}: {other}", path.display()),
    })?;
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
    let mut sink = NullSink;
    std::thread::scope(|scope| {
        let peeker = engine.peeker();
        scope.spawn(move || read_batches(reader, &peeker, &full_tx, &empty_rx));
        // Ends when the reader thread has sent its last batch and dropped its sender (on
        // panic too), so this cannot wait forever.
        let mut spare: Vec<Frame<'static>> = Vec::new();
        while let Ok(batch) = full_rx.recv() {
            let mut frames = reuse_frame_list(spare);
            frames.extend(batch.frames.frames());
            engine.handle_peeked(&frames, &batch.peeks, &mut sink);
            spare = reuse_frame_list(frames);
            if let Some(e) = &batch.error {
                eprintln!(
                    "earshot: {}: {e}; analysed the packets before it",
                    path.display()
                );
            }
            // The reader may already be gone; the batch is then simply freed.
            let _ = empty_tx.send(batch);
        }
    });
    Ok(())
}

/// Batches the reader may have ready ahead of the analysis. With [`BATCH_BYTES`] this keeps
/// about 4 MB in flight, well inside the cache the two cores share; batches this large make
/// the hand-overs (each may wake the other thread) rare enough not to count.
const BATCHES_IN_FLIGHT: usize = 4;
/// Frame bytes per batch (a batch ends at the first frame that reaches it).
const BATCH_BYTES: usize = 1024 * 1024;

/// Frames copied out of the reader's buffer, which cannot cross threads: each frame borrows
/// it only until the next read.
#[derive(Default)]
struct Batch {
    frames: FrameBatch,
    /// Per frame, the engine's look ahead at it, done here on the reader thread to take that
    /// work off the analysis thread.
    peeks: Vec<Peek>,
    /// Why reading stopped early, on the last batch of a damaged file.
    error: Option<CaptureError>,
}

impl Batch {
    fn clear(&mut self) {
        self.frames.clear();
        self.peeks.clear();
        self.error = None;
    }

    fn push(&mut self, f: &Frame<'_>, peeker: &Peeker) {
        self.frames.push(f.ts, f.link, f.data);
        self.peeks.push(peeker.peek(f));
    }
}

/// The reader thread: fills batches (reusing those the analysis sent back) until the file ends,
/// fails, or the analysis stops listening.
fn read_batches(
    mut reader: CaptureReader,
    peeker: &Peeker,
    full: &SyncSender<Batch>,
    empty: &Receiver<Batch>,
) {
    loop {
        let mut batch = empty.try_recv().unwrap_or_default();
        batch.clear();
        let mut last = false;
        while batch.frames.byte_len() < BATCH_BYTES {
            match reader.next_frame() {
                Some(Ok(f)) => batch.push(&f, peeker),
                Some(Err(e)) => {
                    batch.error = Some(e);
                    last = true;
                    break;
                }
                None => {
                    last = true;
                    break;
                }
            }
        }
        if full.send(batch).is_err() || last {
            return;
        }
    }
}
