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
    sensor::analyze_json_with::<&str>(&[], pcap)
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

/// A copy of `name` in the test's scratch folder where the caller's SRTP packets `bad` (by
/// their order in the capture) have one bit of their authentication tag flipped: the last
/// byte, or the one before an MKI of `mki_after_tag` bytes (AES-GCM puts the MKI after it).
fn with_corrupted_tags(name: &str, bad: std::ops::Range<usize>, mki_after_tag: usize) -> PathBuf {
    let mut pcap = std::fs::read(capture_named(name)).expect("the capture");
    // make.py writes classic pcap (24-byte file header, 16-byte record headers), Ethernet,
    // IPv4 without options and UDP: the payload starts 42 bytes into each frame.
    let (mut at, mut caller_packet) = (24, 0);
    while at + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        let frame = at + 16..at + 16 + len;
        let sport = u16::from_be_bytes([pcap[frame.start + 34], pcap[frame.start + 35]]);
        if sport == 38010 {
            if bad.contains(&caller_packet) {
                pcap[frame.end - 1 - mki_after_tag] ^= 0x01;
            }
            caller_packet += 1;
        }
        at = frame.end;
    }
    let path = sensor::scratch(&format!("corrupt-{name}")).join(name);
    std::fs::write(&path, pcap).expect("write the corrupted capture");
    path
}

/// A packet whose tag does not verify is counted and never played: the call is the clear call
/// but for the caller's 10 refused packets, which are silence, not decrypted garbage, and the
/// audio after them is where it was (they are dropped as lost packets, not handed on as
/// ciphertext, which switched the party to "encrypted" and back and shifted it by 3 ms).
/// AES-GCM (the tag is the cipher's) and the MKI calls (the tag after the MKI, or before it)
/// alike.
#[test]
fn a_packet_whose_tag_does_not_verify_is_counted_and_never_played() {
    let (clear, _) = sensor::extract_only_call(&capture_named("clear_twin.pcap"), "srtp-clear2");
    for (name, mki_after_tag) in [
        ("sdes_aead_aes_128_gcm.pcap", 0),
        ("sdes_mki.pcap", 0),
        ("sdes_mki_gcm.pcap", 1),
    ] {
        let pcap = with_corrupted_tags(name, 50..60, mki_after_tag);
        let doc = analyze_json(&pcap);
        let caller = doc["calls"][0]["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["ssrc"] == "0x7777AAAA"))
            .cloned()
            .unwrap_or_else(|| panic!("{name}: the caller's stream in {doc}"));
        assert_eq!(caller["srtp"]["decrypted"], 190, "{name}: {caller}");
        assert_eq!(caller["srtp"]["auth_failures"], 10, "{name}: {caller}");
        let (wav, stderr) = sensor::extract_only_call(&pcap, &format!("srtp-corrupt-{name}"));
        assert!(
            !stderr.contains("SRTP"),
            "{name}: the key is known: {stderr}"
        );
        assert_eq!(wav.len(), clear.len(), "{name}: the call's length");
        // Interleaved stereo s16le after the 44-byte header: the caller is the left channel.
        let samples = |w: &[u8]| -> Vec<i16> {
            w[44..]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect()
        };
        let (got, want) = (samples(&wav), samples(&clear));
        let differ: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
        assert!(
            differ.iter().all(|&i| got[i] == 0 && i % 2 == 0),
            "{name}: where the call differs from the clear one it is the caller's silence"
        );
        // The 10 packets' 1,600 samples in a row, and nothing else: the caller's audio after
        // them is not shifted.
        let frames = differ
            .first()
            .zip(differ.last())
            .map(|(a, b)| (b - a) / 2 + 1);
        assert_eq!(
            (differ.len(), frames),
            (10 * 160, Some(10 * 160)),
            "{name}: the refused packets are silence, and only they"
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
    let (left, right) = sensor::stereo_channels(&items);
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

/// Both channels of what a live listener of the capture's call hears from its start (the
/// sensor replays the capture as fast as it can, the listener asks for the call from its
/// start: the rewind's packets through the same decoders and playout as live).
fn live_call_audio(pcap: &std::path::Path) -> (Vec<f32>, Vec<f32>) {
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "max"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(20));
    let r = row[0].as_str().expect("call reference").to_string();
    let items = sensor::read_stream(
        s.addr,
        &format!("stream {r} channels=2 rate=8000 from=start"),
        Duration::from_secs(30),
    );
    sensor::stereo_channels(&items)
}

/// Issue 16: live `stream` of every suite's call is the clear call's, sample for sample (the
/// offline test above shows `extract`; this is the sensor's path: the pipeline's decryption,
/// the rewind, the fan-out's decoders).
#[test]
fn live_streams_of_every_suite_are_the_clear_calls_bit_for_bit() {
    let (left, right) = live_call_audio(&capture_named("clear_twin.pcap"));
    assert!(left.len() >= 8000 * 3, "{} samples", left.len());
    assert!(
        sensor::tone_share(&left, 8000.0, 400.0) > 0.8
            && sensor::tone_share(&right, 8000.0, 1000.0) > 0.8,
        "the clear call carries its tones"
    );
    for name in SDES_CAPTURES {
        let (l, r) = live_call_audio(&capture_named(name));
        assert_eq!(
            l.len(),
            left.len(),
            "{name}: as many samples as the clear call"
        );
        assert!(l == left && r == right, "{name}: the clear call's samples");
    }
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
    sensor::assert_silent_wav(&wav, "no key");
}

#[test]
fn a_live_listener_of_an_srtp_call_without_a_key_gets_silence_and_is_told_encrypted() {
    let pcap = capture();
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(10));
    let r = row[0].as_str().unwrap().to_string();
    // Both parties are marked once each has sent (the callee's first packet comes a little
    // after the caller's: on a loaded machine the listing may fall between them).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
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
        let marked = (
            &call[col("caller_encrypted")],
            &call[col("called_encrypted")],
        );
        if marked == (&Value::Bool(true), &Value::Bool(true)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "both parties marked encrypted: {listed}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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
