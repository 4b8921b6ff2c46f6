//! DTLS-SRTP calls heard with a key log: OpenSSL's s_server and s_client ran the handshakes
//! (s_client wrote the key log), libsrtp2 protected the media with the keying material OpenSSL
//! exported (tests/captures/dtls-srtp/, make.py there). With `--tls-keylog keys.log` earshot
//! derives the same keys from the key log and the captured hellos, and the call sounds exactly
//! as its clear twin; without the key log, or with a wrong secret, it stays encrypted silence.

#[path = "common/sensor.rs"]
mod sensor;

use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/dtls-srtp")
        .join(name)
}

fn with_key_log(log: &Path) -> [&OsStr; 2] {
    [OsStr::new("--tls-keylog"), log.as_os_str()]
}

fn analyze_json(pcap: &Path, options: &[&OsStr]) -> Value {
    sensor::analyze_json_with(options, pcap)
}

fn streams(doc: &Value) -> Vec<Value> {
    let streams = doc["calls"][0]["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2, "{doc}");
    streams.clone()
}

fn clear_call() -> Vec<u8> {
    sensor::extract_only_call(&capture("clear_twin.pcap"), "dtls-clear").0
}

#[test]
fn with_its_key_log_a_dtls_srtp_call_is_exactly_the_clear_call() {
    let clear = clear_call();
    let keys = capture("keys.log");
    // The plain handshake, the one whose ClientHello came in three fragments, and the plain
    // one carried as ICE-TCP carries it (RFC 6544: RFC 4571 frames on one TCP connection,
    // make_ice_tcp.py), where the DTLS records must be taken from the TCP framing.
    for name in [
        "dtls_srtp_aes_cm_80.pcap",
        "dtls_srtp_fragmented.pcap",
        "ice_tcp_aes_cm_80.pcap",
    ] {
        let doc = analyze_json(&capture(name), &with_key_log(&keys));
        if name.starts_with("ice_tcp") {
            let tcp = &doc["capture"]["tcp_media"];
            assert_eq!(
                (&tcp["frames"], &tcp["desyncs"]),
                (&412.into(), &0.into()),
                "{tcp}"
            );
        }
        for s in streams(&doc) {
            assert_eq!(s["srtp"]["keys"], "dtls", "{name}: {s}");
            assert_eq!(s["srtp"]["decrypted"], 200, "{name}: {s}");
            assert_eq!(s["srtp"]["auth_failures"], 0, "{name}: {s}");
            assert!(s.get("encrypted").is_none(), "{name}: readable: {s}");
        }
        let dtls = &doc["capture"]["dtls"];
        assert_eq!(
            (&dtls["handshakes"], &dtls["keyed"], &dtls["without_key"]),
            (&1.into(), &1.into(), &0.into()),
            "{name}: {dtls}"
        );
        assert_eq!(
            (
                &dtls["unsupported_profile"],
                &dtls["unsupported_version"],
                &dtls["dropped"]
            ),
            (&0.into(), &0.into(), &0.into()),
            "{name}: {dtls}"
        );
        let (wav, stderr) =
            sensor::extract_only_call_with(&capture(name), "dtls-keyed", &with_key_log(&keys));
        assert!(!stderr.contains("SRTP"), "{name}: {stderr}");
        assert!(
            wav.len() > 44 + 2 * 2 * 8000 * 3,
            "{name}: {} bytes",
            wav.len()
        );
        assert!(
            wav == clear,
            "{name}: the decrypted call is the clear call, bit for bit"
        );
    }
}

#[test]
fn without_a_key_log_a_dtls_srtp_call_stays_encrypted_silence() {
    let pcap = capture("dtls_srtp_aes_cm_80.pcap");
    let doc = analyze_json(&pcap, &[]);
    for s in streams(&doc) {
        assert_eq!(s["encrypted"], true, "{s}");
        assert!(s.get("srtp").is_none(), "no key, nothing decrypted: {s}");
        assert_eq!(s["packets"], 200, "measured all the same: {s}");
    }
    let dtls = &doc["capture"]["dtls"];
    assert_eq!(
        (&dtls["handshakes"], &dtls["keyed"], &dtls["without_key"]),
        (&1.into(), &0.into(), &1.into()),
        "{dtls}"
    );
    assert_eq!(doc["capture"]["srtp_packets"]["no_key"], 400, "{doc}");
    let (wav, stderr) = sensor::extract_only_call(&pcap, "dtls-no-key");
    assert_eq!(
        stderr.matches("SRTP-encrypted media").count(),
        2,
        "{stderr}"
    );
    sensor::assert_silent_wav(&wav, "no key log");
}

#[test]
fn a_wrong_master_secret_is_refused_by_every_tag_and_nothing_plays() {
    let pcap = capture("dtls_srtp_aes_cm_80.pcap");
    let wrong = capture("keys_wrong.log");
    let doc = analyze_json(&pcap, &with_key_log(&wrong));
    for s in streams(&doc) {
        assert_eq!(s["srtp"]["keys"], "dtls", "{s}");
        assert_eq!(s["srtp"]["decrypted"], 0, "{s}");
        assert_eq!(s["srtp"]["auth_failures"], 200, "{s}");
        assert_eq!(s["encrypted"], true, "{s}");
    }
    assert_eq!(
        doc["capture"]["srtp_packets"]["auth_failures"], 400,
        "{doc}"
    );
    let (wav, _) = sensor::extract_only_call_with(&pcap, "dtls-wrong", &with_key_log(&wrong));
    sensor::assert_silent_wav(&wav, "a wrong secret");
}

/// SRTP_AEAD_AES_128_GCM (RFC 7714) negotiated by OpenSSL's use_srtp: the exported keys (a
/// 12-byte salt) decrypt the call to exactly the clear call.
#[test]
fn an_aead_gcm_call_is_keyed_and_decrypted_exactly() {
    let pcap = capture("dtls_srtp_aead_aes_128_gcm.pcap");
    let keys = capture("keys.log");
    let doc = analyze_json(&pcap, &with_key_log(&keys));
    let dtls = &doc["capture"]["dtls"];
    assert_eq!(
        (
            &dtls["handshakes"],
            &dtls["keyed"],
            &dtls["unsupported_profile"]
        ),
        (&1.into(), &1.into(), &0.into()),
        "{dtls}"
    );
    for s in streams(&doc) {
        assert!(s["encrypted"].is_null(), "{s}");
        assert_eq!(s["srtp"]["keys"], "dtls", "{s}");
        assert_eq!(s["srtp"]["auth_failures"], 0, "{s}");
    }
    let (wav, _) = sensor::extract_only_call_with(&pcap, "dtls-gcm", &with_key_log(&keys));
    assert!(
        wav == clear_call(),
        "the decrypted GCM call is the clear call"
    );
}
