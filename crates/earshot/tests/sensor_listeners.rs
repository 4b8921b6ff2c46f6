//! Hostile listeners: what one Manager API client can make the sensor do. A flood of
//! `stream … from=start` must not cost capture a packet, one client must not take a call's
//! listener slots, slow listeners must not take the sensor's memory, and every listener (and
//! every refusal) is written to the sensor's audit log.
//!
//! These run the real binary on synthetic traffic replayed at real speed. Assertions judge what
//! was counted or received, with generous margins: this is a debug build on shared cores.

#[path = "common/sensor.rs"]
mod sensor;

use sensor::Sensor;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn synth(dir: &Path, calls: u32, seconds: u32) -> PathBuf {
    let pcap = dir.join("synth.pcap");
    let out = sensor::earshot()
        .args(["synth", "--calls", &calls.to_string(), "--seconds"])
        .arg(seconds.to_string())
        .args(["--codec", "pcma", "--out"])
        .arg(&pcap)
        .output()
        .expect("run earshot synth");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pcap
}

fn counter(s: &Sensor, key: &str) -> u64 {
    let v = s.stat();
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("sniffer_stat has no integer {key}: {v}"))
}

/// References of the answered calls.
fn call_refs(s: &Sensor) -> Vec<String> {
    s.cmd_text("listcalls")
        .split("[call]\n")
        .filter(|b| b.contains("\nstate: answered\n"))
        .filter_map(|b| {
            b.lines()
                .find_map(|l| l.strip_prefix("callreference: "))
                .map(str::to_string)
        })
        .collect()
}

/// Waits until `n` calls are answered, then until the oldest have `age` of rewind behind them.
fn calls_with_rewind(s: &Sensor, n: usize, age: Duration) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut refs = call_refs(s);
    while refs.len() < n {
        assert!(Instant::now() < deadline, "{} calls answered", refs.len());
        std::thread::sleep(Duration::from_millis(200));
        refs = call_refs(s);
    }
    std::thread::sleep(age);
    refs
}

/// A connection to the sensor from `local` (any 127.x address is this host's loopback).
fn connect_from(local: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    sock.bind(&SocketAddr::new(local, 0).into())?;
    sock.connect_timeout(&to.into(), Duration::from_secs(5))?;
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

fn request_from(local: IpAddr, to: SocketAddr, command: &str) -> String {
    let mut c = connect_from(local, to).expect("connect");
    c.write_all(format!("{command}\r\n\r\n").as_bytes())
        .expect("send");
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// (VmRSS, VmHWM) of a process, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

const MB: u64 = 1 << 20;

/// Finding: the rewind copy ran on the pipeline thread, one allocation per kept packet, before
/// the listener limits were looked at; a few hundred `from=start` requests a second made
/// capture drop packets. Now limits come first and the rewind is handed over as shared chunks.
#[test]
fn from_start_requests_at_1000_a_second_cost_capture_nothing() {
    let dir = sensor::scratch("listeners-flood");
    let pcap = synth(&dir, 50, 120);
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let refs = calls_with_rewind(&s, 50, Duration::from_secs(25));
    assert_eq!(counter(&s, "internal_drops"), 0);
    let processed_before = counter(&s, "packets_processed");

    let threads = 8;
    let window = Duration::from_secs(6);
    let per_thread = Duration::from_micros(1_000_000 * threads / 1000);
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (addr, refs) = (s.addr, refs.clone());
            std::thread::spawn(move || {
                let mut sent = 0u64;
                let mut next = Instant::now();
                while start.elapsed() < window {
                    let r = &refs[(sent as usize * threads as usize + t as usize) % refs.len()];
                    if let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                        let line = format!("stream {r} rate=48000 channels=2 from=start\r\n\r\n");
                        if c.write_all(line.as_bytes()).is_ok() {
                            // Wait for the header (or a refusal): the request has been handled.
                            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                            let _ = c.read(&mut [0u8; 512]);
                            sent += 1;
                        }
                    }
                    next += per_thread;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                sent
            })
        })
        .collect();
    let sent: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let drops = counter(&s, "internal_drops");
    let processed = counter(&s, "packets_processed") - processed_before;
    eprintln!(
        "{sent} from=start requests in {elapsed:.1} s ({:.0}/s); {processed} packets processed, {drops} internal drops",
        sent as f64 / elapsed
    );
    assert!(
        sent as f64 / elapsed >= 500.0,
        "the test could only send {sent} requests in {elapsed:.1} s"
    );
    assert_eq!(drops, 0, "capture dropped packets: {}", s.stat());
    let mut s = s;
    assert!(s.alive());
    let _ = std::fs::remove_dir_all(dir);
}

/// Finding: one client could take all 50 listener slots of a call with 50 `listen` ids.
#[test]
fn one_client_cannot_take_a_calls_listener_slots() {
    let dir = sensor::scratch("listeners-fair");
    let pcap = synth(&dir, 2, 120);
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let r = calls_with_rewind(&s, 1, Duration::ZERO)[0].clone();
    let me: IpAddr = [127, 0, 0, 1].into();
    let mut refused = 0;
    for i in 0..50 {
        let reply = request_from(me, s.addr, &format!("listen {r} id{i}"));
        if reply.starts_with("error") {
            assert!(reply.contains("from your address"), "{reply}");
            refused += 1;
        }
    }
    assert_eq!(
        refused,
        50 - 8,
        "8 listeners per call and client by default"
    );
    // The fan-out takes the subscriptions in a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&s, "listeners") != 8 {
        assert!(Instant::now() < deadline, "{}", s.stat());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Another client still gets in, and a freed slot can be taken again.
    let other: IpAddr = [127, 0, 0, 2].into();
    let reply = request_from(other, s.addr, &format!("listen {r} theirs"));
    assert!(!reply.starts_with("error"), "{reply}");
    let reply = request_from(me, s.addr, &format!("listen_stop {r} id0"));
    assert!(!reply.starts_with("error"), "{reply}");
    let reply = request_from(me, s.addr, &format!("listen {r} again"));
    assert!(!reply.starts_with("error"), "{reply}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Finding: listener queues were bounded in frames, not bytes: 50 slow `from=start` listeners
/// at 48 kHz stereo held hundreds of megabytes. Now each queue is bounded in bytes, all of them
/// by one budget, and a listener that cannot keep up is dropped, its memory freed.
#[test]
fn slow_rewind_listeners_cannot_take_the_sensors_memory() {
    let dir = sensor::scratch("listeners-memory");
    let pcap = synth(&dir, 10, 120);
    // Small bounds, so the test sees them hold within seconds on a slow debug build: 256 KiB a
    // listener, 16 MiB for all (the defaults are 1 MiB and 128 MiB).
    let config = dir.join("sensor.toml");
    std::fs::write(&config, "[listen]\nqueue_kb = 256\nmemory_mb = 16\n").unwrap();
    let s = Sensor::start(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--speed",
        "1",
        "--config",
        config.to_str().unwrap(),
    ]);
    let refs = calls_with_rewind(&s, 10, Duration::from_secs(30));
    let pid = s.pid();
    let (base, _) = memory(pid);
    // 50 listeners, 5 a call, each reading 2 kB every 250 ms: alive (never stalled), but 20
    // times slower than the audio comes. A small receive buffer, set before connecting, keeps
    // the kernel from reading ahead for them.
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|i| {
            use socket2::{Domain, Socket, Type};
            let sock = Socket::new(Domain::for_address(s.addr), Type::STREAM, None).unwrap();
            sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
            sock.connect(&s.addr.into()).expect("connect");
            let mut c: TcpStream = sock.into();
            let r = &refs[i % refs.len()];
            c.write_all(format!("stream {r} rate=48000 channels=2 from=start\r\n\r\n").as_bytes())
                .expect("send");
            c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            c
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(25);
    let mut buf = [0u8; 2048];
    while Instant::now() < until {
        for c in &mut slow {
            let _ = c.read(&mut buf);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let (during, peak) = memory(pid);
    eprintln!(
        "sensor memory: {} MB before, {} MB with 50 slow listeners, peak {} MB; {} listener drops",
        base / MB,
        during / MB,
        peak / MB,
        counter(&s, "listener_drops")
    );
    assert!(
        peak < base + 40 * MB,
        "50 slow listeners took {} MB",
        (peak - base) / MB
    );
    drop(slow);
    let deadline = Instant::now() + Duration::from_secs(20);
    while counter(&s, "listeners") > 0 {
        assert!(Instant::now() < deadline, "listeners stay: {}", s.stat());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (after, _) = memory(pid);
    eprintln!("sensor memory after: {} MB", after / MB);
    assert!(after < base + 40 * MB, "memory kept: {} MB", after / MB);
    let _ = std::fs::remove_dir_all(dir);
}

/// Finding: listening straight through the Manager API was audited nowhere. The sensor now
/// appends a JSON line per listener start and stop, and per refusal.
#[test]
fn the_audit_log_records_listeners_and_refusals() {
    let dir = sensor::scratch("listeners-audit");
    let pcap = synth(&dir, 2, 120);
    let log = dir.join("audit.jsonl");
    let config = dir.join("sensor.toml");
    std::fs::write(&config, "[listen]\nmax_per_client_per_call = 1\n").unwrap();
    let s = Sensor::start(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--speed",
        "1",
        "--config",
        config.to_str().unwrap(),
        "--audit-log",
        log.to_str().unwrap(),
    ]);
    let refs = calls_with_rewind(&s, 2, Duration::from_secs(2));
    let (a, b) = (&refs[0], &refs[1]);
    assert!(s
        .cmd_text(&format!("listen {a} mine"))
        .starts_with("success"));
    let refused = s.cmd_text(&format!("listen {a} second"));
    assert!(refused.starts_with("error"), "{refused}");
    std::thread::sleep(Duration::from_millis(500));
    let audio = s.cmd(&format!("readaudio {a} mine"));
    s.cmd(&format!("listen_stop {a} mine"));
    // A stream read for a moment, then closed by the client.
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.write_all(format!("stream {b} from=-2\r\n\r\n").as_bytes())
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = 0;
    let mut buf = [0u8; 4096];
    while got < 20_000 {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    drop(c);

    let deadline = Instant::now() + Duration::from_secs(15);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let stops = lines.iter().filter(|l| l["event"] == "stop").count();
        if stops >= 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("{lines:#?}");
    let find = |event: &str, mode: &str| {
        lines
            .iter()
            .find(|l| l["event"] == event && l["mode"] == mode)
            .unwrap_or_else(|| panic!("no {event} line for {mode}: {lines:#?}"))
    };
    let start = find("start", "listen");
    assert_eq!(start["callref"], a.as_str());
    assert_eq!(start["identity"], "none");
    assert!(start["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(!start["call_id"].as_str().unwrap().is_empty());
    let stop = find("stop", "listen");
    assert_eq!(stop["end"], "listen_stop");
    let pcm = if !audio.is_empty() && audio.len() % 800 == 0 {
        audio.len()
    } else {
        0 // "wait for data"
    };
    assert_eq!(stop["bytes"].as_u64(), Some(pcm as u64));
    let refusal = find("refused", "listen");
    assert!(refusal["reason"]
        .as_str()
        .unwrap()
        .contains("from your address"));
    let stream_stop = find("stop", "stream");
    assert_eq!(stream_stop["callref"], b.as_str());
    assert_eq!(stream_stop["from"], "-2");
    assert!(stream_stop["frames"].as_u64().unwrap() > 0, "{stream_stop}");
    assert!(stream_stop["stop_ms"].as_u64() >= stream_stop["start_ms"].as_u64());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("auth"), "no token in the log");
    let _ = std::fs::remove_dir_all(dir);
}
