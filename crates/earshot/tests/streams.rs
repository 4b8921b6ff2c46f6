//! Streams outside calls and streams without a clock (issue 12, item 7), on the capture
//! tests/captures/streams/make_orphan_sdp.py writes, against tshark's figures for it
//! (tests/captures/streams/tshark-rtp-streams.txt).

mod common;

use serde_json::Value;

fn capture_dir() -> std::path::PathBuf {
    common::repo_root().join("tests/captures/streams")
}

/// tshark's `-z rtp,streams` rows: SSRC → (packets, mean jitter, max jitter).
fn tshark_rows() -> Vec<(String, u64, f64, f64)> {
    let text = std::fs::read_to_string(capture_dir().join("tshark-rtp-streams.txt")).unwrap();
    text.lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let i = cols.iter().position(|c| c.starts_with("0x"))?;
            // SSRC, payload, packets, lost, (pct), min/mean/max delta, min/mean/max jitter
            let ssrc = cols[i].to_ascii_uppercase().replace("0X", "0x");
            let packets = cols[i + 2].parse().ok()?;
            let mean = cols[i + 9].parse().ok()?;
            let max = cols[i + 10].parse().ok()?;
            Some((ssrc, packets, mean, max))
        })
        .collect()
}

fn stream<'a>(doc: &'a Value, ssrc: &str) -> &'a Value {
    doc["unassociated_streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ssrc"] == ssrc)
        .unwrap_or_else(|| panic!("stream {ssrc} listed: {doc:#}"))
}

#[test]
fn rtpmaps_of_a_183_without_its_invite_give_the_streams_their_clock() {
    let doc = common::analyze_json(&[&capture_dir().join("orphan-sdp.pcap")]);
    let rows = tshark_rows();
    assert_eq!(rows.len(), 3, "tshark's rows: {rows:?}");
    for (ssrc, packets, mean, max) in rows.iter().filter(|r| r.0 != "0x44440004") {
        let s = stream(&doc, ssrc);
        assert_eq!(s["codec"], "AMR-WB", "{ssrc}");
        assert_eq!(s["clock_rate"], 16000, "{ssrc}");
        assert_eq!(s["packets"], *packets, "{ssrc}");
        let ours = s["jitter_ms"].as_f64().expect("jitter known");
        let ours_max = s["max_jitter_ms"].as_f64().expect("max jitter known");
        assert!(
            (ours - mean).abs() < 0.01,
            "{ssrc}: mean jitter {ours} vs tshark {mean}"
        );
        assert!(
            (ours_max - max).abs() < 0.01,
            "{ssrc}: max jitter {ours_max} vs tshark {max}"
        );
        assert!(s["mos"].is_number(), "{ssrc}");
    }
}

#[test]
fn unknown_clock_and_events_alone_have_no_jitter_or_mos() {
    let doc = common::analyze_json(&[&capture_dir().join("orphan-sdp.pcap")]);
    // PT 97: no SDP says what it is, so nothing says at what clock its timestamps run.
    let unknown = stream(&doc, "0x33330003");
    assert_eq!(unknown["packets"], 250);
    for field in ["jitter_ms", "max_jitter_ms", "mos"] {
        assert!(unknown[field].is_null(), "PT97 {field}: {unknown:#}");
    }
    // Telephone-events alone: no audio, no MOS.
    let events = stream(&doc, "0x44440004");
    assert_eq!(events["payload_type"], 101);
    assert!(events["mos"].is_null(), "{events:#}");
    assert!(events["jitter_ms"].is_null(), "{events:#}");

    let out = common::earshot()
        .arg("analyze")
        .arg(capture_dir().join("orphan-sdp.pcap"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table.lines().find(|l| l.contains("0x33330003")).unwrap();
    assert!(
        line.contains("jitter - ms") && line.contains("MOS -"),
        "{line}"
    );
}
