//! Hold, resume, re-INVITEs and codec changes as a `stream` listener and `listcalls` see them,
//! from `tests/captures/dialog/hold_reinvite.pcap` replayed as live traffic.

#[path = "common/sensor.rs"]
mod sensor;

use earshot_manager::stream_proto::{CallEvent, Frame, StreamItem};
use sensor::Sensor;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/dialog")
        .join(name)
}

/// The call events a `stream` connection sends until it ends.
fn stream_events(addr: std::net::SocketAddr, command: String) -> Vec<CallEvent> {
    sensor::read_stream(addr, &command, Duration::from_secs(60))
        .into_iter()
        .filter_map(|item| match item {
            StreamItem::Frame(Frame::Event(e)) => Some(e),
            _ => None,
        })
        .collect()
}

/// `listcalls {"earshot":true}` rows as name → value maps.
fn rows(s: &Sensor) -> Vec<serde_json::Map<String, Value>> {
    let v: Value = serde_json::from_slice(&s.cmd(r#"listcalls {"earshot":true}"#)).unwrap();
    let list = v.as_array().unwrap();
    let names: Vec<String> = list[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    list.iter()
        .skip(1)
        .filter_map(Value::as_array)
        .filter(|r| r.len() == names.len())
        .map(|r| names.iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

/// What the listing showed of the call while it ran, in order without repeats:
/// (on_hold, held_by, callercodec, callercodec_name); and its last row (ended).
type Seen = Vec<(bool, Value, Value, Value)>;

/// Replays `name` at real speed with a `stream` listener from the start; polls the listing
/// until the call ends. Returns the sensor, the call's reference, what the listing showed, its
/// last row and the listener's call events (status events aside) as short strings.
fn follow(
    name: &str,
) -> (
    Sensor,
    String,
    Seen,
    serde_json::Map<String, Value>,
    Vec<String>,
) {
    let pcap = capture(name);
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(20));
    let r = row[0].as_str().unwrap().to_string();
    let addr = s.addr;
    let cmd = format!("stream {r} rate=8000 channels=2 from=start");
    let listener = std::thread::spawn(move || stream_events(addr, cmd));

    let mut seen: Seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        let list = rows(&s);
        let Some(c) = list.first() else {
            panic!("the call left the listing early");
        };
        let obs = (
            c["on_hold"].as_bool().unwrap(),
            c["held_by"].clone(),
            c["callercodec"].clone(),
            c["callercodec_name"].clone(),
        );
        if seen.last() != Some(&obs) {
            seen.push(obs);
        }
        if c["callstate"] == "ended" {
            break c.clone();
        }
        assert!(Instant::now() < deadline, "the call never ended: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let events = listener.join().expect("listener thread");
    // The listening status (tested in sensor_listening) repeats while no audio flows; these
    // tests are about the call's own events.
    let kinds = events
        .iter()
        .filter(|e| !matches!(e, CallEvent::Status { .. }))
        .map(|e| match e {
            CallEvent::Reinvite { codec, .. } => format!("reinvite {codec:?}"),
            CallEvent::Hold { .. } => "hold".into(),
            CallEvent::Resume { .. } => "resume".into(),
            CallEvent::CodecChange {
                party,
                codec,
                payload_type,
                ..
            } => format!("codec_change {party} {codec} {payload_type}"),
            CallEvent::Answered { .. } => "answered".into(),
            CallEvent::Ended { state, .. } => format!("ended {state}"),
            CallEvent::Other => "other".into(),
            CallEvent::Status { .. } => unreachable!("filtered out above"),
        })
        .collect();
    (s, r, seen, last, kinds)
}

/// baresip_hold.pcap: two real baresip instances (make-baresip.sh): the caller holds
/// (`a=sendonly` answered `a=recvonly`), resumes, re-INVITEs with the same SDP, hangs up.
#[test]
fn a_real_baresip_hold_and_resume_are_events_and_listed() {
    let (s, _r, seen, last, kinds) = follow("baresip_hold.pcap");
    assert_eq!(
        kinds,
        [
            "reinvite None",
            "hold",
            "reinvite None",
            "resume",
            "reinvite None",
            "ended ended"
        ],
        "{seen:?}"
    );
    let pcmu = |on_hold: bool, by: Value| (on_hold, by, Value::from(0), Value::from("PCMU"));
    assert!(
        seen.contains(&pcmu(true, Value::from("caller"))),
        "listcalls never showed the hold: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&pcmu(false, Value::Null)), "{seen:?}");
    assert_eq!(last["reinvites"], 3);
    assert_eq!(last["calledagent"], "baresip v1.0.0 (x86_64/linux)");
    let text = s.cmd_text("listcalls");
    assert!(
        text.contains("on_hold: false\nheld_by: -\nreinvites: 3\n"),
        "{text}"
    );
}

/// sipp_codec_change.pcap (make-sipp.sh): SIPp moves the call from PCMU to PCMA by a
/// re-INVITE; the callee echoes the caller, so both parties change codec.
#[test]
fn a_sipp_codec_change_is_an_event_and_listed() {
    let (s, r, seen, last, kinds) = follow("sipp_codec_change.pcap");
    assert_eq!(
        kinds,
        [
            "reinvite Some(\"PCMA\")",
            "codec_change caller PCMA 8",
            "codec_change called PCMA 8",
            "ended ended"
        ],
        "{seen:?}"
    );
    let codec = |pt: u8, name: &str| (false, Value::Null, Value::from(pt), Value::from(name));
    assert!(seen.contains(&codec(0, "PCMU")), "{seen:?}");
    assert_eq!(seen.last(), Some(&codec(8, "PCMA")), "{seen:?}");
    assert_eq!(last["calledcodec"], 8);
    assert_eq!(last["reinvites"], 1);
    let info: Value = serde_json::from_slice(&s.cmd(&format!("active_call_info {r}"))).unwrap();
    assert_eq!(info["earshot"]["calledcodec_name"], "PCMA");
    let text = s.cmd_text("listcalls");
    assert!(text.contains("codecs: PCMU,PCMA\n"), "{text}");
}

#[test]
fn stream_and_listcalls_follow_hold_resume_and_codec_changes() {
    let (s, r, seen, last, kinds) = follow("hold_reinvite.pcap");
    assert_eq!(
        kinds,
        [
            "reinvite None",
            "hold",
            "reinvite None",
            "resume",
            "reinvite Some(\"PCMA\")",
            "codec_change caller PCMA 8",
            "codec_change called PCMA 8",
            "reinvite Some(\"G722\")",
            "codec_change caller G722 9",
            "codec_change called G722 9",
            "ended ended",
        ],
        "{seen:?}"
    );

    let hold = (
        true,
        Value::from("caller"),
        Value::from(0),
        Value::from("PCMU"),
    );
    assert!(
        seen.contains(&hold),
        "listcalls never showed the hold: {seen:?}"
    );
    let pcma = (false, Value::Null, Value::from(8), Value::from("PCMA"));
    assert!(
        seen.contains(&pcma),
        "listcalls never showed PCMA: {seen:?}"
    );
    assert_eq!(last["callercodec"], 9);
    assert_eq!(last["calledcodec"], 9);
    assert_eq!(last["calledcodec_name"], "G722");
    assert_eq!(last["reinvites"], 4);
    // The callee's 180/200 named it, not the proxy's 100 Trying.
    assert_eq!(last["calledagent"], "baresip callee");

    let info: Value = serde_json::from_slice(&s.cmd(&format!("active_call_info {r}"))).unwrap();
    assert_eq!(info["earshot"]["callercodec_name"], "G722");
    assert_eq!(info["earshot"]["callstate"], "ended");
    // `earshot calls` names the codecs rather than printing VoIPmonitor's numbers (9/9).
    let out = sensor::earshot()
        .args(["calls", "--manager", &s.addr.to_string()])
        .output()
        .expect("run earshot calls");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(" G722/G722 "), "{table}");
    let text = s.cmd_text("listcalls");
    for line in [
        "codecs: PCMU,PCMA,G722\n",
        "caller_codec: G722\n",
        "on_hold: false\n",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
}

/// An INVITE that only a proxy's 100 Trying answered leaves the live listing's "trying" once
/// `[calls] unanswered_timeout_s` (32 s by default, SIP's Timer B; 20 here) passed, instead of
/// staying there for the 5-minute idle timeout; the call answered meanwhile stays answered.
#[test]
fn an_unanswered_invite_is_over_after_its_timeout() {
    let dir = sensor::scratch("dialog-unanswered");
    let config = dir.join("sensor.toml");
    std::fs::write(
        &config,
        "[calls]\nunanswered_timeout_s = 20\nlinger_s = 60\n",
    )
    .unwrap();
    let pcap = capture("unanswered.pcap");
    let s = Sensor::start(&[
        "--config",
        config.to_str().unwrap(),
        "--pcap",
        pcap.to_str().unwrap(),
        "--speed",
        "4",
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = rows(&s);
        let state = |caller: &str| {
            list.iter()
                .find(|c| c["caller"] == caller)
                .map(|c| c["callstate"].clone())
        };
        // The replay restamps packets to the sensor's clock, so the timeout runs on it.
        if state("alice") == Some(Value::from("unanswered")) {
            assert_eq!(state("carol"), Some(Value::from("answered")), "{list:?}");
            break;
        }
        assert!(Instant::now() < deadline, "still not unanswered: {list:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
