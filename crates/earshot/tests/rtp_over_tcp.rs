//! RTP over TCP (RFC 4571, SDP `TCP/RTP/AVP`; issue 12, item 11): the capture made by
//! tests/captures/rtptcp/make.py (dpkt, tones by sox) carries a SIP call whose media flows
//! framed on one TCP connection, with frames split across segments, several frames in a
//! segment, a retransmitted segment and an out-of-order pair. Both streams must be in the
//! call with tshark's packet counts (`-d tcp.port==44000,rtp`, out-of-order reassembly on),
//! and `extract` must give each party its own tone on its own channel.

mod common;
#[path = "common/sensor.rs"]
mod sensor;

use common::{tone_dbfs, voiced};
use earshot_manager::stream_proto::{EndReason, Frame, StreamItem};
use sensor::Sensor;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const CALLER_HZ: f64 = 800.0;
const CALLEE_HZ: f64 = 1300.0;

fn capture(name: &str) -> PathBuf {
    common::repo_root().join("tests/captures/rtptcp").join(name)
}

/// tshark's `-z rtp,streams` table: (src, dst, ssrc) → (packets, lost).
fn tshark_streams() -> BTreeMap<(String, String, String), (i64, i64)> {
    let text = std::fs::read_to_string(capture("rtp-over-tcp.tshark-rtp-streams.txt"))
        .expect("read tshark figures");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // start end src sport dst dport ssrc payload packets lost ...
        if f.len() < 10 || !f[6].starts_with("0x") {
            continue;
        }
        let key = (
            format!("{}:{}", f[2], f[3]),
            format!("{}:{}", f[4], f[5]),
            f[6].to_string(),
        );
        let packets = f[8].parse().expect("tshark packet count");
        let lost = f[9].parse().expect("tshark lost count");
        out.insert(key, (packets, lost));
    }
    out
}

#[test]
fn rtp_framed_on_tcp_is_in_the_call_with_tsharks_counts() {
    let doc = common::analyze_json(&[&capture("rtp-over-tcp.pcap")]);
    let expected = tshark_streams();
    assert_eq!(expected.len(), 2, "tshark figures");
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call["codecs"], serde_json::json!(["PCMU"]));
    let streams = call["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2, "{streams:#?}");
    for s in streams {
        let key = (
            s["src"].as_str().unwrap().to_string(),
            s["dst"].as_str().unwrap().to_string(),
            s["ssrc"].as_str().unwrap().to_string(),
        );
        let want = expected
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} not in tshark's"));
        assert_eq!(s["packets"].as_i64(), Some(want.0), "{key:?}");
        assert_eq!(s["lost"].as_i64(), Some(want.1), "{key:?}");
        assert_eq!(s["lost"].as_i64(), Some(0), "{key:?}");
        assert_eq!(s["codec"], "PCMU", "{key:?}");
        let party = if key.0 == "10.40.0.1:44100" {
            "caller"
        } else {
            "called"
        };
        assert_eq!(s["direction"], party, "{key:?}");
    }
    let unassociated = doc["unassociated_streams"].as_array().map_or(0, Vec::len);
    assert_eq!(unassociated, 0);
    let tcp = &doc["capture"]["tcp_media"];
    assert_eq!(tcp["frames"], 500, "{tcp}");
    assert_eq!(tcp["desyncs"], 0, "{tcp}");
    assert_eq!(doc["capture"]["rtp_packets"], 500);
}

#[test]
fn extract_gives_each_party_its_own_tone_from_rtp_on_tcp() {
    let (wav, _) = sensor::extract_only_call(&capture("rtp-over-tcp.pcap"), "rtptcp");
    let r = hound::WavReader::new(std::io::Cursor::new(wav)).expect("a WAV");
    let (channels, rate) = (r.spec().channels, r.spec().sample_rate);
    let samples: Vec<f32> = r
        .into_samples::<i16>()
        .map(|s| f32::from(s.expect("wav sample")))
        .collect();
    assert_eq!(channels, 2);
    let seconds = samples.len() as f64 / 2.0 / f64::from(rate);
    assert!(seconds > 4.5, "{seconds:.2} s of audio");
    let mut problems: Vec<String> = Vec::new();
    for (ch, (own, other)) in [(CALLER_HZ, CALLEE_HZ), (CALLEE_HZ, CALLER_HZ)]
        .into_iter()
        .enumerate()
    {
        let x: Vec<f32> = samples.iter().skip(ch).step_by(2).copied().collect();
        let x = voiced(&x, rate as usize);
        let own_db = tone_dbfs(x, f64::from(rate), own);
        let other_db = tone_dbfs(x, f64::from(rate), other);
        if own_db < -20.0 {
            problems.push(format!("channel {ch}: own {own} Hz at {own_db:.1} dBFS"));
        }
        if other_db > -50.0 {
            problems.push(format!(
                "channel {ch}: other {other} Hz at {other_db:.1} dBFS"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The same capture replayed live: `stream` of the call gives the caller's tone left and the
/// callee's right, and ends when the call does.
#[test]
fn a_live_sensor_streams_rtp_read_from_tcp() {
    let pcap = capture("rtp-over-tcp.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "2"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(20));
    let r = row[0].as_str().expect("call reference").to_string();
    let items = sensor::read_stream(
        s.addr,
        &format!("stream {r} channels=2 rate=8000 from=start"),
        Duration::from_secs(30),
    );
    let (left, right) = sensor::stereo_channels(&items);
    assert!(left.len() > 8000 * 4, "{} samples of audio", left.len());
    let voiced_left = voiced(&left, 8000);
    let voiced_right = voiced(&right, 8000);
    let (l_own, l_other) = (
        sensor::tone_share(voiced_left, 8000.0, CALLER_HZ),
        sensor::tone_share(voiced_left, 8000.0, CALLEE_HZ),
    );
    let (r_own, r_other) = (
        sensor::tone_share(voiced_right, 8000.0, CALLEE_HZ),
        sensor::tone_share(voiced_right, 8000.0, CALLER_HZ),
    );
    eprintln!("left {l_own:.3}/{l_other:.3}, right {r_own:.3}/{r_other:.3}");
    assert!(
        l_own > 0.8 && l_other < 0.05,
        "left (caller, 800 Hz): {l_own:.3}, {l_other:.3}"
    );
    assert!(
        r_own > 0.8 && r_other < 0.05,
        "right (callee, 1300 Hz): {r_own:.3}, {r_other:.3}"
    );
    match items.last() {
        Some(StreamItem::Frame(Frame::End(e))) => assert_eq!(e.reason, EndReason::CallEnded),
        other => panic!("last item is not an end frame: {other:?}"),
    }
}
