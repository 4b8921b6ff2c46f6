//! Both legs of a call: the A-leg and B-legs a B2BUA/SBC makes of one call are grouped, by
//! X-CID (the B-leg names the A-leg's Call-ID), RFC 7989 Session-ID, P-Charging-Vector icid, or
//! a configured header or expression; unrelated calls are not.
//!
//! The capture is tests/captures/legs/b2bua_legs.pcap.gz (make-sipp.sh there: SIPp on both
//! sides of every leg): five A/B pairs, one per kind (the fifth's header hidden as
//! VoIPmonitor's `callidmerge_secret` hides it), and a lone call.

#[path = "common/sensor.rs"]
mod sensor;

use sensor::Sensor;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn capture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures/legs/b2bua_legs.pcap.gz")
}

/// Each call's (group key, leg, correlated_by), by Call-ID, from `analyze --json ARGS`.
fn groups(args: &[&str]) -> BTreeMap<String, Option<(String, String, String)>> {
    let doc = sensor::analyze_json_with(args, &capture());
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 11, "five pairs and a lone call");
    calls
        .iter()
        .map(|c| {
            let g = &c["group"];
            let s = |k: &str| g[k].as_str().unwrap_or_default().to_string();
            let group = g
                .is_object()
                .then(|| (s("key"), s("leg"), s("correlated_by")));
            (c["call_id"].as_str().unwrap_or_default().to_string(), group)
        })
        .collect()
}

fn pair(got: &BTreeMap<String, Option<(String, String, String)>>, name: &str, via: &str) {
    let a = format!("a-{name}@pbx.example");
    let b = format!("b-{name}@sbc.example");
    let want = |leg: &str| Some((a.clone(), leg.to_string(), via.to_string()));
    assert_eq!(got[&a], want("a"), "{a}: {got:?}");
    assert_eq!(got[&b], want("b"), "{b}: {got:?}");
}

#[test]
fn both_legs_are_grouped_by_each_built_in_kind_and_unrelated_calls_are_not() {
    let got = groups(&[]);
    pair(&got, "xcid", "x-cid");
    pair(&got, "sid", "session-id");
    pair(&got, "icid", "icid");
    // X-Orig-Call means nothing unless configured; the lone call shares nothing.
    assert_eq!(got["a-hdr@pbx.example"], None);
    assert_eq!(got["b-hdr@sbc.example"], None);
    assert_eq!(got["b-sec@sbc.example"], None);
    assert_eq!(got["lone@pbx.example"], None);
}

#[test]
fn a_configured_header_or_expression_groups_its_pair() {
    let got = groups(&["--correlate-header", "X-Orig-Call"]);
    pair(&got, "hdr", "header");
    pair(&got, "xcid", "x-cid");
    assert_eq!(got["lone@pbx.example"], None);
    let got = groups(&[
        "--correlate-regex",
        "X-Orig-Call:^(a-[a-z]+@pbx\\.example)$",
    ]);
    pair(&got, "hdr", "regex");
    assert_eq!(got["lone@pbx.example"], None);
}

#[test]
fn a_header_hidden_by_voipmonitors_callidmerge_secret_is_read_with_the_secret() {
    let merge = ["--correlate-header", "X-Merge"];
    let got = groups(&[&merge[..], &["--correlate-secret", "s3cret"]].concat());
    pair(&got, "sec", "header");
    pair(&got, "xcid", "x-cid");
    assert_eq!(got["lone@pbx.example"], None);
    // Without the secret the value is no Call-ID; with another, neither.
    assert_eq!(groups(&merge)["b-sec@sbc.example"], None);
    let wrong = groups(&[&merge[..], &["--correlate-secret", "other"]].concat());
    assert_eq!(wrong["b-sec@sbc.example"], None);
}

#[test]
fn correlation_can_be_switched_off() {
    let got = groups(&["--no-correlation"]);
    assert!(got.values().all(Option::is_none), "{got:?}");
}

#[test]
fn the_sensor_lists_the_group_in_earshot_columns_and_leaves_voipmonitors_alone() {
    let pcap = capture();
    let s = Sensor::start(&["--pcap", pcap.to_str().expect("path"), "--speed", "4"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let doc: Value =
            serde_json::from_slice(&s.cmd(r#"listcalls {"earshot":true}"#)).expect("JSON");
        let rows = doc.as_array().expect("rows").clone();
        let names: Vec<String> = rows[0]
            .as_array()
            .expect("header")
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        let col = |n: &str| names.iter().position(|x| x == n).expect(n);
        let calls: Vec<(String, Value, Value, Value)> = rows
            .iter()
            .skip(2)
            .map(|r| {
                (
                    r[col("callid")].as_str().unwrap_or_default().to_string(),
                    r[col("group")].clone(),
                    r[col("leg")].clone(),
                    r[col("correlated_by")].clone(),
                )
            })
            .collect();
        if calls.len() == 11 && calls.iter().filter(|c| !c.1.is_null()).count() == 6 {
            break calls;
        }
        assert!(
            Instant::now() < deadline,
            "six grouped calls listed: {calls:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let find = |id: &str| rows.iter().find(|r| r.0 == id).expect(id).clone();
    let a = find("a-xcid@pbx.example");
    let b = find("b-xcid@sbc.example");
    assert_eq!(
        (a.1.as_str(), a.2.as_str()),
        (Some("a-xcid@pbx.example"), Some("a"))
    );
    assert_eq!(
        (b.1.as_str(), b.2.as_str(), b.3.as_str()),
        (Some("a-xcid@pbx.example"), Some("b"), Some("x-cid"))
    );
    assert!(find("lone@pbx.example").1.is_null());
    // VoIPmonitor's listing keeps its 68 columns.
    let plain = s.calls_json();
    assert_eq!(plain[0].as_array().map(Vec::len), Some(68));
}

/// A real capture (heplify's test data, SIP over TCP through a carrier's SBC) whose INVITEs
/// carry `X-cid` headers naming A-legs the capture does not hold: none of its 37 calls may be
/// grouped, with each other or by accident.
#[test]
fn x_cids_naming_calls_not_captured_group_nothing() {
    let Some(pcap) = sensor::shared("pcaps/heplify/sip_ipv4_tcp_fragmented.pcap") else {
        return;
    };
    let out = sensor::earshot()
        .args(["analyze", "--json"])
        .arg(&pcap)
        .output()
        .expect("earshot analyze");
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 37);
    assert!(calls.iter().all(|c| c.get("group").is_none()));
}
