//! The listeners of one call in one audio format: one audio engine, shared by every subscriber
//! that asked for the same format from now on, and a bounded queue to each subscriber's
//! connection. The pipeline thread feeds it; a subscriber whose queue is full is dropped and
//! counted, never waited for. Sharing the engine keeps the pipeline's work per call, not per
//! listener: 500 people listening to one call cost one decode.

use crate::counters::SensorCounters;
use crate::queue::{FrameTx, SendError};
use crate::rewind::{KeptPacket, RewindSnapshot};
use earshot_audio::{
    CallAudio, Codec, DecoderOptions, MixConfig, MixMode, OpusEncoder, PlayoutConfig, RtpIn,
};
use earshot_core::{Party, RtpPacket};
use earshot_manager::stream_proto::{
    AudioEncoding, AudioFrame, CallEvent, EndFrame, EndReason, Frame, ListenState, OpusFrame,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A party whose last packet is older than this no longer counts as sending media.
const MEDIA_QUIET: Duration = Duration::from_secs(2);
/// How often a status other than `playing` is repeated: the keep-alive that tells a relay
/// (the player gives up on a stream silent for 10 s) that the sensor and the call are there.
const STATUS_REPEAT: Duration = Duration::from_secs(3);

/// Rewound packets decoded per listener per poll: enough to catch up many times faster than
/// real time, few enough that one rewind never holds up the fan-out's other listeners.
const REPLAY_BATCH: usize = 256;

/// Output block length: 20 ms, the usual RTP packet time, keeps frames small and latency low.
const BLOCK_MS: u32 = 20;

/// What a subscriber asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioFormat {
    pub rate: u32,
    pub channels: u8,
    pub encoding: AudioEncoding,
}

impl AudioFormat {
    /// 16-bit PCM at `rate`, `channels`.
    pub fn pcm(rate: u32, channels: u8) -> Self {
        AudioFormat {
            rate,
            channels,
            encoding: AudioEncoding::S16le,
        }
    }
}

/// Opus bit rate per channel for a stream rate: telephone audio at 8 kHz needs little; 16 kHz
/// stereo comes to 32 kbit/s (4 KB/s of packets, about 5 KB/s with the frames' heads), well
/// under the 64 kbit/s a supervisor on a VPN or a phone can be asked to spare.
fn opus_bitrate(rate: u32, channels: u8) -> i32 {
    let per_channel = match rate {
        8000 => 12_000,
        16000 => 16_000,
        _ => 32_000,
    };
    per_channel * i32::from(channels.max(1))
}

/// Turns a listener's 20 ms PCM blocks into Opus packets: one encoder per listener, and a
/// listener is shared by every subscriber of its call and format, so a call heard by 500
/// people in Opus is encoded once.
struct Compressor {
    encoder: OpusEncoder,
    /// The packet being built; reused, so encoding allocates only the packet sent.
    packet: Vec<u8>,
    /// A short last block padded to 20 ms (Opus takes whole frames only).
    padded: Vec<i16>,
}

impl Compressor {
    fn new(format: &AudioFormat) -> Result<Option<Self>, String> {
        if format.encoding != AudioEncoding::Opus {
            return Ok(None);
        }
        let bitrate = opus_bitrate(format.rate, format.channels);
        let encoder = OpusEncoder::new(format.rate, format.channels, bitrate)
            .map_err(|e| format!("cannot encode Opus: {e}"))?;
        Ok(Some(Compressor {
            encoder,
            packet: Vec::with_capacity(1500),
            padded: Vec::new(),
        }))
    }

    /// One block (`block` samples when whole; a shorter last one is padded with silence).
    fn encode(&mut self, samples: &[i16], block: usize) -> Option<Vec<u8>> {
        let pcm = if samples.len() < block {
            self.padded.clear();
            self.padded.extend_from_slice(samples);
            self.padded.resize(block, 0);
            &self.padded[..]
        } else {
            samples
        };
        self.packet.clear();
        match self.encoder.encode(pcm, &mut self.packet) {
            Ok(n) if n > 0 => Some(self.packet.clone()),
            _ => None,
        }
    }
}

/// Every subscriber of a listener is gone (closed, or dropped for falling behind), so the
/// listener can be removed. Drops are counted where they happen, in [`Listener::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSubscribers;

/// Why one subscriber was removed.
enum Gone {
    /// Its queue was full: it fell behind.
    Overflow,
    /// All listeners' queues together were at the memory budget.
    OverBudget,
    /// Its receiver was dropped: the connection closed.
    Closed,
}

/// A listener that started in the past catching up: the call's rewind, read a batch at a time
/// as its queue drains (never all at once: 60 s of 48 kHz stereo is 11 MB of frames), and the
/// live packets that arrive meanwhile, to play after it.
struct Replay {
    rewind: RewindSnapshot,
    live: VecDeque<KeptPacket>,
    live_bytes: usize,
}

pub struct Listener {
    subscribers: Vec<(u64, FrameTx)>,
    replay: Option<Replay>,
    /// The call ended while this listener was catching up: how to end it once it has.
    ending: Option<(EndReason, Option<String>)>,
    /// False for a listener started from the rewind buffer: its output lags the live one.
    shareable: bool,
    /// Output before this capture time is decoded (warming the decoders) but not sent: the
    /// rewind before where the subscriber asked to start.
    mute_before: Option<i64>,
    /// True once the listener plays live packets as they come (not catching up on a rewind):
    /// only then is how late its frames leave worth measuring.
    live: bool,
    counters: Arc<SensorCounters>,
    audio: CallAudio,
    format: AudioFormat,
    /// Set when the subscribers asked for Opus.
    compressor: Option<Compressor>,
    seq: u32,
    pending: Vec<i16>,
    scratch: Vec<i16>,
    codecs: HashMap<u8, Codec>,
    /// Per leg: the decoder errors already counted, and the codec the leg last carried (the
    /// audio engine counts errors per leg; they are put down to the leg's current codec).
    decode_errors_seen: [u64; 2],
    leg_codec: [Option<Codec>; 2],
    /// Timeline resyncs of `audio` already counted.
    resyncs_seen: u64,
    /// Per payload type: whether the sensor can decode its codec (looked up once per type).
    decodable: HashMap<u8, bool>,
    /// Per leg: when its last packet was decoded, and the codec it carries if that cannot be
    /// decoded.
    leg_seen: [Option<Instant>; 2],
    leg_undecodable: [Option<String>; 2],
    /// Per leg: its latest audio packet was SRTP (no key: silence is sent for it).
    leg_encrypted: [bool; 2],
    /// The call is on hold (told by the fan-out from the call's state and hold/resume events).
    on_hold: bool,
    /// The status last sent and when.
    status: Option<(Status, Instant)>,
}

/// What a `status` event says, less its time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Status {
    state: ListenState,
    codec: Option<String>,
    party: Option<&'static str>,
}

impl Listener {
    /// A listener from now on (`rewind` None: others asking for the same format may share it)
    /// or from the rewind buffer.
    pub fn new(
        id: u64,
        format: AudioFormat,
        tx: FrameTx,
        rewind: Option<RewindSnapshot>,
        counters: Arc<SensorCounters>,
    ) -> Result<Self, String> {
        let options = DecoderOptions::default();
        Self::with_decoder(id, format, tx, rewind, counters, options)
    }

    /// [`Self::new`] with the sensor's decoder options (`[codecs]`: the G.726 bit order).
    pub fn with_decoder(
        id: u64,
        format: AudioFormat,
        tx: FrameTx,
        rewind: Option<RewindSnapshot>,
        counters: Arc<SensorCounters>,
        decoder: DecoderOptions,
    ) -> Result<Self, String> {
        let shareable = rewind.is_none();
        Self::build(id, format, tx, rewind, shareable, counters, decoder)
    }

    /// A listener from now on whose decoders are first warmed on `prime`, the call's recent
    /// past (decoded, not sent), so a stateful codec sounds as it would have from the start.
    /// Others asking for the same format from now on may share it, even while it primes.
    pub fn from_now(
        id: u64,
        format: AudioFormat,
        tx: FrameTx,
        prime: RewindSnapshot,
        counters: Arc<SensorCounters>,
        decoder: DecoderOptions,
    ) -> Result<Self, String> {
        Self::build(id, format, tx, Some(prime), true, counters, decoder)
    }

    fn build(
        id: u64,
        format: AudioFormat,
        tx: FrameTx,
        rewind: Option<RewindSnapshot>,
        shareable: bool,
        counters: Arc<SensorCounters>,
        decoder: DecoderOptions,
    ) -> Result<Self, String> {
        let mute_before = rewind
            .as_ref()
            .filter(|r| r.play_from > r.since)
            .map(|r| r.play_from.nanos());
        let live = rewind.is_none();
        let mode = if format.channels == 2 {
            MixMode::Stereo
        } else {
            MixMode::Mono
        };
        let playout = PlayoutConfig::live().with_decoder(decoder);
        let cfg = MixConfig::new(format.rate, mode, playout).map_err(|e| e.to_string())?;
        let compressor = Compressor::new(&format)?;
        Ok(Listener {
            subscribers: vec![(id, tx)],
            replay: rewind.map(|rewind| Replay {
                rewind,
                live: VecDeque::new(),
                live_bytes: 0,
            }),
            ending: None,
            shareable,
            mute_before,
            live,
            counters,
            audio: CallAudio::new(cfg),
            format,
            compressor,
            seq: 0,
            pending: Vec::new(),
            scratch: Vec::new(),
            codecs: HashMap::new(),
            decode_errors_seen: [0; 2],
            resyncs_seen: 0,
            leg_codec: [None, None],
            decodable: HashMap::new(),
            leg_seen: [None, None],
            leg_undecodable: [None, None],
            leg_encrypted: [false, false],
            on_hold: false,
            status: None,
        })
    }

    /// True when a new subscriber asking for `format` from now on can join this listener.
    pub fn can_share(&self, format: &AudioFormat) -> bool {
        self.shareable && self.format == *format
    }

    pub fn subscribe(&mut self, id: u64, tx: FrameTx) {
        self.subscribers.push((id, tx));
        // Tell everyone (the newcomer included) the status again at the next tick.
        self.status = None;
    }

    /// Removes a subscriber; true if it was here.
    pub fn unsubscribe(&mut self, id: u64) -> bool {
        let before = self.subscribers.len();
        self.subscribers.retain(|(i, _)| *i != id);
        before != self.subscribers.len()
    }

    pub fn subscribers(&self) -> usize {
        self.subscribers.len()
    }

    /// Feeds one live RTP packet of the call; a listener still catching up keeps it for later,
    /// within its queue's byte bound (past it, it is not catching up: dropped and counted).
    pub fn push(&mut self, p: &RtpPacket<'_>) -> Result<(), NoSubscribers> {
        let limit = self.subscribers.first().map_or(0, |(_, tx)| tx.limit());
        if let Some(r) = &mut self.replay {
            let size = p.payload.len() + std::mem::size_of::<KeptPacket>();
            if r.live_bytes + size > limit {
                SensorCounters::add(&self.counters.listener_drops, 1);
                self.subscribers.clear();
                self.replay = None;
                return Err(NoSubscribers);
            }
            r.live_bytes += size;
            r.live.push_back(KeptPacket::from_rtp(p));
            return Ok(());
        }
        self.decode(p)
    }

    /// True while the listener is still playing its rewind.
    pub fn replaying(&self) -> bool {
        self.replay.is_some()
    }

    fn decode(&mut self, p: &RtpPacket<'_>) -> Result<(), NoSubscribers> {
        // SRTP without a key: the audio engine is told the codec cannot be decoded, so the
        // leg is silence in step with the call, never its ciphertext decoded into noise.
        let codec = if is_ciphertext(p) {
            Some(srtp_codec())
        } else {
            self.codec(p).cloned()
        };
        if !p.event {
            self.leg_encrypted[leg_slot(p.party)] = p.encrypted;
        }
        let (leg, input) = audio_input(p, codec.as_ref());
        if let Some(c) = codec
            .as_ref()
            .filter(|c| !matches!(c, Codec::TelephoneEvent))
        {
            let i = leg_slot(leg);
            self.leg_seen[i] = Some(Instant::now());
            let slot = &mut self.leg_codec[i];
            if slot.as_ref() != Some(c) {
                *slot = Some(c.clone());
                let ok = self.decodable.get(&p.payload_type).copied().unwrap_or(true);
                self.leg_undecodable[i] = (!ok).then(|| c.to_string());
            }
        }
        let mut out = std::mem::take(&mut self.scratch);
        self.audio.push(leg, &input, &mut out);
        self.count_audio_stats();
        let r = self.emit(&mut out, false, Some(p.ts.nanos()));
        self.scratch = out;
        r
    }

    /// One tick of the fan-out: a listener catching up decodes its next batch of rewound
    /// packets; a live one advances to the capture clock `now_ns`, when there is one yet.
    pub fn advance(&mut self, now_ns: Option<i64>) -> Result<(), NoSubscribers> {
        if let Some(mut r) = self.replay.take() {
            let done = self.catch_up(&mut r)?;
            if !done {
                self.replay = Some(r);
                return Ok(());
            }
            self.live = true;
            if let Some((reason, detail)) = self.ending.take() {
                self.finish(reason, detail);
                return Err(NoSubscribers);
            }
            return Ok(());
        }
        self.report_status(now_ns)?;
        match now_ns {
            Some(now) => self.poll(now),
            None => Ok(()),
        }
    }

    /// The call went on hold or was resumed.
    pub fn set_on_hold(&mut self, on_hold: bool) {
        self.on_hold = on_hold;
    }

    /// What the listener hears now, from what it was fed.
    fn current_status(&self) -> Status {
        let recent = self
            .leg_seen
            .map(|t| t.is_some_and(|t| t.elapsed() < MEDIA_QUIET));
        let state = |state| Status {
            state,
            codec: None,
            party: None,
        };
        if self.on_hold {
            return state(ListenState::OnHold);
        }
        if recent == [false, false] {
            return state(ListenState::WaitingForMedia);
        }
        let encrypted = [0, 1].map(|i| recent[i] && self.leg_encrypted[i]);
        if let Some((_, party)) = silent_party(encrypted) {
            return Status {
                state: ListenState::Encrypted,
                codec: None,
                party,
            };
        }
        let bad = [0, 1].map(|i| recent[i] && self.leg_undecodable[i].is_some());
        let Some((first, party)) = silent_party(bad) else {
            return state(ListenState::Playing);
        };
        Status {
            state: ListenState::Undecodable,
            codec: self.leg_undecodable[first].clone(),
            party,
        }
    }

    /// Sends a `status` event when the status changes, and again every few seconds while it
    /// is not `playing`: the stream's keep-alive while no audio flows.
    fn report_status(&mut self, now_ns: Option<i64>) -> Result<(), NoSubscribers> {
        let status = self.current_status();
        let due = match &self.status {
            None => true,
            Some((last, at)) => {
                *last != status
                    || (status.state != ListenState::Playing && at.elapsed() >= STATUS_REPEAT)
            }
        };
        if !due {
            return Ok(());
        }
        let ts_ns = now_ns.unwrap_or_else(|| earshot_wire::Timestamp::now().nanos());
        let frame = Frame::Event(CallEvent::Status {
            ts_ns,
            state: status.state,
            codec: status.codec.clone(),
            party: status.party.map(str::to_string),
        });
        self.status = Some((status, Instant::now()));
        self.send(frame)
    }

    /// Advances the listener's clock (capture time), releasing audio whose time has come.
    pub fn poll(&mut self, now_ns: i64) -> Result<(), NoSubscribers> {
        let mut out = std::mem::take(&mut self.scratch);
        self.audio.poll(now_ns, &mut out);
        self.count_audio_stats();
        let r = self.emit(&mut out, false, Some(now_ns));
        self.scratch = out;
        r
    }

    /// Decodes up to a batch of rewound (then held live) packets while the queue is less than
    /// half full, so a reader that keeps up gets the rewind fast and one that does not holds
    /// at most its queue. True once nothing is left to catch up on.
    fn catch_up(&mut self, r: &mut Replay) -> Result<bool, NoSubscribers> {
        for _ in 0..REPLAY_BATCH {
            let Some((_, tx)) = self.subscribers.first() else {
                return Err(NoSubscribers);
            };
            if tx.queued() >= tx.limit() / 2 {
                return Ok(false);
            }
            let mut result = Ok(());
            if r.rewind.next_packet(|p| result = self.decode(p)) {
                result?;
                continue;
            }
            let Some(k) = r.live.pop_front() else {
                return Ok(true);
            };
            r.live_bytes -= k.payload.len() + std::mem::size_of::<KeptPacket>();
            self.decode(&k.as_rtp(r.rewind.call))?;
        }
        Ok(r.rewind.is_empty() && r.live.is_empty())
    }

    /// Ends the listener when its call ended: at once, or, for one still catching up, once its
    /// rewind has played (the fan-out keeps polling it). True when it is finished now.
    pub fn finish_after_replay(&mut self, reason: EndReason, detail: Option<String>) -> bool {
        if self.replay.is_some() {
            self.ending = Some((reason, detail));
            return false;
        }
        self.finish(reason, detail);
        true
    }

    /// Plays out the rest and sends the end frame.
    pub fn finish(&mut self, reason: EndReason, detail: Option<String>) {
        let mut out = std::mem::take(&mut self.scratch);
        self.audio.finish(&mut out);
        let _ = self.emit(&mut out, true, None);
        let end = Frame::End(EndFrame { reason, detail });
        for (_, tx) in &self.subscribers {
            let _ = tx.try_send(end.clone());
        }
    }

    /// Sends a frame to every subscriber, dropping (and counting) those that fell behind;
    /// `Err` once no subscriber is left.
    pub fn send(&mut self, frame: Frame) -> Result<(), NoSubscribers> {
        let counters = &self.counters;
        self.subscribers
            .retain(|(_, tx)| match send(tx, frame.clone()) {
                Ok(()) => true,
                Err(Gone::Overflow) => {
                    SensorCounters::add(&counters.listener_drops, 1);
                    false
                }
                Err(Gone::OverBudget) => {
                    SensorCounters::add(&counters.listener_drops, 1);
                    SensorCounters::add(&counters.listener_budget_drops, 1);
                    false
                }
                Err(Gone::Closed) => false,
            });
        if self.subscribers.is_empty() {
            Err(NoSubscribers)
        } else {
            Ok(())
        }
    }

    fn codec(&mut self, p: &RtpPacket<'_>) -> Option<&Codec> {
        if !self.codecs.contains_key(&p.payload_type) {
            let codec = codec_of(p)?;
            if self.codecs.len() < 32 {
                let ok = earshot_audio::decoder_for(&codec).is_ok();
                self.decodable.insert(p.payload_type, ok);
                self.codecs.insert(p.payload_type, codec);
            }
        }
        self.codecs.get(&p.payload_type)
    }

    /// Adds the decoder errors the audio engine met since the last look to the metrics.
    /// Adds what the audio engine counted since the last call to the sensor's counters.
    fn count_audio_stats(&mut self) {
        let resyncs = self.audio.resyncs();
        if resyncs > self.resyncs_seen {
            SensorCounters::add(&self.counters.audio_resyncs, resyncs - self.resyncs_seen);
            self.resyncs_seen = resyncs;
        }
        self.count_decode_errors();
    }

    fn count_decode_errors(&mut self) {
        for leg in [Party::Caller, Party::Called] {
            let i = leg_slot(leg);
            let now = self.audio.stats(leg).malformed;
            let new = now.saturating_sub(self.decode_errors_seen[i]);
            if new > 0 {
                self.decode_errors_seen[i] = now;
                let other = Codec::Unsupported(String::new());
                let codec = self.leg_codec[i].as_ref().unwrap_or(&other);
                self.counters.metrics.decode_errors.add(codec, new);
            }
        }
    }

    /// Cuts the output into 20 ms frames stamped with the capture time of their first sample.
    /// `now_ns` is the capture clock, to measure how late live frames leave.
    fn emit(
        &mut self,
        out: &mut Vec<i16>,
        flush: bool,
        now_ns: Option<i64>,
    ) -> Result<(), NoSubscribers> {
        self.pending.append(out);
        let ch = usize::from(self.format.channels.max(1));
        let block = (self.format.rate * BLOCK_MS / 1000) as usize * ch;
        let ch64 = ch as u64;
        let first = self
            .audio
            .emitted_frames()
            .saturating_sub(self.pending.len() as u64 / ch64);
        let mut start = 0;
        while self.pending.len() - start >= block || (flush && start < self.pending.len()) {
            let end = (start + block).min(self.pending.len());
            if let Some(mute) = self.mute_before {
                // Priming output: it warmed the decoders, the subscriber did not ask for it.
                if self.capture_ts(first + end as u64 / ch64) <= mute {
                    start = end;
                    continue;
                }
                self.mute_before = None;
            }
            let capture_ts_ns = self.capture_ts(first + start as u64 / ch64);
            let Some(frame) = self.frame(start..end, block, capture_ts_ns) else {
                start = end;
                continue;
            };
            self.seq = self.seq.wrapping_add(1);
            let timed = self.shareable && self.live && self.audio.start_ns().is_some();
            if let (true, Some(now)) = (timed, now_ns) {
                let last = self.capture_ts(first + end as u64 / ch64);
                let late = u64::try_from(now.saturating_sub(last)).unwrap_or(0);
                self.counters.metrics.frame_latency.observe_ns(late);
            }
            start = end;
            if self.send(frame).is_err() {
                self.pending.clear();
                return Err(NoSubscribers);
            }
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// The frame for `pending[range]`, PCM or Opus as asked; None if the encoder failed (the
    /// block is lost, as a dropped frame would be: the sequence number shows the gap).
    fn frame(
        &mut self,
        range: std::ops::Range<usize>,
        block: usize,
        capture_ts_ns: i64,
    ) -> Option<Frame> {
        let (rate, channels) = (self.format.rate, self.format.channels);
        let samples = &self.pending[range];
        let Some(c) = &mut self.compressor else {
            return Some(Frame::Audio(AudioFrame {
                seq: self.seq,
                capture_ts_ns,
                rate,
                channels,
                samples: samples.to_vec(),
            }));
        };
        match c.encode(samples, block) {
            Some(packet) => Some(Frame::Opus(OpusFrame {
                seq: self.seq,
                capture_ts_ns,
                rate,
                channels,
                packet,
            })),
            None => {
                SensorCounters::add(&self.counters.listener_encode_errors, 1);
                self.seq = self.seq.wrapping_add(1);
                None
            }
        }
    }

    /// Capture time of output sample frame `index`.
    fn capture_ts(&self, index: u64) -> i64 {
        let Some(origin) = self.audio.start_ns() else {
            return 0;
        };
        origin + (i128::from(index) * 1_000_000_000 / i128::from(self.format.rate)) as i64
    }
}

/// The first leg (0 caller, 1 called) of `silent` (legs whose audio is lost), and the party to
/// name: one only when only its audio is lost (or only it sends); none when both are.
fn silent_party(silent: [bool; 2]) -> Option<(usize, Option<&'static str>)> {
    let first = (0..2).find(|&i| silent[i])?;
    let name = if first == 0 { "caller" } else { "called" };
    Some((first, (silent != [true, true]).then_some(name)))
}

fn leg_slot(leg: Party) -> usize {
    match leg {
        Party::Caller => 0,
        Party::Called => 1,
    }
}

/// An SRTP packet's payload, which no decoder may see without the key.
fn is_ciphertext(p: &RtpPacket<'_>) -> bool {
    p.encrypted && !p.event
}

/// What SRTP media is to the audio engine without a key: a codec it cannot decode, so the
/// party is silence in step with the call.
fn srtp_codec() -> Codec {
    Codec::Unsupported(SRTP.into())
}

/// The name SRTP media goes by where codecs are named (the audio engine's unsupported list).
pub const SRTP: &str = "SRTP";

/// The codec to decode a call's RTP packet with: SRTP without a key (silence), else
/// [`codec_of`].
pub fn audio_codec(p: &RtpPacket<'_>) -> Option<Codec> {
    if is_ciphertext(p) {
        Some(srtp_codec())
    } else {
        codec_of(p)
    }
}

/// The codec of a call's RTP packet: its SDP format, else the RFC 3551 static table.
pub fn codec_of(p: &RtpPacket<'_>) -> Option<Codec> {
    p.format
        .map(|f| Codec::from_sdp(&f.encoding, f.clock_rate, f.channels, f.fmtp.as_deref()))
        .or_else(|| Codec::from_static_pt(p.payload_type))
}

/// An engine packet as the audio engine takes it: which party, and the packet itself. The
/// audio crate does not depend on the call engine, so this glue lives here, at the edge.
pub fn audio_input<'a>(p: &RtpPacket<'a>, codec: Option<&'a Codec>) -> (Party, RtpIn<'a>) {
    let leg = p.party;
    let input = RtpIn {
        arrival_ns: p.ts.nanos(),
        ssrc: p.ssrc,
        seq: p.seq,
        timestamp: p.timestamp,
        payload_type: p.payload_type,
        marker: p.marker,
        payload: p.payload,
        codec,
        event: p.event,
    };
    (leg, input)
}

fn send(tx: &FrameTx, frame: Frame) -> Result<(), Gone> {
    match tx.try_send(frame) {
        Ok(()) => Ok(()),
        Err(SendError::Full) => Err(Gone::Overflow),
        Err(SendError::OverBudget) => Err(Gone::OverBudget),
        Err(SendError::Closed) => Err(Gone::Closed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{FrameRx, MemoryBudget};
    use earshot_core::PayloadFormat;
    use earshot_wire::Timestamp;

    const START_NS: i64 = 1_700_000_000_000_000_000;

    fn packet(seq: u16, pt: u8, payload: &[u8]) -> RtpPacket<'_> {
        RtpPacket {
            call: 1,
            party: Party::Caller,
            ts: Timestamp(START_NS + i64::from(seq) * 20_000_000),
            ssrc: 7,
            seq,
            timestamp: u32::from(seq) * 160,
            payload_type: pt,
            marker: seq == 0,
            payload,
            format: None,
            format_index: None,
            event: false,
            encrypted: false,
        }
    }

    fn queue(bytes: usize) -> (FrameTx, FrameRx) {
        crate::queue::channel(bytes, MemoryBudget::new(1 << 30))
    }

    fn listener(counters: &Arc<SensorCounters>) -> (Listener, FrameRx) {
        let (tx, rx) = queue(1 << 24);
        let format = AudioFormat::pcm(8000, 1);
        let l = Listener::new(1, format, tx, None, counters.clone()).expect("listener");
        (l, rx)
    }

    #[test]
    fn rejected_payloads_are_counted_under_their_codec() {
        let counters = Arc::new(SensorCounters::default());
        let (mut l, _rx) = listener(&counters);
        // G.729 frames are 10 bytes (plus an optional 2-byte SID): 7 bytes cannot be decoded.
        for seq in 0..20 {
            l.push(&packet(seq, 18, &[0x55; 7]))
                .expect("listener stays");
        }
        l.poll(START_NS + 2_000_000_000).expect("listener stays");
        let errors = counters.metrics.decode_errors.get("g729");
        assert!(
            errors >= 15,
            "{errors} decode errors counted for 20 bad packets"
        );
        assert_eq!(counters.metrics.decode_errors.get("other"), 0);
    }

    #[test]
    fn a_subscriber_that_falls_behind_is_dropped_and_counted_a_closed_one_is_not() {
        let counters = Arc::new(SensorCounters::default());
        let (mut l, mut fast) = listener(&counters);
        let (slow_tx, _slow) = queue(1000);
        l.subscribe(2, slow_tx);
        let (closed_tx, closed) = queue(1 << 24);
        l.subscribe(3, closed_tx);
        drop(closed);
        for seq in 0..50 {
            l.push(&packet(seq, 0, &[0xff; 160]))
                .expect("the fast subscriber keeps the listener");
        }
        assert_eq!(l.subscribers(), 1, "slow and closed subscribers removed");
        assert_eq!(SensorCounters::get(&counters.listener_drops), 1);
        let mut frames = 0;
        while let Some(f) = fast.try_recv() {
            frames += u64::from(matches!(f, Frame::Audio(_)));
        }
        assert!(frames > 2, "the fast subscriber got {frames} frames");
        drop(fast);
        let mut last = Ok(());
        for seq in 50..100 {
            last = l.push(&packet(seq, 0, &[0xff; 160]));
            if last.is_err() {
                break;
            }
        }
        assert_eq!(last, Err(NoSubscribers), "no subscriber left");
        assert_eq!(SensorCounters::get(&counters.listener_drops), 1);
    }

    /// Peak of a Goertzel scan over 100–2000 Hz in 10 Hz steps: the tone a signal carries.
    fn tone_hz(x: &[f32], rate: f64) -> f64 {
        let power = |hz: f64| {
            let w = 2.0 * std::f64::consts::PI * hz / rate;
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for &v in x {
                let s0 = f64::from(v) + 2.0 * w.cos() * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
        };
        (10..=200)
            .map(|k| f64::from(k) * 10.0)
            .max_by(|a, b| power(*a).total_cmp(&power(*b)))
            .unwrap_or(0.0)
    }

    /// 20 ms of a tone in G.711 A-law at 8 kHz, packet `seq` of a continuous signal.
    fn alaw_tone(hz: f64, seq: u16) -> Vec<u8> {
        (0..160)
            .map(|i| {
                let n = f64::from(seq) * 160.0 + f64::from(i);
                let v = (2.0 * std::f64::consts::PI * hz * n / 8000.0).sin() * 12000.0;
                earshot_audio::linear_to_alaw(v as i16)
            })
            .collect()
    }

    /// Asked for Opus, a listener sends kind-5 frames of 20 ms that a standard Opus decoder
    /// turns back into each party's tone on its own channel, a tenth of PCM's bytes or less;
    /// a second subscriber asking for the same shares the encoder (PCM ones do not).
    #[test]
    fn an_opus_listener_sends_20_ms_packets_that_decode_to_each_partys_tone() {
        let counters = Arc::new(SensorCounters::default());
        let (tx, mut rx) = queue(1 << 24);
        let opus = AudioFormat {
            rate: 16000,
            channels: 2,
            encoding: AudioEncoding::Opus,
        };
        let mut l = Listener::new(1, opus.clone(), tx, None, counters.clone()).expect("listener");
        assert!(l.can_share(&opus));
        assert!(
            !l.can_share(&AudioFormat::pcm(16000, 2)),
            "PCM and Opus listeners apart"
        );
        let (tx2, mut rx2) = queue(1 << 24);
        l.subscribe(2, tx2);
        for seq in 0..150u16 {
            let (a, b) = (alaw_tone(400.0, seq), alaw_tone(1000.0, seq));
            l.push(&packet(seq, 8, &a)).expect("listener stays");
            let mut called = packet(seq, 8, &b);
            called.party = Party::Called;
            called.ssrc = 8;
            l.push(&called).expect("listener stays");
        }
        l.poll(START_NS + 4_000_000_000).expect("listener stays");
        let mut decoder = earshot_audio::decoder_for(&Codec::Opus { channels: 2 }).expect("opus");
        let (mut pcm, mut frames, mut bytes, mut last_seq) = (Vec::new(), 0u32, 0usize, None);
        while let Some(f) = rx.try_recv() {
            let Frame::Opus(o) = f else {
                assert!(!matches!(f, Frame::Audio(_)), "no PCM in an Opus stream");
                continue;
            };
            assert_eq!((o.rate, o.channels), (16000, 2));
            if let Some(prev) = last_seq {
                assert_eq!(o.seq, prev + 1, "no gap");
            }
            last_seq = Some(o.seq);
            frames += 1;
            bytes += o.packet.len();
            let n = decoder
                .decode(&o.packet, &mut pcm)
                .expect("a valid Opus packet");
            assert_eq!(n, 960, "20 ms at the decoder's 48 kHz");
        }
        assert!(frames >= 140, "{frames} frames for 3 s");
        let per_second = bytes as f64 / (f64::from(frames) * 0.02);
        assert!(
            per_second <= 5000.0,
            "{per_second:.0} B/s of Opus, PCM would be 64000"
        );
        let mut shared = 0;
        while let Some(f) = rx2.try_recv() {
            shared += u32::from(matches!(f, Frame::Opus(_)));
        }
        assert_eq!(
            shared, frames,
            "the second subscriber gets the same packets"
        );
        // Past the first second (the encoder's and playout's start), each side's own tone.
        let skip = 48000 * 2;
        let side = |c: usize| -> Vec<f32> {
            pcm[skip..]
                .iter()
                .skip(c)
                .step_by(2)
                .map(|&v| f32::from(v))
                .collect()
        };
        let (left, right) = (side(0), side(1));
        assert_eq!(tone_hz(&left, 48000.0), 400.0, "caller on the left");
        assert_eq!(tone_hz(&right, 48000.0), 1000.0, "called on the right");
        let rms = |x: &[f32]| {
            (x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
        };
        assert!(
            rms(&left) > 3000.0 && rms(&right) > 3000.0,
            "both loud: {} {}",
            rms(&left),
            rms(&right)
        );
        assert_eq!(SensorCounters::get(&counters.listener_encode_errors), 0);
    }

    /// A rewind store holding 60 s of one party's G.711 at 20 ms, and the payload it repeats.
    fn sixty_seconds_kept() -> (crate::rewind::Rewind, [u8; 160]) {
        use crate::rewind::{Rewind, RewindLimits};
        let mut store = Rewind::new(RewindLimits {
            keep_ns: 120_000_000_000,
            budget_bytes: 1 << 30,
            per_call_bytes: 1 << 30,
        });
        let payload = [0xd5u8; 160];
        for seq in 0..3000 {
            store.push(&packet(seq, 8, &payload));
        }
        (store, payload)
    }

    /// A 48 kHz stereo listener of call 1 from the start of what `store` keeps.
    fn rewind_listener(
        store: &crate::rewind::Rewind,
        tx: &FrameTx,
        counters: &Arc<SensorCounters>,
    ) -> Listener {
        let format = AudioFormat::pcm(48000, 2);
        let rewind = store.snapshot(1, Timestamp(i64::MIN));
        Listener::new(1, format, tx.clone(), Some(rewind), counters.clone()).expect("listener")
    }

    /// A listener from the rewind decodes it a batch at a time as its queue drains: it never
    /// holds more than its byte bound, plays every rewound packet, then the live ones held
    /// back meanwhile, in order.
    #[test]
    fn a_rewind_is_played_as_fast_as_it_is_read_within_the_queue_bound() {
        let counters = Arc::new(SensorCounters::default());
        let (store, payload) = sixty_seconds_kept();
        let limit = 256 * 1024;
        let (tx, mut rx) = queue(limit);
        let mut l = rewind_listener(&store, &tx, &counters);
        // Live packets arriving while it catches up are held, not decoded yet.
        for seq in 3000..3050 {
            l.push(&packet(seq, 8, &payload)).expect("held");
        }
        let mut samples = 0usize;
        let mut ticks = 0;
        while l.replaying() {
            l.advance(None).expect("the listener stays");
            assert!(tx.queued() <= limit, "{} bytes queued", tx.queued());
            while let Some(f) = rx.try_recv() {
                if let Frame::Audio(a) = f {
                    samples += a.samples.len() / 2;
                }
            }
            ticks += 1;
            assert!(ticks < 10_000, "the rewind never finished");
        }
        // 61 s went in; the playout holds back a little at the end until the clock moves.
        let seconds = samples as f64 / 48000.0;
        assert!((59.0..=61.1).contains(&seconds), "{seconds} s played");
        assert_eq!(SensorCounters::get(&counters.listener_drops), 0);
    }

    #[test]
    fn a_rewind_listener_that_is_not_read_holds_its_bound_then_is_dropped() {
        let counters = Arc::new(SensorCounters::default());
        let (store, payload) = sixty_seconds_kept();
        let limit = 64 * 1024;
        let (tx, _rx) = queue(limit);
        let mut l = rewind_listener(&store, &tx, &counters);
        for _ in 0..100 {
            l.advance(None).expect("waiting for its reader");
        }
        assert!(tx.queued() <= limit, "{} bytes queued", tx.queued());
        assert!(l.replaying());
        // Live packets keep coming; past the bound the listener is dropped and counted.
        let mut result = Ok(());
        for seq in 3000..10_000 {
            result = l.push(&packet(seq as u16, 8, &payload));
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(NoSubscribers));
        assert_eq!(SensorCounters::get(&counters.listener_drops), 1);
    }

    fn statuses(rx: &mut FrameRx) -> Vec<(ListenState, Option<String>, Option<String>)> {
        let mut out = Vec::new();
        while let Some(f) = rx.try_recv() {
            if let Frame::Event(CallEvent::Status {
                state,
                codec,
                party,
                ..
            }) = f
            {
                out.push((state, codec, party));
            }
        }
        out
    }

    /// SRTP without a key: the listener says `encrypted` (naming the party when only one
    /// side's media is SRTP) and sends silence for it, never the ciphertext decoded as G.711
    /// (here the payload is a clear tone: decoding it would be heard).
    #[test]
    fn srtp_media_is_reported_encrypted_and_sent_as_silence() {
        let counters = Arc::new(SensorCounters::default());
        let (mut l, mut rx) = listener(&counters);
        for seq in 0..100u16 {
            let tone = alaw_tone(400.0, seq);
            let mut p = packet(seq, 8, &tone);
            p.encrypted = true;
            l.push(&p).expect("listener stays");
            p.party = Party::Called;
            p.ssrc = 9;
            l.push(&p).expect("listener stays");
        }
        l.advance(Some(START_NS + 2_000_000_000))
            .expect("listener stays");
        let (mut samples, mut loud, mut states) = (0usize, 0usize, Vec::new());
        while let Some(f) = rx.try_recv() {
            match f {
                Frame::Audio(a) => {
                    samples += a.samples.len();
                    loud += a.samples.iter().filter(|s| s.unsigned_abs() > 64).count();
                }
                Frame::Event(CallEvent::Status { state, party, .. }) => states.push((state, party)),
                _ => {}
            }
        }
        assert!(
            samples > 8000,
            "the call's time still passes: {samples} samples"
        );
        assert_eq!(loud, 0, "silence, not the payload decoded");
        assert_eq!(
            states.last(),
            Some(&(ListenState::Encrypted, None)),
            "{states:?}"
        );

        // The called party in the clear, the caller in SRTP: only the caller is named.
        let (mut l, mut rx) = listener(&counters);
        for seq in 0..20u16 {
            let tone = alaw_tone(400.0, seq);
            let mut p = packet(seq, 8, &tone);
            p.encrypted = true;
            l.push(&p).expect("listener stays");
            let mut called = packet(seq, 8, &tone);
            called.party = Party::Called;
            called.ssrc = 9;
            l.push(&called).expect("listener stays");
        }
        l.advance(Some(START_NS)).expect("listener stays");
        let last = statuses(&mut rx).pop();
        assert_eq!(
            last,
            Some((ListenState::Encrypted, None, Some("caller".into())))
        );
    }

    /// The status follows what the listener is fed: nothing (waiting), G.711 (playing), hold,
    /// and a caller switching to AMR while the called party stays on G.711.
    #[test]
    fn the_status_says_waiting_playing_on_hold_and_which_party_cannot_be_decoded() {
        let counters = Arc::new(SensorCounters::default());
        let (mut l, mut rx) = listener(&counters);
        l.advance(None).expect("listener stays");
        let waiting = (ListenState::WaitingForMedia, None, None);
        assert_eq!(statuses(&mut rx), vec![waiting]);
        l.advance(None).expect("listener stays");
        assert!(
            statuses(&mut rx).is_empty(),
            "sent again only on change or after 3 s"
        );

        l.push(&packet(0, 0, &[0xff; 160])).expect("listener stays");
        l.advance(Some(START_NS)).expect("listener stays");
        assert_eq!(statuses(&mut rx), vec![(ListenState::Playing, None, None)]);

        l.set_on_hold(true);
        l.advance(Some(START_NS)).expect("listener stays");
        assert_eq!(statuses(&mut rx), vec![(ListenState::OnHold, None, None)]);
        l.set_on_hold(false);

        let evs = PayloadFormat {
            pt: 96,
            encoding: "EVS".into(),
            clock_rate: 16000,
            channels: 1,
            encrypted: false,
            fmtp: None,
        };
        let payload = [0xf0, 0x3c, 0, 0];
        let mut p = packet(1, 96, &payload);
        p.format = Some(&evs);
        l.push(&p).expect("listener stays");
        let mut called = packet(2, 0, &[0xff; 160]);
        called.party = Party::Called;
        called.ssrc = 9;
        l.push(&called).expect("listener stays");
        l.advance(Some(START_NS)).expect("listener stays");
        let undecodable = (
            ListenState::Undecodable,
            Some("EVS".to_string()),
            Some("caller".to_string()),
        );
        assert_eq!(statuses(&mut rx), vec![undecodable]);
    }

    #[test]
    fn live_frames_are_timed_from_capture_to_departure() {
        let counters = Arc::new(SensorCounters::default());
        let (mut l, mut rx) = listener(&counters);
        for seq in 0..50 {
            l.push(&packet(seq, 0, &[0xff; 160]))
                .expect("listener stays");
        }
        let mut frames = 0;
        while let Some(f) = rx.try_recv() {
            frames += u64::from(matches!(f, Frame::Audio(_)));
        }
        let h = counters.metrics.frame_latency.snapshot();
        assert!(frames > 0);
        assert_eq!(h.count, frames, "every live frame is timed once");
        // Frames wait for the playout hold (tens of milliseconds), never seconds.
        let mean = h.sum_seconds / h.count as f64;
        assert!((0.0..1.0).contains(&mean), "mean latency {mean} s");
        assert_eq!(counters.metrics.decode_errors.get("pcmu"), 0);
    }
}
