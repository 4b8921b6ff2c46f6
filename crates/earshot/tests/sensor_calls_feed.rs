//! The `calls` subscription end to end: a sensor replays `earshot synth` calls in real time and
//! a subscriber sees each call appear (`snapshot` or `new`), change (`changed`, only the
//! fields that changed) and go (`ended`), one JSON line per event. Judged on the events
//! received; the deadline is generous.

#[path = "common/sensor.rs"]
mod sensor;

use sensor::Sensor;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn a_subscriber_sees_calls_appear_change_and_end() {
    let dir = sensor::scratch("calls-feed");
    let pcap = dir.join("five.pcap");
    let out = sensor::earshot()
        .args([
            "synth",
            "--calls",
            "5",
            "--seconds",
            "3",
            "--codec",
            "pcma",
            "--out",
        ])
        .arg(&pcap)
        .output()
        .expect("run earshot synth");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);

    let mut sock = TcpStream::connect(s.addr).expect("connect");
    sock.write_all(b"calls\r\n\r\n").expect("subscribe");
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut lines = BufReader::new(sock);
    let mut appeared: HashMap<String, String> = HashMap::new();
    let mut changed: HashSet<String> = HashSet::new();
    let mut ended: HashSet<String> = HashSet::new();
    let mut synced = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    while ended.len() < 5 && Instant::now() < deadline {
        let mut line = String::new();
        match lines.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => continue, // read timeout: nothing happened for 2 s
        }
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        match v["event"].as_str() {
            Some("snapshot" | "new") => {
                let r = v["call"]["callreference"].as_str().expect("callreference");
                let id = v["call"]["callid"].as_str().expect("callid");
                appeared.insert(r.to_string(), id.to_string());
            }
            Some("changed") => {
                let r = v["callref"].as_str().expect("callref").to_string();
                assert!(
                    appeared.contains_key(&r),
                    "changed before appearing: {line}"
                );
                let fields = v["fields"].as_object().expect("fields");
                assert!(
                    !fields.is_empty() && fields.len() < 68,
                    "only changes: {line}"
                );
                changed.insert(r);
            }
            Some("ended") => {
                let r = v["callref"].as_str().expect("callref").to_string();
                assert!(appeared.contains_key(&r), "ended before appearing: {line}");
                assert!(ended.insert(r), "ended twice: {line}");
            }
            Some("synced") => {
                synced += 1;
                assert_eq!(synced, 1, "synced once, after the snapshot: {line}");
            }
            // Sent after 5 s without any other line.
            Some("alive") => {}
            other => panic!("unexpected event {other:?}: {line}"),
        }
    }
    assert_eq!(appeared.len(), 5, "{appeared:?}");
    assert_eq!(
        changed.len(),
        5,
        "every call's numbers changed: {changed:?}"
    );
    assert_eq!(ended.len(), 5, "{ended:?}");
    assert_eq!(synced, 1, "the end of the first snapshot is marked");
    // Nothing else happens now: within a few seconds the sensor says it is still there.
    let quiet = Instant::now() + Duration::from_secs(30);
    let mut alive = false;
    while !alive && Instant::now() < quiet {
        let mut line = String::new();
        match lines.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => alive = line.trim_end() == r#"{"event":"alive"}"#,
            Err(_) => continue,
        }
    }
    assert!(alive, "a quiet subscription is kept alive");
}
