//! Playout of one leg (one sender) of a call: a jitter buffer that turns RTP
//! packets, in whatever order and timing they were captured, into decoded
//! PCM chunks placed on the capture clock.
//!
//! Placement: every source (SSRC) keeps an anchor mapping its RTP timestamps
//! to capture time. The anchor follows the lower envelope of
//! `arrival - rtp_time` (the least-delayed packets), because network delay
//! only ever adds to the send time; jitter therefore does not move audio.
//! It is re-established on a new SSRC, on a timestamp jump, on a clock-rate
//! change, and when the sender clock has drifted from the capture clock by
//! more than `drift_ms` (seen over a window of packets, so that one delayed
//! packet does not trigger it).
//!
//! Release: a packet is decoded once the capture clock passes its place plus
//! the buffer depth; packets arriving after their place was played are late
//! and dropped. Depth is fixed (offline) or follows the observed jitter
//! (live). The buffer never holds more than `max_packets`: beyond that the
//! oldest packet is released early.

use crate::{decoder_for, decoder_with, Codec, Decoder, DecoderOptions, Unsupported};
use std::collections::BTreeMap;

const NS_PER_S: i64 = 1_000_000_000;
const NS_PER_MS: i64 = 1_000_000;
/// Packets over which the smallest transit offset is taken before deciding
/// that the sender clock runs slow.
const DRIFT_WINDOW: u32 = 50;
/// ...or over this much capture time, whichever is shorter.
const DRIFT_WINDOW_NS: i64 = 1000 * NS_PER_MS;
/// An offset beyond this is a timestamp jump, not drift or jitter.
const JUMP_NS: i64 = 500 * NS_PER_MS;
/// Assumed packet duration when nothing better is known.
const DEFAULT_FRAME_MS: i64 = 20;

/// One RTP packet for [`Playout`]: the fields of a captured packet that
/// matter for audio, plus the codec its payload type maps to.
#[derive(Debug, Clone, Copy)]
pub struct RtpIn<'a> {
    /// Capture time, nanoseconds on any fixed epoch.
    pub arrival_ns: i64,
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    pub marker: bool,
    pub payload: &'a [u8],
    /// `None` when the payload type maps to no known format.
    pub codec: Option<&'a Codec>,
    /// RFC 4733 telephone-event: never audio.
    pub event: bool,
}

/// Jitter-buffer tuning.
#[derive(Debug, Clone)]
pub struct PlayoutConfig {
    /// Fixed depth, or the smallest depth when adaptive.
    pub depth_ms: u32,
    /// Follow the observed jitter (live use) instead of a fixed depth.
    pub adaptive: bool,
    pub max_depth_ms: u32,
    /// Upper bound on buffered packets (memory bound).
    pub max_packets: usize,
    /// Re-anchor when the sender clock has drifted this far from capture time.
    pub drift_ms: u32,
    /// Longest loss filled by the codec's concealment; longer gaps are silence.
    pub max_conceal_ms: u32,
    /// Longest silence-suppressed period filled with comfort noise.
    pub max_cn_ms: u32,
    /// Longest stretch of capture time without audio that the mixer keeps as silence; a
    /// longer one (a hold without RTP, or a time jump in the capture or the RTP clock, either
    /// way) is cut out of the output and the timeline re-anchored, so no time jump makes the
    /// mixer allocate or emit in proportion to its size.
    pub max_gap_ms: u32,
    /// How payloads are read where devices disagree with the specifications (G.726 bit order).
    pub decoder: DecoderOptions,
}

impl PlayoutConfig {
    /// The same with these decoder options.
    pub fn with_decoder(mut self, decoder: DecoderOptions) -> Self {
        self.decoder = decoder;
        self
    }

    /// Small fixed depth: offline the whole capture is known, so depth only
    /// decides how much reordering and jitter is absorbed.
    pub fn offline() -> Self {
        Self {
            depth_ms: 80,
            adaptive: false,
            max_depth_ms: 80,
            max_packets: 512,
            drift_ms: 40,
            max_conceal_ms: 1000,
            max_cn_ms: 10_000,
            max_gap_ms: 5_000,
            decoder: DecoderOptions::default(),
        }
    }

    /// Adaptive depth between 20 and 300 ms for listening while a call runs. The floor is one
    /// packet of the usual 20 ms ptime: on a clean network that is all the reordering room
    /// needed, and every millisecond here is a millisecond of listening delay; jitter raises
    /// the depth (twice the smoothed jitter + 10 ms).
    pub fn live() -> Self {
        Self {
            depth_ms: 20,
            adaptive: true,
            max_depth_ms: 300,
            // A listener's queue holds 12 s of audio: one jump must never come near it.
            max_gap_ms: 1_000,
            ..Self::offline()
        }
    }
}

/// Decoded audio with its place on the capture clock. Mono.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Capture-clock time of the first sample.
    pub start_ns: i64,
    pub rate: u32,
    pub pcm: Vec<i16>,
}

/// What happened to the packets of a leg.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayoutStats {
    pub received: u64,
    pub played: u64,
    pub late: u64,
    pub duplicate: u64,
    /// Released before their time because the buffer was full.
    pub overflow: u64,
    pub malformed: u64,
    pub events: u64,
    pub concealed_samples: u64,
    /// Codecs met that cannot be decoded (their time is silence).
    pub unsupported: Vec<String>,
}

struct Pending {
    epoch: u32,
    /// Anchor generation the placement was made with.
    anchor_gen: u32,
    ext_seq: i64,
    ext_ts: i64,
    pos_ns: i64,
    release_ns: i64,
    clock: u32,
    pt: u8,
    codec: Option<Codec>,
    marker: bool,
    payload: Vec<u8>,
}

/// Receive-side view of one SSRC: sequence/timestamp extension and anchor.
struct Source {
    ssrc: u32,
    epoch: u32,
    seq: u16,
    ext_seq: i64,
    ts: u32,
    ext_ts: i64,
    clock: u32,
    anchor_ns: i64,
    anchor_ts: i64,
    window_min: i64,
    window_len: u32,
    window_start: Option<i64>,
    last_offset: i64,
    /// Bumped when the timestamp mapping restarts (not when it is refined).
    anchor_gen: u32,
}

impl Source {
    fn new(p: &RtpIn<'_>, epoch: u32, clock: u32) -> Self {
        Self {
            ssrc: p.ssrc,
            epoch,
            seq: p.seq,
            ext_seq: i64::from(p.seq),
            ts: p.timestamp,
            ext_ts: i64::from(p.timestamp),
            clock,
            anchor_ns: p.arrival_ns,
            anchor_ts: i64::from(p.timestamp),
            window_min: i64::MAX,
            window_len: 0,
            window_start: None,
            last_offset: 0,
            anchor_gen: 0,
        }
    }

    /// Extends 16-bit sequence and 32-bit timestamp relative to the highest
    /// seen, so wrap-around and reordering both come out right.
    fn extend(&mut self, seq: u16, ts: u32) -> (i64, i64) {
        let dseq = i64::from(seq.wrapping_sub(self.seq) as i16);
        let dts = i64::from(ts.wrapping_sub(self.ts) as i32);
        let ext_seq = self.ext_seq + dseq;
        let ext_ts = self.ext_ts + dts;
        if dseq > 0 {
            self.seq = seq;
            self.ext_seq = ext_seq;
        }
        if dts > 0 {
            self.ts = ts;
            self.ext_ts = ext_ts;
        }
        (ext_seq, ext_ts)
    }

    fn nominal_ns(&self, ext_ts: i64) -> i64 {
        let dt = i128::from(ext_ts - self.anchor_ts) * i128::from(NS_PER_S)
            / i128::from(self.clock.max(1));
        self.anchor_ns
            .saturating_add(i64::try_from(dt).unwrap_or(i64::MAX / 2))
    }

    fn reanchor(&mut self, arrival_ns: i64, ext_ts: i64) {
        self.anchor_ns = arrival_ns;
        self.anchor_ts = ext_ts;
        self.window_min = i64::MAX;
        self.window_len = 0;
        self.window_start = None;
        self.anchor_gen = self.anchor_gen.wrapping_add(1);
    }

    /// Places a packet, updating the anchor; returns its capture-clock time.
    fn place(&mut self, arrival_ns: i64, ext_ts: i64, marker: bool, drift_ns: i64) -> i64 {
        let offset = arrival_ns.saturating_sub(self.nominal_ns(ext_ts));
        self.last_offset = offset;
        if offset.saturating_abs() > JUMP_NS || (marker && offset > drift_ns) {
            self.reanchor(arrival_ns, ext_ts);
        } else if offset < 0 {
            // Earlier than the envelope: this packet saw less delay.
            self.anchor_ns = self.anchor_ns.saturating_add(offset);
        } else {
            self.window_min = self.window_min.min(offset);
            self.window_len += 1;
            let since = arrival_ns.saturating_sub(*self.window_start.get_or_insert(arrival_ns));
            if self.window_len >= DRIFT_WINDOW || since >= DRIFT_WINDOW_NS {
                self.close_window(drift_ns);
            }
        }
        self.nominal_ns(ext_ts)
    }

    /// Every packet of the window came late: the sender's clock is slower
    /// than the capture clock, so the mapping moves forward.
    fn close_window(&mut self, drift_ns: i64) {
        if self.window_len > 0 && self.window_min > drift_ns {
            self.anchor_ns = self.anchor_ns.saturating_add(self.window_min);
        }
        self.window_min = i64::MAX;
        self.window_len = 0;
        self.window_start = None;
    }
}

struct Active {
    pt: u8,
    dec: Box<dyn Decoder>,
}

/// The jitter buffer and decoder of one leg.
pub struct Playout {
    cfg: PlayoutConfig,
    buffer: BTreeMap<(u32, i64), Pending>,
    source: Option<Source>,
    next_epoch: u32,
    depth_ns: i64,
    jitter_ns: f64,
    /// Last released packet, (epoch, ext_seq): anything at or before it is late.
    played: Option<(u32, i64)>,
    /// RTP time and capture time where the last released audio ended.
    next_ts: Option<i64>,
    next_ns: i64,
    frame_ts: i64,
    active: Option<Active>,
    /// Set by a CN packet; fills the silence until the next audio.
    cn: Option<Box<dyn Decoder>>,
    stats: PlayoutStats,
}

impl Playout {
    pub fn new(cfg: PlayoutConfig) -> Self {
        let depth_ns = i64::from(cfg.depth_ms) * NS_PER_MS;
        Self {
            cfg,
            buffer: BTreeMap::new(),
            source: None,
            next_epoch: 0,
            depth_ns,
            jitter_ns: 0.0,
            played: None,
            next_ts: None,
            next_ns: 0,
            frame_ts: 0,
            active: None,
            cn: None,
            stats: PlayoutStats::default(),
        }
    }

    pub fn stats(&self) -> &PlayoutStats {
        &self.stats
    }

    /// Packets held right now.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Current depth in nanoseconds.
    pub fn depth_ns(&self) -> i64 {
        self.depth_ns
    }

    pub fn max_depth_ns(&self) -> i64 {
        i64::from(self.cfg.max_depth_ms.max(self.cfg.depth_ms)) * NS_PER_MS
    }

    /// How far behind the capture clock this leg's audio is complete: the current depth, or
    /// more while packets scheduled with an earlier, larger depth are still held (their audio
    /// is released that much after its place).
    pub fn hold_ns(&self) -> i64 {
        self.buffer
            .values()
            .map(|p| p.release_ns.saturating_sub(p.pos_ns))
            .fold(self.depth_ns, i64::max)
    }

    /// Takes one packet and appends the chunks that became due by its
    /// arrival time.
    pub fn push(&mut self, p: &RtpIn<'_>, out: &mut Vec<Chunk>) {
        self.stats.received += 1;
        if p.event || matches!(p.codec, Some(Codec::TelephoneEvent)) {
            self.stats.events += 1;
            self.poll(p.arrival_ns, out);
            return;
        }
        let clock = p.codec.map_or(8000, Codec::rtp_clock_rate).max(1);
        let drift_ns = i64::from(self.cfg.drift_ms) * NS_PER_MS;
        let source = self.source_for(p, clock);
        let epoch = source.epoch;
        let (ext_seq, ext_ts) = source.extend(p.seq, p.timestamp);
        let gen_before = source.anchor_gen;
        let pos_ns = source.place(p.arrival_ns, ext_ts, p.marker, drift_ns);
        let offset = source.last_offset;
        let anchor_gen = source.anchor_gen;
        if anchor_gen != gen_before && offset.saturating_abs() > JUMP_NS {
            // Capture time jumped (either way): what is held was placed on the old clock and
            // its release time may now never come (or come at once). Its timeline is over, so
            // it plays out now rather than blocking the packets of the new one behind it.
            self.release_before(epoch, anchor_gen, out);
        }
        self.adapt_depth(offset);
        if self.is_late_or_duplicate(epoch, ext_seq) {
            self.poll(p.arrival_ns, out);
            return;
        }
        let pending = Pending {
            epoch,
            anchor_gen,
            ext_seq,
            ext_ts,
            pos_ns,
            release_ns: pos_ns.saturating_add(self.depth_ns),
            clock,
            pt: p.payload_type,
            codec: p.codec.cloned(),
            marker: p.marker,
            payload: p.payload.to_vec(),
        };
        self.buffer.insert((epoch, ext_seq), pending);
        while self.buffer.len() > self.cfg.max_packets.max(1) {
            self.stats.overflow += 1;
            self.release_first(out);
        }
        self.poll(p.arrival_ns, out);
    }

    /// Releases every packet whose playout time has come by `now_ns`.
    pub fn poll(&mut self, now_ns: i64, out: &mut Vec<Chunk>) {
        while self
            .buffer
            .first_key_value()
            .is_some_and(|(_, p)| p.release_ns <= now_ns)
        {
            self.release_first(out);
        }
    }

    /// Releases the held packets placed with an older anchor of `epoch`'s source (or of an
    /// older source), in order.
    fn release_before(&mut self, epoch: u32, anchor_gen: u32, out: &mut Vec<Chunk>) {
        while self
            .buffer
            .first_key_value()
            .is_some_and(|(_, p)| p.epoch != epoch || p.anchor_gen != anchor_gen)
        {
            self.release_first(out);
        }
    }

    /// Releases everything (end of capture).
    pub fn flush(&mut self, out: &mut Vec<Chunk>) {
        // No more evidence will come: a drift seen so far is acted on now,
        // so that the end of the leg is placed right.
        let drift_ns = i64::from(self.cfg.drift_ms) * NS_PER_MS;
        if let Some(s) = self.source.as_mut() {
            s.close_window(drift_ns);
        }
        while !self.buffer.is_empty() {
            self.release_first(out);
        }
    }

    fn source_for(&mut self, p: &RtpIn<'_>, clock: u32) -> &mut Source {
        let fresh = match &self.source {
            Some(s) => s.ssrc != p.ssrc,
            None => true,
        };
        if fresh {
            self.source = Some(Source::new(p, self.next_epoch, clock));
            self.next_epoch = self.next_epoch.wrapping_add(1);
        }
        let source = self.source.get_or_insert_with(|| Source::new(p, 0, clock));
        if source.clock != clock {
            // A codec switch to another RTP clock: timestamps restart in new
            // units, so the mapping to capture time starts again too.
            let (_, ext_ts) = source.extend(p.seq, p.timestamp);
            source.clock = clock;
            source.reanchor(p.arrival_ns, ext_ts);
        }
        source
    }

    fn adapt_depth(&mut self, offset: i64) {
        if !self.cfg.adaptive {
            return;
        }
        // RFC 3550-style smoothing of how far packets sit above the envelope.
        let d = offset.max(0) as f64;
        self.jitter_ns += (d - self.jitter_ns) / 16.0;
        let min = i64::from(self.cfg.depth_ms) * NS_PER_MS;
        let want = (2.0 * self.jitter_ns) as i64 + 10 * NS_PER_MS;
        self.depth_ns = want.clamp(min, self.max_depth_ns());
    }

    fn is_late_or_duplicate(&mut self, epoch: u32, ext_seq: i64) -> bool {
        if self.buffer.contains_key(&(epoch, ext_seq)) {
            self.stats.duplicate += 1;
            return true;
        }
        match self.played {
            Some((e, s)) if e == epoch && ext_seq <= s => {
                self.stats.late += 1;
                true
            }
            // A packet of a source we already left: its time has passed.
            Some((e, _)) if epoch < e => {
                self.stats.late += 1;
                true
            }
            _ => false,
        }
    }

    fn release_first(&mut self, out: &mut Vec<Chunk>) {
        let Some((_, mut p)) = self.buffer.pop_first() else {
            return;
        };
        // The anchor has usually been refined by the packets that arrived
        // while this one waited: place it with the better estimate.
        if let Some(s) = &self.source {
            if s.epoch == p.epoch && s.anchor_gen == p.anchor_gen {
                p.pos_ns = s.nominal_ns(p.ext_ts);
            }
        }
        if self.played.is_none_or(|(e, _)| e != p.epoch) {
            // New source: its decoder state and timeline start afresh.
            self.next_ts = None;
            self.active = None;
            self.cn = None;
        }
        self.played = Some((p.epoch, p.ext_seq));
        self.stats.played += 1;
        self.fill_gap(&p, out);
        match &p.codec {
            Some(Codec::Cn { rate }) => self.comfort_noise(&p, *rate),
            Some(codec) => self.play(&p, codec, out),
            None => self.silence(&p, format!("payload type {}", p.pt), out),
        }
    }

    /// Fills the time between the end of the previous audio and this packet:
    /// comfort noise after CN, nothing after a talkspurt break, else the
    /// codec's concealment of a loss.
    fn fill_gap(&mut self, p: &Pending, out: &mut Vec<Chunk>) {
        let Some(next_ts) = self.next_ts else {
            return;
        };
        // The RTP clock says how long the gap is, but it is the sender's word: after a
        // timestamp jump (re-anchored on arrival) it can claim days. When it claims more than
        // a jump beyond the capture time that passed since the previous audio ended, the
        // capture clock is believed, so the fill stays inside the time that really passed.
        let rtp_gap = p.ext_ts - next_ts;
        let since_ns = p.pos_ns.saturating_sub(self.next_ns);
        let gap = if ts_to_ns(rtp_gap, p.clock) > since_ns.saturating_add(JUMP_NS) {
            ns_to_ts(since_ns, p.clock)
        } else {
            rtp_gap
        };
        if gap <= 0 {
            return;
        }
        let start_ns = p.pos_ns - ts_to_ns(gap, p.clock);
        if let Some(cn) = self.cn.as_mut() {
            let limit = ms_to_ts(self.cfg.max_cn_ms, p.clock);
            let n = scale(gap.min(limit), cn.sample_rate(), p.clock);
            let mut pcm = Vec::with_capacity(n);
            cn.conceal(n, &mut pcm);
            out.push(mono_chunk(start_ns, cn.sample_rate(), 1, pcm));
            return;
        }
        if p.marker || gap > ms_to_ts(self.cfg.max_conceal_ms, p.clock) {
            return;
        }
        if let Some(active) = self.active.as_mut() {
            let rate = active.dec.sample_rate();
            let n = scale(gap, rate, p.clock);
            let mut pcm = Vec::with_capacity(n * usize::from(active.dec.channels()));
            active.dec.conceal(n, &mut pcm);
            self.stats.concealed_samples += n as u64;
            out.push(mono_chunk(start_ns, rate, active.dec.channels(), pcm));
        }
    }

    fn comfort_noise(&mut self, p: &Pending, rate: u32) {
        let cn = self.cn.get_or_insert_with(|| {
            decoder_for(&Codec::Cn { rate }).unwrap_or_else(|_| silent_decoder(rate))
        });
        if cn.decode(&p.payload, &mut Vec::new()).is_err() {
            self.stats.malformed += 1;
        }
        self.next_ts = Some(p.ext_ts);
        self.next_ns = p.pos_ns;
    }

    fn play(&mut self, p: &Pending, codec: &Codec, out: &mut Vec<Chunk>) {
        if self.active.as_ref().is_none_or(|a| a.pt != p.pt) {
            match decoder_with(codec, &self.cfg.decoder) {
                Ok(dec) => self.active = Some(Active { pt: p.pt, dec }),
                Err(Unsupported::Codec(name) | Unsupported::NotAudio(name)) => {
                    self.active = None;
                    return self.silence(p, name, out);
                }
            }
        }
        let frame_ts = self.frame_or_default(p.clock);
        let Some(active) = self.active.as_mut() else {
            return;
        };
        self.cn = None;
        let rate = active.dec.sample_rate();
        let channels = active.dec.channels();
        let mut pcm = Vec::new();
        let samples = match active.dec.decode(&p.payload, &mut pcm) {
            Ok(n) => n,
            Err(_) => {
                self.stats.malformed += 1;
                let n = scale(frame_ts, rate, p.clock);
                active.dec.conceal(n, &mut pcm);
                n
            }
        };
        let dur_ts = scale_back(samples, rate, p.clock);
        if dur_ts > 0 {
            self.frame_ts = dur_ts;
        }
        self.next_ts = Some(p.ext_ts + dur_ts);
        self.next_ns = p.pos_ns.saturating_add(ts_to_ns(dur_ts, p.clock));
        if !pcm.is_empty() {
            out.push(mono_chunk(p.pos_ns, rate, channels, pcm));
        }
    }

    /// A packet we cannot decode still occupies its time: silence, so the
    /// leg keeps its length, and the codec is reported.
    fn silence(&mut self, p: &Pending, name: String, out: &mut Vec<Chunk>) {
        if !self.stats.unsupported.contains(&name) {
            self.stats.unsupported.push(name);
        }
        self.cn = None;
        let dur_ts = self.frame_or_default(p.clock);
        let n = usize::try_from(dur_ts).unwrap_or(0);
        self.next_ts = Some(p.ext_ts + dur_ts);
        self.next_ns = p.pos_ns.saturating_add(ts_to_ns(dur_ts, p.clock));
        out.push(Chunk {
            start_ns: p.pos_ns,
            rate: p.clock,
            pcm: vec![0; n],
        });
    }

    fn frame_or_default(&self, clock: u32) -> i64 {
        if self.frame_ts > 0 {
            self.frame_ts
        } else {
            i64::from(clock) * DEFAULT_FRAME_MS / 1000
        }
    }
}

/// Decoder stand-in that only ever yields silence.
fn silent_decoder(rate: u32) -> Box<dyn Decoder> {
    struct Silent(u32);
    impl Decoder for Silent {
        fn decode(
            &mut self,
            _payload: &[u8],
            _out: &mut Vec<i16>,
        ) -> Result<usize, crate::DecodeError> {
            Ok(0)
        }
        fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
            out.resize(out.len() + samples, 0);
        }
        fn channels(&self) -> u8 {
            1
        }
        fn sample_rate(&self) -> u32 {
            self.0
        }
    }
    Box::new(Silent(rate.max(1)))
}

fn mono_chunk(start_ns: i64, rate: u32, channels: u8, pcm: Vec<i16>) -> Chunk {
    let pcm = if channels == 2 {
        pcm.chunks_exact(2)
            .map(|f| match f {
                [l, r] => ((i32::from(*l) + i32::from(*r)) / 2) as i16,
                _ => 0,
            })
            .collect()
    } else {
        pcm
    };
    Chunk {
        start_ns,
        rate,
        pcm,
    }
}

fn ts_to_ns(ts: i64, clock: u32) -> i64 {
    let ns = i128::from(ts) * i128::from(NS_PER_S) / i128::from(clock.max(1));
    i64::try_from(ns).unwrap_or(i64::MAX / 2)
}

fn ns_to_ts(ns: i64, clock: u32) -> i64 {
    let ts = i128::from(ns) * i128::from(clock) / i128::from(NS_PER_S);
    i64::try_from(ts).unwrap_or(if ts < 0 { i64::MIN / 2 } else { i64::MAX / 2 })
}

fn ms_to_ts(ms: u32, clock: u32) -> i64 {
    i64::from(ms) * i64::from(clock) / 1000
}

/// RTP-clock units to samples at `rate`.
fn scale(ts: i64, rate: u32, clock: u32) -> usize {
    let n = i128::from(ts.max(0)) * i128::from(rate) / i128::from(clock.max(1));
    usize::try_from(n).unwrap_or(0)
}

/// Samples at `rate` to RTP-clock units.
fn scale_back(samples: usize, rate: u32, clock: u32) -> i64 {
    let n = samples as i128 * i128::from(clock) / i128::from(rate.max(1));
    i64::try_from(n).unwrap_or(0)
}
