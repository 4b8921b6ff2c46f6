//! Time is input (issue #11): capture times come from packets, and a packet can say anything.
//! A forged HEP envelope time must not take the sensor's memory or its listeners, calls
//! stamped far in the future or the past must still be listed sanely and expire, and one
//! capture record far from its neighbours must not make `earshot extract` write (or allocate)
//! the time in between.

#[path = "common/sensor.rs"]
mod sensor;

use earshot_manager::stream_proto::{Frame, StreamDecoder, StreamItem};
use sensor::Sensor;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The acceptance bound on the sensor's (and extract's) memory.
const RSS_LIMIT_KB: u64 = 200 * 1024;
/// 2106-02-07: as far as a HEP envelope's 32-bit seconds reach.
const YEAR_2106: u32 = u32::MAX;

fn chunk(ctype: u16, val: &[u8]) -> Vec<u8> {
    let mut c = vec![0, 0];
    c.extend_from_slice(&ctype.to_be_bytes());
    c.extend_from_slice(&((6 + val.len()) as u16).to_be_bytes());
    c.extend_from_slice(val);
    c
}

/// A HEP3 datagram carrying `payload` from `src` to `dst` (IPv4, UDP), stamped `secs.usecs`.
fn hep3(src: SocketAddr, dst: SocketAddr, secs: u32, usecs: u32, payload: &[u8]) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 only");
    };
    let mut body = Vec::new();
    body.extend(chunk(1, &[2]));
    body.extend(chunk(2, &[17]));
    body.extend(chunk(3, &s.ip().octets()));
    body.extend(chunk(4, &d.ip().octets()));
    body.extend(chunk(7, &s.port().to_be_bytes()));
    body.extend(chunk(8, &d.port().to_be_bytes()));
    body.extend(chunk(9, &secs.to_be_bytes()));
    body.extend(chunk(10, &usecs.to_be_bytes()));
    body.extend(chunk(15, payload));
    let mut out = b"HEP3".to_vec();
    out.extend_from_slice(&((6 + body.len()) as u16).to_be_bytes());
    out.extend(body);
    out
}

fn unix_now() -> (u32, u32) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (d.as_secs() as u32, d.subsec_micros())
}

const CALLER_SIP: &str = "192.0.2.10:5060";
const CALLED_SIP: &str = "192.0.2.20:5060";
const CALLER_RTP: &str = "192.0.2.10:4000";
const CALLED_RTP: &str = "192.0.2.20:6000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn sdp(rtp: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = rtp.ip(),
        port = rtp.port()
    )
}

fn invite(call_id: &str, media_port: u16) -> Vec<u8> {
    let body = sdp(SocketAddr::new(addr(CALLER_RTP).ip(), media_port));
    format!(
        "INVITE sip:bob@192.0.2.20 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLER_SIP};branch=z9hG4bK{call_id}\r\n\
         From: <sip:alice@192.0.2.10>;tag=f{call_id}\r\n\
         To: <sip:bob@192.0.2.20>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{CALLER_SIP}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn ok(call_id: &str) -> Vec<u8> {
    let body = sdp(addr(CALLED_RTP));
    format!(
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP {CALLER_SIP};branch=z9hG4bK{call_id}\r\n\
         From: <sip:alice@192.0.2.10>;tag=f{call_id}\r\n\
         To: <sip:bob@192.0.2.20>;tag=t{call_id}\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:bob@{CALLED_SIP}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn rtp(seq: u16, ts: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend(std::iter::repeat_n(0x7Fu8, 160));
    p
}

/// A free UDP port on loopback for the sensor's HEP listener.
fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// VmRSS and VmHWM of a process, in KiB.
fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The column `name` of every row of `listcalls json`.
fn column(sensor: &Sensor, name: &str) -> Vec<serde_json::Value> {
    let list = sensor.calls_json();
    let fields = list[0].as_array().unwrap();
    let i = fields
        .iter()
        .position(|f| f.as_str() == Some(name))
        .unwrap_or_else(|| panic!("no column {name}"));
    list.iter()
        .skip(1)
        .map(|row| row.as_array().unwrap()[i].clone())
        .collect()
}

/// What a `stream` listener saw: audio frames, and whether (and why) it was ended.
#[derive(Default)]
struct Heard {
    frames: AtomicU64,
    ended: std::sync::Mutex<Option<String>>,
}

fn listen(sensor: SocketAddr, callref: String, heard: Arc<Heard>, stop: Arc<AtomicBool>) {
    let mut sock = TcpStream::connect(sensor).expect("connect to the Manager API");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    sock.write_all(format!("stream {callref}\r\n\r\n").as_bytes())
        .unwrap();
    let mut dec = StreamDecoder::new();
    let mut buf = [0u8; 16384];
    while !stop.load(Ordering::Relaxed) {
        match sock.read(&mut buf) {
            Ok(0) => {
                heard.ended.lock().unwrap().get_or_insert("closed".into());
                return;
            }
            Ok(n) => dec.push(&buf[..n]),
            Err(_) => continue,
        }
        while let Ok(Some(item)) = dec.next_item() {
            match item {
                StreamItem::Frame(Frame::Audio(_)) => {
                    heard.frames.fetch_add(1, Ordering::Relaxed);
                }
                StreamItem::Frame(Frame::End(end)) => {
                    *heard.ended.lock().unwrap() = Some(format!("{end:?}"));
                    return;
                }
                _ => {}
            }
        }
    }
}

#[test]
fn a_forged_hep_time_does_not_take_the_sensor_or_its_listener() {
    let hep = free_udp();
    let mut sensor = Sensor::start(&["--hep", &hep.to_string()]);
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |src: &str, dst: &str, (secs, usecs): (u32, u32), payload: &[u8]| {
        agent
            .send_to(&hep3(addr(src), addr(dst), secs, usecs, payload), hep)
            .unwrap();
    };
    send(
        CALLER_SIP,
        CALLED_SIP,
        unix_now(),
        &invite("forged-time", 4000),
    );
    send(CALLED_SIP, CALLER_SIP, unix_now(), &ok("forged-time"));

    // The caller's RTP, every 20 ms on the agent's (true) clock, until told to stop.
    let seq = Arc::new(AtomicU64::new(0));
    let stop_rtp = Arc::new(AtomicBool::new(false));
    let rtp_thread = {
        let agent = agent.try_clone().unwrap();
        let (seq, stop) = (seq.clone(), stop_rtp.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let d = hep3(
                    addr(CALLER_RTP),
                    addr(CALLED_RTP),
                    unix_now().0,
                    unix_now().1,
                    &rtp(n as u16, (n * 160) as u32),
                );
                let _ = agent.send_to(&d, hep);
                let next = start + Duration::from_millis(20 * (n + 1));
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        })
    };
    let row = sensor.wait_call_with_rtp(Duration::from_secs(20));
    let callref = row[0].as_str().expect("callreference first").to_string();

    let heard = Arc::new(Heard::default());
    let stop_listen = Arc::new(AtomicBool::new(false));
    let listener = {
        let (heard, stop) = (heard.clone(), stop_listen.clone());
        let at = sensor.addr;
        std::thread::spawn(move || listen(at, callref, heard, stop))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while heard.frames.load(Ordering::Relaxed) < 25 {
        assert!(Instant::now() < deadline, "the listener got no audio");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The attack: RTP of the listened call, its envelope in 2106, an hour ahead, a day back.
    let (now, _) = unix_now();
    for secs in [YEAR_2106, now + 3600, now - 86_400, YEAR_2106] {
        let n = seq.load(Ordering::Relaxed);
        send(
            CALLER_RTP,
            CALLED_RTP,
            (secs, 0),
            &rtp(n as u16, (n * 160) as u32),
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = heard.frames.load(Ordering::Relaxed);
    let after_attack = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let after = heard.frames.load(Ordering::Relaxed);
    let alive = sensor.alive();
    let (rss, hwm) = memory_kb(sensor.pid());
    let ended = heard.ended.lock().unwrap().clone();
    let listened_s = after_attack.elapsed().as_secs_f64();

    stop_rtp.store(true, Ordering::Relaxed);
    stop_listen.store(true, Ordering::Relaxed);
    let _ = rtp_thread.join();
    let _ = listener.join();

    assert!(alive, "the sensor died: {}", sensor.stderr());
    assert!(
        hwm < RSS_LIMIT_KB,
        "sensor memory peaked at {hwm} KiB (now {rss} KiB)"
    );
    assert_eq!(ended, None, "the listener lost its call");
    // Audio kept coming, at the pace of the call: not stopped, not a flood of silence.
    let got = after - before;
    assert!(
        got >= 25,
        "only {got} frames in the {listened_s:.1} s after the attack"
    );
    let most = (listened_s * 50.0) as u64 + 150;
    assert!(got <= most, "{got} frames in {listened_s:.1} s: a flood");
    let scrape = sensor.cmd_text("sniffer_stat");
    assert!(scrape.contains("uptime"), "{scrape}");
}

#[test]
fn calls_stamped_in_the_future_or_past_are_listed_at_receipt_and_expire() {
    let dir = sensor::scratch("hostile-time-expiry");
    let config = dir.join("sensor.toml");
    std::fs::write(&config, "[calls]\nidle_timeout_s = 2\nlinger_s = 1\n").unwrap();
    let hep = free_udp();
    let metrics = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let sensor = Sensor::start(&[
        "--config",
        config.to_str().unwrap(),
        "--hep",
        &hep.to_string(),
        "--metrics",
        &metrics.to_string(),
    ]);
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (now, _) = unix_now();
    let stamps = [YEAR_2106, now + 86_400, now + 3600, 1, now - 86_400];
    let per_stamp = 10;
    for (i, secs) in stamps.iter().enumerate() {
        for k in 0..per_stamp {
            let d = hep3(
                addr(CALLER_SIP),
                addr(CALLED_SIP),
                *secs,
                0,
                &invite(&format!("t{i}-{k}"), 4000 + 2 * (i * per_stamp + k) as u16),
            );
            agent.send_to(&d, hep).unwrap();
        }
    }
    let total = stamps.len() * per_stamp;
    let deadline = Instant::now() + Duration::from_secs(20);
    let dates = loop {
        let dates = column(&sensor, "calldate_num");
        if dates.len() == total {
            break dates;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {total} calls listed",
            dates.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (listed_at, _) = unix_now();
    for d in &dates {
        let t = d.as_i64().expect("calldate_num is a number");
        assert!(
            (i64::from(now) - 60..=i64::from(listed_at) + 60).contains(&t),
            "a call is listed at {t}, not around now ({now})"
        );
    }
    // Idle for 2 s, then listed for 1 s more: all gone well within the deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = column(&sensor, "calldate_num").len();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} of {total} calls never expired"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let body = http_get(metrics, "/metrics");
    let corrected = body
        .lines()
        .find(|l| l.starts_with("earshot_sensor_time_corrected_total{kind=\"hep_envelope\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no hep_envelope correction counter in:\n{body}"));
    assert_eq!(
        corrected as usize, total,
        "every far-off envelope is counted"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn http_get(at: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(at).expect("connect to /metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Rewrites the capture time (seconds) of record `index` of a classic pcap.
fn shift_record(pcap: &mut [u8], index: usize, by_secs: u32) {
    let mut at = 24;
    for i in 0.. {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        if i == index {
            let secs = u32::from_le_bytes(pcap[at..at + 4].try_into().unwrap());
            pcap[at..at + 4].copy_from_slice(&secs.wrapping_add(by_secs).to_le_bytes());
            return;
        }
        at += 16 + len;
    }
}

fn records(pcap: &[u8]) -> usize {
    let (mut at, mut n) = (24, 0);
    while at + 16 <= pcap.len() {
        at += 16 + u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        n += 1;
    }
    n
}

/// Runs `earshot extract` on `pcap`, sampling its memory; returns (WAV seconds, peak KiB).
fn extract(pcap: &Path, wav: &Path) -> (f64, u64) {
    let mut child = sensor::earshot()
        .arg("extract")
        .arg(pcap)
        .arg("--all")
        .arg("--out")
        .arg(wav)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run earshot extract");
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        peak = peak.max(memory_kb(child.id()).1);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline || peak > 4 * RSS_LIMIT_KB {
            let _ = child.kill();
            let _ = child.wait();
            panic!("earshot extract ran away: {peak} KiB after {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(status.success(), "earshot extract failed: {err}");
    let mut seconds = 0.0;
    for f in std::fs::read_dir(wav).unwrap() {
        let r = hound::WavReader::open(f.unwrap().path()).expect("read wav");
        seconds += f64::from(r.duration()) / f64::from(r.spec().sample_rate);
    }
    (seconds, peak)
}

#[test]
fn one_capture_record_far_from_its_neighbours_does_not_become_silence() {
    let dir = sensor::scratch("hostile-time-extract");
    let pcap = dir.join("call.pcap");
    let status = sensor::earshot()
        .args([
            "synth",
            "--calls",
            "1",
            "--seconds",
            "4",
            "--codec",
            "pcmu",
            "--out",
        ])
        .arg(&pcap)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run earshot synth");
    assert!(status.success());
    let clean = std::fs::read(&pcap).unwrap();
    let n = records(&clean);
    // 2^24 s (half a year: the 5 GiB request) and a day, forward; a day back.
    for (name, by) in [
        ("2^24 s", 1u32 << 24),
        ("+1 day", 86_400),
        ("-1 day", 0u32.wrapping_sub(86_400)),
    ] {
        let mut bytes = clean.clone();
        shift_record(&mut bytes, n / 2, by);
        let file = dir.join("jump.pcap");
        std::fs::write(&file, &bytes).unwrap();
        let out = dir.join(format!("out-{}", by));
        let (seconds, peak) = extract(&file, &out);
        assert!(
            peak < RSS_LIMIT_KB,
            "{name}: earshot extract peaked at {peak} KiB"
        );
        // Four seconds of RTP: the WAV is no longer than that, whatever the record claims,
        // give or take the offline playout's hold (180 ms) around the re-anchoring.
        assert!(
            seconds <= 4.0 + 0.3,
            "{name}: {seconds:.1} s of WAV for a 4 s call"
        );
        assert!(
            seconds >= 3.5,
            "{name}: the call's audio was lost: {seconds:.1} s"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
