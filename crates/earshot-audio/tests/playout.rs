//! Playout, alignment and mixing on synthetic calls: µ-law/A-law tones built
//! here, packetised with known timing, then impaired (loss, reorder, jitter).

use earshot_audio::{CallAudio, Codec, MixConfig, MixMode, Party, Playout, PlayoutConfig, RtpIn};
use proptest::prelude::*;

const FRAME: usize = 160;
const FRAME_NS: i64 = 20_000_000;
const T0: i64 = 1_000_000_000_000;

fn ulaw(s: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut v = i32::from(s);
    let sign = if v < 0 { 0x80 } else { 0 };
    if v < 0 {
        v = -v;
    }
    v = (v + BIAS).min(32635 + BIAS);
    let exp = (0..8).rev().find(|e| v & (0x80 << e) != 0).unwrap_or(0);
    let mant = (v >> (exp + 3)) & 0x0F;
    !(sign | (exp << 4) | mant) as u8
}

fn alaw(s: i16) -> u8 {
    let mut v = i32::from(s) >> 3;
    let sign = if v >= 0 { 0x80 } else { 0 };
    if v < 0 {
        v = -v - 1;
    }
    let byte = if v < 32 {
        v >> 1
    } else {
        let exp = (1..8).rev().find(|e| v >= (16 << e)).unwrap_or(1);
        (exp << 4) | ((v >> exp) & 0x0F)
    };
    ((sign | byte) ^ 0x55) as u8
}

struct Pkt {
    leg: Party,
    arrival: i64,
    ssrc: u32,
    seq: u16,
    ts: u32,
    pt: u8,
    marker: bool,
    payload: Vec<u8>,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct LegSpec {
    leg: Party,
    freq: f64,
    frames: usize,
    /// Frame from which the payload type switches to PCMA.
    switch_at: Option<usize>,
    click_frame: Option<usize>,
}

fn leg_packets(spec: &LegSpec) -> Vec<Pkt> {
    let ssrc = if spec.leg == Party::Caller {
        0x1111
    } else {
        0x2222
    };
    (0..spec.frames)
        .map(|k| {
            let pcma = spec.switch_at.is_some_and(|s| k >= s);
            let payload = (0..FRAME)
                .map(|i| {
                    let n = (k * FRAME + i) as f64;
                    let mut v =
                        8000.0 * (2.0 * std::f64::consts::PI * spec.freq * n / 8000.0).sin();
                    if spec.click_frame == Some(k) && i == 0 {
                        v = 32000.0;
                    }
                    let s = v as i16;
                    if pcma {
                        alaw(s)
                    } else {
                        ulaw(s)
                    }
                })
                .collect();
            Pkt {
                leg: spec.leg,
                arrival: T0 + k as i64 * FRAME_NS,
                ssrc,
                // Start near the wrap points so both wrap mid-call.
                seq: 65_500u16.wrapping_add(k as u16),
                ts: (u32::MAX - 8000).wrapping_add((k * FRAME) as u32),
                pt: if pcma { 8 } else { 0 },
                marker: k == 0,
                payload,
            }
        })
        .collect()
}

/// 5 % loss, adjacent swaps and 0–60 ms extra delay (±30 ms around 30 ms).
fn impair(pkts: Vec<Pkt>, rng: &mut Rng) -> Vec<Pkt> {
    let mut kept: Vec<Pkt> = pkts
        .into_iter()
        .enumerate()
        .filter(|(k, _)| *k == 0 || rng.unit() >= 0.05)
        .map(|(_, p)| p)
        .collect();
    for p in &mut kept {
        p.arrival += (rng.unit() * 60_000_000.0) as i64;
    }
    for i in 1..kept.len() {
        // Reordering is extra delay: a packet overtaken by its successor.
        if rng.unit() < 0.05 {
            kept[i - 1].arrival = kept[i - 1].arrival.max(kept[i].arrival + 1_000_000);
        }
    }
    kept
}

fn run_call(mut pkts: Vec<Pkt>, rate: u32, mode: MixMode) -> (Vec<i16>, CallAudio) {
    pkts.sort_by_key(|p| p.arrival);
    let cfg = MixConfig::new(rate, mode, PlayoutConfig::offline()).unwrap();
    let mut audio = CallAudio::new(cfg);
    let mut out = Vec::new();
    for p in &pkts {
        let codec = Codec::from_static_pt(p.pt).unwrap();
        let rtp = RtpIn {
            arrival_ns: p.arrival,
            ssrc: p.ssrc,
            seq: p.seq,
            timestamp: p.ts,
            payload_type: p.pt,
            marker: p.marker,
            payload: &p.payload,
            codec: Some(&codec),
            event: false,
        };
        audio.push(p.leg, &rtp, &mut out);
    }
    audio.finish(&mut out);
    (out, audio)
}

fn channel(stereo: &[i16], ch: usize) -> Vec<i16> {
    stereo.iter().skip(ch).step_by(2).copied().collect()
}

fn goertzel_power(x: &[i16], freq: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s0 = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - c * s1 * s2
}

/// Frequency (1 Hz steps) of the strongest component between 200 and 2000 Hz.
fn peak_hz(x: &[i16], rate: u32) -> f64 {
    (200..2000)
        .map(f64::from)
        .max_by(|a, b| {
            goertzel_power(x, *a, rate)
                .partial_cmp(&goertzel_power(x, *b, rate))
                .unwrap()
        })
        .unwrap()
}

fn two_legs(frames: usize) -> Vec<Pkt> {
    let mut pkts = leg_packets(&LegSpec {
        leg: Party::Caller,
        freq: 440.0,
        frames,
        switch_at: None,
        click_frame: None,
    });
    pkts.extend(leg_packets(&LegSpec {
        leg: Party::Called,
        freq: 1000.0,
        frames,
        switch_at: None,
        click_frame: None,
    }));
    pkts
}

#[test]
fn each_leg_keeps_its_tone_on_its_channel_at_every_rate() {
    for rate in [8000u32, 16000, 48000] {
        let (out, _) = run_call(two_legs(100), rate, MixMode::Stereo);
        let second = rate as usize;
        let left = channel(&out, 0);
        let right = channel(&out, 1);
        assert!(left.len() >= second, "rate {rate}: {} samples", left.len());
        let l = peak_hz(&left[..second], rate);
        let r = peak_hz(&right[..second], rate);
        assert!((l - 440.0).abs() <= 2.0, "rate {rate}: left peak {l} Hz");
        assert!((r - 1000.0).abs() <= 2.0, "rate {rate}: right peak {r} Hz");
        // Band-limited: nothing of the other leg, no images of the tone.
        let leak = goertzel_power(&left[..second], 1000.0, rate);
        let tone = goertzel_power(&left[..second], 440.0, rate);
        assert!(
            leak < tone * 1e-4,
            "rate {rate}: 1 kHz leaks into the left channel"
        );
        if rate == 16000 {
            let image = goertzel_power(&left[..second], 8000.0 - 440.0, rate);
            assert!(image < tone * 1e-4, "image of 440 Hz at 7560 Hz");
        }
    }
}

#[test]
fn mono_and_single_leg_outputs() {
    let (mono, _) = run_call(two_legs(100), 8000, MixMode::Mono);
    let (caller, _) = run_call(two_legs(100), 8000, MixMode::Caller);
    let (called, _) = run_call(two_legs(100), 8000, MixMode::Called);
    assert_eq!(mono.len(), caller.len());
    assert_eq!(caller.len(), called.len());
    assert!((peak_hz(&caller[..8000], 8000) - 440.0).abs() <= 2.0);
    assert!((peak_hz(&called[..8000], 8000) - 1000.0).abs() <= 2.0);
    let both = goertzel_power(&mono[..8000], 440.0, 8000) > 1e9
        && goertzel_power(&mono[..8000], 1000.0, 8000) > 1e9;
    assert!(both, "mono carries both tones");
    for ((&m, &a), &b) in mono.iter().zip(&caller).zip(&called) {
        assert_eq!(
            i32::from(m),
            (i32::from(a) + i32::from(b)).clamp(-32768, 32767)
        );
    }
}

#[test]
fn a_missing_leg_is_silence_and_length_is_the_call() {
    let pkts = leg_packets(&LegSpec {
        leg: Party::Called,
        freq: 1000.0,
        frames: 250,
        switch_at: None,
        click_frame: None,
    });
    let (out, _) = run_call(pkts, 8000, MixMode::Stereo);
    assert_eq!(out.len() / 2, 250 * FRAME);
    assert!(channel(&out, 0).iter().all(|&s| s == 0));
}

#[test]
fn codec_switch_mid_call_continues_the_tone_on_the_same_channel() {
    let mut pkts = leg_packets(&LegSpec {
        leg: Party::Caller,
        freq: 440.0,
        frames: 200,
        switch_at: Some(100),
        click_frame: None,
    });
    pkts.extend(leg_packets(&LegSpec {
        leg: Party::Called,
        freq: 1000.0,
        frames: 200,
        switch_at: None,
        click_frame: None,
    }));
    let (out, audio) = run_call(pkts, 16000, MixMode::Stereo);
    let left = channel(&out, 0);
    assert_eq!(left.len(), 200 * FRAME * 2);
    let after = &left[110 * 320..160 * 320];
    assert!((peak_hz(after, 16000) - 440.0).abs() <= 2.0);
    assert!(channel(&out, 1).len() == left.len());
    // Longest stretch of near-silence on the switching leg.
    let mut run = 0usize;
    let mut longest = 0usize;
    for &s in &left[320..left.len() - 320] {
        run = if s.abs() < 200 { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    assert!(longest < 16 * 60, "gap of {} ms", longest / 16);
    assert_eq!(audio.stats(Party::Caller).late, 0);
}

fn click_time_ns(x: &[i16], rate: u32, start_ns: i64) -> i64 {
    let (idx, _) = x
        .iter()
        .enumerate()
        .max_by_key(|(_, s)| i32::from(**s).abs())
        .unwrap();
    start_ns + idx as i64 * 1_000_000_000 / i64::from(rate)
}

#[test]
fn loss_reorder_and_jitter_keep_length_and_alignment() {
    for seed in [1u64, 7, 42] {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
        let frames = 500;
        let click = 250;
        let mut pkts = Vec::new();
        for (leg, freq) in [(Party::Caller, 440.0), (Party::Called, 1000.0)] {
            let clean = leg_packets(&LegSpec {
                leg,
                freq,
                frames,
                switch_at: None,
                click_frame: Some(click),
            });
            // Keep the click frame itself so that there is a click to find.
            let (mut impaired, click_pkt): (Vec<Pkt>, Vec<Pkt>) = impair(clean, &mut rng)
                .into_iter()
                .partition(|p| p.seq != 65_500u16.wrapping_add(click as u16));
            if click_pkt.is_empty() {
                let again = leg_packets(&LegSpec {
                    leg,
                    freq,
                    frames,
                    switch_at: None,
                    click_frame: Some(click),
                });
                impaired.extend(
                    again
                        .into_iter()
                        .filter(|p| p.seq == 65_500u16.wrapping_add(click as u16)),
                );
            } else {
                impaired.extend(click_pkt);
            }
            pkts.extend(impaired);
        }
        let rate = 8000;
        let (out, audio) = run_call(pkts, rate, MixMode::Stereo);
        let duration_ms = (out.len() / 2) as i64 * 1000 / i64::from(rate);
        assert!(
            (duration_ms - frames as i64 * 20).abs() <= 40,
            "seed {seed}: {duration_ms} ms"
        );
        let start = audio.start_ns().unwrap();
        let expect = T0 + click as i64 * FRAME_NS;
        for ch in 0..2 {
            let at = click_time_ns(&channel(&out, ch), rate, start);
            assert!(
                (at - expect).abs() <= 20_000_000,
                "seed {seed} channel {ch}: click {} ms off",
                (at - expect) / 1_000_000
            );
        }
        let stats = audio.stats(Party::Caller);
        assert!(stats.concealed_samples > 0, "losses were concealed");
    }
}

#[test]
fn duplicates_and_events_are_not_audio() {
    let mut pkts = two_legs(50);
    let dups: Vec<Pkt> = pkts
        .iter()
        .take(10)
        .map(|p| Pkt {
            payload: p.payload.clone(),
            arrival: p.arrival + 1_000_000,
            ..*p
        })
        .collect();
    pkts.extend(dups);
    let (out, audio) = run_call(pkts, 8000, MixMode::Stereo);
    assert_eq!(out.len() / 2, 50 * FRAME);
    assert_eq!(audio.stats(Party::Caller).duplicate, 10);

    let mut playout = Playout::new(PlayoutConfig::offline());
    let mut chunks = Vec::new();
    let ev = Codec::TelephoneEvent;
    playout.push(
        &RtpIn {
            arrival_ns: 0,
            ssrc: 1,
            seq: 1,
            timestamp: 0,
            payload_type: 101,
            marker: true,
            payload: &[1, 0x80, 0, 160],
            codec: Some(&ev),
            event: true,
        },
        &mut chunks,
    );
    playout.flush(&mut chunks);
    assert!(chunks.is_empty());
}

#[test]
fn comfort_noise_fills_the_silence_until_the_next_audio() {
    let mut playout = Playout::new(PlayoutConfig::offline());
    let mut chunks = Vec::new();
    let pkt = |seq: u16, ts: u32, codec: &'static Codec, payload: &'static [u8]| RtpIn {
        arrival_ns: i64::from(ts) * 125_000,
        ssrc: 9,
        seq,
        timestamp: ts,
        payload_type: if matches!(codec, Codec::Cn { .. }) {
            13
        } else {
            0
        },
        marker: false,
        payload,
        codec: Some(codec),
        event: false,
    };
    static PCMU: Codec = Codec::Pcmu;
    static CN: Codec = Codec::Cn { rate: 8000 };
    static AUDIO: [u8; 160] = [0xFF; 160];
    playout.push(&pkt(1, 0, &PCMU, &AUDIO), &mut chunks);
    playout.push(&pkt(2, 160, &CN, &[40]), &mut chunks);
    // Next audio 1 s later (DTX): the gap is comfort noise, not silence.
    let mut m = pkt(3, 8160, &PCMU, &AUDIO);
    m.marker = true;
    playout.push(&m, &mut chunks);
    playout.flush(&mut chunks);
    let total: usize = chunks.iter().map(|c| c.pcm.len()).sum();
    assert_eq!(total, 160 + 8000 + 160);
    let noise = chunks
        .iter()
        .find(|c| c.pcm.len() == 8000)
        .expect("CN chunk");
    let rms = (noise.pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 8000.0).sqrt();
    let want = 32767.0 * 10f64.powf(-40.0 / 20.0);
    assert!((rms / want - 1.0).abs() < 0.1, "CN rms {rms}, want {want}");
}

#[test]
fn ssrc_change_and_timestamp_jump_start_a_new_placement() {
    let mut playout = Playout::new(PlayoutConfig::offline());
    let mut chunks = Vec::new();
    static PCMU: Codec = Codec::Pcmu;
    let payload = [0xFFu8; 160];
    let mut push = |ssrc: u32, seq: u16, ts: u32, at_ms: i64, chunks: &mut Vec<_>| {
        playout.push(
            &RtpIn {
                arrival_ns: at_ms * 1_000_000,
                ssrc,
                seq,
                timestamp: ts,
                payload_type: 0,
                marker: false,
                payload: &payload,
                codec: Some(&PCMU),
                event: false,
            },
            chunks,
        );
    };
    push(1, 10, 1000, 0, &mut chunks);
    push(1, 11, 1160, 20, &mut chunks);
    // Timestamp jumps by an hour's worth while capture time moves 20 ms.
    push(1, 12, 1160 + 8000 * 3600, 40, &mut chunks);
    push(2, 500, 77, 60, &mut chunks);
    playout.flush(&mut chunks);
    let starts: Vec<i64> = chunks.iter().map(|c| c.start_ns / 1_000_000).collect();
    assert_eq!(starts, vec![0, 20, 40, 60]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn playout_survives_anything_and_stays_bounded(
        pkts in prop::collection::vec(
            (any::<u8>(), any::<u16>(), any::<u32>(), 0i64..200_000_000, any::<u8>(), any::<bool>(),
             prop::collection::vec(any::<u8>(), 0..200)),
            0..300),
        max_packets in 1usize..40,
        adaptive in any::<bool>(),
    ) {
        let mut cfg = if adaptive { PlayoutConfig::live() } else { PlayoutConfig::offline() };
        cfg.max_packets = max_packets;
        let mut playout = Playout::new(cfg);
        let mut chunks = Vec::new();
        let mut now = 0i64;
        for (ssrc, seq, ts, step, pt, marker, payload) in &pkts {
            now += step;
            let pt = pt % 20;
            let codec = Codec::from_static_pt(pt);
            playout.push(&RtpIn {
                arrival_ns: now,
                ssrc: u32::from(ssrc % 3),
                seq: *seq,
                timestamp: *ts,
                payload_type: pt,
                marker: *marker,
                payload,
                codec: codec.as_ref(),
                event: pt == 19,
            }, &mut chunks);
            prop_assert!(playout.buffered() <= max_packets);
            chunks.clear();
        }
        playout.flush(&mut chunks);
        prop_assert_eq!(playout.buffered(), 0);
    }

    #[test]
    fn mixer_survives_anything(
        pkts in prop::collection::vec(
            (any::<bool>(), any::<u16>(), any::<u32>(), 0i64..100_000_000, prop::collection::vec(any::<u8>(), 0..200)),
            0..200),
    ) {
        let cfg = MixConfig::new(48000, MixMode::Stereo, PlayoutConfig::offline()).unwrap();
        let mut audio = CallAudio::new(cfg);
        let mut out = Vec::new();
        let mut now = 0i64;
        static PCMA: Codec = Codec::Pcma;
        for (caller, seq, ts, step, payload) in &pkts {
            now += step;
            let leg = if *caller { Party::Caller } else { Party::Called };
            audio.push(leg, &RtpIn {
                arrival_ns: now,
                ssrc: 5,
                seq: *seq,
                timestamp: *ts,
                payload_type: 8,
                marker: false,
                payload,
                codec: Some(&PCMA),
                event: false,
            }, &mut out);
        }
        audio.finish(&mut out);
        prop_assert_eq!(out.len() % 2, 0);
    }
}
