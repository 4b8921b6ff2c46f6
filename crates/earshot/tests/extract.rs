//! `earshot extract` on the shared captures: call lengths against the RTP timing that
//! `earshot analyze` reports, unsupported codecs named on stderr, and the raw `--stream`
//! path bit-exact with Wireshark's own export.

mod common;

use std::path::Path;

/// Seconds of the day from an RFC 3339 UTC time (calls here never cross midnight).
fn day_seconds(s: &str) -> f64 {
    let time = s.split('T').nth(1).expect("RFC 3339 time");
    let time = time.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let sec: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + sec
}

/// First packet to last packet of all the call's streams, plus one 20 ms frame.
fn rtp_duration(call: &serde_json::Value) -> Option<f64> {
    let streams = call["streams"].as_array()?;
    let start = streams
        .iter()
        .map(|s| day_seconds(s["start"].as_str().unwrap()))
        .reduce(f64::min)?;
    let end = streams
        .iter()
        .map(|s| day_seconds(s["end"].as_str().unwrap()))
        .reduce(f64::max)?;
    Some(end - start + 0.020)
}

fn wav_seconds(path: &Path) -> f64 {
    let r = hound::WavReader::open(path).expect("read wav");
    let spec = r.spec();
    assert_eq!(spec.bits_per_sample, 16);
    f64::from(r.duration()) / f64::from(spec.sample_rate)
}

#[test]
fn every_sip_rtp_capture_extracts_to_the_length_of_its_rtp() {
    let Some(pcaps) = common::shared_pcaps() else {
        return;
    };
    let dir = pcaps.join("wireshark");
    let mut captures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sip-rtp-"))
        })
        .collect();
    captures.sort();
    assert!(captures.len() >= 10, "sip-rtp captures: {}", captures.len());
    let tmp = std::env::temp_dir().join(format!("earshot-extract-{}", std::process::id()));
    for capture in &captures {
        let name = capture.file_stem().unwrap().to_string_lossy().to_string();
        let out_dir = tmp.join(&name);
        let out = common::earshot()
            .args(["extract", "--all", "--out"])
            .arg(&out_dir)
            .arg(capture)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        // iLBC decodes with the cargo feature `libavcodec` (tests/g723_ilbc.rs), else it is
        // named unsupported like LPC.
        let ilbc = (!cfg!(feature = "libavcodec")).then_some(("ilbc", "iLBC"));
        for unsupported in [Some(("lpc", "LPC")), ilbc].into_iter().flatten() {
            if name.ends_with(unsupported.0) {
                assert!(
                    stderr.contains(unsupported.1) && stderr.contains("unsupported codec"),
                    "{name}: stderr {stderr}"
                );
            }
        }
        let doc = common::analyze_json(&[capture.as_path()]);
        for call in doc["calls"].as_array().unwrap() {
            let Some(want) = rtp_duration(call) else {
                continue;
            };
            let call_id = call["call_id"].as_str().unwrap();
            let file = std::fs::read_dir(&out_dir)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.to_string_lossy().contains(call_id))
                .unwrap_or_else(|| panic!("{name}: no file for {call_id}"));
            let got = wav_seconds(&file);
            assert!(
                (got - want).abs() <= 0.040,
                "{name} {call_id}: {got:.3} s of audio, RTP lasts {want:.3} s"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn stream_output_is_bit_exact_with_wireshark() {
    let Some(pcaps) = common::shared_pcaps() else {
        return;
    };
    let refs = pcaps.join("reference/sip-rtp-g711");
    let capture = pcaps.join("wireshark/sip-rtp-g711.pcap");
    let mut checked = 0;
    for entry in std::fs::read_dir(&refs).unwrap() {
        let reference = entry.unwrap().path();
        let name = reference.file_name().unwrap().to_string_lossy().to_string();
        let Some(ssrc) = name.split('_').nth(4).and_then(|s| s.split('.').next()) else {
            continue;
        };
        let out_file =
            std::env::temp_dir().join(format!("earshot-{}-{ssrc}.wav", std::process::id()));
        // Without the 0x prefix for one of them: both spellings are accepted.
        let arg = if checked == 0 {
            ssrc.trim_start_matches("0x").to_string()
        } else {
            ssrc.to_string()
        };
        let out = common::earshot()
            .args(["extract", "--stream", &arg, "--out"])
            .arg(&out_file)
            .arg(&capture)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours: Vec<i16> = hound::WavReader::open(&out_file)
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect();
        let mut r = hound::WavReader::open(&reference).unwrap();
        let theirs: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(r.spec().sample_rate, 8000);
        assert_eq!(ours.len(), theirs.len(), "{name}: length");
        assert!(ours == theirs, "{name}: samples differ");
        let _ = std::fs::remove_file(&out_file);
        checked += 1;
    }
    assert_eq!(checked, 2);
}

#[test]
fn unknown_call_and_bad_rate_are_errors() {
    let Some(pcaps) = common::shared_pcaps() else {
        return;
    };
    let capture = pcaps.join("wireshark/sip-rtp-g711.pcap");
    let out_file = std::env::temp_dir().join(format!("earshot-none-{}.wav", std::process::id()));
    let out = common::earshot()
        .args(["extract", "--call", "no-such-call", "--out"])
        .arg(&out_file)
        .arg(&capture)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-call"));
    let out = common::earshot()
        .args(["extract", "--all", "--rate", "44100", "--out"])
        .arg(&out_file)
        .arg(&capture)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("44100"));
}

fn wav_samples(path: &Path) -> (u16, u32, Vec<i16>) {
    let mut r = hound::WavReader::open(path).expect("read wav");
    let spec = r.spec();
    let samples = r.samples::<i16>().map(Result::unwrap).collect();
    (spec.channels, spec.sample_rate, samples)
}

fn streams_dir() -> std::path::PathBuf {
    common::repo_root().join("tests/captures/streams")
}

/// A stream with no SIP at all (issue 12, item 6): a dynamic payload type is refused with
/// advice, then extracted once --codec or --sdp says what it is, bit-exact with GStreamer's
/// libopus decode of the same stream.
#[test]
fn stream_without_sip_extracts_with_a_codec_from_the_command_line() {
    let Some(pcaps) = common::shared_pcaps() else {
        return;
    };
    let capture = pcaps.join("wireshark/rtp-opus-only.pcap");
    let reference = pcaps
        .join("reference/sip-rtp-opus/10.0.2.15_24196_10.0.2.20_6000_0x043EEE04.gstreamer.wav");
    let out_file = std::env::temp_dir().join(format!("earshot-opus-{}.wav", std::process::id()));
    let out = common::earshot()
        .args(["extract", "--stream", "0x043EEE04", "--out"])
        .arg(&out_file)
        .arg(&capture)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a dynamic PT with no rtpmap must be refused"
    );
    assert!(
        stderr.contains("--codec 99="),
        "the error teaches --codec: {stderr}"
    );
    assert!(
        stderr.contains("--sdp"),
        "the error teaches --sdp: {stderr}"
    );

    let (_, _, theirs) = wav_samples(&reference);
    // The reference is the mono decode written to both channels.
    let left: Vec<i16> = theirs.iter().step_by(2).copied().collect();
    let sdp = streams_dir().join("opus.sdp");
    let ways: [&[&std::ffi::OsStr]; 2] = [
        &["--codec".as_ref(), "99=opus/48000/2".as_ref()],
        &["--sdp".as_ref(), sdp.as_os_str()],
    ];
    for way in ways {
        let out = common::earshot()
            .args(["extract", "--stream", "0x043EEE04"])
            .args(way)
            .arg("--out")
            .arg(&out_file)
            .arg(&capture)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{way:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (channels, rate, ours) = wav_samples(&out_file);
        assert_eq!((channels, rate), (1, 48000), "{way:?}");
        assert_eq!(ours.len(), left.len(), "{way:?}: length");
        let (mut sig, mut noise) = (0f64, 0f64);
        for (r, t) in left.iter().zip(&ours) {
            sig += f64::from(*r).powi(2);
            noise += (f64::from(*r) - f64::from(*t)).powi(2);
        }
        let snr = if noise == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (sig / noise).log10()
        };
        assert!(snr >= 40.0, "{way:?}: SNR {snr:.1} dB against GStreamer");
    }
    let _ = std::fs::remove_file(&out_file);
}

/// A static payload type needs nothing more: L16/44100 (PT 11) with no SIP, against the
/// figures tests/captures/streams/l16_reference.py took from tshark's dissection.
#[test]
fn stream_without_sip_with_a_static_pt_matches_tshark_payloads() {
    let Some(pcaps) = common::shared_pcaps() else {
        return;
    };
    let capture = pcaps.join("wireshark/RTP_L16_monaural_sample.pcapng");
    let out_file = std::env::temp_dir().join(format!("earshot-l16-{}.wav", std::process::id()));
    let out = common::earshot()
        .args(["extract", "--stream", "6CF6A0E4", "--out"])
        .arg(&out_file)
        .arg(&capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (channels, rate, ours) = wav_samples(&out_file);
    let _ = std::fs::remove_file(&out_file);
    assert_eq!((channels, rate), (1, 44100));
    let text = std::fs::read_to_string(streams_dir().join("l16-reference.txt")).unwrap();
    let figure = |name: &str| -> i128 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in l16-reference.txt"))
    };
    const M: i128 = (1 << 61) - 1;
    let weighted = ours.iter().enumerate().fold(0i128, |acc, (i, &v)| {
        (acc + (i as i128 + 1) * i128::from(v as u16)) % M
    });
    assert_eq!(ours.len() as i128, figure("samples"));
    assert_eq!(
        ours.iter().map(|&v| i128::from(v)).sum::<i128>(),
        figure("sum")
    );
    assert_eq!(weighted, figure("weighted"));
}

#[test]
fn codec_option_rejects_what_is_not_an_rtpmap() {
    for bad in [
        "99",
        "99=opus",
        "x=opus/48000",
        "200=PCMU/8000",
        "99=opus/0",
    ] {
        let out = common::earshot()
            .args([
                "extract",
                "--stream",
                "1",
                "--codec",
                bad,
                "--out",
                "/dev/null",
                "none.pcap",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("PT=NAME/RATE"), "{bad}: {stderr}");
    }
}
