//! Decoders fed with generated payloads, the capture smoke tests for codecs
//! without reference decodes, and the never-panic property.

mod common;

use common::*;
use earshot_audio::{decoder_for, Codec, Unsupported};
use proptest::prelude::*;

fn tone(freq: f64, rate: u32, n: usize, amp: f64) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as i16
        })
        .collect()
}

/// Goertzel power of `freq` relative to the total power: ~1 for a pure tone.
fn tone_purity(samples: &[i16], freq: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0f64, 0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    let total: f64 = samples.iter().map(|&x| f64::from(x).powi(2)).sum();
    // A sinusoid of amplitude A gives Goertzel power (A*n/2)^2 and total
    // energy A^2*n/2.
    (power * 2.0 / n) / total
}

/// Ratio of first-difference energy to signal energy: small for voice-band
/// audio, ~2 for white noise. Catches garbage decodes (wrong bit order).
fn roughness(samples: &[i16]) -> f64 {
    let diff: f64 = samples
        .windows(2)
        .map(|w| (f64::from(w[1]) - f64::from(w[0])).powi(2))
        .sum();
    let total: f64 = samples.iter().map(|&x| f64::from(x).powi(2)).sum();
    diff / total.max(1.0)
}

#[test]
fn l16_mono_and_stereo_are_big_endian_interleaved() {
    let mut mono = decoder_for(&Codec::L16 {
        rate: 11025,
        channels: 1,
    })
    .unwrap();
    let mut out = Vec::new();
    assert_eq!(mono.decode(&[0x12, 0x34, 0xFF, 0xFE], &mut out).unwrap(), 2);
    assert_eq!(out, vec![0x1234, -2]);
    assert_eq!(mono.sample_rate(), 11025);

    let mut stereo = decoder_for(&Codec::from_static_pt(10).unwrap()).unwrap();
    assert_eq!((stereo.channels(), stereo.sample_rate()), (2, 44100));
    out.clear();
    assert_eq!(
        stereo
            .decode(&[0, 1, 0x80, 0, 0, 2, 0x7F, 0xFF], &mut out)
            .unwrap(),
        2
    );
    assert_eq!(out, vec![1, i16::MIN, 2, i16::MAX]);
    // Half a stereo frame is malformed and appends nothing.
    out.clear();
    assert!(stereo.decode(&[0, 1, 0, 2, 0, 3], &mut out).is_err());
    assert!(out.is_empty());
    stereo.conceal(10, &mut out);
    assert_eq!(out.len(), 20);
}

/// IMA ADPCM encoder (the inverse of the DVI4 decoder), test side only.
fn ima_encode_dvi4(pcm: &[i16], predicted: &mut i32, index: &mut usize) -> Vec<u8> {
    const STEPS: [i32; 89] = [
        7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60,
        66, 73, 80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371,
        408, 449, 494, 544, 598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411, 1552, 1707, 1878,
        2066, 2272, 2499, 2749, 3024, 3327, 3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845,
        8630, 9493, 10442, 11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086,
        29794, 32767,
    ];
    const ADJ: [i32; 8] = [-1, -1, -1, -1, 2, 4, 6, 8];
    let mut out = (*predicted as i16).to_be_bytes().to_vec();
    out.extend([*index as u8, 0]);
    let mut nibbles = Vec::new();
    for &x in pcm {
        let step = STEPS[*index];
        let mut diff = i32::from(x) - *predicted;
        let mut code = 0u8;
        if diff < 0 {
            code = 8;
            diff = -diff;
        }
        let mut delta = step >> 3;
        if diff >= step {
            code |= 4;
            diff -= step;
            delta += step;
        }
        if diff >= step >> 1 {
            code |= 2;
            diff -= step >> 1;
            delta += step >> 1;
        }
        if diff >= step >> 2 {
            code |= 1;
            delta += step >> 2;
        }
        *predicted = if code & 8 != 0 {
            *predicted - delta
        } else {
            *predicted + delta
        }
        .clamp(-32768, 32767);
        *index = (*index as i32 + ADJ[usize::from(code & 7)]).clamp(0, 88) as usize;
        nibbles.push(code);
    }
    out.extend(
        nibbles
            .chunks(2)
            .map(|p| (p[0] << 4) | p.get(1).copied().unwrap_or(0)),
    );
    out
}

#[test]
fn dvi4_decodes_an_encoded_tone_at_8_and_16_khz() {
    for (pt, rate, freq) in [(5u8, 8000u32, 1000.0), (6, 16000, 3000.0)] {
        let codec = Codec::from_static_pt(pt).unwrap();
        let mut dec = decoder_for(&codec).unwrap();
        assert_eq!(dec.sample_rate(), rate);
        let input = tone(freq, rate, rate as usize, 8000.0);
        let frame = rate as usize / 50;
        let (mut pred, mut index) = (0, 0);
        let mut out = Vec::new();
        for chunk in input.chunks(frame) {
            let payload = ima_encode_dvi4(chunk, &mut pred, &mut index);
            assert_eq!(dec.decode(&payload, &mut out).unwrap(), frame);
        }
        assert_eq!(out.len(), input.len());
        // Skip the first packet while the step size adapts.
        let steady = &out[frame..];
        let rms_out = rms(steady);
        assert!(
            (rms_out - 8000.0 / 2f64.sqrt()).abs() < 600.0,
            "rms {rms_out}"
        );
        let purity = tone_purity(steady, freq, rate);
        assert!(purity > 0.95, "tone purity {purity}");
    }
}

#[test]
fn dvi4_rejects_short_or_bad_headers_and_recovers() {
    let mut dec = decoder_for(&Codec::Dvi4 { rate: 8000 }).unwrap();
    let mut out = Vec::new();
    assert!(dec.decode(&[0, 0, 0], &mut out).is_err());
    assert!(dec.decode(&[0, 0, 89, 0, 0x77], &mut out).is_err());
    assert!(out.is_empty());
    assert_eq!(dec.decode(&[0, 0, 0, 0, 0x77], &mut out).unwrap(), 2);
}

#[test]
fn lpc_is_unsupported_not_noise() {
    let lpc = Codec::from_static_pt(7).unwrap();
    assert!(matches!(decoder_for(&lpc), Err(Unsupported::Codec(_))));
    let by_name = Codec::from_sdp("LPC", 8000, 0, None);
    let err = decoder_for(&by_name)
        .err()
        .expect("LPC must be unsupported");
    assert!(err.to_string().contains("unsupported codec"), "{err}");
}

#[test]
fn telephone_event_is_never_audio() {
    let te = Codec::from_sdp("telephone-event", 8000, 0, Some("0-16"));
    assert_eq!(te, Codec::TelephoneEvent);
    assert!(matches!(decoder_for(&te), Err(Unsupported::NotAudio(_))));
}

#[test]
fn comfort_noise_fills_the_gap_at_the_signalled_level() {
    let cn = Codec::from_static_pt(13).unwrap();
    let mut dec = decoder_for(&cn).unwrap();
    let mut out = Vec::new();
    // Before any CN packet the gap is silence.
    dec.conceal(80, &mut out);
    assert!(out.iter().all(|&s| s == 0));
    out.clear();
    // -40 dBov with a few reflection coefficients.
    assert_eq!(dec.decode(&[40, 0x80, 0x70], &mut out).unwrap(), 0);
    assert!(out.is_empty(), "CN itself carries no duration");
    dec.conceal(1600, &mut out);
    assert_eq!(out.len(), 1600);
    let level = 20.0 * (rms(&out) / 32767.0).log10();
    assert!((level + 40.0).abs() < 1.0, "level {level} dBov");
    assert!(dec.decode(&[], &mut out).is_err());
}

#[test]
fn odd_speex_rates_report_unsupported() {
    // iLBC used to be here: it decodes with the feature `libavcodec` (tests/lavc.rs).
    let codec = Codec::from_sdp("speex", 11025, 0, None);
    assert!(
        matches!(decoder_for(&codec), Err(Unsupported::Codec(_))),
        "{codec}"
    );
}

#[test]
fn opus_conceals_gaps_with_the_right_length() {
    let mut dec = decoder_for(&Codec::Opus { channels: 2 }).unwrap();
    let mut out = Vec::new();
    // TOC: config 1 (SILK NB 20 ms), mono, code 0, then a tiny frame body.
    let _ = dec.decode(&[0x08, 0xFF, 0xFE], &mut out);
    out.clear();
    dec.conceal(960 + 480, &mut out);
    assert_eq!(out.len(), (960 + 480) * 2);
}

#[cfg(feature = "g729")]
#[test]
fn g729_sid_and_dtx() {
    let mut dec = decoder_for(&Codec::G729).unwrap();
    let mut out = Vec::new();
    assert_eq!(dec.decode(&[0u8; 20], &mut out).unwrap(), 160);
    // One speech frame followed by an Annex B SID.
    assert_eq!(dec.decode(&[0u8; 12], &mut out).unwrap(), 160);
    assert_eq!(dec.decode(&[0x12, 0x34], &mut out).unwrap(), 80);
    assert!(dec.decode(&[0u8; 13], &mut out).is_err());
    let before = out.len();
    dec.conceal(200, &mut out);
    assert_eq!(out.len() - before, 200);
}

/// Streams of captures without reference decodes: each must decode without
/// error to audio of the expected length that is neither silent nor noise.
fn smoke(capture: &str, codec_for: impl Fn(&StreamId, u8) -> Option<Codec>) {
    let Some(shared) = shared_dir() else { return };
    let pcap = capture_path(&shared, capture);
    let ids = stream_ids(&pcap);
    assert!(!ids.is_empty());
    let mut decoded_streams = 0;
    for (id, pt) in ids {
        let Some(codec) = codec_for(&id, pt) else {
            continue;
        };
        let mut dec = decoder_for(&codec).unwrap_or_else(|e| panic!("{capture}: {e}"));
        let packets: Vec<_> = rtp_stream(&pcap, &id)
            .into_iter()
            .filter(|p| p.pt == pt)
            .collect();
        let mut pcm = Vec::new();
        let mut expected = 0usize;
        for w in packets.windows(2) {
            expected += w[1].ts.wrapping_sub(w[0].ts) as usize;
        }
        for p in &packets {
            dec.decode(&p.payload, &mut pcm)
                .unwrap_or_else(|e| panic!("{capture} {id:?}: {e}"));
        }
        let per_channel = pcm.len() / usize::from(dec.channels());
        // The last packet's duration is not in the timestamps; allow it.
        let last = per_channel - expected.min(per_channel);
        assert!(
            per_channel >= expected && last <= per_channel / packets.len() * 2 + 1,
            "{capture} {codec}: {per_channel} samples for {expected} timestamp ticks"
        );
        let r = roughness(&pcm);
        let level = rms(&pcm);
        eprintln!("{capture} {codec}: {per_channel} samples, rms {level:.0}, roughness {r:.3}");
        assert!(
            level > 100.0,
            "{capture} {codec}: nearly silent (rms {level})"
        );
        assert!(
            r < 0.5,
            "{capture} {codec}: sounds like noise (roughness {r})"
        );
        decoded_streams += 1;
    }
    assert!(decoded_streams > 0, "{capture}: nothing decoded");
}

#[test]
fn dvi4_capture_decodes_plausibly() {
    smoke("sip-rtp-dvi4", |_, pt| Codec::from_static_pt(pt));
}

/// sip-rtp-l16.pcap: all four calls use PT 99; the rates and channel counts
/// come from each call's SDP answer (tshark -Y sdp -e sdp.media.port
/// -e sdp.media_attr), keyed here by the sender's RTP port.
#[test]
fn l16_capture_decodes_plausibly() {
    const L16_STREAMS: [(u16, u32, u8); 4] = [
        (26628, 8000, 2),
        (24082, 16000, 2),
        (32682, 11025, 1),
        (31026, 48000, 1),
    ];
    smoke("sip-rtp-l16", |id, _| {
        L16_STREAMS
            .iter()
            .find(|(port, _, _)| *port == id.sport)
            .map(|&(_, rate, channels)| Codec::L16 { rate, channels })
    });
}

/// sip-rtp-speex.pcap: three calls, all PT 99, one per Speex mode (rates from
/// each call's SDP offer, keyed by the sender's RTP port).
#[test]
fn speex_capture_decodes_plausibly_in_all_three_modes() {
    const SPEEX_STREAMS: [(u16, u32); 3] = [(21280, 8000), (22662, 16000), (28286, 32000)];
    smoke("sip-rtp-speex", |id, pt| {
        SPEEX_STREAMS
            .iter()
            .find(|(port, _)| *port == id.sport && pt == 99)
            .map(|&(_, rate)| Codec::from_sdp("speex", rate, 0, None))
    });
}

#[test]
fn speex_conceals_with_the_right_length_in_every_mode() {
    for (rate, frame) in [(8000, 160), (16000, 320), (32000, 640)] {
        let mut dec = decoder_for(&Codec::Speex { rate }).unwrap();
        assert_eq!(dec.sample_rate(), rate);
        let mut out = Vec::new();
        dec.conceal(frame + frame / 2, &mut out);
        assert_eq!(out.len(), frame + frame / 2, "speex/{rate}");
        // Nothing decodable: an error, and nothing appended.
        assert!(dec.decode(&[], &mut out).is_err());
        assert_eq!(out.len(), frame + frame / 2);
    }
}

/// libspeex is C: hammer it with junk (deterministic) in every mode; each
/// call must return, append whole frames or nothing, and keep the decoder usable.
#[test]
fn speex_survives_random_payloads() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (rate, frame) in [(8000usize, 160usize), (16000, 320), (32000, 640)] {
        let mut dec = decoder_for(&Codec::Speex { rate: rate as u32 }).unwrap();
        let mut out = Vec::new();
        for _ in 0..3000 {
            let len = (next() % 200) as usize + 1;
            let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            out.clear();
            match dec.decode(&payload, &mut out) {
                Ok(n) => assert!(n == out.len() && n % frame == 0 && n > 0),
                Err(_) => assert!(out.is_empty()),
            }
            out.clear();
            dec.conceal(frame / 2, &mut out);
            assert_eq!(out.len(), frame / 2);
        }
    }
}

#[test]
fn lpc_capture_is_reported_unsupported() {
    let Some(shared) = shared_dir() else { return };
    let pcap = capture_path(&shared, "sip-rtp-lpc");
    let ids = stream_ids(&pcap);
    assert!(!ids.is_empty());
    for (_, pt) in ids {
        let codec = Codec::from_static_pt(pt).expect("static PT");
        assert!(decoder_for(&codec).is_err(), "{codec} must be unsupported");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_payloads_never_panic(payloads in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..400), 1..6)) {
        for codec in all_codecs() {
            let Ok(mut dec) = decoder_for(&codec) else { continue };
            let mut out = Vec::new();
            for p in &payloads {
                let before = out.len();
                if dec.decode(p, &mut out).is_err() {
                    prop_assert_eq!(out.len(), before, "{} appended on error", codec);
                }
                dec.conceal(37, &mut out);
            }
            prop_assert!(out.len() % usize::from(dec.channels()) == 0);
        }
    }
}

fn all_codecs() -> Vec<Codec> {
    let mut v = vec![
        Codec::Pcmu,
        Codec::Pcma,
        Codec::G722,
        Codec::G729,
        Codec::Gsm,
        Codec::Opus { channels: 1 },
        Codec::Opus { channels: 2 },
        Codec::L16 {
            rate: 8000,
            channels: 1,
        },
        Codec::L16 {
            rate: 48000,
            channels: 2,
        },
        Codec::Dvi4 { rate: 8000 },
        Codec::Dvi4 { rate: 16000 },
        Codec::Cn { rate: 8000 },
        Codec::Speex { rate: 8000 },
        Codec::Speex { rate: 16000 },
        Codec::Speex { rate: 32000 },
        // With the feature `libavcodec` only; otherwise skipped as unsupported.
        Codec::G723,
        Codec::Ilbc { mode: 20 },
        Codec::Ilbc { mode: 30 },
    ];
    for bits in 2..=5 {
        for aal2 in [false, true] {
            v.push(Codec::G726 { bits, aal2 });
        }
    }
    v
}
