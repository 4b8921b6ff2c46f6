//! AMR and AMR-WB calls (RFC 4867, both payload formats) sound as an independent decoder
//! hears them: `earshot extract` of each call in tests/captures/amr/ (speech frames from
//! OpenCORE's AMR-NB and VisualOn's AMR-WB encoders, made by make.py there) is compared with
//! FFmpeg's own decode of the same frames (its native decoders, not the OpenCORE library
//! earshot uses): each party's channel correlates ≥ 0.99 with its reference, and carries its
//! tone (400 Hz caller, left; 1 kHz callee, right). Live `stream` of the same calls from a
//! sensor replaying them is held to the same references.

#[path = "common/audio.rs"]
mod audio;
mod common;
#[path = "common/sensor.rs"]
mod sensor;

use audio::correlation;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures/amr")
}

fn reference(name: &str) -> Vec<i16> {
    audio::read_s16le(&dir().join(name))
}

/// `extract --all` of one call at `rate`: its left (caller) and right (callee) channels.
fn extract(pcap: &str, rate: u32) -> (Vec<i16>, Vec<i16>) {
    let (left, right, stderr) = audio::extract_stereo(&dir().join(pcap), rate);
    assert!(!stderr.contains("unsupported"), "{pcap}: {stderr}");
    (left, right)
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

/// What a live listener hears of the capture's call from its start, at `rate`.
fn live(pcap: &str, rate: u32) -> (Vec<i16>, Vec<i16>) {
    audio::live_stereo(&dir().join(pcap), rate)
}

fn check(pcap: &str, band: &str, rate: u32) {
    check_channels(pcap, band, rate, extract(pcap, rate));
    check_channels(&format!("{pcap} (live)"), band, rate, live(pcap, rate));
}

/// Issue 18: a whole AMR-WB call between two real baresip agents (tests/captures/baresip/:
/// its amr module, VisualOn's encoder, octet-aligned), offline and live: the caller's 400 Hz
/// on the left, the callee's 1 kHz on the right, all 20 s of it.
#[test]
fn a_baresip_amr_wb_call_carries_its_tones_offline_and_live() {
    let pcap = "../baresip/amr_wb_call.pcap";
    for (how, (left, right)) in [
        ("extract", extract(pcap, 16000)),
        ("live", live(pcap, 16000)),
    ] {
        assert!(left.len() >= 16000 * 19, "{how}: {} samples", left.len());
        for (channel, hz) in [(&left, 400.0), (&right, 1000.0)] {
            let got = tone_hz(channel, 16000);
            assert!(
                (got - hz).abs() < hz * 0.02,
                "{how}: {got:.0} Hz, want {hz}"
            );
            let share = sensor::tone_share(
                &channel.iter().map(|&v| f32::from(v)).collect::<Vec<_>>(),
                16000.0,
                hz,
            );
            assert!(share > 0.8, "{how}: {hz} Hz is {share:.3} of the channel");
        }
    }
}

fn check_channels(pcap: &str, band: &str, rate: u32, (left, right): (Vec<i16>, Vec<i16>)) {
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
