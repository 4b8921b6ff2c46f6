//! The built-in traffic of `earshot demo`: live SIP+RTP calls with real speech, generated at
//! wall-clock pace straight into the sensor's frame queue (no network, no capture).
//!
//! Each of the [`SLOTS`] runs one call after another, forever, in its own codec. A call is a
//! complete dialog (INVITE with SDP, 100, 180, 200 with SDP, ACK, RTP both ways every 20 ms,
//! BYE, 200) with a fresh Call-ID, so every call gets a fresh callreference. The two parties
//! take turns: the caller says their sentence, then the called party answers in another voice,
//! so left and right sound different. Calls are staggered so that, past the first round, only
//! one slot at a time is between calls; at start every slot begins a call within a second.
//!
//! The audio is encoded once per slot before the first call (a loop of the conversation per
//! party, as 20 ms packets); a call replays that loop from its start.

use crate::synth::Rng;
use anyhow::{anyhow, Result};
use earshot_audio::{
    decoder_for, linear_to_alaw, linear_to_ulaw, AmrWbEncoder, Codec, G722Encoder, OpusEncoder,
    Resampler,
};
use earshot_sensor::{FrameBatch, FrameSender, StopFlag};
use earshot_wire::{LinkType, Timestamp};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The speech, made by scripts/make-demo-speech.sh: 16 kHz mono µ-law, no header.
const VOICES: [(&str, &[u8]); 4] = [
    ("Alice", include_bytes!("../demo/alice.ulaw")),
    ("Bob", include_bytes!("../demo/bob.ulaw")),
    ("Carol", include_bytes!("../demo/carol.ulaw")),
    ("Dave", include_bytes!("../demo/dave.ulaw")),
];

/// Every slot's codec and its (caller, called) voices.
pub const SLOTS: [(DemoCodec, usize, usize); 5] = [
    (DemoCodec::Pcma, 0, 1),
    (DemoCodec::G722, 2, 3),
    (DemoCodec::Opus, 3, 0),
    (DemoCodec::Pcmu, 1, 2),
    // What VoLTE and VoWiFi carry: AMR-WB, octet-aligned, 23.85 kbit/s.
    (DemoCodec::AmrWb, 2, 0),
];

/// Length of a call once the demo runs (the first round is shorter, to stagger the slots).
const CALL: Duration = Duration::from_secs(40);
/// Pause between a slot's calls: shorter than CALL / SLOTS, so pauses never overlap.
const BETWEEN_CALLS: Duration = Duration::from_millis(1500);
/// Delay between slots' first INVITEs.
const START_STAGGER: Duration = Duration::from_millis(150);
/// Silence between turns of the conversation, in 20 ms packets.
const TURN_GAP_PACKETS: usize = 25;
const PTIME: Duration = Duration::from_millis(20);
const SIP_PORT: u16 = 5060;

// SIP steps of a call, with their time after the INVITE; RTP starts after the ACK.
const SIP_STEPS: [(Step, Duration); 5] = [
    (Step::Invite, Duration::ZERO),
    (Step::Trying, Duration::from_millis(2)),
    (Step::Ringing, Duration::from_millis(40)),
    (Step::Ok, Duration::from_millis(300)),
    (Step::Ack, Duration::from_millis(305)),
];
const RTP_START: Duration = Duration::from_millis(320);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Invite,
    Trying,
    Ringing,
    Ok,
    Ack,
    Bye,
    ByeOk,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DemoCodec {
    Pcma,
    Pcmu,
    G722,
    Opus,
    AmrWb,
}

impl DemoCodec {
    fn payload_type(self) -> u8 {
        match self {
            DemoCodec::Pcmu => 0,
            DemoCodec::Pcma => 8,
            DemoCodec::G722 => 9,
            DemoCodec::Opus => 111,
            DemoCodec::AmrWb => 96,
        }
    }

    /// The SDP rtpmap value (and fmtp, for Opus and AMR-WB).
    fn rtpmap(self) -> &'static str {
        match self {
            DemoCodec::Pcmu => "PCMU/8000",
            DemoCodec::Pcma => "PCMA/8000",
            // RFC 3551: G.722 is sampled at 16 kHz but its RTP clock says 8000.
            DemoCodec::G722 => "G722/8000",
            DemoCodec::Opus => "opus/48000/2",
            DemoCodec::AmrWb => "AMR-WB/16000",
        }
    }

    /// RTP timestamp units per 20 ms packet.
    fn ts_step(self) -> u32 {
        match self {
            DemoCodec::Opus => 960,
            DemoCodec::AmrWb => 320,
            _ => 160,
        }
    }

    /// Encodes 16 kHz PCM (a whole number of 20 ms packets) into one payload per packet.
    fn encode(self, pcm16k: &[i16]) -> Result<Vec<Vec<u8>>> {
        const PER_PACKET: usize = 320;
        match self {
            DemoCodec::Pcma | DemoCodec::Pcmu => {
                let law = if self == DemoCodec::Pcma {
                    linear_to_alaw
                } else {
                    linear_to_ulaw
                };
                let mut rs = Resampler::new(16000, 8000).ok_or_else(|| anyhow!("resampler"))?;
                let mut pcm8k = Vec::with_capacity(pcm16k.len() / 2);
                rs.process(pcm16k, &mut pcm8k);
                rs.finish(&mut pcm8k);
                pcm8k.resize(pcm16k.len() / 2, 0);
                Ok(pcm8k
                    .chunks(PER_PACKET / 2)
                    .map(|c| c.iter().map(|&s| law(s)).collect())
                    .collect())
            }
            DemoCodec::G722 => {
                let mut enc = G722Encoder::new();
                Ok(pcm16k
                    .chunks(PER_PACKET)
                    .map(|c| {
                        let mut p = Vec::with_capacity(160);
                        enc.encode(c, &mut p);
                        p
                    })
                    .collect())
            }
            DemoCodec::AmrWb => {
                let mut enc = AmrWbEncoder::new(8)?;
                pcm16k
                    .chunks(PER_PACKET)
                    .map(|c| -> Result<Vec<u8>> {
                        let mut p = Vec::with_capacity(62);
                        enc.encode_rtp(c, &mut p)?;
                        Ok(p)
                    })
                    .collect()
            }
            DemoCodec::Opus => {
                let mut enc = OpusEncoder::new(16000, 1, 24_000)?;
                pcm16k
                    .chunks(PER_PACKET)
                    .map(|c| -> Result<Vec<u8>> {
                        let mut p = Vec::with_capacity(128);
                        enc.encode(c, &mut p)?;
                        Ok(p)
                    })
                    .collect()
            }
        }
    }
}

/// A voice's sentence as 16 kHz PCM.
pub fn voice_pcm(index: usize) -> Result<Vec<i16>> {
    let (name, ulaw) = VOICES
        .get(index)
        .ok_or_else(|| anyhow!("no demo voice {index}"))?;
    let mut dec = decoder_for(&Codec::Pcmu).map_err(|e| anyhow!("{name}: {e}"))?;
    let mut pcm = Vec::with_capacity(ulaw.len());
    dec.decode(ulaw, &mut pcm)
        .map_err(|e| anyhow!("{name}: {e}"))?;
    Ok(pcm)
}

/// The conversation of a call as two 16 kHz tracks of equal length (a whole number of 20 ms
/// packets): caller talks, pause, called party answers, pause.
pub fn conversation(caller: &[i16], called: &[i16]) -> [Vec<i16>; 2] {
    const PACKET: usize = 320;
    let gap = TURN_GAP_PACKETS * PACKET;
    let a = caller.len().div_ceil(PACKET) * PACKET;
    let b = called.len().div_ceil(PACKET) * PACKET;
    let total = a + gap + b + gap;
    let mut left = vec![0i16; total];
    let mut right = vec![0i16; total];
    left[..caller.len()].copy_from_slice(caller);
    right[a + gap..a + gap + called.len()].copy_from_slice(called);
    [left, right]
}

/// What a slot replays in every call.
struct SlotMedia {
    index: usize,
    codec: DemoCodec,
    names: [&'static str; 2],
    /// Payloads per party (caller, called), one per 20 ms, looped.
    packets: [Vec<Vec<u8>>; 2],
    /// The packet where the called party's turn starts.
    #[cfg_attr(not(test), allow(dead_code))]
    turn: usize,
}

fn slot_media(index: usize) -> Result<SlotMedia> {
    let (codec, a, b) = SLOTS[index];
    let caller = voice_pcm(a)?;
    let turn = caller.len().div_ceil(320) + TURN_GAP_PACKETS;
    let [left, right] = conversation(&caller, &voice_pcm(b)?);
    Ok(SlotMedia {
        turn,
        index,
        codec,
        names: [VOICES[a].0, VOICES[b].0],
        packets: [codec.encode(&left)?, codec.encode(&right)?],
    })
}

/// One call in progress.
struct LiveCall {
    number: u64,
    call_id: String,
    tags: [u32; 2],
    branch: u64,
    rtp_port: [u16; 2],
    ssrc: [u32; 2],
    seq0: [u16; 2],
    ts0: [u32; 2],
    start: Instant,
    length: Duration,
    /// SIP steps sent so far (of SIP_STEPS).
    sip_sent: usize,
    /// RTP packets sent per direction so far.
    rtp_sent: u32,
}

impl LiveCall {
    fn rtp_total(&self) -> u32 {
        (self.length.saturating_sub(RTP_START).as_millis() / PTIME.as_millis()) as u32
    }
}

struct Slot {
    media: SlotMedia,
    call: Option<LiveCall>,
    next_start: Instant,
    calls_made: u64,
    caller_ip: [u8; 4],
    called_ip: [u8; 4],
}

/// Runs the demo traffic until `stop`, or until the pipeline goes away.
pub fn run(out: &FrameSender, stop: &StopFlag) -> Result<()> {
    let epoch = Instant::now();
    let mut rng =
        Rng((Timestamp::now().nanos() as u64 | 1) ^ (u64::from(std::process::id()) << 32));
    // Encoding takes a moment (much longer in a debug build): slots start one by one as their
    // audio is ready, rather than all after the slowest, so the first calls show at once.
    let (media_tx, media_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("earshot-demo-encode".into())
        .spawn(move || {
            for i in 0..SLOTS.len() {
                if media_tx.send(slot_media(i)).is_err() {
                    return;
                }
            }
        })?;
    let mut slots: Vec<Slot> = Vec::with_capacity(SLOTS.len());
    let mut ip_id = 0u16;
    let mut tick = Instant::now();
    while !stop.is_stopped() {
        let now = Instant::now();
        while let Ok(media) = media_rx.try_recv() {
            let i = slots.len();
            slots.push(Slot {
                media: media?,
                call: None,
                next_start: (epoch + START_STAGGER * i as u32).max(now),
                calls_made: 0,
                caller_ip: [192, 0, 2, 10 + i as u8],
                called_ip: [198, 51, 100, 20 + i as u8],
            });
        }
        let mut batch = FrameBatch::default();
        let mut frames = Frames {
            batch: &mut batch,
            ip_id: &mut ip_id,
            ts: Timestamp::now().nanos(),
        };
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.call.is_none() && now >= slot.next_start {
                let length = call_length(i, slot.calls_made);
                slot.call = Some(new_call(&mut rng, slot.calls_made, now, length));
                slot.calls_made += 1;
            }
            if let Some(call) = &mut slot.call {
                let ended = advance(
                    slot_ref(&slot.media, slot.caller_ip, slot.called_ip),
                    call,
                    now,
                    &mut frames,
                );
                if ended {
                    slot.call = None;
                    slot.next_start = now + BETWEEN_CALLS;
                }
            }
        }
        if !batch.is_empty() && !out.send(batch) {
            return Ok(());
        }
        tick += PTIME;
        let now = Instant::now();
        if tick > now {
            std::thread::sleep(tick - now);
        } else if now - tick > Duration::from_secs(1) {
            // Asleep for a long while (a suspended laptop): resume from now, not in a burst.
            tick = now;
        }
    }
    Ok(())
}

/// The length of a slot's call. The first round's calls end a quarter of CALL apart, so that
/// the slots' pauses between calls never overlap: past the start, all slots but one are
/// always in a call.
fn call_length(slot: usize, calls_made: u64) -> Duration {
    let n = SLOTS.len() as u32;
    if calls_made == 0 {
        CALL * n.saturating_sub(slot as u32).max(1) / n
    } else {
        CALL
    }
}

/// What a call's packets are rendered from, besides the call itself.
#[derive(Clone, Copy)]
struct SlotRef<'a> {
    media: &'a SlotMedia,
    caller_ip: [u8; 4],
    called_ip: [u8; 4],
}

fn slot_ref(media: &SlotMedia, caller_ip: [u8; 4], called_ip: [u8; 4]) -> SlotRef<'_> {
    SlotRef {
        media,
        caller_ip,
        called_ip,
    }
}

fn new_call(rng: &mut Rng, number: u64, now: Instant, length: Duration) -> LiveCall {
    let r = rng.next_u64();
    LiveCall {
        number,
        call_id: format!("{:016x}@demo.earshot.invalid", rng.next_u64()),
        tags: [r as u32, (r >> 32) as u32],
        branch: rng.next_u64() >> 16,
        rtp_port: [
            20_000 + 2 * rng.below(5_000) as u16,
            30_000 + 2 * rng.below(5_000) as u16,
        ],
        ssrc: [rng.next_u64() as u32, rng.next_u64() as u32],
        seq0: [rng.next_u64() as u16, rng.next_u64() as u16],
        ts0: [rng.next_u64() as u32, rng.next_u64() as u32],
        start: now,
        length,
        sip_sent: 0,
        rtp_sent: 0,
    }
}

/// Emits whatever of `call` is due by `now`; true once its BYE has gone out.
fn advance(s: SlotRef<'_>, call: &mut LiveCall, now: Instant, f: &mut Frames<'_>) -> bool {
    let elapsed = now.saturating_duration_since(call.start);
    while let Some(&(step, at)) = SIP_STEPS.get(call.sip_sent) {
        if elapsed < at {
            return false;
        }
        sip(s, call, step, f);
        call.sip_sent += 1;
    }
    let total = call.rtp_total();
    if elapsed >= RTP_START {
        let due = (((elapsed - RTP_START).as_millis() / PTIME.as_millis()) as u32 + 1).min(total);
        // After a stall, skip ahead rather than burst more than a few packets, as a phone would.
        if due > call.rtp_sent + 10 {
            call.rtp_sent = due - 10;
        }
        while call.rtp_sent < due {
            for d in 0..2 {
                rtp(s, call, d, f);
            }
            call.rtp_sent += 1;
        }
    }
    if call.rtp_sent >= total && elapsed >= call.length {
        sip(s, call, Step::Bye, f);
        sip(s, call, Step::ByeOk, f);
        return true;
    }
    false
}

/// The frames of one tick, stamped with the tick's wall-clock time plus 1 µs each so that
/// their order survives.
struct Frames<'a> {
    batch: &'a mut FrameBatch,
    ip_id: &'a mut u16,
    ts: i64,
}

impl Frames<'_> {
    /// Appends an IPv4/UDP frame (link type IPv4: no Ethernet header needed).
    fn push(&mut self, src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) {
        let mut d = Vec::with_capacity(28 + payload.len());
        let ip_len = (28 + payload.len()) as u16;
        *self.ip_id = self.ip_id.wrapping_add(1);
        d.extend_from_slice(&[0x45, 0xb8]);
        d.extend_from_slice(&ip_len.to_be_bytes());
        d.extend_from_slice(&self.ip_id.to_be_bytes());
        d.extend_from_slice(&[0x40, 0x00, 64, 17, 0, 0]);
        d.extend_from_slice(&src.0);
        d.extend_from_slice(&dst.0);
        let sum = ipv4_checksum(&d[..20]);
        d[10..12].copy_from_slice(&sum.to_be_bytes());
        d.extend_from_slice(&src.1.to_be_bytes());
        d.extend_from_slice(&dst.1.to_be_bytes());
        d.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        // UDP checksum 0: "none", allowed over IPv4.
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(payload);
        self.ts += 1_000;
        self.batch.push(Timestamp(self.ts), LinkType::IPV4, &d);
    }
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut s: u32 = header
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    !(s as u16)
}

/// One RTP packet of direction `d` (0 = caller to called).
fn rtp(s: SlotRef<'_>, call: &LiveCall, d: usize, f: &mut Frames<'_>) {
    let codec = s.media.codec;
    let k = call.rtp_sent;
    let packets = &s.media.packets[d];
    let Some(payload) = packets.get(k as usize % packets.len().max(1)) else {
        return;
    };
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(if k == 0 { 0x80 } else { 0 } | codec.payload_type());
    p.extend_from_slice(&call.seq0[d].wrapping_add(k as u16).to_be_bytes());
    let ts = call.ts0[d].wrapping_add(k.wrapping_mul(codec.ts_step()));
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&call.ssrc[d].to_be_bytes());
    p.extend_from_slice(payload);
    let caller = (s.caller_ip, call.rtp_port[0]);
    let called = (s.called_ip, call.rtp_port[1]);
    if d == 0 {
        f.push(caller, called, &p);
    } else {
        f.push(called, caller, &p);
    }
}

fn ip_str(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// One SIP message of the call's dialog.
fn sip(s: SlotRef<'_>, call: &LiveCall, step: Step, f: &mut Frames<'_>) {
    let m = s.media;
    let (caller_ip, called_ip) = (ip_str(s.caller_ip), ip_str(s.called_ip));
    let caller_num = format!("+1555010{}{:03}", m.index, call.number % 1000);
    let called_num = format!("+1555020{}{:03}", m.index, call.number % 1000);
    let from = format!(
        "\"{}\" <sip:{caller_num}@{caller_ip}>;tag={:08x}",
        m.names[0], call.tags[0]
    );
    let to = format!("\"{}\" <sip:{called_num}@{called_ip}>", m.names[1]);
    let to_tagged = format!("{to};tag={:08x}", call.tags[1]);
    let ruri = format!("sip:{called_num}@{called_ip}:{SIP_PORT}");
    let via = |n: u32| {
        format!(
            "SIP/2.0/UDP {caller_ip}:{SIP_PORT};branch=z9hG4bK{:012x}{n}",
            call.branch
        )
    };
    let sdp = match step {
        Step::Invite => sdp_body(m.codec, &caller_ip, call.rtp_port[0], call.tags[0]),
        Step::Ok => sdp_body(m.codec, &called_ip, call.rtp_port[1], call.tags[1]),
        _ => String::new(),
    };
    let mut msg = String::with_capacity(700);
    let request = match step {
        Step::Invite => Some(("INVITE", 1, &to, 0)),
        Step::Ack => Some(("ACK", 1, &to_tagged, 1)),
        Step::Bye => Some(("BYE", 2, &to_tagged, 2)),
        _ => None,
    };
    if let Some((method, cseq, to_hdr, b)) = request {
        let _ = write!(
            msg,
            "{method} {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {from}\r\n\
             To: {to_hdr}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:{caller_num}@{caller_ip}:{SIP_PORT}>\r\nUser-Agent: earshot-demo\r\n",
            via(b),
            call.call_id
        );
    } else {
        let (status, cseq, b) = match step {
            Step::Trying => ("100 Trying", "1 INVITE", 0),
            Step::Ringing => ("180 Ringing", "1 INVITE", 0),
            Step::Ok => ("200 OK", "1 INVITE", 0),
            _ => ("200 OK", "2 BYE", 2),
        };
        let to_hdr = if step == Step::Trying {
            &to
        } else {
            &to_tagged
        };
        let _ = write!(
            msg,
            "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {from}\r\nTo: {to_hdr}\r\nCall-ID: {}\r\n\
             CSeq: {cseq}\r\nContact: <sip:{called_num}@{called_ip}:{SIP_PORT}>\r\n\
             Server: earshot-demo\r\n",
            via(b),
            call.call_id
        );
    }
    if !sdp.is_empty() {
        msg.push_str("Content-Type: application/sdp\r\n");
    }
    let _ = write!(msg, "Content-Length: {}\r\n\r\n{sdp}", sdp.len());
    let caller = (s.caller_ip, SIP_PORT);
    let called = (s.called_ip, SIP_PORT);
    if request.is_some() {
        f.push(caller, called, msg.as_bytes());
    } else {
        f.push(called, caller, msg.as_bytes());
    }
}

fn sdp_body(codec: DemoCodec, ip: &str, port: u16, session: u32) -> String {
    let pt = codec.payload_type();
    let fmtp = match codec {
        DemoCodec::Opus => format!("a=fmtp:{pt} minptime=10;useinbandfec=1\r\n"),
        DemoCodec::AmrWb => format!("a=fmtp:{pt} octet-align=1\r\n"),
        _ => String::new(),
    };
    format!(
        "v=0\r\no=- {session} {session} IN IP4 {ip}\r\ns=earshot demo\r\nc=IN IP4 {ip}\r\n\
         t=0 0\r\nm=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {}\r\n{fmtp}\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        codec.rtpmap()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every slot's payloads decode, with our own decoders, back to speech where the party
    /// talks and near-silence where it listens.
    #[test]
    fn every_slot_decodes_to_its_conversation() {
        for i in 0..SLOTS.len() {
            let m = slot_media(i).unwrap();
            let codec = match m.codec {
                DemoCodec::Pcma => Codec::Pcma,
                DemoCodec::Pcmu => Codec::Pcmu,
                DemoCodec::G722 => Codec::G722,
                DemoCodec::Opus => Codec::Opus { channels: 1 },
                DemoCodec::AmrWb => Codec::Amr {
                    wideband: true,
                    octet_aligned: true,
                },
            };
            assert_eq!(m.packets[0].len(), m.packets[1].len());
            let turn = m.turn;
            let mut energy = [[0.0f64; 2]; 2];
            for (d, packets) in m.packets.iter().enumerate() {
                let mut dec = decoder_for(&codec).unwrap();
                for (k, p) in packets.iter().enumerate() {
                    let mut pcm = Vec::new();
                    dec.decode(p, &mut pcm).unwrap();
                    let e: f64 = pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
                    energy[d][usize::from(k >= turn)] += e / pcm.len().max(1) as f64;
                }
            }
            // The caller talks before the turn, the called party after it.
            let [caller, called] = energy;
            assert!(caller[0] > 20.0 * caller[1], "slot {i}: caller {caller:?}");
            assert!(called[1] > 20.0 * called[0], "slot {i}: called {called:?}");
        }
    }

    #[test]
    fn voices_are_a_few_seconds_of_speech() {
        for i in 0..VOICES.len() {
            let pcm = voice_pcm(i).unwrap();
            let secs = pcm.len() as f64 / 16000.0;
            assert!((2.0..6.0).contains(&secs), "voice {i}: {secs} s");
            let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            assert!(peak > 16000, "voice {i}: peak {peak}");
        }
    }

    /// Plays the schedule of starts and ends for two hours (each call ending up to one tick
    /// late, the slots starting up to 2 s apart as their audio gets ready) and counts the calls
    /// in progress every 100 ms.
    #[test]
    fn all_slots_but_one_are_always_in_a_call() {
        let ms = |d: Duration| d.as_millis() as u64;
        let mut rng = Rng(7);
        let mut busy: Vec<Vec<(u64, u64)>> = Vec::new();
        for slot in 0..SLOTS.len() {
            let mut t = ms(START_STAGGER) * slot as u64 + rng.below(2000);
            let mut calls = Vec::new();
            for made in 0.. {
                let end = t + ms(call_length(slot, made)) + rng.below(20);
                calls.push((t, end));
                t = end + ms(BETWEEN_CALLS) + rng.below(20);
                if t > 7_200_000 {
                    break;
                }
            }
            busy.push(calls);
        }
        for now in (2_500..7_200_000).step_by(100) {
            let active = busy
                .iter()
                .filter(|calls| calls.iter().any(|&(a, b)| a <= now && now < b))
                .count();
            assert!(active >= SLOTS.len() - 1, "{active} calls at {now} ms");
        }
    }

    #[test]
    fn ipv4_header_checksum_verifies() {
        let mut batch = FrameBatch::default();
        let mut id = 0;
        let mut f = Frames {
            batch: &mut batch,
            ip_id: &mut id,
            ts: 0,
        };
        f.push(([10, 0, 0, 1], 5060), ([10, 0, 0, 2], 5060), b"hello");
        let frame = batch.frames().next().expect("one frame");
        let d = frame.data;
        assert_eq!(
            ipv4_checksum(&d[..20]),
            0,
            "a header with its checksum sums to zero"
        );
        assert_eq!(d.len(), 33);
    }
}
