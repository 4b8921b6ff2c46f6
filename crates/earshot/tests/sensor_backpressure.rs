//! Listeners that stop reading must not slow capture: the sensor replays a synthetic capture
//! as fast as it can (`--loop --speed max`) and its processing rate is measured from
//! `sniffer_stat` without listeners, with a stalled `stream` listener, and with 500 of them.
//! The assertions only tell "keeps going" from "stalls" (a stalled pipeline would process
//! nothing): this is a debug build on two shared cores, where the listeners' own audio work
//! competes for CPU. BENCHMARKS.md has the release figures against the 95% target.

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

/// Frames processed per second over `window`.
fn rate(s: &Sensor, window: Duration) -> f64 {
    let a = counter(s, "packets_processed");
    let t = Instant::now();
    std::thread::sleep(window);
    let b = counter(s, "packets_processed");
    (b - a) as f64 / t.elapsed().as_secs_f64()
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

    let window = Duration::from_secs(2);
    let base = rate(&s, window);
    assert!(base > 0.0, "the sensor processes packets");
    assert_eq!(counter(&s, "listener_drops"), 0);

    // One stalled listener (48 kHz stereo fills its buffers fastest), on a call just listed.
    // Calls come and go quickly at max speed, so retry until one is dropped for falling behind
    // rather than ended with its call.
    let mut held = Vec::new();
    let mut with_one = None;
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
        if with_one.is_none() {
            with_one = Some(rate(&s, window));
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let with_one = with_one.unwrap();
    eprintln!(
        "processed/s: {base:.0} without listeners, {with_one:.0} with a stalled one ({:.0}%)",
        100.0 * with_one / base
    );
    assert!(
        with_one >= 0.5 * base,
        "a stalled listener slowed capture: {with_one:.0}/s vs {base:.0}/s"
    );

    // 500 concurrent stream listeners, spread over the calls (at most 50 per call).
    let refs = call_refs(&s);
    assert!(!refs.is_empty());
    let drops_before = counter(&s, "listener_drops");
    let mut many = Vec::new();
    for i in 0..500 {
        many.push(stalled_stream(&s, &refs[i % refs.len()], ""));
    }
    let t = Instant::now();
    let listing = s.cmd("listcalls json");
    let answer_time = t.elapsed();
    assert!(listing.starts_with(b"[[\"callreference\""));
    let with_many = rate(&s, window);
    eprintln!(
        "with 500 stream listeners: listcalls answered in {answer_time:?}, {with_many:.0} processed/s ({:.0}%), drops {} -> {}",
        100.0 * with_many / base,
        drops_before,
        counter(&s, "listener_drops")
    );
    assert!(
        answer_time < Duration::from_secs(2),
        "listcalls took {answer_time:?}"
    );
    assert!(
        with_many >= 0.3 * base,
        "500 listeners slowed capture: {with_many:.0}/s vs {base:.0}/s"
    );
    drop(many);
    drop(held);
    let mut s = s;
    assert!(s.alive());
    let _ = std::fs::remove_dir_all(dir);
}
