//! G.723.1 and iLBC (issue 18), decoded through libavcodec (cargo feature `libavcodec`; the
//! tests skip with a notice without it, and `.ci/run` builds with it).
//!
//! The references are FFmpeg's decodes of the same frames, read from the captures without
//! earshot (tests/captures/g723/make.py, tests/captures/ilbc/make.py). FFmpeg's decoders are the
//! ones earshot links, so agreement does not vouch for the decoder itself: what it proves is
//! earshot's side, the RTP payload framing (several frames a packet, SID frames, the sizes of
//! each frame type), the timing (DTX gaps, a lost packet, 30 ms frames on the 8 kHz clock) and
//! the channels. So each party's channel must also carry its own signal: the G.723.1 call's
//! tones (400 Hz caller on the left, 1 kHz callee on the right, frames from FFmpeg's encoder),
//! and for iLBC, which has no encoder in Debian or on PyPI, the real speech of Wireshark's
//! sample on the side that sent it, silence on the other.

#[path = "common/audio.rs"]
mod audio;
mod common;
#[path = "common/sensor.rs"]
mod sensor;

use audio::correlation;
use std::path::{Path, PathBuf};

const RATE: u32 = 8000;

/// Whether this build decodes G.723.1 and iLBC; says so when the test is skipped.
fn with_libavcodec() -> bool {
    if !cfg!(feature = "libavcodec") {
        eprintln!(
            "SKIPPED: built without the cargo feature `libavcodec` \
             (cargo test -p earshot --features libavcodec)"
        );
    }
    cfg!(feature = "libavcodec")
}

fn captures(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures")
        .join(dir)
}

fn reference(dir: &str, name: &str) -> Vec<i16> {
    audio::read_s16le(&captures(dir).join(name))
}

/// `extract --all` of the one call in `pcap`: its left (caller) and right (callee) channels.
/// Also returns extract's stderr.
fn extract(pcap: &Path) -> (Vec<i16>, Vec<i16>, String) {
    audio::extract_stereo(pcap, RATE)
}

/// What a live listener hears of the capture's call from its start.
fn live(pcap: &Path) -> (Vec<i16>, Vec<i16>) {
    audio::live_stereo(pcap, RATE)
}

/// The best correlation of `reference` (its first 90 %) with `channel` shifted by up to a
/// tenth of a second: the WAV starts at the call's first packet, each party a few ms after.
fn best_correlation(channel: &[i16], reference: &[i16]) -> f64 {
    let max_lag = RATE as usize / 10;
    let len = reference.len() * 9 / 10;
    (0..max_lag)
        .filter(|lag| lag + len <= channel.len())
        .map(|lag| correlation(&channel[lag..], &reference[..len]))
        .fold(f64::MIN, f64::max)
}

/// Zero crossings per second in `from..to` seconds of a channel: twice its tone's frequency.
fn tone_hz(channel: &[i16], from: f64, to: f64) -> f64 {
    let at = |s: f64| ((s * f64::from(RATE)) as usize).min(channel.len());
    let part = &channel[at(from)..at(to)];
    let crossings = part.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (part.len().max(1) as f64 / f64::from(RATE))
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

fn assert_tone(how: &str, channel: &[i16], from: f64, to: f64, hz: f64) {
    let got = tone_hz(channel, from, to);
    assert!(
        (got - hz).abs() < hz * 0.02,
        "{how}: {got:.0} Hz in {from}–{to} s, want {hz}"
    );
}

fn check_g723(how: &str, (left, right): (Vec<i16>, Vec<i16>)) {
    for (channel, party) in [(&left, "caller"), (&right, "callee")] {
        let r = reference("g723", &format!("ref_{party}.s16"));
        let corr = best_correlation(channel, &r);
        eprintln!("{how} {party}: correlation {corr:.4}");
        assert!(
            corr >= 0.99,
            "{how} {party}: correlation {corr:.4} with FFmpeg's decode"
        );
    }
    // The caller's tone before and after its SID and 0.6 s without packets (1.2–1.8 s after
    // its first packet, where the WAV starts), and the quiet between; the callee's 60 ms
    // packets all through.
    assert_tone(how, &left, 0.2, 1.1, 400.0);
    assert_tone(how, &left, 1.9, 2.9, 400.0);
    let quiet = rms(&left[(1.3 * 8000.0) as usize..(1.7 * 8000.0) as usize]);
    let loud = rms(&left[(0.2 * 8000.0) as usize..(1.1 * 8000.0) as usize]);
    assert!(
        quiet < loud / 20.0,
        "{how}: the DTX gap is not quiet ({quiet:.0} vs {loud:.0})"
    );
    assert_tone(how, &right, 0.2, 2.8, 1000.0);
    assert!(
        left.len() >= 3 * 8000 && right.len() >= 3 * 8000,
        "{how}: {} / {} samples",
        left.len(),
        right.len()
    );
}

/// A G.723.1 call (6.3 kbit/s frames from FFmpeg's encoder, static payload type 4): the caller
/// one frame a packet with a SID frame and 0.6 s of DTX, the callee two frames a packet.
#[test]
fn a_g723_call_sounds_as_ffmpeg_decodes_it_offline_and_live() {
    if !with_libavcodec() {
        return;
    }
    let pcap = captures("g723").join("g723_call.pcap");
    let (left, right, stderr) = extract(&pcap);
    assert!(!stderr.contains("unsupported"), "{stderr}");
    check_g723("extract", (left, right));
    check_g723("live", live(&pcap));
}

/// Wireshark's iLBC sample (30 ms mode, one frame a packet, one way): full length, the speech
/// on the sending party's channel only, as FFmpeg decodes the same payloads.
#[test]
fn wiresharks_ilbc_sample_sounds_as_ffmpeg_decodes_it() {
    if !with_libavcodec() {
        return;
    }
    let Some(shared) = common::shared_pcaps() else {
        return;
    };
    let pcap = shared.join("wireshark/sip-rtp-ilbc.pcap");
    let r = reference("ilbc", "ref_ilbc30.s16");
    let (left, right, stderr) = extract(&pcap);
    assert!(!stderr.contains("unsupported"), "{stderr}");
    // One party sends; which one is the SIP's business: the other channel is silent.
    let (sent, other) = if rms(&left) > rms(&right) {
        (left, right)
    } else {
        (right, left)
    };
    assert!(rms(&other) < 1.0, "the silent party: rms {}", rms(&other));
    let corr = best_correlation(&sent, &r);
    eprintln!("sample: correlation {corr:.4}");
    assert!(corr >= 0.99, "correlation {corr:.4} with FFmpeg's decode");
    // 284 frames of 30 ms: 8.52 s.
    assert!(
        sent.len() >= r.len(),
        "{} samples of {}",
        sent.len(),
        r.len()
    );
}

fn check_ilbc_call(how: &str, (left, right): (Vec<i16>, Vec<i16>)) {
    let caller = reference("ilbc", "ref_ilbc30.s16");
    let callee = reference("ilbc", "ref_call_callee.s16");
    let l = best_correlation(&left, &caller);
    let r = best_correlation(&right, &callee);
    assert!(l >= 0.99, "{how} caller: correlation {l:.4}");
    assert!(r >= 0.99, "{how} callee: correlation {r:.4}");
    // The two parties' audio differs, so a swap of the channels would show.
    let crossed = best_correlation(&left, &callee);
    eprintln!("{how}: caller {l:.4}, callee {r:.4}, crossed {crossed:.3}");
    assert!(
        crossed < 0.5,
        "{how}: the caller's channel matches the callee ({crossed:.3})"
    );
}

/// The same real iLBC frames in a call of our making (tests/captures/ilbc/make.py): two frames
/// a packet from the caller, the reversed frames one a packet from the callee with one packet
/// lost, SDP `mode=30`.
#[test]
fn ilbc_frames_several_a_packet_and_a_loss_sound_as_ffmpeg_decodes_them() {
    if !with_libavcodec() {
        return;
    }
    let pcap = captures("ilbc").join("ilbc_call.pcap");
    let (left, right, stderr) = extract(&pcap);
    assert!(!stderr.contains("unsupported"), "{stderr}");
    check_ilbc_call("extract", (left, right));
    check_ilbc_call("live", live(&pcap));
}

/// Without the feature, the codecs are named and the reason given, never played as noise.
#[test]
fn without_libavcodec_the_codec_is_named_with_the_reason() {
    if cfg!(feature = "libavcodec") {
        eprintln!("SKIPPED: this build has the cargo feature `libavcodec`");
        return;
    }
    let pcap = captures("g723").join("g723_call.pcap");
    let (left, right, stderr) = extract(&pcap);
    assert!(
        stderr.contains("G.723.1: built without libavcodec (cargo feature `libavcodec`)"),
        "{stderr}"
    );
    assert!(rms(&left) < 1.0 && rms(&right) < 1.0);
}

/// The listing says why these calls have no MOS: their impairment depends on the mode (5.3 or
/// 6.3 kbit/s, 20 or 30 ms), not that earshot cannot decode them (it said "cannot decode G723"
/// and "cannot decode iLBC" after they were decoded). The same in a build without libavcodec:
/// the MOS is unknown for this reason whatever the build decodes.
#[test]
fn the_listing_says_why_g723_and_ilbc_have_no_mos() {
    for (dir, file, codec) in [
        ("g723", "g723_call.pcap", "G723"),
        ("ilbc", "ilbc_call.pcap", "iLBC"),
    ] {
        let pcap = captures(dir).join(file);
        let s = sensor::Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "max"]);
        s.wait_call_with_rtp(std::time::Duration::from_secs(20));
        let want = format!(" MOS - ({codec}: its impairment depends on the mode)");
        // Both parties' lines, once the sensor has read both streams (generous deadline).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let lines = loop {
            let text = s.cmd_text("listcalls");
            let lines: Vec<String> = ["caller_rtp: ", "called_rtp: "]
                .iter()
                .filter_map(|p| text.lines().find(|l| l.starts_with(p)).map(str::to_string))
                .collect();
            if lines.len() == 2 && lines.iter().all(|l| !l.contains(" packets 0 ")) {
                break lines;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{file}: both parties' streams never listed: {text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        for l in lines {
            assert!(l.ends_with(&want), "{file}: {l}");
        }
    }
}
