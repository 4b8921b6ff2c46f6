//! Sensor figures for BENCHMARKS.md ("Sensor: latency and throughput"): the release `earshot`
//! binary runs as a child (`earshot sensor --pcap … --manager 127.0.0.1:<free port>`) on
//! captures written by `earshot synth`, and is measured from outside through the Manager API.
//!
//! * **latency** (`--speed 1`: every packet is released at wall time ≈ its shifted capture time,
//!   so "packet entering the sensor" is its capture timestamp):
//!   - `stream`: for each audio frame, (wall clock when the frame was decoded from the socket) −
//!     (capture time of the frame's **last** sample = `capture_ts_ns + (n−1)/rate`): the age of
//!     the newest audio in the frame. Also reported: the same against the frame's **first**
//!     sample, which is the arrival of the packet the frame's audio came from when 20 ms frames
//!     line up with 20 ms packets (they do here): a frame cannot leave before its last sample is
//!     final, so this is the first figure plus 20 ms by construction.
//!   - `listen` + `readaudio` every 200 ms (on the other call, so it has an audio engine of its
//!     own): age of the newest sample returned = read time − (t_listen + (total samples so far −
//!     1)/8000), where t_listen is the wall time the `listen` request was sent. The listener's
//!     audio starts with the first packet after it registered, so t_listen is up to one packet
//!     time (20 ms) before the real capture time of the first sample: this figure errs by at
//!     most ~20 ms on the pessimistic side.
//!   - the jitter-buffer depth the sensor ran with: the same capture is fed, offline, through
//!     the same engine and `CallAudio` with `PlayoutConfig::live()` (the code and packet times
//!     the sensor's listener uses), sampling each leg's adaptive depth.
//! * **throughput** (`--loop --speed max`: the replay blocks on a full queue, so the rate at
//!   which `packets_processed` grows is the highest rate sustained without internal drops, and
//!   `pbCountPacketDrop` must stay 0): with 0 listeners, N reading `stream` listeners spread over
//!   the calls, 1 stalled listener (connects, never reads) and M stalled listeners.
//!
//! ```text
//! cargo build --release -p earshot --bin earshot --example sensor_bench
//! target/release/examples/sensor_bench --earshot target/release/earshot [--part latency|throughput|all]
//!     [--seconds 15] [--jitter 0,30] [--window 5] [--runs 1] [--calls 100] [--call-seconds 600]
//!     [--readers 100] [--stalled 500] [--dir DIR]
//! ```

use anyhow::{bail, Context, Result};
use earshot_audio::{CallAudio, Codec, MixConfig, MixMode, PlayoutConfig, RtpIn};
use earshot_core::{Call, CallKey, Config, Engine, Event, Party, RtpPacket, Sink};
use earshot_manager::stream_proto::{Frame, StreamDecoder, StreamItem};
use earshot_wire::CaptureReader;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Opts {
    earshot: PathBuf,
    dir: PathBuf,
    part: String,
    seconds: f64,
    warmup: f64,
    jitters: Vec<f64>,
    window: f64,
    runs: usize,
    calls: u32,
    call_seconds: u32,
    readers: usize,
    stalled: usize,
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        earshot: PathBuf::from("target/release/earshot"),
        dir: std::env::temp_dir().join(format!("earshot-sensor-bench-{}", std::process::id())),
        part: "all".into(),
        seconds: 15.0,
        warmup: 3.0,
        jitters: vec![0.0, 30.0],
        window: 5.0,
        runs: 1,
        calls: 100,
        call_seconds: 600,
        readers: 100,
        stalled: 500,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--earshot" => o.earshot = PathBuf::from(v()?),
            "--dir" => o.dir = PathBuf::from(v()?),
            "--part" => o.part = v()?,
            "--seconds" => o.seconds = v()?.parse()?,
            "--warmup" => o.warmup = v()?.parse()?,
            "--jitter" => o.jitters = v()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--window" => o.window = v()?.parse()?,
            "--runs" => o.runs = v()?.parse()?,
            "--calls" => o.calls = v()?.parse()?,
            "--call-seconds" => o.call_seconds = v()?.parse()?,
            "--readers" => o.readers = v()?.parse()?,
            "--stalled" => o.stalled = v()?.parse()?,
            _ => bail!("unknown argument {a} (see the comment at the top of sensor_bench.rs)"),
        }
    }
    Ok(o)
}

fn main() -> Result<()> {
    let o = parse_opts()?;
    std::fs::create_dir_all(&o.dir)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("== sensor_bench: {}", o.earshot.display());
    println!("load average before: {}", load.trim());
    if o.part == "all" || o.part == "latency" {
        for &j in &o.jitters {
            latency(&o, j)?;
        }
    }
    if o.part == "all" || o.part == "throughput" {
        throughput(&o)?;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
    Ok(())
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn synth(o: &Opts, out: &Path, calls: u32, seconds: f64, jitter: f64) -> Result<()> {
    let st = Command::new(&o.earshot)
        .args(["synth", "--calls", &calls.to_string()])
        .args(["--seconds", &seconds.to_string(), "--codec", "pcma"])
        .args(["--jitter", &jitter.to_string(), "--out"])
        .arg(out)
        .stderr(Stdio::null())
        .status()
        .context("run earshot synth")?;
    if !st.success() {
        bail!("earshot synth failed: {st}");
    }
    Ok(())
}

/// A running `earshot sensor`; killed when dropped.
struct Sensor {
    child: Child,
    addr: SocketAddr,
}

impl Sensor {
    fn start(o: &Opts, args: &[&str]) -> Result<Sensor> {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
            let log = std::fs::File::create(o.dir.join("sensor.log"))?;
            let child = Command::new(&o.earshot)
                .arg("sensor")
                .args(args)
                .args(["--manager", &addr.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("start earshot sensor")?;
            let mut s = Sensor { child, addr };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = s.child.try_wait() {
                    break;
                }
                if s.cmd("getversion").is_ok_and(|r| !r.is_empty()) {
                    return Ok(s);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        bail!(
            "the sensor did not start (log: {})",
            o.dir.join("sensor.log").display()
        )
    }

    fn cmd(&self, command: &str) -> Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(format!("{command}\r\n\r\n").as_bytes())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(out)
    }

    fn stat(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.cmd("sniffer_stat")?)?)
    }

    /// References of the calls whose RTP has been seen.
    fn calls_with_rtp(&self) -> Result<Vec<String>> {
        let v: serde_json::Value = serde_json::from_slice(&self.cmd("listcalls json")?)?;
        let rows = v.as_array().context("listcalls json: not an array")?;
        let Some(fields) = rows.first().and_then(|f| f.as_array()) else {
            return Ok(Vec::new());
        };
        let col = |name: &str| fields.iter().position(|f| f.as_str() == Some(name));
        let (Some(r), Some(src), Some(dst)) = (
            col("callreference"),
            col("src_received"),
            col("dst_received"),
        ) else {
            bail!("listcalls json: missing columns");
        };
        Ok(rows
            .iter()
            .skip(1)
            .filter_map(|row| row.as_array())
            .filter(|row| row.len() > r.max(src).max(dst))
            .filter(|row| row[src].is_number() || row[dst].is_number())
            .filter_map(|row| {
                row[r]
                    .as_str()
                    .map(|s| s.trim_start_matches("0x").to_string())
            })
            .collect())
    }

    fn wait_calls(&self, n: usize, limit: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + limit;
        loop {
            let mut calls = self.calls_with_rtp()?;
            if calls.len() >= n {
                calls.sort();
                return Ok(calls);
            }
            if Instant::now() > deadline {
                bail!("only {} calls with RTP after {limit:?}", calls.len());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stat_u64(v: &serde_json::Value, key: &str) -> u64 {
    match &v[key] {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{name}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms min={:.1} ms",
        v.len(),
        pct(&v, 50.0),
        pct(&v, 99.0),
        v.last().copied().unwrap_or(f64::NAN),
        v.first().copied().unwrap_or(f64::NAN),
    )
}

fn latency(o: &Opts, jitter: f64) -> Result<()> {
    println!("== latency: --speed 1, synth --calls 2 --codec pcma --jitter {jitter}");
    let pcap = o.dir.join(format!("latency-j{jitter}.pcap"));
    let call_s = o.warmup + o.seconds + 6.0;
    synth(o, &pcap, 2, call_s, jitter)?;
    depth_probe(&pcap, o.warmup)?;

    let sensor = Sensor::start(o, &["--pcap", path_str(&pcap)?, "--speed", "1"])?;
    let calls = sensor.wait_calls(2, Duration::from_secs(10))?;
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(o.warmup);
    let until = measure_from + Duration::from_secs_f64(o.seconds);

    let addr = sensor.addr;
    let stream_ref = calls[0].clone();
    let streamer =
        std::thread::spawn(move || stream_latency(addr, &stream_ref, measure_from, until));

    // listen + readaudio every 200 ms on the other call.
    let poll_ref = &calls[1];
    let t_listen = wall_ns();
    let reply = sensor.cmd(&format!("listen {poll_ref} bench"))?;
    if reply != b"success" {
        bail!("listen: {}", String::from_utf8_lossy(&reply));
    }
    let mut total: u64 = 0;
    let mut ages = Vec::new();
    let mut waits = 0;
    let mut next = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += Duration::from_millis(200);
        let reply = sensor.cmd(&format!("readaudio {poll_ref} bench"))?;
        let now = wall_ns();
        if reply.starts_with(b"information: ") {
            waits += 1;
            continue;
        }
        if reply.starts_with(b"error: ") {
            bail!("readaudio: {}", String::from_utf8_lossy(&reply));
        }
        total += reply.len() as u64 / 2;
        let newest = t_listen + ((total.max(1) - 1) * 1_000_000_000 / 8000) as i64;
        if Instant::now() >= measure_from {
            ages.push((now - newest) as f64 / 1e6);
        }
    }
    let _ = sensor.cmd(&format!("listen_stop {poll_ref} bench"));
    let (last, first, frames) = streamer
        .join()
        .map_err(|_| anyhow::anyhow!("stream thread"))??;
    println!(
        "stream (frames read over {:.0} s after {:.0} s warm-up, 8000 Hz mono, 20 ms frames):",
        o.seconds, o.warmup
    );
    println!(
        "  {}",
        summary("age of the frame's last sample (packet->socket)", last)
    );
    println!(
        "  {}",
        summary("age of the frame's first sample (= +20 ms frame)", first)
    );
    println!("  frames={frames}");
    println!("readaudio every 200 ms ({waits} 'wait for data' replies):");
    println!("  {}", summary("age of the newest sample returned", ages));
    let st = sensor.stat()?;
    println!(
        "  sniffer_stat: pbCountPacketDrop={} listener_drops={}",
        stat_u64(&st, "pbCountPacketDrop"),
        stat_u64(&st, "listener_drops")
    );
    Ok(())
}

type Latencies = (Vec<f64>, Vec<f64>, usize);

fn stream_latency(
    addr: SocketAddr,
    callref: &str,
    from: Instant,
    until: Instant,
) -> Result<Latencies> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("stream {callref}\r\n\r\n").as_bytes())?;
    let mut dec = StreamDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut last, mut first, mut frames) = (Vec::new(), Vec::new(), 0);
    while Instant::now() < until {
        let n = s.read(&mut buf)?;
        if n == 0 {
            bail!("stream closed early");
        }
        let now = wall_ns();
        dec.push(&buf[..n]);
        while let Some(item) = dec.next_item()? {
            match item {
                StreamItem::Frame(Frame::Audio(a)) => {
                    frames += 1;
                    if Instant::now() < from {
                        continue;
                    }
                    let ch = usize::from(a.channels.max(1));
                    let n = (a.samples.len() / ch).max(1) as i64;
                    let last_ts = a.capture_ts_ns + (n - 1) * 1_000_000_000 / i64::from(a.rate);
                    last.push((now - last_ts) as f64 / 1e6);
                    first.push((now - a.capture_ts_ns) as f64 / 1e6);
                }
                StreamItem::Frame(Frame::End(e)) => bail!("stream ended: {e:?}"),
                _ => {}
            }
        }
    }
    Ok((last, first, frames))
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

/// The adaptive depth the sensor's listener reaches on this capture: the same engine and
/// `CallAudio` (live playout, 8000 Hz mono) over the same packet times.
fn depth_probe(pcap: &Path, warmup: f64) -> Result<()> {
    struct Probe {
        calls: HashMap<CallKey, (CallAudio, i64)>,
        depths: Vec<f64>,
        holds: Vec<f64>,
        warmup_ns: i64,
        out: Vec<i16>,
    }
    impl Sink for Probe {
        fn event(&mut self, event: &Event, _call: &Call) {
            if let Event::CallNew(id) = event {
                if let Ok(cfg) = MixConfig::new(8000, MixMode::Mono, PlayoutConfig::live()) {
                    self.calls.insert(*id, (CallAudio::new(cfg), i64::MIN));
                }
            }
        }
        fn rtp(&mut self, p: &RtpPacket<'_>) {
            let Some((audio, first)) = self.calls.get_mut(&p.call) else {
                return;
            };
            let codec = Codec::from_static_pt(p.payload_type);
            let leg = p.party;
            let rtp = RtpIn {
                arrival_ns: p.ts.0,
                ssrc: p.ssrc,
                seq: p.seq,
                timestamp: p.timestamp,
                payload_type: p.payload_type,
                marker: p.marker,
                payload: p.payload,
                codec: codec.as_ref(),
                event: p.event,
            };
            self.out.clear();
            audio.push(leg, &rtp, &mut self.out);
            if *first == i64::MIN {
                *first = p.ts.0;
            }
            if p.ts.0 - *first >= self.warmup_ns {
                let d = audio
                    .depth_ns(Party::Caller)
                    .max(audio.depth_ns(Party::Called));
                self.depths.push(d as f64 / 1e6);
                self.holds.push(audio.hold_ns() as f64 / 1e6);
            }
        }
    }
    let mut probe = Probe {
        calls: HashMap::new(),
        depths: Vec::new(),
        holds: Vec::new(),
        warmup_ns: (warmup * 1e9) as i64,
        out: Vec::new(),
    };
    let mut engine = Engine::new(Config::default());
    let mut reader = CaptureReader::open(pcap).map_err(|e| anyhow::anyhow!("{e}"))?;
    while let Some(Ok(f)) = reader.next_frame() {
        engine.handle_frame(f.ts, f.link, f.data, &mut probe);
    }
    println!(
        "jitter-buffer depth (deeper leg, after {warmup:.0} s; offline replica of the listener):"
    );
    println!("  {}", summary("depth", probe.depths));
    println!("  {}", summary("mixer hold (depth + margin)", probe.holds));
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Reading,
    Stalled,
}

fn throughput(o: &Opts) -> Result<()> {
    println!(
        "== throughput: --loop --speed max, synth --calls {} --seconds {} --codec pcma",
        o.calls, o.call_seconds
    );
    let pcap = o.dir.join("throughput.pcap");
    synth(o, &pcap, o.calls, f64::from(o.call_seconds), 0.0)?;
    let per_pass = u64::from(o.calls) * u64::from(o.call_seconds) * 100;
    // Warm the page cache: disk speed is not what is measured.
    std::io::copy(&mut std::fs::File::open(&pcap)?, &mut std::io::sink())?;
    let scenarios = [
        ("0 listeners", 0, Kind::Reading),
        ("reading stream listeners", o.readers, Kind::Reading),
        ("1 stalled stream listener", 1, Kind::Stalled),
        ("stalled stream listeners", o.stalled, Kind::Stalled),
    ];
    let mut best: Vec<f64> = vec![0.0; scenarios.len()];
    for run in 0..o.runs {
        for (i, &(name, n, kind)) in scenarios.iter().enumerate() {
            let rate = throughput_run(o, &pcap, per_pass, name, n, kind, run)?;
            best[i] = best[i].max(rate);
        }
    }
    println!(
        "best of {} run(s), packets/s and ratio to 0 listeners:",
        o.runs
    );
    for (i, &(name, n, _)) in scenarios.iter().enumerate() {
        println!(
            "  {n:>4} {name:<28} {:>12.0} pkt/s  {:>6.1}%",
            best[i],
            100.0 * best[i] / best[0]
        );
    }
    Ok(())
}

fn throughput_run(
    o: &Opts,
    pcap: &Path,
    per_pass: u64,
    name: &str,
    n: usize,
    kind: Kind,
    run: usize,
) -> Result<f64> {
    let sensor = Sensor::start(o, &["--pcap", path_str(pcap)?, "--loop", "--speed", "max"])?;
    let calls = sensor.wait_calls(o.calls as usize, Duration::from_secs(20))?;
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let mut held = Vec::new();
    let mut readers = Vec::new();
    for i in 0..n {
        let mut s = TcpStream::connect(sensor.addr)?;
        s.write_all(format!("stream {}\r\n\r\n", calls[i % calls.len()]).as_bytes())?;
        match kind {
            Kind::Stalled => held.push(s),
            Kind::Reading => {
                let (stop, bytes) = (stop.clone(), bytes.clone());
                readers.push(std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut buf = vec![0u8; 64 * 1024];
                    while !stop.load(Ordering::Relaxed) {
                        match s.read(&mut buf) {
                            Ok(0) => break,
                            Ok(k) => {
                                bytes.fetch_add(k as u64, Ordering::Relaxed);
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => break,
                        }
                    }
                }));
            }
        }
    }
    // Let the connections register before the window opens.
    std::thread::sleep(Duration::from_millis(300));
    let a = sensor.stat()?;
    let ta = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(o.window));
    let b = sensor.stat()?;
    let dt = ta.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.join();
    }
    drop(held);
    let processed = stat_u64(&b, "packets_processed") - stat_u64(&a, "packets_processed");
    let seen = stat_u64(&b, "packets_seen") - stat_u64(&a, "packets_seen");
    let rate = processed as f64 / dt;
    println!(
        "  run {run} {n:>4} {name:<28} {rate:>12.0} pkt/s (seen {:.0}/s) | listeners {} -> {} | \
         listener_drops {} -> {} | pbCountPacketDrop {} | processed at window end: {:.2} passes | \
         stream bytes read {}",
        seen as f64 / dt,
        stat_u64(&a, "listeners"),
        stat_u64(&b, "listeners"),
        stat_u64(&a, "listener_drops"),
        stat_u64(&b, "listener_drops"),
        stat_u64(&b, "pbCountPacketDrop"),
        stat_u64(&b, "packets_processed") as f64 / per_pass as f64,
        bytes.load(Ordering::Relaxed),
    );
    Ok(rate)
}
