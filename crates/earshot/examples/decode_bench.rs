//! Decoding capacity for BENCHMARKS.md: how many simultaneous calls one core keeps up with,
//! per codec, for the whole listening path (decode + jitter buffer + alignment + resampling to
//! 16 kHz stereo), and each decoder alone in frames per second.
//!
//! Payloads are real: the first RTP stream of the matching capture in ../shared/pcaps.
//!
//!   cargo run --release -p earshot --example decode_bench [-- SECONDS_PER_CODEC [CODEC]]
//!
//! With CODEC (e.g. `G.711`), only that row is measured (handy under a profiler). The G.723.1
//! and iLBC rows need `--features libavcodec` (they are skipped, with a note, without it).

use anyhow::{bail, Context, Result};
use earshot_audio::{
    decoder_for, CallAudio, Codec, MixConfig, MixMode, Party, PlayoutConfig, RtpIn,
};
use earshot_core::{Engine, NullSink, RtpPacket, Sink};
use earshot_wire::CaptureReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// CPU time of this thread in seconds (Linux: /proc/thread-self/schedstat), so that other
/// load on a shared machine does not count against us; wall time elsewhere.
struct CpuClock {
    wall: Instant,
}

impl CpuClock {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
        }
    }

    fn thread_cpu() -> Option<f64> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
        Some(ns as f64 / 1e9)
    }

    fn now(&self) -> f64 {
        Self::thread_cpu().unwrap_or_else(|| self.wall.elapsed().as_secs_f64())
    }
}

struct Collect {
    ssrc: Option<u32>,
    payloads: Vec<Vec<u8>>,
}

impl Sink for Collect {
    fn rtp(&mut self, p: &RtpPacket<'_>) {
        if p.event || *self.ssrc.get_or_insert(p.ssrc) != p.ssrc {
            return;
        }
        self.payloads.push(p.payload.to_vec());
    }
}

fn payloads(path: &Path) -> Result<Vec<Vec<u8>>> {
    let mut engine = Engine::default();
    let mut sink = Collect {
        ssrc: None,
        payloads: Vec::new(),
    };
    let mut reader = CaptureReader::open(path).with_context(|| path.display().to_string())?;
    while let Some(frame) = reader.next_frame() {
        let f = frame?;
        engine.handle_frame(f.ts, f.link, f.data, &mut sink);
    }
    engine.expire(earshot_wire::Timestamp(i64::MAX / 2), &mut NullSink);
    if sink.payloads.is_empty() {
        bail!("{}: no RTP found", path.display());
    }
    Ok(sink.payloads)
}

/// Decoder alone: frames per CPU second over `secs` of CPU.
fn decoder_only(codec: &Codec, frames: &[Vec<u8>], secs: f64) -> Result<f64> {
    let mut dec = decoder_for(codec).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::with_capacity(4096);
    let clock = CpuClock::start();
    let started = clock.now();
    let mut n = 0u64;
    // Passes between clock readings, so that reading the clock costs nothing measurable.
    let mut batch = 1u32;
    while clock.now() - started < secs {
        let before = clock.now();
        for _ in 0..batch {
            for f in frames {
                out.clear();
                let _ = dec.decode(f, &mut out);
                n += 1;
            }
        }
        if clock.now() - before < 0.01 {
            batch = batch.saturating_mul(2);
        }
    }
    Ok(n as f64 / (clock.now() - started))
}

/// The whole path for one call of `call_secs`, packets of `ptime_ms` each way: returns CPU
/// seconds spent (thread CPU time).
fn one_call(
    codec: &Codec,
    clock: u32,
    ptime_ms: u32,
    frames: &[Vec<u8>],
    call_secs: u32,
) -> Result<f64> {
    let cfg = MixConfig::new(16000, MixMode::Stereo, PlayoutConfig::live())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut audio = CallAudio::new(cfg);
    let mut out = Vec::with_capacity(1 << 16);
    let per_second = 1000 / ptime_ms;
    let packets = call_secs * per_second;
    let step = clock / per_second;
    let cpu = CpuClock::start();
    let started = cpu.now();
    for i in 0..packets {
        for (leg, ssrc) in [(Party::Caller, 0x1111_u32), (Party::Called, 0x2222)] {
            let payload = &frames[i as usize % frames.len()];
            let p = RtpIn {
                arrival_ns: 1_700_000_000_000_000_000
                    + i64::from(i) * i64::from(ptime_ms) * 1_000_000,
                ssrc,
                seq: i as u16,
                timestamp: i.wrapping_mul(step),
                payload_type: 0,
                marker: i == 0,
                payload,
                codec: Some(codec),
                event: false,
            };
            audio.push(leg, &p, &mut out);
        }
        if out.len() > 1 << 15 {
            out.clear();
        }
    }
    audio.finish(&mut out);
    Ok(cpu.now() - started)
}

fn main() -> Result<()> {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let only = std::env::args().nth(2);
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcaps/wireshark");
    let captures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures");
    let ours = captures.join("amr");
    let cases: [(&str, PathBuf, Codec, u32); 10] = [
        ("G.711", shared.join("sip-rtp-g711.pcap"), Codec::Pcmu, 8000),
        ("G.722", shared.join("sip-rtp-g722.pcap"), Codec::G722, 8000),
        (
            "G.729",
            shared.join("sip-rtp-g729a.pcap"),
            Codec::from_sdp("G729", 8000, 1, None),
            8000,
        ),
        (
            "Opus",
            shared.join("sip-rtp-opus.pcap"),
            Codec::from_sdp("opus", 48000, 2, None),
            48000,
        ),
        // The capture's first stream is its speex/8000 call.
        (
            "Speex",
            shared.join("sip-rtp-speex.pcap"),
            Codec::from_sdp("speex", 8000, 1, None),
            8000,
        ),
        // 12.2 kbit/s and 23.85 kbit/s, octet-aligned (tests/captures/amr/, made by make.py).
        (
            "AMR",
            ours.join("amr_nb_octet.pcap"),
            Codec::from_sdp("AMR", 8000, 1, Some("octet-align=1")),
            8000,
        ),
        (
            "AMR-WB",
            ours.join("amr_wb_octet.pcap"),
            Codec::from_sdp("AMR-WB", 16000, 1, Some("octet-align=1")),
            16000,
        ),
        // FFmpeg's 6.3 kbit/s frames (tests/captures/g723/), the caller's stream: one 30 ms
        // frame a packet.
        (
            "G.723.1",
            captures.join("g723/g723_call.pcap"),
            Codec::G723,
            8000,
        ),
        // Wireshark's real iLBC sample: one 30 ms frame a packet.
        (
            "iLBC",
            shared.join("sip-rtp-ilbc.pcap"),
            Codec::Ilbc { mode: 30 },
            8000,
        ),
        // The same frames two a packet (tests/captures/ilbc/): 60 ms packets.
        (
            "iLBC-60ms",
            captures.join("ilbc/ilbc_call.pcap"),
            Codec::Ilbc { mode: 30 },
            8000,
        ),
    ];
    println!("| codec | decoder alone (frames/s) | whole path: CPU per call-second | calls per core (real time) | decoder-alone ceiling (calls) |");
    println!("|---|---:|---:|---:|---:|");
    for (name, file, codec, clock) in cases {
        if only
            .as_deref()
            .is_some_and(|o| !o.eq_ignore_ascii_case(name))
        {
            continue;
        }
        if let Err(e) = decoder_for(&codec) {
            eprintln!("{name}: skipped ({e})");
            continue;
        }
        let frames = payloads(&file)?;
        // The packet time of the stream: 30 ms codec frames, several a packet.
        let ptime_ms = match (&codec, frames[0].len()) {
            (Codec::G723, n) => 30 * (n / 24).max(1) as u32,
            (Codec::Ilbc { .. }, n) => 30 * (n / 50).max(1) as u32,
            _ => 20,
        };
        let fps = decoder_only(&codec, &frames, secs)?;
        // Enough calls to take about `secs` of CPU.
        let call_secs = 20;
        let mut spent = 0.0;
        let mut calls = 0u32;
        while spent < secs {
            spent += one_call(&codec, clock, ptime_ms, &frames, call_secs)?;
            calls += 1;
        }
        let per_call_second = spent / f64::from(calls * call_secs);
        let capacity = 1.0 / per_call_second;
        // Two legs × (1000 / ptime) packets a second per call ("frames/s" counts payloads).
        let ceiling = fps / (2.0 * 1000.0 / f64::from(ptime_ms));
        println!(
            "| {name} | {fps:.0} | {:.1} µs | {capacity:.0} | {ceiling:.0} |",
            per_call_second * 1e6
        );
    }
    Ok(())
}
