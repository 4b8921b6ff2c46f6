//! `earshot synth` end to end: what it writes must analyse as the calls it promised, and
//! tshark (when installed) must read it as valid SIP and RTP.

use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn earshot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_earshot"))
}

/// A scratch directory per test, removed when the guard drops (also on a failed assertion).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("earshot-synth-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn synth(out: &Path, extra: &[&str]) {
    let res = earshot()
        .args([
            "synth",
            "--calls",
            "5",
            "--seconds",
            "3",
            "--seed",
            "7",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .expect("run earshot synth");
    assert!(
        res.status.success(),
        "synth failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
}

fn analyze(file: &Path) -> Value {
    let res = earshot()
        .args(["analyze", "--json"])
        .arg(file)
        .output()
        .expect("run earshot analyze");
    assert!(
        res.status.success(),
        "analyze failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    serde_json::from_slice(&res.stdout).expect("analyze --json output is JSON")
}

/// 3 s of 20 ms packets: the generator's exact per-stream count before loss.
const PER_STREAM: u64 = 150;

fn calls(doc: &Value) -> &Vec<Value> {
    doc["calls"].as_array().expect("calls array")
}

fn assert_five_ended_calls(doc: &Value, codec: &str) {
    let calls = calls(doc);
    assert_eq!(calls.len(), 5, "{doc:#}");
    let ids: HashSet<&str> = calls
        .iter()
        .map(|c| c["call_id"].as_str().expect("call_id"))
        .collect();
    assert_eq!(ids.len(), 5, "Call-IDs must be distinct");
    for c in calls {
        assert_eq!(c["state"], "ended", "{c:#}");
        assert_eq!(c["sip_code"], 200, "{c:#}");
        let streams = c["streams"].as_array().expect("streams");
        assert_eq!(streams.len(), 2, "{c:#}");
        let dirs: HashSet<&str> = streams
            .iter()
            .filter_map(|s| s["direction"].as_str())
            .collect();
        assert_eq!(dirs.len(), 2, "one stream per party: {c:#}");
        for s in streams {
            assert_eq!(s["codec"], codec, "{s:#}");
        }
    }
    assert_eq!(doc["capture"]["malformed"], 0);
}

#[test]
fn clean_capture_analyses_as_five_lossless_calls() {
    let dir = Scratch::new("clean");
    let file = dir.0.join("clean.pcap");
    synth(&file, &["--codec", "pcmu"]);
    let doc = analyze(&file);
    assert_five_ended_calls(&doc, "PCMU");
    for c in calls(&doc) {
        for s in c["streams"].as_array().expect("streams") {
            assert_eq!(s["packets"], PER_STREAM, "{s:#}");
            assert_eq!(s["lost"], 0, "{s:#}");
            assert_eq!(s["jitter_ms"].as_f64(), Some(0.0), "{s:#}");
        }
    }
    // 7 SIP messages per call.
    assert_eq!(doc["capture"]["sip_messages"], 35);
    assert_eq!(doc["capture"]["rtp_packets"], 5 * 2 * PER_STREAM);
}

#[test]
fn loss_and_jitter_show_up_in_the_analysis() {
    let dir = Scratch::new("lossy");
    let file = dir.0.join("lossy.pcap");
    synth(&file, &["--codec", "pcma", "--loss", "5", "--jitter", "10"]);
    let doc = analyze(&file);
    assert_five_ended_calls(&doc, "PCMA");
    let (mut packets, mut lost) = (0, 0);
    for c in calls(&doc) {
        for s in c["streams"].as_array().expect("streams") {
            let p = s["packets"].as_u64().expect("packets");
            assert!(p < PER_STREAM && p > PER_STREAM / 2, "{s:#}");
            assert!(s["jitter_ms"].as_f64().expect("jitter") > 0.0, "{s:#}");
            packets += p;
            lost += s["lost"].as_u64().expect("lost");
        }
    }
    assert!(lost > 0);
    // A lost last packet is invisible to sequence-number loss, hence <=.
    assert!(packets + lost <= 10 * PER_STREAM);
    assert!(packets + lost >= 10 * PER_STREAM - 10);
}

#[test]
fn same_seed_same_bytes() {
    let dir = Scratch::new("seed");
    let (a, b) = (dir.0.join("a.pcap"), dir.0.join("b.pcap"));
    synth(&a, &["--codec", "pcmu", "--jitter", "5", "--loss", "1"]);
    synth(&b, &["--codec", "pcmu", "--jitter", "5", "--loss", "1"]);
    assert_eq!(std::fs::read(&a).ok(), std::fs::read(&b).ok());
}

/// tshark is the reference reader; skip (with a notice) where it is not installed.
fn tshark() -> Option<Command> {
    match Command::new("tshark").arg("--version").output() {
        Ok(o) if o.status.success() => Some(Command::new("tshark")),
        _ => {
            eprintln!("skipping: tshark is not on PATH");
            None
        }
    }
}

#[test]
fn tshark_reads_valid_sip_and_rtp() {
    let Some(_) = tshark() else { return };
    let dir = Scratch::new("tshark");
    for (name, extra) in [
        ("clean.pcap", &["--codec", "pcmu"][..]),
        (
            "lossy.pcap",
            &["--codec", "pcma", "--loss", "5", "--jitter", "10"][..],
        ),
    ] {
        let file = dir.0.join(name);
        synth(&file, extra);

        let out = tshark()
            .expect("tshark")
            .arg("-r")
            .arg(&file)
            .args(["-q", "-z", "rtp,streams"])
            .output()
            .expect("run tshark");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        // Stream rows are the lines carrying an SSRC.
        let streams = text.lines().filter(|l| l.contains(" 0x")).count();
        assert_eq!(streams, 10, "{name}: tshark rtp,streams:\n{text}");

        let out = tshark()
            .expect("tshark")
            .arg("-r")
            .arg(&file)
            .args([
                "-Y",
                "sip",
                "-T",
                "fields",
                "-e",
                "frame.number",
                "-e",
                "_ws.malformed",
            ])
            .args(["-e", "sip.Method", "-e", "sip.Status-Code"])
            .output()
            .expect("run tshark");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 35, "{name}: SIP messages:\n{text}");
        for line in text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.get(1), Some(&""), "{name}: malformed SIP: {line}");
        }

        let out = tshark()
            .expect("tshark")
            .arg("-r")
            .arg(&file)
            .args([
                "-o",
                "ip.check_checksum:TRUE",
                "-o",
                "udp.check_checksum:TRUE",
            ])
            .args([
                "-Y",
                "_ws.malformed || ip.checksum.status == 0 || udp.checksum.status == 0",
            ])
            .output()
            .expect("run tshark");
        assert!(out.status.success());
        assert!(
            out.stdout.is_empty(),
            "{name}: malformed or bad checksums:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
