//! SRTP calls without a key are never noise: a call whose SDP says `RTP/SAVP` (SDES keys in
//! `a=crypto`, media protected by libsrtp2) is measured like any other (loss, jitter, MOS) but
//! its payloads are never decoded as audio: `analyze` marks the streams encrypted, `extract`
//! writes silence and says why, and a live listener gets silence and an `encrypted` status.
//! Before, all three decoded the ciphertext as G.711: loud white noise.
//!
//! The capture is tests/captures/srtp/sdes_aes_cm_80.pcap (made by make.py there: libsrtp2
//! through pylibsrtp; under the encryption, a 400 Hz / 1 kHz tone).

#[path = "common/sensor.rs"]
mod sensor;

use earshot_manager::stream_proto::{CallEvent, Frame, ListenState, StreamItem};
use sensor::Sensor;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

fn capture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures/srtp/sdes_aes_cm_80.pcap")
}

#[test]
fn analyze_marks_srtp_streams_encrypted_and_still_measures_them() {
    let out = sensor::earshot()
        .args(["analyze", "--json"])
        .arg(capture())
        .output()
        .expect("earshot analyze");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let streams = doc["calls"][0]["streams"]
        .as_array()
        .expect("streams")
        .clone();
    assert_eq!(streams.len(), 2, "{doc}");
    for s in &streams {
        assert_eq!(s["encrypted"], true, "{s}");
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
fn extract_writes_silence_for_srtp_and_says_why() {
    let dir = sensor::scratch("srtp-extract");
    let out = sensor::earshot()
        .args(["extract", "--all", "--out"])
        .arg(&dir)
        .arg(capture())
        .output()
        .expect("earshot extract");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("SRTP-encrypted media").count(),
        2,
        "{stderr}"
    );
    let wav = std::fs::read_dir(&dir)
        .expect("out dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "wav"))
        .expect("a WAV");
    let (samples, channels, _) = sensor::read_wav(&wav);
    assert_eq!(channels, 2);
    assert!(
        samples.len() > 2 * 8000 * 3,
        "the call's length: {} samples",
        samples.len()
    );
    let loudest = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert_eq!(loudest, 0.0, "silence, not the ciphertext decoded as G.711");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_live_listener_of_an_srtp_call_gets_silence_and_is_told_encrypted() {
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
