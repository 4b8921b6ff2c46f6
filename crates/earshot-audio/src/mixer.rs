//! Both legs of a call on one clock, mixed into the requested output.
//!
//! Each leg's [`Playout`] yields chunks placed on the capture clock. They are
//! resampled to the output rate and written into a per-leg timeline at
//! `(start - origin) × rate`; what nobody wrote is silence. Consecutive
//! chunks stay contiguous (no clicks from rounding) unless their placement
//! differs from the running write position by more than `slip_ms`: then the
//! leg jumps to the placement, dropping or inserting samples, which is how
//! clock drift and re-anchoring are absorbed. Output leaves in fixed blocks
//! once the capture clock minus the buffer depth has passed them, so a live
//! caller gets audio continuously and both legs can never drift apart.
//!
//! Time is input: a capture file or a packet can put a chunk days away from
//! the rest. Silence is only ever kept for `max_gap_ms` of capture time
//! beyond the furthest audio laid out (the frontier); audio further ahead,
//! or further behind what was already sent, re-anchors the timeline
//! (a resync, counted) so that it continues at the frontier, instead of
//! the time in between being allocated or emitted.

use crate::playout::{Chunk, Playout, PlayoutConfig, PlayoutStats, RtpIn};
use crate::resample::Resampler;
use std::collections::VecDeque;
use thiserror::Error;

const NS_PER_S: i128 = 1_000_000_000;
/// Extra hold-back beyond the jitter-buffer depth: covers the resampler's
/// look-ahead and chunks placed slightly before the newest packet.
const HOLD_MS: i64 = 100;
/// The same margin with an adaptive (live) depth, where the hold follows the
/// current depth instead of the largest one: the resampler's look-ahead is at
/// most ~2.5 ms, and re-anchoring on a less-delayed packet does not move a
/// running leg's writes (it stays contiguous within `slip_ms`).
const LIVE_HOLD_MS: i64 = 5;
/// How far before the first written sample a late-placed chunk may still
/// extend the call, before output has started.
const MAX_PREPEND_S: i64 = 10;
/// How far past the end of a leg's timeline a write may start (seconds at
/// 48 kHz). Placement keeps writes within `max_gap_ms` of the audio; this is
/// the backstop that keeps a mistake there from becoming an allocation.
const MAX_WRITE_AHEAD_S: i64 = 60;

/// Which party sent the audio: the engine's own type (earshot-rtp), so no conversion stands
/// between a call's packets and its mixer.
pub use earshot_rtp::Party;

/// What the output carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixMode {
    /// Left: what the caller sends; right: what the called party sends.
    Stereo,
    /// Both legs summed, saturating.
    Mono,
    Caller,
    Called,
}

impl MixMode {
    pub fn channels(self) -> u16 {
        match self {
            MixMode::Stereo => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MixError {
    #[error("unsupported output rate {0} Hz: use 8000, 16000 or 48000")]
    Rate(u32),
}

/// Output format and playout tuning of a [`CallAudio`].
#[derive(Debug, Clone)]
pub struct MixConfig {
    pub rate: u32,
    pub mode: MixMode,
    pub block_ms: u32,
    /// Largest tolerated difference between where a chunk belongs and where
    /// the leg's audio has got to, before the leg is re-aligned.
    pub slip_ms: u32,
    pub playout: PlayoutConfig,
}

impl MixConfig {
    pub fn new(rate: u32, mode: MixMode, playout: PlayoutConfig) -> Result<Self, MixError> {
        if !matches!(rate, 8000 | 16000 | 48000) {
            return Err(MixError::Rate(rate));
        }
        Ok(Self {
            rate,
            mode,
            block_ms: 20,
            slip_ms: 10,
            playout,
        })
    }
}

/// A contiguous stretch of one leg's audio at one input rate.
struct Run {
    rate: u32,
    /// `None` when the input is already at the output rate.
    resampler: Option<Resampler>,
    /// Output index of the run's first input sample.
    start: i64,
    fed: u64,
    written: i64,
}

impl Run {
    /// Output index where the next input sample belongs.
    fn expected_next(&self, out_rate: u32) -> i64 {
        let at = i128::from(self.fed as i64) * i128::from(out_rate) / i128::from(self.rate.max(1));
        self.start + i64::try_from(at).unwrap_or(0)
    }
}

struct LegTimeline {
    playout: Playout,
    buf: VecDeque<i16>,
    /// Output index of `buf[0]`.
    base: i64,
    run: Option<Run>,
    first: Option<i64>,
    end: i64,
    scratch: Vec<Chunk>,
}

impl LegTimeline {
    fn new(cfg: PlayoutConfig) -> Self {
        Self {
            playout: Playout::new(cfg),
            buf: VecDeque::new(),
            base: 0,
            run: None,
            first: None,
            end: i64::MIN,
            scratch: Vec::new(),
        }
    }

    /// Overwrites the timeline from `pos`; samples before `floor` (already
    /// sent out) are dropped.
    fn write(&mut self, pos: i64, samples: &[i16], floor: Option<i64>) {
        let skip = floor.map_or(0, |f| (f - pos).max(0));
        let skip = usize::try_from(skip)
            .unwrap_or(usize::MAX)
            .min(samples.len());
        let pos = pos + skip as i64;
        let Some(samples) = samples.get(skip..) else {
            return;
        };
        if samples.is_empty() {
            return;
        }
        if self.first.is_none() {
            self.base = pos;
            self.first = Some(pos);
        }
        if pos < self.base {
            if floor.is_some() || self.base - pos > MAX_PREPEND_S * 48_000 {
                return;
            }
            for _ in pos..self.base {
                self.buf.push_front(0);
            }
            self.base = pos;
            self.first = Some(pos);
        }
        let ahead = pos.saturating_sub(self.base.saturating_add(self.buf.len() as i64));
        if ahead > MAX_WRITE_AHEAD_S * 48_000 {
            return;
        }
        let offset = usize::try_from(pos - self.base).unwrap_or(0);
        let needed = offset + samples.len();
        if self.buf.len() < needed {
            self.buf.resize(needed, 0);
        }
        // The deque's two halves, copied slice by slice (no per-sample
        // indexing).
        self.end = self.end.max(pos + samples.len() as i64);
        let (front, back) = self.buf.as_mut_slices();
        let mut samples = samples;
        if offset < front.len() {
            let n = samples.len().min(front.len() - offset);
            if let (Some(dst), Some(src)) = (front.get_mut(offset..offset + n), samples.get(..n)) {
                dst.copy_from_slice(src);
            }
            samples = samples.get(n..).unwrap_or_default();
        }
        let back_at = offset.saturating_sub(front.len());
        if let Some(dst) = back.get_mut(back_at..back_at + samples.len()) {
            dst.copy_from_slice(samples);
        }
    }

    /// Removes and returns `n` samples starting at `pos` (silence where
    /// nothing was written).
    fn take(&mut self, pos: i64, n: usize, out: &mut Vec<i16>) {
        out.clear();
        out.resize(n, 0);
        if self.first.is_none() {
            return;
        }
        if self.base < pos {
            let stale = usize::try_from(pos - self.base)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            self.buf.drain(..stale);
            self.base = pos;
        }
        let lead = usize::try_from(self.base - pos).unwrap_or(0).min(n);
        let m = (n - lead).min(self.buf.len());
        let (front, back) = self.buf.as_slices();
        let from_front = m.min(front.len());
        if let (Some(dst), Some(src)) = (
            out.get_mut(lead..lead + from_front),
            front.get(..from_front),
        ) {
            dst.copy_from_slice(src);
        }
        let from_back = m - from_front;
        if let (Some(dst), Some(src)) = (
            out.get_mut(lead + from_front..lead + m),
            back.get(..from_back),
        ) {
            dst.copy_from_slice(src);
        }
        self.buf.drain(..m);
        self.base = self.base.max(pos + n as i64);
    }
}

/// Audio of one call: two legs, one clock, one output.
pub struct CallAudio {
    cfg: MixConfig,
    origin_ns: Option<i64>,
    legs: [LegTimeline; 2],
    /// Next output index to emit; `None` until output has started.
    emitted: Option<i64>,
    scratch: [Vec<i16>; 2],
    /// Resampler output, reused chunk after chunk.
    resampled: Vec<i16>,
    /// Output index of the latest audio packet's arrival: the call's audio lasts at least until
    /// then, even when a sender's clock runs slow and its packets carry less audio than time
    /// passes.
    last_arrival: Option<i64>,
    /// Output samples of capture time cut out of the timeline (or, negative, put back) by
    /// resyncs: [`CallAudio::index`] subtracts it from the capture-clock position.
    skipped: i64,
    /// `skipped` before the latest resync: audio of the old timeline still coming out of a
    /// jitter buffer (the other leg's, or this one's) is placed with it, rather than taken
    /// for a jump of its own.
    prev_skipped: Option<i64>,
    resyncs: u64,
}

impl CallAudio {
    pub fn new(cfg: MixConfig) -> Self {
        let legs = [
            LegTimeline::new(cfg.playout.clone()),
            LegTimeline::new(cfg.playout.clone()),
        ];
        Self {
            cfg,
            origin_ns: None,
            legs,
            emitted: None,
            scratch: [Vec::new(), Vec::new()],
            resampled: Vec::new(),
            last_arrival: None,
            skipped: 0,
            prev_skipped: None,
            resyncs: 0,
        }
    }

    pub fn config(&self) -> &MixConfig {
        &self.cfg
    }

    pub fn stats(&self, leg: Party) -> &PlayoutStats {
        self.legs[leg_index(leg)].playout.stats()
    }

    /// Times the timeline was re-anchored because audio or the clock came further than
    /// `max_gap_ms` from the audio around it (a capture or RTP time jump, or a long pause).
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// Feeds one packet of `leg` and appends the output that became final.
    pub fn push(&mut self, leg: Party, p: &RtpIn<'_>, out: &mut Vec<i16>) {
        self.origin_ns.get_or_insert(p.arrival_ns);
        let idx = leg_index(leg);
        let mut chunks = std::mem::take(&mut self.legs[idx].scratch);
        self.legs[idx].playout.push(p, &mut chunks);
        self.place(idx, &mut chunks);
        self.legs[idx].scratch = chunks;
        self.poll(p.arrival_ns, out);
        if !p.event {
            // Taken last, so on the timeline as re-anchored by this packet and its time.
            let at = self.index(p.arrival_ns);
            self.last_arrival = Some(self.last_arrival.map_or(at, |t| t.max(at)));
        }
    }

    /// Advances the clock to `now_ns` (capture time) and appends every
    /// output block it makes final.
    pub fn poll(&mut self, now_ns: i64, out: &mut Vec<i16>) {
        for idx in 0..2 {
            let mut chunks = std::mem::take(&mut self.legs[idx].scratch);
            self.legs[idx].playout.poll(now_ns, &mut chunks);
            self.place(idx, &mut chunks);
            self.legs[idx].scratch = chunks;
        }
        let mut ready = self.index(now_ns.saturating_sub(self.hold_ns()));
        if let (Some(limit), Some(frontier)) = (self.silence_limit(), self.frontier()) {
            if ready > limit {
                // The clock ran further ahead of all audio than a gap may last: re-anchor so
                // that it stands where the audio does, instead of emitting the silence up to it.
                self.resync(ready, frontier);
                ready = frontier;
            }
        }
        self.emit_until(ready, false, out);
    }

    /// End of the call: plays out everything left and appends the rest of
    /// the audio, up to the end of the last leg.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        for idx in 0..2 {
            let mut chunks = std::mem::take(&mut self.legs[idx].scratch);
            self.legs[idx].playout.flush(&mut chunks);
            self.place(idx, &mut chunks);
            self.legs[idx].scratch = chunks;
            self.end_run(idx);
        }
        let mut end = self.legs.iter().map(|l| l.end).max().unwrap_or(i64::MIN);
        if let Some(t) = self.last_arrival.filter(|_| end > i64::MIN) {
            // One packet time past the last arrival, as the packet's audio starts there. A
            // shortfall within the deepest jitter buffer is network delay of the last packets,
            // not missing audio, and is left alone.
            let tail = t + i64::from(self.cfg.rate) / 50;
            let jitter_room =
                i64::from(self.cfg.playout.max_depth_ms) * i64::from(self.cfg.rate) / 1000;
            if tail - end > jitter_room {
                end = tail;
            }
        }
        self.emit_until(end, true, out);
    }

    /// How far output trails the capture clock. Offline: the largest depth
    /// plus [`HOLD_MS`]. Live (adaptive depth): the deeper leg's current depth
    /// (including packets still held with an earlier, larger depth) plus
    /// [`LIVE_HOLD_MS`], so latency follows the jitter actually seen instead of
    /// the worst case.
    pub fn hold_ns(&self) -> i64 {
        if self.cfg.playout.adaptive {
            let depth = self.legs.iter().map(|l| l.playout.hold_ns()).max();
            depth.unwrap_or(0) + LIVE_HOLD_MS * 1_000_000
        } else {
            self.legs[0].playout.max_depth_ns() + HOLD_MS * 1_000_000
        }
    }

    /// Current jitter-buffer depth of `leg`, nanoseconds.
    pub fn depth_ns(&self, leg: Party) -> i64 {
        self.legs[leg_index(leg)].playout.depth_ns()
    }

    /// Output samples per channel emitted so far.
    pub fn emitted_frames(&self) -> u64 {
        let first = self.legs.iter().filter_map(|l| l.first).min();
        match (self.emitted, first) {
            (Some(e), Some(f)) => u64::try_from(e - f).unwrap_or(0),
            _ => 0,
        }
    }

    /// Capture time of the first output sample, once there is audio.
    pub fn start_ns(&self) -> Option<i64> {
        let first = self.legs.iter().filter_map(|l| l.first).min()?;
        let origin = self.origin_ns?;
        let ns = i128::from(first) * NS_PER_S / i128::from(self.cfg.rate);
        i64::try_from(ns).ok().map(|ns| origin.saturating_add(ns))
    }

    /// Output index of capture time `ns`, on the timeline as re-anchored so far.
    fn index(&self, ns: i64) -> i64 {
        self.index_with(ns, self.skipped)
    }

    fn index_with(&self, ns: i64, skipped: i64) -> i64 {
        let origin = self.origin_ns.unwrap_or(ns);
        let at = (i128::from(ns) - i128::from(origin)) * i128::from(self.cfg.rate) / NS_PER_S
            - i128::from(skipped);
        // Far beyond any frontier either way; the gap checks re-anchor from there.
        at.clamp(i128::from(i64::MIN / 4), i128::from(i64::MAX / 4)) as i64
    }

    /// How far audio has been laid out: the furthest of what was sent and what any leg
    /// wrote. `None` before anything was.
    fn frontier(&self) -> Option<i64> {
        let written = self
            .legs
            .iter()
            .map(|l| l.end)
            .max()
            .filter(|&e| e > i64::MIN);
        match (self.emitted, written) {
            (Some(e), Some(w)) => Some(e.max(w)),
            (e, w) => e.or(w),
        }
    }

    /// Where output stands: what was sent, or before anything was, where it will start.
    fn sent_from(&self) -> i64 {
        let first = self.legs.iter().filter_map(|l| l.first).min();
        self.emitted.or(first).unwrap_or(i64::MIN)
    }

    /// The longest silence kept, in output samples.
    fn max_gap(&self) -> i64 {
        i64::from(self.cfg.playout.max_gap_ms) * i64::from(self.cfg.rate) / 1000
    }

    /// The furthest output index silence may be laid out to now.
    fn silence_limit(&self) -> Option<i64> {
        self.frontier().map(|f| f.saturating_add(self.max_gap()))
    }

    /// Re-anchors the timeline so that what would have been at `from` is at `to`.
    fn resync(&mut self, from: i64, to: i64) {
        self.prev_skipped = Some(self.skipped);
        self.skipped = self.skipped.saturating_add(from.saturating_sub(to));
        self.resyncs += 1;
    }

    /// Where a chunk starting at capture time `start_ns` goes: where the clock puts it, unless
    /// that is more than a gap ahead of the frontier or more than a gap behind where output
    /// stands (then at the frontier: the audio continues, neither after a stretch of silence
    /// nor lost as late).
    fn gap_checked(&mut self, start_ns: i64) -> i64 {
        let ideal = self.index(start_ns);
        let Some(frontier) = self.frontier() else {
            return ideal;
        };
        let max_gap = self.max_gap();
        let ahead = |at: i64| at > frontier.saturating_add(max_gap);
        let behind = |at: i64| at < self.sent_from().saturating_sub(max_gap);
        if !ahead(ideal) && !behind(ideal) {
            return ideal;
        }
        if let Some(prev) = self.prev_skipped {
            let old = self.index_with(start_ns, prev);
            if !ahead(old) && !behind(old) {
                return old;
            }
        }
        // The audio continues where the output stands, with no silence for the jump: a
        // hostile sender alternating jumps must not turn each packet into seconds of output.
        self.resync(ideal, frontier);
        frontier
    }

    fn place(&mut self, idx: usize, chunks: &mut Vec<Chunk>) {
        for chunk in chunks.drain(..) {
            self.place_chunk(idx, &chunk);
        }
    }

    fn place_chunk(&mut self, idx: usize, chunk: &Chunk) {
        let mut ideal = self.gap_checked(chunk.start_ns);
        let rate = self.cfg.rate;
        let slip = i64::from(self.cfg.slip_ms) * i64::from(rate) / 1000;
        let continues = self.legs[idx].run.as_ref().is_some_and(|r| {
            r.rate == chunk.rate
                && r.expected_next(rate).saturating_sub(ideal).saturating_abs() <= slip
        });
        if !continues {
            self.end_run(idx);
            // The run's tail just written may be the first audio laid out: check against it.
            ideal = self.gap_checked(chunk.start_ns);
            self.legs[idx].run = Some(Run {
                rate: chunk.rate,
                resampler: (chunk.rate != rate)
                    .then(|| Resampler::new(chunk.rate, rate))
                    .flatten(),
                start: ideal,
                fed: 0,
                written: 0,
            });
        }
        let resampled = &mut self.resampled;
        resampled.clear();
        let floor = self.emitted;
        let leg = &mut self.legs[idx];
        let Some(run) = leg.run.as_mut() else {
            return;
        };
        run.fed += chunk.pcm.len() as u64;
        let samples: &[i16] = match run.resampler.as_mut() {
            Some(r) => {
                r.process(&chunk.pcm, resampled);
                resampled
            }
            None => &chunk.pcm,
        };
        let pos = run.start + run.written;
        run.written += samples.len() as i64;
        leg.write(pos, samples, floor);
    }

    /// Closes the leg's current run, writing the resampler's tail.
    fn end_run(&mut self, idx: usize) {
        let floor = self.emitted;
        let leg = &mut self.legs[idx];
        let Some(mut run) = leg.run.take() else {
            return;
        };
        if let Some(r) = run.resampler.as_mut() {
            let mut tail = Vec::new();
            r.finish(&mut tail);
            leg.write(run.start + run.written, &tail, floor);
        }
    }

    fn emit_until(&mut self, limit: i64, partial: bool, out: &mut Vec<i16>) {
        let start = match self.emitted {
            Some(e) => e,
            None => match self.legs.iter().filter_map(|l| l.first).min() {
                Some(f) => f,
                None => return,
            },
        };
        let block = i64::from(self.cfg.block_ms.max(1)) * i64::from(self.cfg.rate) / 1000;
        // Whoever asks, output never runs more than a gap past the audio laid out.
        let limit = self.silence_limit().map_or(limit, |l| limit.min(l));
        let mut pos = start;
        while pos < limit {
            if let Some(next) = self.next_audio(pos) {
                if next.saturating_sub(pos) > self.max_gap() {
                    // Nothing laid out for longer than a gap: output skips to the audio (a
                    // resync) rather than walking the silence, whatever put the audio there.
                    self.resyncs += 1;
                    pos = next.min(limit);
                    self.emitted = Some(pos);
                    continue;
                }
            }
            let n = if pos + block <= limit {
                block
            } else if partial {
                limit - pos
            } else {
                break;
            };
            self.emit_block(pos, usize::try_from(n).unwrap_or(0), out);
            pos += n;
            self.emitted = Some(pos);
        }
    }

    /// Where the earliest audio written at or after `pos` starts, in either leg.
    fn next_audio(&self, pos: i64) -> Option<i64> {
        self.legs
            .iter()
            .filter(|l| l.first.is_some() && !l.buf.is_empty())
            .map(|l| l.base.max(pos))
            .min()
    }

    fn emit_block(&mut self, pos: i64, n: usize, out: &mut Vec<i16>) {
        let [a, b] = &mut self.scratch;
        let [caller, called] = &mut self.legs;
        caller.take(pos, n, a);
        called.take(pos, n, b);
        match self.cfg.mode {
            MixMode::Stereo => {
                let at = out.len();
                out.resize(at + 2 * n, 0);
                if let Some(dst) = out.get_mut(at..) {
                    for ((frame, &l), &r) in dst.chunks_exact_mut(2).zip(a.iter()).zip(b.iter()) {
                        frame.copy_from_slice(&[l, r]);
                    }
                }
            }
            MixMode::Mono => out.extend(
                a.iter()
                    .zip(b.iter())
                    .map(|(&l, &r)| (i32::from(l) + i32::from(r)).clamp(-32768, 32767) as i16),
            ),
            MixMode::Caller => out.extend_from_slice(a),
            MixMode::Called => out.extend_from_slice(b),
        }
    }
}

fn leg_index(leg: Party) -> usize {
    match leg {
        Party::Caller => 0,
        Party::Called => 1,
    }
}
