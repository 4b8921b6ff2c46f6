//! SRTP calls: with the SDES keys their SDP carries (`a=crypto`), earshot decrypts them and
//! they sound exactly as the same call in the clear; without a key (DTLS-SRTP, here) they are
//! never noise: measured like any other call (loss, jitter, MOS), marked encrypted, and their
//! payloads never decoded: `extract` writes silence and says why, a live listener gets silence
//! and an `encrypted` status. Before, all of them decoded the ciphertext as G.711: loud noise.
//!
//! The captures are in tests/captures/srtp/ (made by make.py there: libsrtp2 through pylibsrtp
//! protects the media; under the encryption, a 400 Hz tone from the caller, 1 kHz from the
//! callee; clear_twin.pcap is the same call unencrypted).

#[path = "common/sensor.rs"]
mod sensor;

use earshot_manager::stream_proto::{CallEvent, Frame, ListenState, StreamItem};
use sensor::Sensor;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

fn capture_named(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/srtp")
        .join(name)
}

/// The call without its keys: DTLS-SRTP, whose keys no SDP carries.
fn capture() -> PathBuf {
    capture_named("dtls_no_key.pcap")
}

fn analyze_json(pcap: &std::path::Path) -> Value {
    let out = sensor::earshot()
        .args(["analyze", "--json"])
        .arg(pcap)
        .output()
        .expect("earshot analyze");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The SDES calls of tests/captures/srtp/: the clear twin's call under each suite earshot
/// decrypts (libsrtp2 protected them), two with two master keys told apart by MKI and the
/// sender moving to the second mid-call.
const SDES_CAPTURES: [&str; 8] = [
    "sdes_aes_cm_80.pcap",
    "sdes_aes_cm_32.pcap",
    "sdes_aes_256_cm_80.pcap",
    "sdes_aes_256_cm_32.pcap",
    "sdes_aead_aes_128_gcm.pcap",
    "sdes_aead_aes_256_gcm.pcap",
    "sdes_mki.pcap",
    "sdes_mki_gcm.pcap",
];

#[test]
fn sdes_calls_are_decrypted_to_exactly_the_clear_call() {
    let (clear, _) = sensor::extract_only_call(&capture_named("clear_twin.pcap"), "srtp-clear");
    for name in SDES_CAPTURES {
        let doc = analyze_json(&capture_named(name));
        let streams = doc["calls"][0]["streams"]
            .as_array()
            .expect("streams")
            .clone();
        assert_eq!(streams.len(), 2, "{name}: {doc}");
        for s in &streams {
            assert_eq!(s["srtp"]["decrypted"], 200, "{name}: {s}");
            assert_eq!(s["srtp"]["auth_failures"], 0, "{name}: {s}");
            assert!(s.get("encrypted").is_none(), "{name}: readable: {s}");
        }
        let (srtp, stderr) = sensor::extract_only_call(&capture_named(name), "srtp-sdes");
        assert!(!stderr.contains("SRTP"), "{name}: {stderr}");
        assert!(
            srtp.len() > 44 + 2 * 2 * 8000 * 3,
            "{name}: {} bytes",
            srtp.len()
        );
        assert!(
            srtp == clear,
            "{name}: the decrypted call is the clear call, bit for bit"
        );
    }

    // Joined 70,000 packets in, past a sequence-number wrap: the ROC is found, all decrypt;
    // under AES-GCM too, whose tag is the cipher's.
    for name in ["late_join.pcap", "late_join_gcm.pcap"] {
        let doc = analyze_json(&capture_named(name));
        let s = &doc["calls"][0]["streams"][0];
        assert_eq!(
            (
                s["srtp"]["decrypted"].as_u64(),
                s["srtp"]["auth_failures"].as_u64()
            ),
            (Some(100), Some(0)),
            "{name}: {s}"
        );
    }
}

#[test]
fn a_live_listener_of_an_sdes_call_hears_both_tones() {
    let pcap = capture_named("sdes_aes_cm_80.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(10));
    let r = row[0].as_str().unwrap().to_string();
    let items = sensor::read_stream(
        s.addr,
        &format!("stream {r} channels=2 rate=8000 from=start"),
        Duration::from_secs(30),
    );
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for item in &items {
        if let StreamItem::Frame(Frame::Audio(a)) = item {
            for pair in a.samples.chunks_exact(2) {
                left.push(f32::from(pair[0]));
                right.push(f32::from(pair[1]));
            }
        }
    }
    assert!(left.len() > 8000 * 3, "{} samples", left.len());
    let (l, r) = (
        sensor::tone_share(&left, 8000.0, 400.0),
        sensor::tone_share(&right, 8000.0, 1000.0),
    );
    assert!(
        l > 0.8 && r > 0.8,
        "400 Hz left ({l:.3}), 1 kHz right ({r:.3})"
    );
}

#[test]
fn analyze_marks_srtp_streams_without_a_key_encrypted_and_still_measures_them() {
    let doc = analyze_json(&capture());
    let streams = doc["calls"][0]["streams"]
        .as_array()
        .expect("streams")
        .clone();
    assert_eq!(streams.len(), 2, "{doc}");
    for s in &streams {
        assert_eq!(s["encrypted"], true, "{s}");
        assert!(s.get("srtp").is_none(), "no key, nothing decrypted: {s}");
        assert_eq!(s["codec"], "PCMA", "{s}");
        assert_eq!(s["packets"], 200, "{s}");
        assert!(
            s["mos"].as_f64().is_some_and(|m| m > 4.0),
            "measured all the same: {s}"
        );
    }
    let text = sensor::earshot()
        .arg("analyze")
        .arg(capture())
        .output()
        .expect("earshot analyze");
    let text = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        text.matches("encrypted (SRTP, no key)").count(),
        2,
        "{text}"
    );
}

#[test]
fn extract_writes_silence_for_srtp_without_a_key_and_says_why() {
    let (wav, stderr) = sensor::extract_only_call(&capture(), "srtp-extract");
    assert_eq!(
        stderr.matches("SRTP-encrypted media").count(),
        2,
        "{stderr}"
    );
    assert!(
        wav.len() > 44 + 2 * 2 * 8000 * 3,
        "the call's length: {} bytes",
        wav.len()
    );
    assert!(
        wav[44..].iter().all(|&b| b == 0),
        "silence, not the ciphertext decoded as G.711"
    );
}

#[test]
fn a_live_listener_of_an_srtp_call_without_a_key_gets_silence_and_is_told_encrypted() {
    let pcap = capture();
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(10));
    let r = row[0].as_str().unwrap().to_string();
    let listed = s.cmd_text(r#"listcalls {"earshot":true}"#);
    let doc: Value = serde_json::from_str(&listed).expect("JSON");
    let names: Vec<&str> = doc[0]
        .as_array()
        .expect("header")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let col = |name: &str| names.iter().position(|n| *n == name).expect(name);
    // After the header row, the totals element, then the call.
    let call = doc
        .as_array()
        .and_then(|rows| rows.last())
        .expect("the call's row");
    assert_eq!(call[col("caller_encrypted")], true, "{listed}");
    assert_eq!(call[col("called_encrypted")], true, "{listed}");
    let items = sensor::read_stream(
        s.addr,
        &format!("stream {r} channels=2 rate=8000 from=start"),
        Duration::from_secs(30),
    );
    let (mut samples, mut loudest, mut states) = (0usize, 0i32, Vec::new());
    for item in &items {
        match item {
            StreamItem::Frame(Frame::Audio(a)) => {
                samples += a.samples.len();
                loudest = a
                    .samples
                    .iter()
                    .fold(loudest, |m, v| m.max(i32::from(*v).abs()));
            }
            StreamItem::Frame(Frame::Event(CallEvent::Status { state, .. })) => states.push(*state),
            _ => {}
        }
    }
    assert!(samples > 2 * 8000 * 3, "{samples} samples");
    assert_eq!(loudest, 0, "silence, not noise");
    assert!(states.contains(&ListenState::Encrypted), "{states:?}");
}
