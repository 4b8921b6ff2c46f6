//! Calls that share media addresses (issue 12, item 1), on SIPp captures made by
//! tests/captures/assoc/make.sh: every call's streams must carry exactly its own packets, as
//! tshark counts them per SSRC, and its audio must be its own tone.
//!
//! In both captures call i is placed by SIPp caller process i: SIP port 31001 + i, media port
//! 32100 + 20·i (before the rewrite to one port in `shared_ports`), SSRC 0xCA110000 + i in
//! `shared_ports`, and a tone of 1003 + 20·i Hz, echoed back by the callee (`-rtp_echo`).

mod common;

use common::{earshot, tone_dbfs, voiced};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn capture(name: &str) -> PathBuf {
    common::repo_root().join("tests/captures/assoc").join(name)
}

/// tshark's `-z rtp,streams` table: (src, dst, ssrc) → packets.
fn tshark_streams(name: &str) -> BTreeMap<(String, String, String), i64> {
    let text = std::fs::read_to_string(capture(name)).expect("read tshark figures");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // start end src sport dst dport ssrc payload packets ...
        if f.len() < 9 || !f[6].starts_with("0x") {
            continue;
        }
        let key = (
            format!("{}:{}", f[2], f[3]),
            format!("{}:{}", f[4], f[5]),
            f[6].to_string(),
        );
        out.insert(key, f[8].parse().expect("tshark packet count"));
    }
    out
}

/// The SIPp caller index of a call, from its signalling port.
fn call_index(call: &Value) -> usize {
    let sip = call["caller_sip"].as_str().expect("caller_sip");
    let port: usize = sip.rsplit(':').next().unwrap().parse().unwrap();
    port - 31001
}

fn tone(i: usize) -> f64 {
    1003.0 + 20.0 * i as f64
}

/// Checks the calls against tshark and returns them, keyed by caller index.
fn check_streams(pcap: &str, figures: &str, calls_expected: usize) -> BTreeMap<usize, Value> {
    let doc = common::analyze_json(&[&capture(pcap)]);
    let expected = tshark_streams(figures);
    assert_eq!(expected.len(), 2 * calls_expected, "tshark figures");
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), calls_expected);
    let unassociated = doc["unassociated_streams"].as_array().map_or(0, Vec::len);
    assert_eq!(unassociated, 0, "every stream is in a call");
    let mut seen = BTreeMap::new();
    let mut by_index = BTreeMap::new();
    for call in calls {
        let i = call_index(call);
        let streams = call["streams"].as_array().expect("streams");
        let keys: Vec<String> = streams
            .iter()
            .map(|s| format!("{} -> {} {}", s["src"], s["dst"], s["ssrc"]))
            .collect();
        assert_eq!(streams.len(), 2, "call {i}: {keys:?}");
        for s in streams {
            let key = (
                s["src"].as_str().unwrap().to_string(),
                s["dst"].as_str().unwrap().to_string(),
                s["ssrc"].as_str().unwrap().to_string(),
            );
            let want = expected.get(&key);
            assert_eq!(
                s["packets"].as_i64().as_ref(),
                want,
                "call {i}: {key:?} (tshark {want:?})"
            );
            assert!(seen.insert(key.clone(), i).is_none(), "{key:?} twice");
            let media = 32100 + 20 * i;
            let own = match pcap {
                p if p.starts_with("shared_callee") => {
                    let mine = format!("127.0.0.1:{media}");
                    key.0 == mine || key.1 == mine
                }
                _ => key.2 == format!("0x{:08X}", 0xCA11_0000_u32 + i as u32),
            };
            assert!(own, "call {i} holds {key:?}, another call's stream");
        }
        by_index.insert(i, call.clone());
    }
    assert_eq!(seen.len(), expected.len());
    by_index
}

fn check_audio(pcap: &str, calls: &BTreeMap<usize, Value>, tag: &str) {
    let dir =
        std::env::temp_dir().join(format!("earshot-shared-media-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = earshot()
        .args(["extract", "--all", "--out"])
        .arg(&dir)
        .arg(capture(pcap))
        .output()
        .expect("run earshot extract");
    assert!(
        out.status.success(),
        "extract: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut problems = Vec::new();
    for (&i, call) in calls {
        let id = call["call_id"].as_str().unwrap();
        let wav = std::fs::read_dir(&dir)
            .expect("extract output")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().contains(&format!("_{id}.wav")))
            .unwrap_or_else(|| panic!("no WAV for call {id}"));
        let r = hound::WavReader::open(Path::new(&wav)).expect("open wav");
        let (channels, rate) = (r.spec().channels, r.spec().sample_rate);
        let samples: Vec<f32> = r
            .into_samples::<i16>()
            .map(|s| f32::from(s.expect("wav sample")))
            .collect();
        assert_eq!(channels, 2);
        for (ch, party) in ["caller", "called"].into_iter().enumerate() {
            let x: Vec<f32> = samples.iter().skip(ch).step_by(2).copied().collect();
            let x = voiced(&x, rate as usize);
            let own = tone_dbfs(x, f64::from(rate), tone(i));
            if own < -20.0 {
                problems.push(format!("call {i} {party}: own tone at {own:.1} dBFS"));
            }
            for j in (0..calls.len()).filter(|&j| j != i) {
                let other = tone_dbfs(x, f64::from(rate), tone(j));
                if other > -50.0 {
                    problems.push(format!(
                        "call {i} {party}: call {j}'s tone at {other:.1} dBFS"
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn fifty_calls_sharing_the_callee_address_keep_their_own_streams_and_audio() {
    let calls = check_streams(
        "shared_callee.pcap.gz",
        "shared_callee.tshark-rtp-streams.txt",
        50,
    );
    check_audio("shared_callee.pcap.gz", &calls, "callee");
}

#[test]
fn twenty_calls_on_one_port_pair_are_told_apart_by_ssrc() {
    let calls = check_streams(
        "shared_ports.pcap.gz",
        "shared_ports.tshark-rtp-streams.txt",
        20,
    );
    check_audio("shared_ports.pcap.gz", &calls, "ports");
}
