//! AMR and AMR-WB calls (RFC 4867, both payload formats) sound as an independent decoder
//! hears them: `earshot extract` of each call in tests/captures/amr/ (speech frames from
//! OpenCORE's AMR-NB and VisualOn's AMR-WB encoders, made by make.py there) is compared with
//! FFmpeg's own decode of the same frames (its native decoders, not the OpenCORE library
//! earshot uses): each party's channel correlates ≥ 0.99 with its reference, and carries its
//! tone (400 Hz caller, left; 1 kHz callee, right).

mod common;

use common::earshot;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures/amr")
}

fn reference(name: &str) -> Vec<i16> {
    let bytes = std::fs::read(dir().join(name)).expect("reference decode");
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// `extract --all` of one call at `rate`: its left (caller) and right (callee) channels.
fn extract(pcap: &str, rate: u32) -> (Vec<i16>, Vec<i16>) {
    let out = std::env::temp_dir().join(format!("earshot-amr-{pcap}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = earshot()
        .args(["extract", "--all", "--rate", &rate.to_string(), "--out"])
        .arg(&out)
        .arg(dir().join(pcap))
        .output()
        .expect("run earshot extract");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{pcap}: {stderr}");
    assert!(!stderr.contains("unsupported"), "{pcap}: {stderr}");
    let wav = std::fs::read_dir(&out)
        .expect("out dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "wav"))
        .unwrap_or_else(|| panic!("{pcap}: no WAV written; {stderr}"));
    let mut reader = hound::WavReader::open(&wav).expect("WAV");
    assert_eq!(reader.spec().channels, 2);
    assert_eq!(reader.spec().sample_rate, rate);
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let _ = std::fs::remove_dir_all(&out);
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1.0)
}

/// The best correlation of `reference` with `channel` shifted by up to a tenth of a second:
/// the WAV starts at the call's first packet, each party's audio a few ms after.
fn best_correlation(channel: &[i16], reference: &[i16], rate: u32) -> f64 {
    let max_lag = rate as usize / 10;
    (0..max_lag)
        .filter(|lag| lag + reference.len() / 2 <= channel.len())
        .map(|lag| correlation(&channel[lag..], &reference[..reference.len() * 9 / 10]))
        .fold(f64::MIN, f64::max)
}

/// Zero crossings per second of the middle of a channel: twice its tone's frequency.
fn tone_hz(channel: &[i16], rate: u32) -> f64 {
    let mid = &channel[channel.len() / 4..channel.len() * 3 / 4];
    let crossings = mid.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (mid.len() as f64 / f64::from(rate))
}

fn check(pcap: &str, band: &str, rate: u32) {
    let (left, right) = extract(pcap, rate);
    for (channel, party, hz) in [(&left, "caller", 400.0), (&right, "callee", 1000.0)] {
        let reference = reference(&format!("ref_{band}_{party}.s16"));
        let corr = best_correlation(channel, &reference, rate);
        assert!(
            corr >= 0.99,
            "{pcap} {party}: correlation {corr:.4} with FFmpeg's decode"
        );
        let got = tone_hz(channel, rate);
        assert!(
            (got - hz).abs() < hz * 0.02,
            "{pcap} {party}: {got:.0} Hz, want {hz}"
        );
    }
}

#[test]
fn amr_octet_aligned_sounds_as_ffmpeg_decodes_it() {
    check("amr_nb_octet.pcap", "nb", 8000);
}

#[test]
fn amr_bandwidth_efficient_with_two_frames_a_packet_sounds_as_ffmpeg_decodes_it() {
    check("amr_nb_efficient.pcap", "nb", 8000);
}

#[test]
fn amr_wb_bandwidth_efficient_sounds_as_ffmpeg_decodes_it() {
    check("amr_wb_efficient.pcap", "wb", 16000);
}

#[test]
fn amr_wb_octet_aligned_sounds_as_ffmpeg_decodes_it() {
    check("amr_wb_octet.pcap", "wb", 16000);
}
