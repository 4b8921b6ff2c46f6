//! RTP outside any call whose every packet was captured twice (issue 12, item 5): `analyze`
//! must list each stream, with tshark's packet count and the duplicates counted.
//! tests/captures/assoc/doubled_rtp.pcap.gz is made by doubled.py from a SIPp capture.

mod common;

#[test]
fn doubled_rtp_only_streams_are_listed_with_their_duplicates() {
    let pcap = common::repo_root().join("tests/captures/assoc/doubled_rtp.pcap.gz");
    let doc = common::analyze_json(&[&pcap]);
    assert!(doc["calls"].as_array().is_some_and(Vec::is_empty));
    let streams = doc["unassociated_streams"].as_array().expect("streams");
    let mut got: Vec<(String, String, i64, i64, i64)> = streams
        .iter()
        .map(|s| {
            (
                s["src"].as_str().unwrap_or("").to_string(),
                s["dst"].as_str().unwrap_or("").to_string(),
                s["packets"].as_i64().unwrap_or(-1),
                s["duplicates"].as_i64().unwrap_or(-1),
                s["lost"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    got.sort();
    // tshark (doubled_rtp.tshark-rtp-streams.txt): four streams of 100 packets, lost -50.
    let stream = |src: u16, dst: u16| {
        (
            format!("127.0.0.1:{src}"),
            format!("127.0.0.1:{dst}"),
            100,
            50,
            -50,
        )
    };
    let mut want = vec![
        stream(32000, 32100),
        stream(32000, 32120),
        stream(32100, 32000),
        stream(32120, 32000),
    ];
    want.sort();
    assert_eq!(got, want);
}
