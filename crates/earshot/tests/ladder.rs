//! `earshot ladder FILE CALL-ID`: the call's SIP messages in capture order, each as its method
//! or status, checked against a synthetic dialog and against an independent reading of a real
//! capture (a few lines of pcap parsing below, sharing no code with earshot).

mod common;

use common::{earshot, shared_pcaps};
use std::path::{Path, PathBuf};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("earshot-ladder-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ladder(args: &[&str]) -> (bool, String, String) {
    let out = earshot()
        .arg("ladder")
        .args(args)
        .output()
        .expect("run earshot");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `--full` section's headings, `[n] +t s  A → B  LABEL`, as (from, to, label).
fn messages(out: &str) -> Vec<(String, String, String)> {
    out.lines()
        .filter(|l| l.starts_with('['))
        .map(|l| {
            let parts: Vec<&str> = l.split("  ").collect();
            let (from, to) = parts[1].split_once(" → ").expect("A → B");
            (from.into(), to.into(), parts[2].to_string())
        })
        .collect()
}

fn synth_capture(dir: &Path) -> PathBuf {
    let pcap = dir.join("calls.pcap");
    let out = earshot()
        .args([
            "synth",
            "--calls",
            "3",
            "--seconds",
            "1",
            "--codec",
            "pcmu",
            "--out",
        ])
        .arg(&pcap)
        .output()
        .expect("run synth");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pcap
}

#[test]
fn a_synthetic_dialog_is_drawn_message_by_message() {
    let dir = Scratch::new("synth");
    let pcap = synth_capture(&dir.0);
    let doc = common::analyze_json(&[&pcap]);
    let call = &doc["calls"][1];
    let id = call["call_id"].as_str().expect("call_id");
    let (ok, out, err) = ladder(&[pcap.to_str().expect("path"), id, "--full"]);
    assert!(ok, "{err}");
    let labels: Vec<String> = messages(&out).into_iter().map(|m| m.2).collect();
    assert_eq!(
        labels,
        [
            "INVITE (SDP)",
            "100 Trying",
            "180 Ringing",
            "200 OK (SDP)",
            "ACK",
            "BYE",
            "200 OK"
        ],
        "{out}"
    );
    // Two columns, the caller's first: requests go right, responses come back left.
    let m = messages(&out);
    let caller = &m[0].0;
    assert_eq!(&m[1].1, caller);
    assert_eq!(&m[4].0, caller);
    assert!(out.contains("INVITE (SDP)--->|"), "{out}");
    assert!(out.contains("|<--") && out.contains("180 Ringing"), "{out}");
    assert!(out.lines().next().expect("heading").contains(id));
    // No other call's messages.
    let other = doc["calls"][0]["call_id"].as_str().expect("call_id");
    assert!(!out.contains(other), "{out}");
}

#[test]
fn a_long_call_is_bounded_and_says_what_was_left_out() {
    let dir = Scratch::new("max");
    let pcap = synth_capture(&dir.0);
    let doc = common::analyze_json(&[&pcap]);
    let id = doc["calls"][0]["call_id"].as_str().expect("call_id");
    let (ok, out, err) = ladder(&[pcap.to_str().expect("path"), id, "--max", "3", "--full"]);
    assert!(ok, "{err}");
    assert_eq!(messages(&out).len(), 3, "{out}");
    assert!(out.contains("4 more messages left out"), "{out}");
}

#[test]
fn an_unknown_call_id_names_the_ones_there_are() {
    let dir = Scratch::new("unknown");
    let pcap = synth_capture(&dir.0);
    let doc = common::analyze_json(&[&pcap]);
    let (ok, _, err) = ladder(&[pcap.to_str().expect("path"), "no-such-call@x"]);
    assert!(!ok);
    assert!(
        err.contains("no call with Call-ID \"no-such-call@x\""),
        "{err}"
    );
    for c in doc["calls"].as_array().expect("calls") {
        assert!(err.contains(c["call_id"].as_str().expect("id")), "{err}");
    }
}

/// SIP messages of a classic little-endian Ethernet/IPv4/UDP pcap, read without earshot:
/// (source, destination, first token of a request or the status code of a response, Call-ID,
/// the whole text).
type Seen = (String, String, String, String, String);

fn sip_in_pcap(bytes: &[u8]) -> Vec<Seen> {
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4")) as usize;
        let frame = &bytes[at + 16..at + 16 + len];
        at += 16 + len;
        if frame.len() < 42 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
            continue;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let udp = &ip[ihl..];
        let port = |o: usize| u16::from_be_bytes([udp[o], udp[o + 1]]);
        let addr =
            |o: usize, p: u16| format!("{}.{}.{}.{}:{p}", ip[o], ip[o + 1], ip[o + 2], ip[o + 3]);
        let text = String::from_utf8_lossy(&udp[8..]);
        let first = text.lines().next().unwrap_or("");
        let kind = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            rest.split(' ').next().unwrap_or("").to_string()
        } else if first.ends_with("SIP/2.0") {
            first.split(' ').next().unwrap_or("").to_string()
        } else {
            continue;
        };
        let call_id = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.eq_ignore_ascii_case("call-id") || k == "i").then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        let whole = text.to_string();
        out.push((addr(12, port(0)), addr(16, port(2)), kind, call_id, whole));
    }
    out
}

#[test]
fn a_real_call_shows_every_message_in_capture_order() {
    let Some(dir) = shared_pcaps() else { return };
    let pcap = dir.join("wireshark/MagicJack-_short_call.pcap");
    let seen = sip_in_pcap(&std::fs::read(&pcap).expect("read the capture"));
    let id = seen[0].3.clone();
    let want: Vec<_> = seen.iter().filter(|m| m.3 == id).collect();
    assert!(want.len() >= 8, "the capture's dialog: {want:?}");
    let (ok, out, err) = ladder(&[pcap.to_str().expect("path"), &id, "--full"]);
    assert!(ok, "{err}");
    let got = messages(&out);
    assert_eq!(got.len(), want.len(), "{out}");
    for (g, w) in got.iter().zip(&want) {
        let token = g.2.split(' ').next().unwrap_or("");
        assert_eq!((&g.0, &g.1, token), (&w.0, &w.1, w.2.as_str()), "{out}");
    }
    // The 401 challenge and the early media of this call are there, in that order.
    let labels: Vec<&str> = got.iter().map(|g| g.2.as_str()).collect();
    let pos = |p: &str| labels.iter().position(|l| l.starts_with(p));
    assert!(pos("401").is_some() && pos("183").is_some(), "{labels:?}");
    assert!(pos("401") < pos("183"), "{labels:?}");
}

/// tshark's view of a capture's SIP (`*.tshark-sip.txt` beside it: time, source address and
/// port, method or status code, CSeq, ...), one message a line.
fn tshark_sip(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .expect("tshark's view")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let kind = if f[3].is_empty() { f[4] } else { f[3] };
            (format!("{}:{}", f[1], f[2]), kind.to_string())
        })
        .collect()
}

#[test]
fn a_held_and_resumed_call_matches_tsharks_view() {
    let dir = common::repo_root().join("tests/captures/dialog");
    for name in ["baresip_hold", "sipp_codec_change"] {
        let pcap = dir.join(format!("{name}.pcap"));
        let doc = common::analyze_json(&[&pcap]);
        let id = doc["calls"][0]["call_id"].as_str().expect("call_id");
        let (ok, out, err) = ladder(&[pcap.to_str().expect("path"), id, "--full"]);
        assert!(ok, "{err}");
        let got: Vec<(String, String)> = messages(&out)
            .into_iter()
            .map(|(from, _, label)| (from, label.split(' ').next().unwrap_or("").to_string()))
            .collect();
        let want = tshark_sip(&dir.join(format!("{name}.tshark-sip.txt")));
        assert_eq!(got, want, "{name}:\n{out}");
    }
}

#[test]
fn retransmissions_are_marked_as_the_capture_repeats_them() {
    let Some(dir) = shared_pcaps() else { return };
    let pcap = dir.join("wireshark/aaa.pcap");
    let seen = sip_in_pcap(&std::fs::read(&pcap).expect("read the capture"));
    let id = "105090259-446faf7a@192.168.1.2";
    let want: Vec<&Seen> = seen.iter().filter(|m| m.3 == id).collect();
    // A retransmission: the same text between the same addresses as an earlier message.
    let again: Vec<bool> = want
        .iter()
        .enumerate()
        .map(|(i, m)| {
            want[..i]
                .iter()
                .any(|e| (&e.0, &e.1, &e.4) == (&m.0, &m.1, &m.4))
        })
        .collect();
    assert!(again.iter().filter(|a| **a).count() >= 4, "{again:?}");
    let (ok, out, err) = ladder(&[pcap.to_str().expect("path"), id, "--full"]);
    assert!(ok, "{err}");
    let got = messages(&out);
    assert_eq!(got.len(), want.len(), "{out}");
    let marked: Vec<bool> = out
        .lines()
        .filter(|l| l.starts_with('['))
        .map(|l| l.contains("(retransmission)"))
        .collect();
    assert_eq!(marked, again, "{out}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.2.split(' ').next(), Some(w.2.as_str()), "{out}");
    }
    assert!(out.contains("over UDP"), "{out}");
}
