//! earshot's sensor against a real VoIPmonitor sensor's recorded replies
//! (`../shared/voipmonitor/`, see its README.md and TRANSCRIPT.md): `call.pcap` is replayed
//! through `earshot sensor` and every compatible command is checked against the recording.

#[path = "common/sensor.rs"]
mod sensor;

use sensor::{best_alignment, samples, Sensor};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn rec(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Fields earshot documents as always null (not computed) or null without data
/// (docs/manager-protocol.md), where VoIPmonitor may print a value.
const MAY_BE_NULL: &[&str] = &[
    "caller_country",
    "called_country",
    "caller_international",
    "called_international",
    "callerip_country",
    "calledip_country",
    "callerip_encaps",
    "calledip_encaps",
    "callerip_encaps_prot",
    "calledip_encaps_prot",
    "sipproxies",
    "rtp_src_country",
    "rtp_dst_country",
    "src_mosf1_avg",
    "src_mosf1_min",
    "src_mosf2",
    "src_mosf2_avg",
    "src_mosf2_min",
    "src_mosAD",
    "src_mosAD_avg",
    "src_mosAD_min",
    "dst_mosf1_avg",
    "dst_mosf1_min",
    "dst_mosf2",
    "dst_mosf2_avg",
    "dst_mosf2_min",
    "dst_mosAD",
    "dst_mosAD_avg",
    "dst_mosAD_min",
    "src_loss_last10sec",
    "dst_loss_last10sec",
    "vlan",
    "calleragent",
    "calledagent",
];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Same header element, byte for byte; same positional row layout and value types.
fn compare_listcalls(ours: &[u8], theirs: &[u8], with_totals: bool) {
    let ours_text = String::from_utf8(ours.to_vec()).unwrap();
    let theirs_text = String::from_utf8(theirs.to_vec()).unwrap();
    let header_end = theirs_text.find(']').unwrap() + 1;
    assert_eq!(
        ours_text.get(..header_end),
        Some(&theirs_text[..header_end]),
        "the header element differs from VoIPmonitor's"
    );
    let o: Vec<Value> = serde_json::from_str(&ours_text).expect("earshot listcalls is JSON");
    let t: Vec<Value> = serde_json::from_str(&theirs_text).unwrap();
    let fields: Vec<&str> = t[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 68);
    let first_row = if with_totals {
        // The totals element: same keys, same order, same types.
        let totals_ours = serde_json::to_string(&o[1]).unwrap();
        let totals_theirs = serde_json::to_string(&t[1]).unwrap();
        assert_eq!(
            totals_ours, totals_theirs,
            "totals element (earshot runs with --sensor-id 1 and one call, like the recording)"
        );
        let raw = |s: &str| {
            let at = s.find(r#"[{"total""#).expect("totals element");
            let end = at + s[at..].find('}').unwrap() + 2;
            s[at..end].to_string()
        };
        assert_eq!(
            raw(&ours_text),
            raw(&theirs_text),
            "totals element bytes (key order)"
        );
        2
    } else {
        assert!(
            o[1].as_array().unwrap()[0].is_string(),
            "no totals element without parameters"
        );
        1
    };
    assert_eq!(o.len(), first_row + 1, "one call: {ours_text}");
    let (or, tr) = (
        o[first_row].as_array().unwrap(),
        t[first_row].as_array().unwrap(),
    );
    assert_eq!(or.len(), 68);
    for ((name, a), b) in fields.iter().zip(or).zip(tr) {
        if a.is_null() && MAY_BE_NULL.contains(name) {
            continue;
        }
        assert_eq!(
            kind(a),
            kind(b),
            "field {name}: earshot {a}, VoIPmonitor {b}"
        );
    }
    let col = |n: &str| fields.iter().position(|f| *f == n).unwrap();
    for same in [
        "callid",
        "caller",
        "called",
        "callername",
        "callerdomain",
        "calleddomain",
        "callerip",
        "calledip",
        "lastSIPresponseNum",
        "rtp_src",
        "rtp_dst",
        "callercodec",
        "calledcodec",
        "id_sensor",
    ] {
        assert_eq!(or[col(same)], tr[col(same)], "field {same}");
    }
    let r = or[0].as_str().unwrap();
    assert!(
        r.starts_with("0x") && r.len() > 2 && u64::from_str_radix(&r[2..], 16).is_ok(),
        "callreference {r}"
    );
}

/// VoIPmonitor's readaudio replies of one polling run, concatenated.
fn recorded_audio(dir: &Path, prefix: &str, range: std::ops::RangeInclusive<usize>) -> Vec<f32> {
    let mut bytes = Vec::new();
    for i in range {
        bytes.extend(rec(dir, &format!("{prefix}_{i:02}.bin")));
    }
    samples(&bytes)
}

#[test]
fn replies_match_voipmonitor_recording() {
    let Some(dir) = sensor::shared("voipmonitor") else {
        return;
    };
    let pcap = dir.join("call.pcap");
    // 4x: the 21 s call plays in about 5.4 s; wall-clock pace is not the point here.
    let s = Sensor::start(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--speed",
        "4",
        "--sensor-id",
        "1",
    ]);
    let row = s.wait_call_with_rtp(Duration::from_secs(10));
    let r = row[0].as_str().unwrap().to_string();

    // Nobody listens yet.
    assert_eq!(
        s.cmd(&format!("readaudio {r} zzz")),
        rec(&dir, "readaudio_no_listen.bin")
    );
    // listen, a second listener, an unknown call.
    assert_eq!(s.cmd(&format!("listen {r} abc")), rec(&dir, "listen.bin"));
    assert_eq!(
        s.cmd(&format!("listen {r} xyz")),
        rec(&dir, "run2/nc_listen_xyz_second_client.bin")
    );
    assert_eq!(s.cmd("listen 0x1234 abc"), rec(&dir, "listen_bad_ref.bin"));
    // The first read right after listen: nothing played out yet.
    assert_eq!(
        s.cmd(&format!("readaudio {r} abc")),
        rec(&dir, "readaudio_00.bin")
    );
    assert_eq!(
        s.cmd(&format!("readaudio {r} nosuchid")),
        rec(&dir, "run2/nc_readaudio_wrong_id.bin")
    );

    // The JSON listings while the call is up, against the recording.
    compare_listcalls(&s.cmd("listcalls json"), &rec(&dir, "listcalls.bin"), false);
    compare_listcalls(
        &s.cmd(r#"listcalls {"limit":10}"#),
        &rec(&dir, "listcalls_limit10.bin"),
        true,
    );

    // Poll readaudio as VoIPmonitor's clients do (every 300 ms of call time, so 75 ms at 4x)
    // for about 10 s of the call.
    let wait = rec(&dir, "readaudio_00.bin");
    let mut audio = Vec::new();
    let mut replies = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2600) {
        std::thread::sleep(Duration::from_millis(75));
        let reply = s.cmd(&format!("readaudio {r} abc"));
        if reply == wait {
            continue;
        }
        assert!(
            !reply.starts_with(b"error: ") && !reply.starts_with(b"information: "),
            "readaudio: {}",
            String::from_utf8_lossy(&reply)
        );
        assert_eq!(reply.len() % 800, 0, "readaudio returns 800-byte blocks");
        replies += 1;
        audio.extend(reply);
    }
    assert!(replies > 10, "only {replies} audio replies");

    // Stop: no reply; the other listener still counts for the call.
    assert_eq!(
        s.cmd(&format!("listen_stop {r} abc")),
        rec(&dir, "listen_stop.bin")
    );
    assert_eq!(
        s.cmd(&format!("listen_stop {r} xyz")),
        rec(&dir, "run2/nc_listen_stop_xyz.bin")
    );
    assert_eq!(
        s.cmd(&format!("readaudio {r} abc")),
        rec(&dir, "readaudio_after_stop.bin")
    );

    // Fixed replies.
    assert_eq!(s.cmd("thisisnotacommand"), rec(&dir, "bogus_command.bin"));
    assert_eq!(s.cmd("totalcalls"), rec(&dir, "totalcalls.bin"));
    let version = s.cmd_text("getversion");
    assert!(
        !version.is_empty() && !version.ends_with('\n'),
        "getversion is bare like VoIPmonitor's: {version:?}"
    );
    let help = s.cmd_text("help");
    let theirs = String::from_utf8(rec(&dir, "help.bin")).unwrap();
    assert!(
        help.starts_with("List of commands:\n\n") && theirs.starts_with("List of commands:\n\n")
    );
    for entry in help["List of commands:\n\n".len()..].split_terminator("\n\n") {
        assert!(
            entry.contains(" ... ") && entry.ends_with('.'),
            "help entry {entry:?}"
        );
    }
    let stat = s.cmd("sniffer_stat");
    assert_eq!(stat.last(), Some(&b'\n'), "sniffer_stat ends in a newline");
    let ours: serde_json::Map<String, Value> = serde_json::from_slice(&stat).unwrap();
    let theirs: serde_json::Map<String, Value> =
        serde_json::from_slice(&rec(&dir, "sniffer_stat.bin")).unwrap();
    for key in [
        "version",
        "build",
        "uptime",
        "pbCountPacketDrop",
        "memory_is_full",
        "count_live_sniffers",
        "terminating_error",
    ] {
        assert_eq!(kind(&ours[key]), kind(&theirs[key]), "sniffer_stat {key}");
    }

    // The audio: the same stretch of the call as VoIPmonitor's, after alignment. Run 1's
    // readaudio_02..11 (3.9 s to 6.6 s into the call) and run 2's readaudio2_04..29 (8.5 s to
    // 16 s) are contiguous; earshot's reads cover about 1 s to 11 s.
    let ours = samples(&audio);
    for (prefix, range) in [("readaudio", 2..=8), ("readaudio2", 4..=9)] {
        let theirs = recorded_audio(&dir, prefix, range.clone());
        let template = &theirs[..theirs.len().min(12_000)];
        let (offset, corr) = best_alignment(template, &ours);
        eprintln!("{prefix} {range:?}: correlation {corr:.3} at sample {offset}");
        assert!(
            corr >= 0.9,
            "earshot's readaudio vs VoIPmonitor's {prefix} {range:?}: correlation {corr:.3}"
        );
    }
    assert!(s.cmd_text("getversion") == version);
}
