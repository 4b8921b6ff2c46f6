//! Quality earshot cannot know is reported as unknown on every Manager API surface (listcalls
//! text and JSON, `active_call_info`, the `stream` quality frames), never as MOS 4.4 / jitter 0.
//!
//! Captures from tests/captures/listening/ (made by make.py there, not by earshot): an EVS call
//! (a codec earshot cannot decode, with a known 16 kHz clock: its jitter is measured, its MOS is
//! not) and a call that rings 12 s before any media. Replayed at real speed by the binary.

#[path = "common/sensor.rs"]
mod sensor;

use earshot_manager::stream_proto::{Frame, QualityReport, StreamItem};
use sensor::Sensor;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/listening")
        .join(name)
}

/// The first call of `listcalls {"earshot":true}` as name → value, once `ready` accepts it.
fn wait_row(
    s: &Sensor,
    limit: Duration,
    ready: impl Fn(&Map<String, Value>) -> bool,
) -> Map<String, Value> {
    let deadline = Instant::now() + limit;
    loop {
        let reply = s.cmd(r#"listcalls {"earshot":true}"#);
        let v: Value = serde_json::from_slice(&reply).expect("listcalls JSON");
        let list = v.as_array().expect("an array");
        let names: Vec<&str> = list[0]
            .as_array()
            .expect("names")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let row = list
            .iter()
            .skip(1)
            .filter_map(Value::as_array)
            .find(|r| r.len() == names.len())
            .map(|r| {
                names
                    .iter()
                    .map(|n| n.to_string())
                    .zip(r.iter().cloned())
                    .collect()
            });
        if let Some(row) = row.filter(|r| ready(r)) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "no such call within {limit:?}: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn received(row: &Map<String, Value>) -> u64 {
    let n = |k: &str| row.get(k).and_then(Value::as_u64).unwrap_or(0);
    n("src_received").min(n("dst_received"))
}

/// evs_call.pcap: both parties send EVS (rtpmap EVS/16000), which earshot cannot decode. Before the fix the listing said
/// MOS 4.4 (44) for both, and nothing told a client it was a guess.
#[test]
fn an_evs_call_has_jitter_but_no_mos_everywhere() {
    let pcap = capture("evs_call.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let row = wait_row(&s, Duration::from_secs(15), |r| received(r) >= 50);
    let r = row["callreference"]
        .as_str()
        .expect("callreference")
        .to_string();

    // VoIPmonitor's columns: its types, and its own no-data MOS (45), as a VoIPmonitor sensor
    // sends for a call it cannot score.
    assert_eq!(row["src_mosf1"], Value::from(45), "{row:?}");
    assert_eq!(row["dst_mosf1"], Value::from(45), "{row:?}");
    assert!(row["src_jitter"].is_f64(), "{row:?}");
    // earshot's columns: null MOS, why, and the jitter that was measured (the clock is known).
    for side in ["caller", "called"] {
        assert_eq!(row[&format!("{side}_mos")], Value::Null, "{side}: {row:?}");
        assert_eq!(
            row[&format!("{side}_quality_unknown")],
            "undecodable",
            "{side}: {row:?}"
        );
        assert!(
            row[&format!("{side}_jitter_ms")].is_number(),
            "{side}: {row:?}"
        );
    }

    let text = s.cmd_text("listcalls");
    for line in ["caller_rtp: ", "called_rtp: "] {
        let l = text
            .lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("no {line} line: {text}"));
        assert!(l.ends_with(" MOS - (cannot decode EVS)"), "{l}");
        assert!(l.contains(" ms MOS"), "its jitter is measured: {l}");
    }

    // `earshot calls` prints "-", not VoIPmonitor's 4.5 nor the 4.4 it printed before.
    let out = sensor::earshot()
        .args(["calls", "--manager", &s.addr.to_string()])
        .output()
        .expect("run earshot calls");
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table
        .lines()
        .find(|l| l.contains(" EVS/EVS "))
        .unwrap_or_else(|| panic!("no EVS call in {table}"));
    assert!(line.ends_with(" -"), "{table}");

    let info: Value =
        serde_json::from_slice(&s.cmd(&format!("active_call_info {r}"))).expect("JSON");
    assert_eq!(info["call"]["src_mosf1"], Value::from(45), "{info}");
    assert_eq!(info["earshot"]["caller_mos"], Value::Null, "{info}");
    assert_eq!(
        info["earshot"]["called_quality_unknown"], "undecodable",
        "{info}"
    );
    let streams = info["rtp_streams"].as_array().expect("rtp_streams");
    assert_eq!(streams.len(), 2, "{info}");
    for st in streams {
        assert_eq!(st["mos"], Value::Null, "{st}");
        assert_eq!(st["quality_unknown"], "undecodable", "{st}");
    }

    // The stream's quality frames: MOS null and why, jitter measured.
    let quality: Vec<QualityReport> = sensor::read_stream(
        s.addr,
        &format!("stream {r} channels=2 rate=8000 from=now"),
        Duration::from_secs(30),
    )
    .into_iter()
    .filter_map(|i| match i {
        StreamItem::Frame(Frame::Quality(q)) => Some(q),
        _ => None,
    })
    .collect();
    assert!(!quality.is_empty(), "no quality frames");
    for q in &quality {
        assert_eq!(q.mos, None, "{q:?}");
        assert!(q.jitter_ms.is_some(), "{q:?}");
        assert_eq!(q.quality_unknown.as_deref(), Some("undecodable"), "{q:?}");
    }
}

/// ringing_then_answered.pcap: 12 s of ringing without media. Neither party has a score yet,
/// and the listing says why instead of printing nothing (text) or only nulls nobody explains.
#[test]
fn a_ringing_call_has_no_media_yet_and_says_so() {
    let pcap = capture("ringing_then_answered.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let row = wait_row(&s, Duration::from_secs(10), |_| true);
    assert_eq!(received(&row), 0, "the capture rings 12 s first: {row:?}");
    for side in ["caller", "called"] {
        assert_eq!(row[&format!("{side}_mos")], Value::Null, "{row:?}");
        assert_eq!(row[&format!("{side}_jitter_ms")], Value::Null, "{row:?}");
        assert_eq!(
            row[&format!("{side}_quality_unknown")],
            "no_media",
            "{row:?}"
        );
    }
    assert_eq!(
        row["src_mosf1"],
        Value::from(45),
        "VoIPmonitor's no-data MOS: {row:?}"
    );
    let text = s.cmd_text("listcalls");
    assert!(text.contains("caller_rtp: - (no media)\n"), "{text}");
    assert!(text.contains("called_rtp: - (no media)\n"), "{text}");

    // Once answered, the G.711 legs are scored.
    let row = wait_row(&s, Duration::from_secs(30), |r| received(r) >= 50);
    for side in ["caller", "called"] {
        let mos = row[&format!("{side}_mos")].as_f64();
        assert!(mos.is_some_and(|m| m > 4.0), "{side}: {row:?}");
        assert_eq!(
            row[&format!("{side}_quality_unknown")],
            Value::Null,
            "{row:?}"
        );
    }
}
