//! Listeners that stop reading must not hold up capture: the sensor replays a synthetic capture
//! as fast as it can (`--loop --speed max`) while a `stream` listener, then 500 of them, never
//! read. The test judges counts, not rates: while they are stalled the sensor must go on to
//! process at least a whole pass of the capture (a pipeline that waited for a listener would
//! process nothing more), and the stalled listener must be dropped and counted. How fast it
//! goes is a benchmark's business (BENCHMARKS.md has the release figures against the 95%
//! target), not a test's on two shared cores.

#[path = "common/sensor.rs"]
mod sensor;

use sensor::Sensor;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn counter(s: &Sensor, key: &str) -> u64 {
    let v = s.stat();
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("sniffer_stat has no integer {key}: {v}"))
}

/// Frames in one pass of the synthetic capture: 10 calls of 120 s, two 50-packet/s streams
/// each (the SIP on top is not counted).
const ONE_PASS: u64 = 10 * 120 * 2 * 50;

/// Waits (generously: a debug build on a loaded machine) until the sensor has processed `by`
/// more frames than now, and fails saying what it did process if it does not.
fn goes_on_processing(s: &Sensor, by: u64, what: &str) {
    let start = counter(s, "packets_processed");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = counter(s, "packets_processed");
        if now >= start + by {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the sensor processed {} frames in 120 s, fewer than one pass of the capture ({by}): {}",
            now - start,
            s.stat()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// References of the calls currently up (answered; ended calls linger in the listing).
fn call_refs(s: &Sensor) -> Vec<String> {
    let text = s.cmd_text("listcalls");
    text.split("[call]\n")
        .filter(|b| b.contains("\nstate: answered\n"))
        .filter_map(|b| {
            b.lines()
                .find_map(|l| l.strip_prefix("callreference: "))
                .map(str::to_string)
        })
        .collect()
}

/// Opens `stream REF …` and never reads it. A small receive buffer, set before connecting so
/// the TCP window stays small, makes the stall show within moments rather than megabytes.
fn stalled_stream(s: &Sensor, r: &str, options: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(s.addr), Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.connect(&s.addr.into()).expect("connect");
    let mut c: TcpStream = sock.into();
    c.write_all(format!("stream {r} {options}\r\n\r\n").as_bytes())
        .expect("send stream");
    c
}

#[test]
fn stalled_listeners_do_not_slow_capture() {
    let dir = sensor::scratch("backpressure");
    let pcap = dir.join("synth.pcap");
    let out = sensor::earshot()
        .args([
            "synth",
            "--calls",
            "10",
            "--seconds",
            "120",
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
    // All 500 listeners come from this one address: lift the per-client cap so they are all
    // listeners, not refusals (sensor_listeners tests the cap).
    let config = dir.join("sensor.toml");
    std::fs::write(&config, "[listen]\nmax_per_client_per_call = 0\n").expect("write config");
    let s = Sensor::start(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--loop",
        "--speed",
        "max",
        "--config",
        config.to_str().unwrap(),
    ]);
    s.wait_call_with_rtp(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));

    assert_eq!(counter(&s, "listener_drops"), 0);

    // One stalled listener (48 kHz stereo fills its buffers fastest), on a call just listed.
    // Calls come and go quickly at max speed, so retry until one is dropped for falling behind
    // rather than ended with its call.
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while counter(&s, "listener_drops") == 0 {
        assert!(
            Instant::now() < deadline,
            "a stalled listener was never dropped: {}",
            s.stat()
        );
        // The newest call: at max speed the oldest ones end (and leave) within moments.
        if let Some(r) = call_refs(&s).last() {
            held.push(stalled_stream(&s, r, "rate=48000 channels=2"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The stalled sockets stay open: capture goes on past them.
    goes_on_processing(&s, ONE_PASS, "with stalled listeners held open");

    // 500 concurrent stream listeners, spread over the calls (at most 50 per call).
    let refs = call_refs(&s);
    assert!(!refs.is_empty());
    let drops_before = counter(&s, "listener_drops");
    let mut many = Vec::new();
    for i in 0..500 {
        many.push(stalled_stream(
            &s,
            &refs[i % refs.len()],
            "rate=48000 channels=2",
        ));
    }
    // The Manager API still answers (`Sensor::cmd` has its own generous deadline).
    let listing = s.cmd("listcalls json");
    assert!(listing.starts_with(b"[[\"callreference\""));
    goes_on_processing(&s, ONE_PASS, "with 500 stalled stream listeners");
    eprintln!(
        "with 500 stream listeners: listener drops {drops_before} -> {}",
        counter(&s, "listener_drops")
    );
    drop(many);
    drop(held);
    let mut s = s;
    assert!(s.alive());
    let _ = std::fs::remove_dir_all(dir);
}
