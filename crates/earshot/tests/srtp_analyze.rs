//! What `analyze` says of SRTP calls, held: the SDES captures of tests/captures/srtp/ are the
//! clear twin's call under each suite, so their streams' figures (packets, loss, jitter, MOS)
//! must be the clear twin's, every packet authenticated; a corrupted tag is counted and its
//! packet refused. `analyze` no longer decrypts the payloads it never reads (issue 16's
//! throughput: every packet is still authenticated), and these figures must not move for it.
//! And SRTCP: an SRTP call's receiver reports split its loss into capture and network loss
//! exactly as the clear twin's reports do.

#[path = "common/sensor.rs"]
mod sensor;

use serde_json::Value;
use std::path::PathBuf;

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/srtp")
        .join(name)
}

fn analyze(name: &str) -> Value {
    sensor::analyze_json_with::<&str>(&[], &capture(name))
}

/// The figures of a stream that must not depend on whether it was encrypted.
fn figures(s: &Value) -> Value {
    let keep = [
        "ssrc",
        "direction",
        "codec",
        "packets",
        "lost",
        "network_loss",
        "capture_loss",
        "duplicates",
        "out_of_order",
        "jitter_ms",
        "max_jitter_ms",
        "max_delta_ms",
        "mos",
        "start",
        "end",
        "far_end",
    ];
    Value::Object(
        keep.iter()
            .filter_map(|k| Some((k.to_string(), s.get(*k)?.clone())))
            .collect(),
    )
}

fn streams(doc: &Value) -> Vec<Value> {
    doc["calls"][0]["streams"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("a call with streams: {doc}"))
}

#[test]
fn analyze_of_every_sdes_suite_gives_the_clear_twins_figures() {
    let clear: Vec<Value> = streams(&analyze("clear_twin.pcap"))
        .iter()
        .map(figures)
        .collect();
    assert_eq!(clear.len(), 2);
    for name in [
        "sdes_aes_cm_80.pcap",
        "sdes_aes_cm_32.pcap",
        "sdes_aes_256_cm_80.pcap",
        "sdes_aes_256_cm_32.pcap",
        "sdes_aead_aes_128_gcm.pcap",
        "sdes_aead_aes_256_gcm.pcap",
        "sdes_mki.pcap",
        "sdes_mki_gcm.pcap",
    ] {
        let doc = analyze(name);
        let got = streams(&doc);
        let figs: Vec<Value> = got.iter().map(figures).collect();
        assert_eq!(figs, clear, "{name}");
        for s in &got {
            assert_eq!(s["srtp"]["decrypted"], 200, "{name}: {s}");
            assert_eq!(s["srtp"]["auth_failures"], 0, "{name}: {s}");
            assert!(s.get("encrypted").is_none(), "{name}: {s}");
        }
        let totals = &doc["capture"]["srtp_packets"];
        assert_eq!(
            (
                &totals["decrypted"],
                &totals["auth_failures"],
                &totals["no_key"]
            ),
            (&Value::from(400), &Value::from(0), &Value::from(0)),
            "{name}: {doc}"
        );
        // The SRTCP sender reports (three a side, all but the first two captures) authenticate;
        // they carry no report blocks.
        let srtcp = &doc["capture"]["srtcp_packets"];
        if name.starts_with("sdes_aes_cm_") {
            assert!(srtcp.is_null(), "{name}: no RTCP: {doc}");
        } else {
            assert_eq!(srtcp["decrypted"], 6, "{name}: {doc}");
            assert_eq!(srtcp["auth_failures"], 0, "{name}: {doc}");
        }
    }
    // Joined past a ROC wrap: the ROC found by the tag, every packet authenticated.
    for name in ["late_join.pcap", "late_join_gcm.pcap"] {
        let doc = analyze(name);
        let s = &streams(&doc)[0];
        assert_eq!(
            (&s["packets"], &s["lost"]),
            (&Value::from(100), &Value::from(0))
        );
        assert_eq!(s["srtp"]["decrypted"], 100, "{name}: {s}");
        assert_eq!(s["srtp"]["auth_failures"], 0, "{name}: {s}");
    }
}

#[test]
fn srtcp_receiver_reports_split_the_loss_as_the_clear_twins_do() {
    let (clear, srtp) = (analyze("srtcp_rr_clear.pcap"), analyze("srtcp_rr.pcap"));
    let caller = |doc: &Value| {
        streams(doc)
            .into_iter()
            .find(|s| s["ssrc"] == "0x7777AAAA")
            .unwrap_or_else(|| panic!("the caller's stream: {doc}"))
    };
    let (c, s) = (caller(&clear), caller(&srtp));
    assert_eq!(
        (&c["lost"], &c["network_loss"], &c["capture_loss"]),
        (&Value::from(10), &Value::from(5), &Value::from(5)),
        "the clear twin: {c}"
    );
    assert_eq!(
        figures(&s),
        figures(&c),
        "the SRTCP call's split is the clear twin's"
    );
    assert_eq!(s["far_end"]["reports"], 4, "{s}");
    assert_eq!(
        srtp["capture"]["rtcp_reports"], clear["capture"]["rtcp_reports"],
        "{srtp}"
    );
    assert_eq!(srtp["capture"]["srtcp_packets"]["decrypted"], 4, "{srtp}");
    assert!(clear["capture"].get("srtcp_packets").is_none(), "{clear}");
}

/// DTMF sent as telephone-events inside SRTP (srtp_dtmf.pcap): read from the decrypted event,
/// the digits are the clear twin's. Before, the engine read them from the ciphertext and the
/// SRTP call had none. `analyze` decrypts exactly these packets (the audio is authenticated
/// only).
#[test]
fn dtmf_inside_srtp_is_read_from_the_decrypted_events() {
    let (clear, srtp) = (analyze("srtp_dtmf_clear.pcap"), analyze("srtp_dtmf.pcap"));
    assert_eq!(clear["calls"][0]["dtmf"], "59", "{clear}");
    assert_eq!(srtp["calls"][0]["dtmf"], "59", "{srtp}");
    let (c, s) = (streams(&clear), streams(&srtp));
    assert_eq!(
        c.iter().map(figures).collect::<Vec<_>>(),
        s.iter().map(figures).collect::<Vec<_>>()
    );
    assert_eq!(s[0]["srtp"]["decrypted"], 150, "{srtp}");
    assert_eq!(s[0]["srtp"]["auth_failures"], 0, "{srtp}");
}
