//! Time is input: RTP timestamps and capture times that jump by hours, days or to the ends of
//! their ranges, forward and back, must never make the playout or the mixer allocate or emit
//! in proportion to the jump. Output is judged by its length against the audio really sent.

use earshot_audio::{CallAudio, Codec, MixConfig, MixMode, Party, PlayoutConfig, RtpIn};

const FRAME_NS: i64 = 20_000_000;
const T0: i64 = 1_700_000_000_000_000_000;
const HOUR_NS: i64 = 3_600_000_000_000;
const RATE: u32 = 8000;

static PCMU: Codec = Codec::Pcmu;
static CN: Codec = Codec::Cn { rate: 8000 };

/// One packet: leg, arrival, RTP timestamp, and whether it is comfort noise.
#[derive(Clone, Copy)]
struct P {
    leg: Party,
    arrival: i64,
    seq: u16,
    ts: u32,
    cn: bool,
}

/// `frames` packets of 20 ms per leg, both legs, in arrival order.
fn call(frames: usize) -> Vec<P> {
    let mut v = Vec::new();
    for k in 0..frames {
        for leg in [Party::Caller, Party::Called] {
            v.push(P {
                leg,
                arrival: T0 + k as i64 * FRAME_NS,
                seq: k as u16,
                ts: (k * 160) as u32,
                cn: false,
            });
        }
    }
    v
}

struct Run {
    /// Output samples per channel.
    frames: usize,
    resyncs: u64,
    /// The largest output any single push, poll or finish produced, in samples per channel.
    largest_step: usize,
}

/// Pushes the packets (polling at every arrival as the live fan-out does) and finishes.
fn run(pkts: &[P], playout: PlayoutConfig) -> Run {
    let cfg = MixConfig::new(RATE, MixMode::Stereo, playout).unwrap();
    let mut audio = CallAudio::new(cfg);
    let mut out = Vec::new();
    let mut frames = 0;
    let mut largest_step = 0;
    let payload = [0x7Fu8; 160];
    let cn_payload = [40u8];
    let mut take = |out: &mut Vec<i16>| {
        frames += out.len() / 2;
        largest_step = largest_step.max(out.len() / 2);
        out.clear();
    };
    for p in pkts {
        let rtp = RtpIn {
            arrival_ns: p.arrival,
            ssrc: 7 + u32::from(p.leg == Party::Called),
            seq: p.seq,
            timestamp: p.ts,
            payload_type: if p.cn { 13 } else { 0 },
            marker: false,
            payload: if p.cn { &cn_payload } else { &payload },
            codec: Some(if p.cn { &CN } else { &PCMU }),
            event: false,
        };
        audio.push(p.leg, &rtp, &mut out);
        take(&mut out);
        audio.poll(p.arrival, &mut out);
        take(&mut out);
    }
    audio.finish(&mut out);
    take(&mut out);
    Run {
        frames,
        resyncs: audio.resyncs(),
        largest_step,
    }
}

fn configs() -> [(&'static str, PlayoutConfig); 2] {
    [
        ("offline", PlayoutConfig::offline()),
        ("live", PlayoutConfig::live()),
    ]
}

/// Output may be the audio sent plus, per jump, at most one gap of silence and the playout
/// hold; never anything in proportion to the jump.
fn assert_bounded(name: &str, r: &Run, audio_frames: usize, jumps: usize, cfg: &PlayoutConfig) {
    let per_jump = (cfg.max_gap_ms as usize + 1000) * RATE as usize / 1000;
    let limit = audio_frames * 160 + (jumps + 1) * per_jump;
    assert!(
        r.frames <= limit,
        "{name}: {} output samples for {audio_frames} packets of audio (limit {limit})",
        r.frames
    );
    assert!(
        r.largest_step <= per_jump + 8000,
        "{name}: one step emitted {} samples",
        r.largest_step
    );
    assert!(
        r.frames >= audio_frames * 160 / 2,
        "{name}: the audio itself was lost: {} samples",
        r.frames
    );
}

/// Moves the arrival time of every packet from `at` on by `by`.
fn shift_arrivals(pkts: &mut [P], at: usize, by: i64) {
    for p in pkts.iter_mut().skip(at) {
        p.arrival = p.arrival.saturating_add(by);
    }
}

#[test]
fn a_capture_time_jump_of_an_hour_forward_is_not_silence() {
    for (name, cfg) in configs() {
        let mut pkts = call(100);
        shift_arrivals(&mut pkts, 100, HOUR_NS);
        let r = run(&pkts, cfg.clone());
        assert_bounded(name, &r, 100, 1, &cfg);
        assert!(r.resyncs >= 1, "{name}: the jump was not re-anchored");
    }
}

#[test]
fn a_capture_time_jump_of_an_hour_back_keeps_the_audio() {
    for (name, cfg) in configs() {
        let mut pkts = call(100);
        shift_arrivals(&mut pkts, 100, -HOUR_NS);
        let r = run(&pkts, cfg.clone());
        // Nothing is emitted for the hour, and the audio after the jump is not thrown away
        // as late: the output is (about) the whole call.
        assert_bounded(name, &r, 100, 1, &cfg);
        assert!(
            r.frames >= 90 * 160,
            "{name}: audio after the backward jump was lost: {} samples",
            r.frames
        );
    }
}

#[test]
fn one_packet_from_the_far_future_or_past_costs_nothing() {
    // A single packet of one leg stamped at the ends of the clock (year 2106 as HEP carries
    // it, 2^62 ns, and back), amid a normal call.
    for far in [
        4_354_000_000_000_000_000i64,
        i64::MAX / 2,
        -T0,
        i64::MIN / 2,
    ] {
        for (name, cfg) in configs() {
            let mut pkts = call(100);
            pkts[101].arrival = far;
            let r = run(&pkts, cfg.clone());
            assert_bounded(name, &r, 100, 2, &cfg);
        }
    }
}

#[test]
fn capture_time_at_the_ends_of_its_range_does_not_overflow() {
    for (name, cfg) in configs() {
        let mut pkts = call(50);
        shift_arrivals(&mut pkts, 50, i64::MAX);
        let r = run(&pkts, cfg.clone());
        assert_bounded(name, &r, 50, 1, &cfg);
        let mut pkts = call(50);
        shift_arrivals(&mut pkts, 50, i64::MIN);
        let r = run(&pkts, cfg.clone());
        assert_bounded(name, &r, 50, 1, &cfg);
    }
}

#[test]
fn rtp_timestamp_jumps_do_not_fill_the_claimed_gap() {
    // The sender's clock leaps by up to 2^31 samples (three days at 8 kHz) each way while
    // capture time moves on normally: comfort noise and concealment must not fill the claim.
    for jump in [
        i32::MAX as u32,
        0x8000_0000,
        8000 * 3600,
        0u32.wrapping_sub(8000 * 3600),
    ] {
        for cn_first in [false, true] {
            for (name, cfg) in configs() {
                let mut pkts = call(100);
                if cn_first {
                    for p in pkts.iter_mut().take(40) {
                        p.cn = p.seq % 5 == 0;
                    }
                    pkts.retain(|p| p.seq >= 40 || p.cn);
                }
                for p in pkts.iter_mut().filter(|p| p.seq >= 50) {
                    p.ts = p.ts.wrapping_add(jump);
                }
                let r = run(&pkts, cfg.clone());
                assert_bounded(name, &r, 100, 1, &cfg);
            }
        }
    }
}

#[test]
fn a_comfort_noise_packet_far_behind_then_audio_far_ahead() {
    // The fuzzer's finding: comfort noise placed days before the audio that follows it made
    // the timeline allocate everything in between.
    for (name, cfg) in configs() {
        let pkts = [
            P {
                leg: Party::Caller,
                arrival: T0,
                seq: 1,
                ts: 0,
                cn: true,
            },
            P {
                leg: Party::Caller,
                arrival: T0 + FRAME_NS,
                seq: 2,
                ts: 0x7FFF_FFFF,
                cn: false,
            },
            P {
                leg: Party::Called,
                arrival: T0 + 2 * FRAME_NS,
                seq: 3,
                ts: 0x8000_0000,
                cn: false,
            },
        ];
        let r = run(&pkts, cfg.clone());
        assert_bounded(name, &r, 2, 2, &cfg);
    }
}

#[test]
fn a_pause_within_the_gap_limit_is_kept_and_a_longer_one_cut_out() {
    for (name, cfg) in configs() {
        // Both legs stop for 90 % of the longest gap kept: that silence stays.
        let pause_ns = i64::from(cfg.max_gap_ms) * 900_000;
        let mut pkts = call(100);
        shift_arrivals(&mut pkts, 100, pause_ns);
        let r = run(&pkts, cfg.clone());
        let pause = (pause_ns / 1_000_000) as usize * RATE as usize / 1000;
        assert!(
            r.frames >= 100 * 160 + pause - 1600,
            "{name}: the pause was cut: {} samples",
            r.frames
        );
        assert_eq!(r.resyncs, 0, "{name}");
        // For 30 s: cut out, the output is the audio.
        let mut pkts = call(100);
        shift_arrivals(&mut pkts, 100, 30_000_000_000);
        let r = run(&pkts, cfg.clone());
        assert!(
            r.frames <= 100 * 160 + 8000,
            "{name}: {} samples for 2 s of audio and a pause of 30 s",
            r.frames
        );
        assert!(r.resyncs >= 1, "{name}");
    }
}

#[test]
fn alternating_jumps_every_packet_stay_bounded() {
    // Every other packet of one leg an hour ahead: each costs at most a resync, not an hour.
    for (name, cfg) in configs() {
        let mut pkts = call(200);
        for (i, p) in pkts.iter_mut().enumerate() {
            if p.leg == Party::Caller && i % 4 == 0 {
                p.arrival += HOUR_NS;
            }
        }
        let r = run(&pkts, cfg.clone());
        // Each forged packet may bring one gap of silence; what matters is that the total is
        // nowhere near an hour per packet.
        let limit = 200 * 160 + 100 * (cfg.max_gap_ms as usize + 1000) * RATE as usize / 1000;
        assert!(r.frames <= limit, "{name}: {} samples", r.frames);
        let step = (cfg.max_gap_ms as usize + 1000) * RATE as usize / 1000;
        assert!(r.largest_step <= step, "{name}: {}", r.largest_step);
    }
}

/// The playout fuzz target's finding (29 bytes, offline settings): a one-sample chunk whose
/// resampled audio was still all in the resampler, then a packet of a new source 3.5 h later.
/// The timeline saw no audio yet when the far chunk came, and allocated the 3.5 h up to it.
#[test]
fn a_far_chunk_before_any_audio_was_laid_out_is_not_reached_by_allocating() {
    let data: &[u8] = &[
        0x88, 0xdf, 0xfe, 0x00, 0x76, 0x1c, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x0c, 0x65, 0x0c,
        0x0c, 0x0c, 0xef, 0xe0, 0xca, 0xc2, 0x00, 0xc2, 0xc2, 0xc4,
    ];
    let (&mode, data) = data.split_first().unwrap();
    let mut playout = if mode & 1 == 0 {
        PlayoutConfig::offline()
    } else {
        PlayoutConfig::live()
    };
    playout.max_packets = 32;
    let cfg = MixConfig::new(16000, MixMode::Stereo, playout).unwrap();
    let mut audio = CallAudio::new(cfg);
    let mut out = Vec::new();
    let mut now = 0i64;
    let mut rest = data;
    while rest.len() >= 13 {
        let (head, tail) = rest.split_at(12);
        let len = usize::from(tail[0]).min(tail.len() - 1);
        let (payload, tail) = tail[1..].split_at(len);
        rest = tail;
        if head[11] & 2 == 2 {
            now = now.saturating_add(
                i64::from(i32::from_le_bytes([head[6], head[7], head[8], head[9]])) * 1_000_000,
            );
        } else {
            now = now.saturating_add(i64::from(u16::from_le_bytes([head[0], head[1]])) * 10_000);
        }
        let pt = head[2] % 20;
        let codec = Codec::from_static_pt(pt);
        let leg = if head[3] & 1 == 0 {
            Party::Caller
        } else {
            Party::Called
        };
        let rtp = RtpIn {
            arrival_ns: now,
            ssrc: u32::from(head[3] >> 6),
            seq: u16::from_le_bytes([head[4], head[5]]),
            timestamp: u32::from_le_bytes([head[6], head[7], head[8], head[9]]),
            payload_type: pt,
            marker: head[10] & 1 == 1,
            payload,
            codec: codec.as_ref(),
            event: head[11] & 1 == 1,
        };
        audio.push(leg, &rtp, &mut out);
        assert!(out.len() < 16000 * 2 * 10, "one push emitted {}", out.len());
        out.clear();
    }
    audio.finish(&mut out);
    assert!(
        out.len() <= 16000 * 2 * 6,
        "finish emitted {} samples",
        out.len()
    );
}

/// The fuzz target's second finding: one leg's first audio laid out (unchecked, as nothing was
/// yet) two days after the other's; output then walked the two days between them at finish.
#[test]
fn output_never_walks_a_long_stretch_where_neither_leg_has_audio() {
    let data: &[u8] = &[
        0x1b, 0, 0, 0, 0xff, 0xff, 0xff, 0x9a, 0x05, 0x03, 0x00, 0x0c, 0x0c, 0x0a, 0xf4, 0xf3,
        0x10, 0x10, 0x10, 0x10, 0x10, 0x0b, 0x00, 0xef, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
        0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0xff, 0xff,
    ];
    let (&mode, data) = data.split_first().unwrap();
    let mut playout = if mode & 1 == 0 {
        PlayoutConfig::offline()
    } else {
        PlayoutConfig::live()
    };
    playout.max_packets = 32;
    let cfg = MixConfig::new(16000, MixMode::Stereo, playout).unwrap();
    let mut audio = CallAudio::new(cfg);
    let mut out = Vec::new();
    let mut now = 0i64;
    let mut rest = data;
    while rest.len() >= 13 {
        let (head, tail) = rest.split_at(12);
        let len = usize::from(tail[0]).min(tail.len() - 1);
        let (payload, tail) = tail[1..].split_at(len);
        rest = tail;
        if head[11] & 2 == 2 {
            now = now.saturating_add(
                i64::from(i32::from_le_bytes([head[6], head[7], head[8], head[9]])) * 1_000_000,
            );
        } else {
            now = now.saturating_add(i64::from(u16::from_le_bytes([head[0], head[1]])) * 10_000);
        }
        let pt = head[2] % 20;
        let codec = Codec::from_static_pt(pt);
        let leg = if head[3] & 1 == 0 {
            Party::Caller
        } else {
            Party::Called
        };
        let rtp = RtpIn {
            arrival_ns: now,
            ssrc: u32::from(head[3] >> 6),
            seq: u16::from_le_bytes([head[4], head[5]]),
            timestamp: u32::from_le_bytes([head[6], head[7], head[8], head[9]]),
            payload_type: pt,
            marker: head[10] & 1 == 1,
            payload,
            codec: codec.as_ref(),
            event: head[11] & 1 == 1,
        };
        audio.push(leg, &rtp, &mut out);
        assert!(out.len() < 16000 * 2 * 10, "one push emitted {}", out.len());
        out.clear();
    }
    audio.finish(&mut out);
    assert!(
        out.len() <= 16000 * 2 * 6,
        "finish emitted {} samples",
        out.len()
    );
}
