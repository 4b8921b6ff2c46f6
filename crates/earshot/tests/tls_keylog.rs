//! `--tls-keylog FILE` on analyze and extract: key logs are read before the capture, and a key
//! log that cannot be used says so and what to do instead of being ignored.

mod common;

use common::earshot;
use std::path::PathBuf;

fn capture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures/srtp/clear_twin.pcap")
}

fn scratch_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("earshot-keylog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write key log");
    path
}

#[test]
fn a_missing_key_log_is_an_error_that_says_what_to_check() {
    for sub in [
        &["analyze"][..],
        &["extract", "--all", "--out", "/tmp/unused"][..],
    ] {
        let out = earshot()
            .args(sub)
            .args(["--tls-keylog", "/nonexistent/keys.log"])
            .arg(capture())
            .output()
            .expect("run earshot");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sub:?}: {stderr}");
        assert!(
            stderr.contains("cannot read the TLS key log /nonexistent/keys.log")
                && stderr.contains("check the path"),
            "{sub:?}: {stderr}"
        );
    }
}

#[test]
fn a_key_log_without_secrets_is_reported_and_the_capture_still_analysed() {
    let keys = scratch_file("empty.log", "# nothing\nnot a key log line\n");
    let out = earshot()
        .args(["analyze", "--json", "--tls-keylog"])
        .arg(&keys)
        .arg(capture())
        .output()
        .expect("run earshot");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no secrets in this key log"), "{stderr}");
    assert!(stderr.contains("skipped 1 malformed line"), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["calls"].as_array().map(Vec::len), Some(1), "{doc}");
}
