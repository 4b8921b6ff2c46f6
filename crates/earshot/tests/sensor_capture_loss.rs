//! Capture loss on the Manager API: the sensor replays tests/captures/capture-loss (made by
//! its make.py, not by earshot), where the caller's packets 100..109 are missing from the
//! capture. In capture-loss.pcap the called party's RTCP reports say it got them (the sensor
//! missed them: capture loss); in network-loss.pcap they say it lost them (network loss).

#[path = "common/sensor.rs"]
mod sensor;

use sensor::Sensor;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/capture-loss")
        .join(name)
}

/// The first call of `listcalls {"earshot":true}` as name → value, once `ready` accepts it.
fn wait_row(
    s: &Sensor,
    limit: Duration,
    ready: impl Fn(&Map<String, Value>) -> bool,
) -> Map<String, Value> {
    let deadline = Instant::now() + limit;
    let mut last = None;
    loop {
        let reply = s.cmd(r#"listcalls {"earshot":true}"#);
        let v: Value = serde_json::from_slice(&reply).expect("listcalls JSON");
        let list = v.as_array().expect("an array");
        let names: Vec<String> = list[0]
            .as_array()
            .expect("names")
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        // After the names, a header ([{"total":…}]), then one row per call.
        let row: Option<Map<String, Value>> = list
            .iter()
            .skip(1)
            .filter_map(Value::as_array)
            .find(|r| r.len() == names.len())
            .map(|r| names.iter().cloned().zip(r.iter().cloned()).collect());
        if let Some(row) = row {
            if ready(&row) {
                return row;
            }
            last = Some(row);
        }
        assert!(
            Instant::now() < deadline,
            "no such call within {limit:?}; the last one seen: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn check(file: &str, capture_loss: u64, network_loss: u64) {
    let pcap = capture(file);
    let s = Sensor::start(&["--pcap", pcap.to_str().expect("path"), "--speed", "2"]);
    // The last report (after packet 499) has come once the caller's stream has 490 packets
    // and the row says the loss is one or the other: wait for the split the file implies.
    let row = wait_row(&s, Duration::from_secs(60), |r| {
        r.get("caller_capture_loss").and_then(Value::as_u64) == Some(capture_loss)
            && r.get("caller_network_loss").and_then(Value::as_u64) == Some(network_loss)
    });
    assert_eq!(row["src_loss_abs"].as_f64(), Some(10.0), "{row:?}");
    assert_eq!(row["called_capture_loss"].as_u64(), Some(0), "{row:?}");
    let r = row["callreference"].as_str().expect("callreference");
    let info: Value =
        serde_json::from_slice(&s.cmd(&format!("active_call_info {r}"))).expect("JSON");
    let caller = info["rtp_streams"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["party"] == "caller"))
        .expect("caller stream");
    assert_eq!(
        caller["capture_loss"].as_u64(),
        Some(capture_loss),
        "{info}"
    );
    assert_eq!(
        caller["network_loss"].as_u64(),
        Some(network_loss),
        "{info}"
    );
}

#[test]
fn packets_the_receiver_got_show_as_capture_loss() {
    check("capture-loss.pcap", 10, 0);
}

#[test]
fn packets_the_receiver_lost_show_as_network_loss() {
    check("network-loss.pcap", 0, 10);
}
