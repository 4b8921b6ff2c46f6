//! `analyze --json --timeline` on a lossy synthetic capture: one point per second of each
//! stream, and the loss of the points adds up to the stream's.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn earshot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_earshot"))
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Vec<u8> {
    let res = earshot().args(args).output().expect("run earshot");
    assert!(
        res.status.success(),
        "earshot {args:?}: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    res.stdout
}

fn seconds(rfc3339: &str) -> f64 {
    // "2026-01-01T00:00:05.020000Z": the seconds of the day are enough inside one capture.
    let time = rfc3339.split('T').nth(1).expect("time part");
    let mut parts = time.trim_end_matches('Z').split(':');
    let h: f64 = parts.next().and_then(|p| p.parse().ok()).expect("hour");
    let m: f64 = parts.next().and_then(|p| p.parse().ok()).expect("minute");
    let s: f64 = parts.next().and_then(|p| p.parse().ok()).expect("second");
    h * 3600.0 + m * 60.0 + s
}

#[test]
fn a_lossy_call_has_one_point_per_second_whose_losses_add_up() {
    let dir =
        Scratch(std::env::temp_dir().join(format!("earshot-timeline-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("scratch dir");
    let pcap = dir.0.join("lossy.pcap");
    let pcap_s = pcap.to_str().expect("utf-8 path");
    run(&[
        "synth",
        "--calls",
        "2",
        "--seconds",
        "20",
        "--seed",
        "3",
        "--codec",
        "pcmu",
        "--loss",
        "5",
        "--jitter",
        "30",
        "--out",
        pcap_s,
    ]);
    let doc: Value =
        serde_json::from_slice(&run(&["analyze", "--json", "--timeline", pcap_s])).expect("json");
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 2);
    let mut total_lost = 0;
    for call in calls {
        for s in call["streams"].as_array().expect("streams") {
            let t = &s["timeline"];
            let points = t["points"].as_array().expect("points");
            let span = seconds(s["end"].as_str().expect("end"))
                - seconds(s["start"].as_str().expect("start"));
            // One point per capture second the stream touched: its span, rounded either way.
            let n = points.len() as f64;
            assert!(
                n >= span.floor() && n <= span.ceil() + 1.0,
                "{n} points for a {span} s stream"
            );
            for (i, p) in points.iter().enumerate() {
                assert_eq!(p["t"].as_u64(), Some(i as u64), "consecutive seconds");
            }
            let lost: i64 = points
                .iter()
                .map(|p| p["lost"].as_i64().expect("lost"))
                .sum();
            assert_eq!(lost, s["lost"].as_i64().expect("stream lost"), "{s}");
            let packets: u64 = points
                .iter()
                .map(|p| p["packets"].as_u64().expect("pk"))
                .sum();
            assert_eq!(packets, s["packets"].as_u64().expect("stream packets"));
            assert_eq!(t["points_left_out"].as_u64(), Some(0));
            // Without RTCP or drop counters, every loss is the network's.
            assert_eq!(s["capture_loss"].as_u64(), Some(0));
            assert_eq!(s["network_loss"].as_i64(), s["lost"].as_i64());
            total_lost += lost;
            let mos: Vec<f64> = points.iter().filter_map(|p| p["mos"].as_f64()).collect();
            assert!(
                mos.len() + 1 >= points.len(),
                "a MOS for each second with packets"
            );
            assert!(mos.iter().all(|m| (1.0..=4.5).contains(m)));
        }
    }
    assert!(total_lost > 0, "--loss 5 lost nothing");
    // Without --timeline, no points (and no memory for them).
    let plain: Value = serde_json::from_slice(&run(&["analyze", "--json", pcap_s])).expect("json");
    assert!(plain["calls"][0]["streams"][0].get("timeline").is_none());
}

#[test]
fn a_short_series_reports_the_points_left_out() {
    let dir =
        Scratch(std::env::temp_dir().join(format!("earshot-timeline-cap-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("scratch dir");
    let pcap = dir.0.join("c.pcap");
    let pcap_s = pcap.to_str().expect("utf-8 path");
    run(&[
        "synth",
        "--calls",
        "1",
        "--seconds",
        "10",
        "--seed",
        "3",
        "--codec",
        "pcmu",
        "--out",
        pcap_s,
    ]);
    let doc: Value =
        serde_json::from_slice(&run(&["analyze", "--json", "--timeline=4", pcap_s])).expect("json");
    let t = &doc["calls"][0]["streams"][0]["timeline"];
    assert_eq!(t["points"].as_array().map(Vec::len), Some(4));
    assert!(t["points_left_out"].as_u64() >= Some(5), "{t}");
}

/// tests/captures/capture-loss (made by its make.py, not by earshot): the caller's packets
/// 100..109 are missing from both captures; the called party's RTCP reports say it got them
/// in one (the sensor missed them) and lost them in the other (the network did).
#[test]
fn receiver_reports_tell_capture_loss_from_network_loss() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/captures/capture-loss/"
    );
    for (file, capture, network) in [("capture-loss.pcap", 10, 0), ("network-loss.pcap", 0, 10)] {
        let path = format!("{dir}{file}");
        let doc: Value = serde_json::from_slice(&run(&["analyze", "--json", &path])).expect("json");
        let streams = doc["calls"][0]["streams"].as_array().expect("streams");
        let caller = streams
            .iter()
            .find(|s| s["direction"] == "caller")
            .expect("caller stream");
        assert_eq!(caller["lost"].as_i64(), Some(10), "{file}");
        assert_eq!(caller["capture_loss"].as_u64(), Some(capture), "{file}");
        assert_eq!(caller["network_loss"].as_u64(), Some(network), "{file}");
        assert_eq!(caller["far_end"]["reports"].as_u64(), Some(5), "{file}");
        let text = String::from_utf8(run(&["analyze", &path])).expect("utf-8");
        assert!(
            text.contains(&format!("(network {network}, capture {capture})")),
            "{text}"
        );
    }
}
