//! A capture file replayed as if it were live: frames are released at wall-clock pace (or
//! faster), with their timestamps shifted to now, so calls look current to every consumer.

use crate::source::{Batcher, FrameBatch, FrameSender, StopFlag};
use earshot_wire::{CaptureError, CaptureReader, Timestamp};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How fast to replay.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Speed {
    /// `factor` × real time (1.0 = as captured).
    Times(f64),
    /// As fast as the pipeline takes it; timestamps still advance as captured.
    Max,
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match s.trim_end_matches(['x', 'X']).parse::<f64>() {
            Ok(f) if f > 0.0 && f.is_finite() => Ok(Speed::Times(f)),
            _ => Err(format!(
                "invalid speed {s:?}: use a positive factor such as 1, 2 or 0.5, or max"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ReplayConfig {
    pub path: PathBuf,
    pub speed: Speed,
    /// Start again at the end of the file, forever (until stopped).
    pub repeat: bool,
}

/// A frame due less than this far ahead is sent now rather than slept for. At carrier rates
/// frames are microseconds apart: sending the batch before each of those tiny sleeps made
/// batches of one frame, and 10,000 calls at real time (1 M frames/s) then lost a fifth of
/// their frames to a queue full of one-frame batches.
const SLEEP_MIN: Duration = Duration::from_millis(1);

/// Replays the file until it ends (or forever with `repeat`), or until `stop`.
/// Opening errors are returned before anything is sent.
pub fn run(cfg: &ReplayConfig, out: &FrameSender, stop: &StopFlag) -> Result<(), CaptureError> {
    // Each pass starts its clock where the previous one ended, so looping never moves time back.
    let mut shift_base = Timestamp::now().nanos();
    loop {
        let mut reader = CaptureReader::open(&cfg.path)?;
        let last = replay_pass(&mut reader, cfg.speed, shift_base, out, stop);
        if !cfg.repeat || stop.is_stopped() {
            return Ok(());
        }
        shift_base = last.map_or_else(
            || Timestamp::now().nanos(),
            |t| t.nanos().max(Timestamp::now().nanos()),
        ) + 20_000_000;
    }
}

/// One pass over the file; returns the shifted time of its last frame.
fn replay_pass(
    reader: &mut CaptureReader,
    speed: Speed,
    shift_base: i64,
    out: &FrameSender,
    stop: &StopFlag,
) -> Option<Timestamp> {
    let started = Instant::now();
    let mut first_ts: Option<i64> = None;
    // The sources' one batching policy (source.rs); the latency clock starts at a batch's
    // first frame, so the frame after a sleep is never sent alone.
    let mut batch = Batcher::default();
    let mut last = None;
    while let Some(item) = reader.next_frame() {
        if stop.is_stopped() {
            break;
        }
        let Ok(frame) = item else { break };
        let offset = frame.ts.nanos() - *first_ts.get_or_insert(frame.ts.nanos());
        if let Speed::Times(factor) = speed {
            let due = Duration::from_nanos((offset.max(0) as f64 / factor) as u64);
            let elapsed = started.elapsed();
            if due > elapsed + SLEEP_MIN {
                // Send what we have before sleeping, so nothing waits behind the pause.
                if let Some(full) = batch.take() {
                    if !send(out, speed, full) {
                        return last;
                    }
                }
                sleep_until(started + due, stop);
            }
        }
        let ts = Timestamp(shift_base + offset);
        last = Some(ts);
        batch.push(ts, frame.link, frame.data);
        if let Some(full) = batch.take_due(false) {
            if !send(out, speed, full) {
                return last;
            }
        }
    }
    if let Some(rest) = batch.take() {
        send(out, speed, rest);
    }
    last
}

/// At `max` speed the file waits for the pipeline (nothing is lost, nothing is live); at a
/// wall-clock pace it behaves like a live source and never waits.
fn send(out: &FrameSender, speed: Speed, batch: FrameBatch) -> bool {
    match speed {
        Speed::Max => out.send_blocking(batch),
        Speed::Times(_) => out.send(batch),
    }
}

/// Sleeps in short steps so a stop request is honoured within 50 ms.
fn sleep_until(deadline: Instant, stop: &StopFlag) {
    loop {
        let now = Instant::now();
        if now >= deadline || stop.is_stopped() {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::SensorCounters;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    /// A classic pcap (microsecond times) of `n` 60-byte Ethernet frames `gap_us` apart.
    fn pcap(n: u32, gap_us: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        for i in 0..n {
            let t = 1_000_000 + u64::from(i) * u64::from(gap_us);
            let (sec, usec) = ((t / 1_000_000) as u32, (t % 1_000_000) as u32);
            for x in [sec, usec, 60, 60] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(&[0u8; 60]);
        }
        v
    }

    #[test]
    fn frames_microseconds_apart_travel_in_full_batches_at_real_time() {
        // 20,000 frames 1 µs apart: 20 ms of traffic at 1 M frames/s, replayed at real time.
        let path = std::env::temp_dir().join(format!("earshot-replay-{}.pcap", std::process::id()));
        std::fs::write(&path, pcap(20_000, 1)).expect("write the capture");
        let counters = Arc::new(SensorCounters::default());
        let (tx, rx) = crossbeam_channel::bounded(100_000);
        let out = FrameSender::new(tx, counters.clone());
        let cfg = ReplayConfig {
            path: path.clone(),
            speed: Speed::Times(1.0),
            repeat: false,
        };
        let ran = run(&cfg, &out, &StopFlag::default());
        let _ = std::fs::remove_file(&path);
        ran.expect("replay");
        drop(out);
        let sizes: Vec<usize> = rx.iter().map(|b| b.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 20_000, "every frame sent");
        assert_eq!(counters.internal_drops.load(Ordering::Relaxed), 0);
        // A batch per millisecond of traffic at most (and per 256 frames): not one per frame.
        assert!(
            sizes.len() <= 20_000 / 256 + 25,
            "{} batches for 20,000 frames",
            sizes.len()
        );
    }
}
