//! G.723.1 and iLBC: the RTP framing (always) and the libavcodec decoders (with the cargo
//! feature `libavcodec`): frame sizes by type, several frames a packet, SID and DTX, the other
//! iLBC mode, and hostile payloads that must never crash nor append audio on error.

mod common;

use earshot_audio::{decoder_for, g723, ilbc, Codec, DecodeError};
#[cfg(feature = "libavcodec")]
fn captures(dir: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures")
        .join(dir)
}

#[test]
fn g723_frames_are_split_by_their_type_bits() {
    let mut frames = [(0, 0, 0); g723::MAX_FRAMES];
    // 6.3 kbit/s (24 bytes), 5.3 kbit/s (20), SID (4), back to back.
    let mut p = vec![0u8; 24];
    p.extend([1u8; 20]);
    p.extend([2u8, 0, 0, 0]);
    assert_eq!(g723::split(&p, &mut frames), Ok(3));
    assert_eq!(frames[..3], [(0, 24, 0), (24, 20, 1), (44, 4, 2)]);
    // A frame cut short, a reserved type 3, nothing, and too many frames.
    assert!(matches!(
        g723::split(&p[..40], &mut frames),
        Err(DecodeError::BadLength { .. })
    ));
    assert!(g723::split(&[3], &mut frames).is_err());
    assert!(g723::split(&[], &mut frames).is_err());
    assert!(g723::split(&[2; 4 * 16], &mut frames).is_ok());
    assert!(matches!(
        g723::split(&[2; 4 * 17], &mut frames),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn ilbc_payloads_take_the_sdp_mode_or_the_only_one_that_fits() {
    assert_eq!(ilbc::mode_of(50, 30), Ok((30, 1)));
    assert_eq!(ilbc::mode_of(100, 20), Ok((30, 2)));
    assert_eq!(ilbc::mode_of(76, 30), Ok((20, 2)));
    assert_eq!(ilbc::mode_of(38, 20), Ok((20, 1)));
    for bad in [0, 1, 49, 51, 37] {
        assert!(ilbc::mode_of(bad, 30).is_err(), "{bad}");
    }
    assert!(ilbc::mode_of(50 * 17, 30).is_err());
}

#[test]
fn codec_names_map_to_g723_and_ilbc() {
    assert_eq!(Codec::from_static_pt(4), Some(Codec::G723));
    assert_eq!(Codec::from_sdp("G723", 8000, 1, None), Codec::G723);
    assert_eq!(
        Codec::from_sdp("iLBC", 8000, 0, None),
        Codec::Ilbc { mode: 30 }
    );
    assert_eq!(Codec::G723.output_rate(), 8000);
}

#[cfg(not(feature = "libavcodec"))]
#[test]
fn without_libavcodec_both_are_named_with_the_reason() {
    for (codec, name) in [
        (Codec::G723, "G.723.1"),
        (Codec::Ilbc { mode: 20 }, "iLBC mode=20"),
    ] {
        let err = decoder_for(&codec).err().expect("no decoder").to_string();
        assert!(
            err.contains(&format!(
                "{name}: built without libavcodec (cargo feature `libavcodec`)"
            )),
            "{err}"
        );
    }
}

/// The caller's payloads of tests/captures/g723/g723_call.pcap (FFmpeg's encoder, one frame a
/// packet, a SID frame among them) and the callee's (two frames a packet).
#[cfg(feature = "libavcodec")]
fn g723_payloads() -> Vec<Vec<Vec<u8>>> {
    let pcap = captures("g723").join("g723_call.pcap");
    common::stream_ids(&pcap)
        .into_iter()
        .map(|(id, _)| {
            common::rtp_stream(&pcap, &id)
                .into_iter()
                .map(|p| p.payload)
                .collect()
        })
        .collect()
}

#[cfg(feature = "libavcodec")]
#[test]
fn g723_decodes_every_frame_of_a_packet_to_30_ms() {
    let streams = g723_payloads();
    assert_eq!(streams.len(), 2);
    for payloads in streams {
        let mut dec = decoder_for(&Codec::G723).expect("decoder");
        assert_eq!((dec.sample_rate(), dec.channels()), (8000, 1));
        let mut out = Vec::new();
        for p in &payloads {
            let frames = if p.len() == 4 { 1 } else { p.len() / 24 };
            assert_eq!(
                dec.decode(p, &mut out),
                Ok(frames * 240),
                "{} bytes",
                p.len()
            );
        }
        assert!(common::rms(&out) > 1000.0);
    }
}

#[cfg(feature = "libavcodec")]
#[test]
fn g723_after_a_sid_conceals_with_comfort_noise_and_after_speech_fades_out() {
    let streams = g723_payloads();
    let caller = streams
        .iter()
        .find(|s| s.iter().any(|p| p.len() == 4))
        .expect("the stream with a SID frame");
    let sid_at = caller.iter().position(|p| p.len() == 4).expect("SID");
    let mut dec = decoder_for(&Codec::G723).expect("decoder");
    let mut out = Vec::new();
    for p in &caller[..=sid_at] {
        dec.decode(p, &mut out).expect("decodes");
    }
    // DTX: 0.6 s of the SID's comfort noise, quiet but not digital silence.
    let mut cn = Vec::new();
    dec.conceal(4800, &mut cn);
    assert_eq!(cn.len(), 4800);
    let level = common::rms(&cn[2400..]);
    assert!(level > 0.5 && level < 300.0, "comfort noise rms {level}");
    // After speech a gap is a loss: the tail fades out, then silence.
    let mut dec = decoder_for(&Codec::G723).expect("decoder");
    dec.decode(&caller[1], &mut Vec::new()).expect("decodes");
    let mut gap = Vec::new();
    dec.conceal(1000, &mut gap);
    assert_eq!(gap.len(), 1000);
    assert!(gap[200..].iter().all(|&s| s == 0));
}

#[cfg(feature = "libavcodec")]
#[test]
fn g723_53_kbit_frames_decode_too() {
    // No 5.3 kbit/s encoder is at hand (FFmpeg's encodes 6.3 only): any 20 bytes of type 01
    // are a frame the decoder takes; two of them make 60 ms.
    let mut dec = decoder_for(&Codec::G723).expect("decoder");
    let frame: Vec<u8> = (0..20u8)
        .map(|i| (i.wrapping_mul(37) & !3) | u8::from(i == 0))
        .collect();
    let mut p = frame.clone();
    p.extend(&frame);
    let mut out = Vec::new();
    assert_eq!(dec.decode(&p, &mut out), Ok(480));
    assert_eq!(out.len(), 480);
}

#[cfg(feature = "libavcodec")]
#[test]
fn ilbc_decodes_the_mode_a_payload_fits_and_several_frames_a_packet() {
    let sample = common::shared_dir().map(|d| common::capture_path(&d, "sip-rtp-ilbc"));
    let Some(pcap) = sample else { return };
    let (id, _) = common::stream_ids(&pcap)
        .into_iter()
        .next()
        .expect("stream");
    let frames: Vec<Vec<u8>> = common::rtp_stream(&pcap, &id)
        .into_iter()
        .map(|p| p.payload)
        .collect();
    assert!(frames.iter().all(|f| f.len() == 50));
    // The SDP says 20 ms, the payloads are 30 ms: decoded as what they are.
    let mut dec = decoder_for(&Codec::Ilbc { mode: 20 }).expect("decoder");
    let mut out = Vec::new();
    for pair in frames.chunks_exact(2).take(50) {
        let p = [pair[0].as_slice(), pair[1].as_slice()].concat();
        assert_eq!(dec.decode(&p, &mut out), Ok(480));
    }
    assert!(common::rms(&out) > 100.0);
    // And a 20 ms payload (38 bytes) goes to a 20 ms decoder, whatever it holds.
    let mut out = Vec::new();
    if let Ok(n) = dec.decode(&[0x55; 38], &mut out) {
        assert_eq!((n, out.len()), (160, 160));
    } else {
        assert!(out.is_empty());
    }
}

/// Deterministic junk (xorshift): every length, every type bit, many packets in a row on one
/// decoder; a payload either decodes to whole frames or appends nothing.
#[cfg(feature = "libavcodec")]
#[test]
fn g723_and_ilbc_survive_junk() {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for codec in [
        Codec::G723,
        Codec::Ilbc { mode: 20 },
        Codec::Ilbc { mode: 30 },
    ] {
        let mut dec = decoder_for(&codec).expect("decoder");
        let mut out = Vec::new();
        for i in 0..3000 {
            let len = match i % 4 {
                0 => (next() % 120) as usize,
                1 => 24 * (1 + (next() % 3) as usize),
                2 => 38 * (1 + (next() % 3) as usize),
                _ => 50 * (1 + (next() % 3) as usize),
            };
            let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            out.clear();
            match dec.decode(&payload, &mut out) {
                Ok(n) => assert_eq!(out.len(), n, "{codec}"),
                Err(_) => assert!(out.is_empty(), "{codec} appended on error"),
            }
            if i % 50 == 0 {
                out.clear();
                dec.conceal(333, &mut out);
                assert_eq!(out.len(), 333);
            }
        }
    }
}
