//! Heap bytes per active call in the engine, for BENCHMARKS.md.
//!
//! A counting global allocator tracks the bytes in use. Each capture (from `earshot synth`,
//! whose calls all overlap) is fed through `Engine::handle_frame` with a `NullSink`; the heap is
//! sampled when every call is active with both RTP streams (the moment the last call's
//! second stream has been seen), and again at the end, when all calls have ended but are
//! retained for the report.
//!
//!   earshot synth --calls 1000 --seconds 2 --codec pcma --out c1k.pcap
//!   earshot synth --calls 10000 --seconds 2 --codec pcma --out c10k.pcap
//!   cargo run --release -p earshot --example call_memory -- c1k.pcap c10k.pcap

use anyhow::{Context, Result};
use earshot_core::{Call, Config, Engine, NullSink, Stream};
use earshot_wire::CaptureReader;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// System allocator plus a running count of bytes in use (requested sizes, so allocator
/// overhead and rounding are not included).
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_sub(layout.size(), Relaxed);
            IN_USE.fetch_add(new_size, Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn in_use() -> usize {
    IN_USE.load(Relaxed)
}

/// Heap owned by a call's own strings and vectors (not the engine's indexes).
fn call_heap(c: &Call) -> (usize, usize) {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
    let strings = c.sip_call_id.capacity()
        + opt(&c.from_tag)
        + opt(&c.to_tag)
        + c.caller.capacity()
        + c.called.capacity()
        + opt(&c.caller_name)
        + opt(&c.called_name)
        + opt(&c.caller_domain)
        + opt(&c.called_domain)
        + c.from_uri.capacity()
        + c.to_uri.capacity()
        + opt(&c.caller_agent)
        + opt(&c.called_agent)
        + opt(&c.reason)
        + c.dtmf.capacity();
    let elem = |size: Option<usize>, cap: usize| size.unwrap_or(0) * cap;
    let vecs = elem(
        c.media.first().map(std::mem::size_of_val),
        c.media.capacity(),
    ) + elem(
        c.formats.first().map(std::mem::size_of_val),
        c.formats.capacity(),
    ) + c
        .formats
        .iter()
        .map(|f| f.encoding.capacity())
        .sum::<usize>()
        + c.streams.capacity() * std::mem::size_of::<Stream>()
        + c.streams
            .iter()
            .map(|s| s.codec.as_ref().map_or(0, String::capacity))
            .sum::<usize>();
    (strings, vecs)
}

fn measure(path: &Path) -> Result<()> {
    let base = in_use();
    let mut engine = Engine::new(Config::default());
    let mut reader = CaptureReader::open(path).with_context(|| path.display().to_string())?;
    let mut peak: Option<(usize, usize, u64)> = None;
    let mut frames = 0u64;
    while let Some(frame) = reader.next_frame() {
        let f = frame?;
        engine.handle_frame(f.ts, f.link, f.data, &mut NullSink);
        frames += 1;
        // Sample once every call is up with two streams; checking costs O(calls), so only
        // every 1000 frames.
        if peak.is_none() && frames % 1000 == 0 {
            let calls = engine.calls();
            let n = calls.len();
            let ready =
                n > 0 && engine.active_calls() == n && calls.iter().all(|c| c.streams.len() == 2);
            // Measure after dropping the temporary Vec of references.
            drop(calls);
            if ready {
                peak = Some((in_use() - base, n, frames));
            }
        }
    }
    let end = in_use() - base;
    let calls = engine.calls();
    let n = calls.len().max(1);
    let (strings, vecs) = calls.iter().fold((0, 0), |(a, b), c| {
        let (s, v) = call_heap(c);
        (a + s, b + v)
    });
    println!("{}: {} calls", path.display(), calls.len());
    match peak {
        Some((bytes, active, at)) => println!(
            "  all {active} calls active, 2 streams each (frame {at}): {bytes} heap bytes = {} B/call",
            bytes / active.max(1)
        ),
        None => println!("  never saw every call active with two streams"),
    }
    println!(
        "  at end (calls ended, retained): {end} heap bytes = {} B/call",
        end / n
    );
    println!(
        "  of which per call: Call struct {} B inline, its strings {} B, its vectors (media, streams) {} B",
        std::mem::size_of::<Call>(),
        strings / n,
        vecs / n
    );
    let stream_cap = calls.iter().map(|c| c.streams.capacity()).sum::<usize>() as f64 / n as f64;
    println!(
        "  size_of: Call {} B, Stream {} B; Vec<Stream> capacity {stream_cap:.1} per call",
        std::mem::size_of::<Call>(),
        std::mem::size_of::<Stream>()
    );
    Ok(())
}

fn main() -> Result<()> {
    let files: Vec<_> = std::env::args_os().skip(1).collect();
    anyhow::ensure!(!files.is_empty(), "usage: call_memory FILE...");
    for f in files {
        measure(Path::new(&f))?;
    }
    Ok(())
}
