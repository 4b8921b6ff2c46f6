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
        for unsupported in [("lpc", "LPC"), ("ilbc", "iLBC")] {
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
