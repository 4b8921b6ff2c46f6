//! Streams no SIP describes, heard live (`earshot sensor --rtp-without-sip`): the media of a
//! call whose signalling the sensor does not see (SIP over TLS, another interface) is listed
//! as a call and can be streamed like any other.
//!
//! tests/captures/rtponly/rtp-only-pcma.pcap: two PCMA streams sent by ffmpeg's RTP muxer on
//! loopback, no SIP (make.sh there; tshark-rtp-streams.txt: 150 packets each way).

#[path = "common/sensor.rs"]
mod sensor;

use earshot_manager::stream_proto::{Frame, StreamItem};
use sensor::Sensor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn capture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/rtponly/rtp-only-pcma.pcap")
}

/// The `listcalls` text block of the first call listed, once there is one.
fn first_call(s: &Sensor, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let text = s.cmd_text("listcalls");
        if text.contains("callreference: ") {
            return text;
        }
        assert!(Instant::now() < deadline, "no call listed: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn field<'a>(block: &'a str, name: &str) -> &'a str {
    block
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .unwrap_or_else(|| panic!("no {name} in {block}"))
}

#[test]
fn a_stream_without_sip_is_listed_and_heard_on_the_right_channels() {
    let pcap = capture();
    let s = Sensor::start(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--speed",
        "1",
        "--rtp-without-sip",
    ]);
    let block = first_call(&s, Duration::from_secs(10));
    assert!(field(&block, "callid").starts_with("rtp-only "), "{block}");
    assert_eq!(field(&block, "caller"), "127.0.0.1:48010", "{block}");
    assert_eq!(field(&block, "called"), "127.0.0.1:48020", "{block}");
    let r = field(&block, "callreference").to_string();
    let items = sensor::read_stream(
        s.addr,
        &format!("stream {r} channels=2 rate=8000 from=start"),
        Duration::from_secs(40),
    );
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for item in &items {
        if let StreamItem::Frame(Frame::Audio(a)) = item {
            for p in a.samples.chunks_exact(2) {
                left.push(f32::from(p[0]));
                right.push(f32::from(p[1]));
            }
        }
    }
    let seconds = left.len() as f64 / 8000.0;
    assert!(seconds > 2.5, "{seconds:.2} s of audio");
    let share = |x: &[f32], f| sensor::tone_share(x, 8000.0, f);
    let (l440, l1k, r440, r1k) = (
        share(&left, 440.0),
        share(&left, 1000.0),
        share(&right, 440.0),
        share(&right, 1000.0),
    );
    eprintln!("left 440 {l440:.3} 1000 {l1k:.3}; right 440 {r440:.3} 1000 {r1k:.3}");
    assert!(l440 > 0.8 && l1k < 0.01, "caller (left) sends 440 Hz");
    assert!(r1k > 0.8 && r440 < 0.01, "called (right) sends 1000 Hz");
}

#[test]
fn without_the_option_streams_without_sip_are_not_calls() {
    let pcap = capture();
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "max"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.stat()["packets_processed"].as_u64().unwrap_or(0) < 300 {
        assert!(
            Instant::now() < deadline,
            "the capture was not read: {}",
            s.stat()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = s.cmd_text("listcalls");
    assert!(!text.contains("callreference: "), "{text}");
}
