//! Compatibility with a real VoIPmonitor sensor's replies, recorded byte for byte in
//! `../shared/voipmonitor` (see its README.md).

use earshot_manager::command::{parse_command, Command, ListCallsFormat};
use earshot_manager::framing::RequestReader;
use earshot_manager::listcalls::{self, CallSummary, LegSummary, ListContext, FIELDS};
use earshot_manager::{replies, CallRef};
use earshot_rtp::Party;
use earshot_sip::CallState;
use serde_json::Value;
use std::path::PathBuf;

/// The recordings, or `None` (with a notice) when absent outside CI.
fn recording(name: &str) -> Option<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/voipmonitor");
    match std::fs::read(dir.join(name)) {
        Ok(b) => Some(b),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{name}: {e} (the recordings are required under CI=true)")
        }
        Err(e) => {
            eprintln!("skipping: {name} not readable ({e})");
            None
        }
    }
}

fn leg(party: Party, pt: u8) -> LegSummary {
    LegSummary {
        party: Some(party),
        src: "127.0.0.1:6000".parse().unwrap(),
        dst: "127.0.0.1:6002".parse().unwrap(),
        ssrc: 1,
        payload_type: pt,
        codec: Some("PCMA".into()),
        first_ns: 1_795_692_898_000_000_000,
        last_ns: 1_795_692_900_000_000_000,
        packets: 111,
        lost: 0,
        loss_percent: 0.0,
        jitter_ms: 0.138047,
        jitter_avg_ms: 0.151687,
        jitter_max_ms: 0.353945,
        mos: Some(4.5),
        unknown: None,
        video: false,
        encrypted: false,
        capture_loss: 0,
    }
}

/// The recorded call (sipp -> service, PCMA), as our snapshot of it.
fn summary(id: u64, start_s: i64) -> CallSummary {
    let caller = leg(Party::Caller, 8);
    let called = leg(Party::Called, 8);
    CallSummary {
        text: std::sync::Arc::new(earshot_manager::CallText {
            call_id: format!("{id}-29453@127.0.0.1").into(),
            caller: "sipp".into(),
            called: "service".into(),
            caller_name: Some("sipp".into()),
            caller_domain: Some("127.0.0.1".into()),
            called_domain: Some("127.0.0.1".into()),
            caller_agent: None,
            called_agent: Some("".into()),
            codecs: vec!["PCMA".to_string()].into(),
            group: None,
        }),
        callref: CallRef::from_u64(0x563de480a000 + id),
        id,
        caller_ip: "127.0.0.1".parse().unwrap(),
        called_ip: "127.0.0.1".parse().unwrap(),
        state: CallState::Answered,
        last_sip_code: Some(200),
        start_ns: start_s * 1_000_000_000,
        answer_ns: Some(start_s * 1_000_000_000),
        last_packet_ns: (start_s + 2) * 1_000_000_000,
        last_sip_ns: start_s * 1_000_000_000,
        duration_secs: 2,
        connect_secs: 2,
        on_hold: false,
        held_by: None,
        reinvites: 0,
        vlan: None,
        sensor_id: Some(1),
        caller_leg: Some(caller.clone()),
        called_leg: Some(called.clone()),
        legs: vec![caller, called],
    }
}

fn parse(bytes: &[u8]) -> Vec<Value> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Array(a)) => a,
        other => panic!("not a JSON array: {other:?}"),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn ctx() -> ListContext {
    ListContext { sensor_id: Some(1) }
}

#[test]
fn field_names_match_the_recording() {
    let Some(rec) = recording("listcalls.bin") else {
        return;
    };
    let rec = parse(&rec);
    let names: Vec<&str> = rec[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names, FIELDS);
    let ours = parse(&listcalls::listcalls_json(
        &[summary(1, 1_795_692_898)],
        None,
        ctx(),
    ));
    assert_eq!(ours[0], rec[0]);
}

#[test]
fn json_without_params_has_no_totals_and_same_types() {
    let Some(rec) = recording("listcalls.bin") else {
        return;
    };
    let rec = parse(&rec);
    assert_eq!(rec.len(), 2, "header + one call");
    let ours = parse(&listcalls::listcalls_json(
        &[summary(1, 1_795_692_898)],
        None,
        ctx(),
    ));
    assert_eq!(ours.len(), 2);
    compare_rows(&rec[1], &ours[1]);
}

#[test]
fn json_with_params_has_the_totals_element() {
    let Some(rec) = recording("listcalls_limit10.bin") else {
        return;
    };
    let rec = parse(&rec);
    let Ok(Command::ListCalls(ListCallsFormat::JsonWithParams(p))) =
        parse_command(r#"listcalls {"limit":10}"#)
    else {
        panic!("parse")
    };
    let ours = parse(&listcalls::listcalls_json(
        &[summary(1, 1_795_692_898)],
        Some(&p),
        ctx(),
    ));
    assert_eq!(ours.len(), rec.len());
    // Same totals keys and values for one call on sensor 1.
    assert_eq!(ours[1], rec[1]);
    compare_rows(&rec[2], &ours[2]);
    // The recorded row values we can reproduce exactly.
    for (i, name) in FIELDS.iter().enumerate() {
        if [
            "calldate",
            "calldate_num",
            "lastpackettime",
            "duration",
            "connect_duration",
            "caller",
            "called",
            "callername",
            "callerdomain",
            "calleddomain",
            "calleragent",
            "calledagent",
            "callerip",
            "calledip",
            "lastSIPresponseNum",
            "rtp_src",
            "rtp_dst",
            "callercodec",
            "calledcodec",
            "src_mosf1",
            "dst_mosf1",
            "src_jitter",
            "src_jitter_avg",
            "src_jitter_max",
            "src_received",
            "dst_received",
            "src_loss_abs",
            "dst_loss_abs",
            "src_loss",
            "dst_loss",
            "id_sensor",
        ]
        .contains(name)
        {
            assert_eq!(ours[2][i], rec[2][i], "{name}");
        }
    }
}

/// Every column we fill has the recorded JSON type; every recorded null stays null.
fn compare_rows(rec: &Value, ours: &Value) {
    let (rec, ours) = (rec.as_array().unwrap(), ours.as_array().unwrap());
    assert_eq!(rec.len(), FIELDS.len());
    assert_eq!(ours.len(), FIELDS.len());
    for (i, name) in FIELDS.iter().enumerate() {
        if ours[i].is_null() {
            continue;
        }
        assert_eq!(
            kind(&ours[i]),
            kind(&rec[i]),
            "{name}: ours {} recorded {}",
            ours[i],
            rec[i]
        );
    }
    assert!(rec[0].as_str().unwrap().starts_with("0x"));
    assert!(ours[0].as_str().unwrap().starts_with("0x"));
}

#[test]
fn empty_listing_matches_before_call() {
    let Some(rec) = recording("listcalls_before_call.bin") else {
        return;
    };
    assert_eq!(
        listcalls::listcalls_json(&[] as &[CallSummary], None, ctx()),
        rec
    );
}

#[test]
fn limit_and_sort() {
    let calls: Vec<_> = (1..=5)
        .map(|i| summary(i, 1_795_692_898 + i as i64))
        .collect();
    let Ok(Command::ListCalls(ListCallsFormat::JsonWithParams(p))) =
        parse_command(r#"listcalls {"limit":2,"sort_field":"calldate","sort_dir":"desc"}"#)
    else {
        panic!("parse")
    };
    let out = parse(&listcalls::listcalls_json(&calls, Some(&p), ctx()));
    assert_eq!(out.len(), 4, "header, totals, two rows");
    assert_eq!(out[1][0]["total"], 5);
    assert_eq!(out[2][1], "5-29453@127.0.0.1");
    assert_eq!(out[3][1], "4-29453@127.0.0.1");
}

#[test]
fn fixed_strings_match_byte_for_byte() {
    let cases: &[(&str, &[u8])] = &[
        ("listen.bin", replies::SUCCESS),
        ("listen2.bin", replies::SUCCESS),
        ("run2/nc_listen_abc.bin", replies::SUCCESS),
        (
            "run2/nc_listen_abc_again.bin",
            replies::CALL_ALREADY_LISTENING,
        ),
        ("listen_bad_ref.bin", replies::CALL_NOT_FOUND),
        ("readaudio_00.bin", replies::WAIT_FOR_DATA),
        ("run2/nc_readaudio_immediate.bin", replies::WAIT_FOR_DATA),
        ("readaudio_no_listen.bin", replies::ERROR_WORKER_NOT_FOUND),
        ("readaudio_after_stop.bin", replies::ERROR_WORKER_NOT_FOUND),
        (
            "run2/nc_readaudio_wrong_id.bin",
            replies::ERROR_CLIENT_NOT_FOUND,
        ),
        ("bogus_command.bin", replies::COMMAND_NOT_FOUND),
        ("listen_stop.bin", replies::LISTEN_STOP),
        ("run2/nc_listen_stop_abc.bin", replies::LISTEN_STOP),
    ];
    for (file, ours) in cases {
        let Some(rec) = recording(file) else { return };
        assert_eq!(&rec[..], *ours, "{file}");
    }
    let Some(rec) = recording("totalcalls.bin") else {
        return;
    };
    assert_eq!(replies::totalcalls(1), rec);
    // Not found for bogus command lines, through the parser.
    let err = parse_command("thisisnotacommand").unwrap_err();
    let Some(rec) = recording("bogus_command.bin") else {
        return;
    };
    assert_eq!(err.reply(), rec);
}

#[test]
fn readaudio_recordings_are_whole_blocks() {
    for i in 1..=11 {
        let Some(rec) = recording(&format!("readaudio_{i:02}.bin")) else {
            return;
        };
        assert_eq!(rec.len() % replies::READAUDIO_BLOCK_BYTES, 0);
    }
}

#[test]
fn getversion_shape_matches() {
    let Some(rec) = recording("getversion.bin") else {
        return;
    };
    // Bare version, no newline, like the recording.
    assert!(!rec.ends_with(b"\n"));
    assert!(!replies::version().ends_with(b"\n"));
    assert!(replies::version()
        .iter()
        .all(|b| b.is_ascii_digit() || *b == b'.'));
}

#[test]
fn recorded_request_styles_are_framed() {
    // Run 1 and run 2 both sent `<command>\r\n\r\n` in one write.
    let mut r = RequestReader::new();
    let req = r
        .push(b"listen 0x563de480a000 abc\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        parse_command(&req.command_line),
        Ok(Command::Listen {
            callref: CallRef::from_u64(0x563de480a000),
            listen_id: "abc".into()
        })
    );
}

#[test]
fn text_listing_has_the_issue_layout() {
    let out = String::from_utf8(listcalls::listcalls_text(&[summary(1, 1_795_692_898)])).unwrap();
    assert!(out.starts_with(
        "[call]\nid: 1\ncaller: sipp\ncalled: service\ncallreference: 563de480a001\n"
    ));
    for key in [
        "callid: ",
        "state: answered",
        "start: 2026-11-26 11:34:58",
        "duration: 2",
        "codecs: PCMA",
        "sensor_id: 1",
    ] {
        assert!(out.contains(key), "{key} missing in\n{out}");
    }
    let two = listcalls::listcalls_text(&[summary(1, 0), summary(2, 0)]);
    assert_eq!(
        String::from_utf8(two).unwrap().matches("[call]\n").count(),
        2
    );
}

#[test]
fn active_call_info_shape() {
    let invite = listcalls::SipPacket {
        ts_ns: 1_795_692_898_000_000_000,
        src: "127.0.0.1:5061".parse().unwrap(),
        dst: "127.0.0.1:5060".parse().unwrap(),
        text: "INVITE sip:service@127.0.0.1 SIP/2.0\r\n".into(),
        truncated: false,
    };
    let out: Value = serde_json::from_slice(&listcalls::active_call_info(
        &summary(1, 1_795_692_898),
        std::slice::from_ref(&invite),
    ))
    .unwrap();
    assert_eq!(out["call"]["callreference"], "0x563de480a001");
    assert_eq!(out["call"].as_object().unwrap().len(), FIELDS.len());
    assert_eq!(out["rtp_streams"].as_array().unwrap().len(), 2);
    let sip = out["sip_packets"].as_array().unwrap();
    assert_eq!(sip.len(), 1);
    assert_eq!(sip[0]["src"], "127.0.0.1:5061");
    assert_eq!(sip[0]["time"], 1_795_692_898_000_000_i64);
    assert!(sip[0]["data"].as_str().unwrap().starts_with("INVITE "));
}
