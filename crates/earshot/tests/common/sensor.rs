//! Helpers for the sensor's end-to-end tests: start the real binary on a free port, talk raw TCP
//! to its Manager API, and compare audio. Included with `#[path = "common/sensor.rs"] mod sensor;`.
#![allow(dead_code)]

use earshot_manager::stream_proto::{StreamDecoder, StreamItem};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `../shared/<sub>` beside the repository: `Some` when present; under `CI=true` its absence
/// fails the test, elsewhere the test is skipped with a notice.
pub fn shared(sub: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(sub);
    if dir.exists() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is missing: CI needs the shared test data",
            dir.display()
        );
    }
    eprintln!("skipping: {} is missing", dir.display());
    None
}

pub fn earshot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_earshot"))
}

/// A fresh scratch directory under the system's temporary directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("earshot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// `earshot extract --all` of a one-call capture into a scratch directory named after `name`:
/// the WAV's bytes and what extract said on stderr. The run must succeed.
#[allow(dead_code)]
pub fn extract_only_call(pcap: &Path, name: &str) -> (Vec<u8>, String) {
    extract_only_call_with(pcap, name, &[])
}

/// [`extract_only_call`] with more options (`--tls-keylog FILE`...).
pub fn extract_only_call_with(
    pcap: &Path,
    name: &str,
    options: &[&std::ffi::OsStr],
) -> (Vec<u8>, String) {
    // One directory per run, not per name: tests of one binary run in parallel and may extract
    // the same capture under the same name (one removing the other's WAV before it is read).
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = scratch(&format!("{name}-{run}"));
    let out = earshot()
        .args(["extract", "--all", "--out"])
        .arg(&dir)
        .args(options)
        .arg(pcap)
        .output()
        .expect("run earshot extract");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "extract: {stderr}");
    let wav = std::fs::read_dir(&dir)
        .expect("extract output")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "wav"))
        .expect("a WAV file");
    let bytes = std::fs::read(&wav).expect("read the WAV");
    let _ = std::fs::remove_dir_all(dir);
    (bytes, stderr)
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A running `earshot sensor`; killed when dropped.
pub struct Sensor {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Sensor {
    /// Starts `earshot sensor ARGS --manager 127.0.0.1:<free port>` and waits until it answers.
    pub fn start(args: &[&str]) -> Sensor {
        for _attempt in 0..5 {
            let port = free_port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let log = std::env::temp_dir().join(format!(
                "earshot-sensor-test-{}-{port}.log",
                std::process::id()
            ));
            let err = std::fs::File::create(&log).expect("create sensor log");
            let child = earshot()
                .arg("sensor")
                .args(args)
                .arg("--manager")
                .arg(addr.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .expect("start earshot sensor");
            let mut sensor = Sensor { child, addr, log };
            if sensor.wait_ready(Duration::from_secs(20)) {
                return sensor;
            }
            // The port was taken in between (or the sensor failed): try another one.
            eprintln!("sensor on {addr} did not start:\n{}", sensor.stderr());
        }
        panic!("could not start earshot sensor {args:?}");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(r) = try_request(self.addr, b"getversion\r\n\r\n", Duration::from_secs(2)) {
                if !r.is_empty() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `<command>\r\n\r\n` (VoIPmonitor's client framing) and reads the reply to EOF.
    pub fn cmd(&self, command: &str) -> Vec<u8> {
        request(self.addr, format!("{command}\r\n\r\n").as_bytes())
    }

    pub fn cmd_text(&self, command: &str) -> String {
        String::from_utf8(self.cmd(command)).expect("reply is UTF-8")
    }

    /// `listcalls json`, parsed.
    pub fn calls_json(&self) -> Vec<serde_json::Value> {
        let reply = self.cmd("listcalls json");
        let v: serde_json::Value = serde_json::from_slice(&reply)
            .unwrap_or_else(|e| panic!("listcalls json: {e}: {}", String::from_utf8_lossy(&reply)));
        v.as_array().expect("an array").clone()
    }

    /// Waits for a call whose `src_received` or `dst_received` is non-null (RTP seen) and
    /// returns its row.
    pub fn wait_call_with_rtp(&self, limit: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            let list = self.calls_json();
            let fields: Vec<&str> = list[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            let col = |name: &str| fields.iter().position(|f| *f == name).unwrap();
            for row in list.iter().skip(1) {
                let row = row.as_array().unwrap();
                if row[col("src_received")].is_number() || row[col("dst_received")].is_number() {
                    return row.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no call with RTP appeared within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `sniffer_stat`, parsed.
    pub fn stat(&self) -> serde_json::Value {
        let r = self.cmd("sniffer_stat");
        serde_json::from_slice(&r)
            .unwrap_or_else(|e| panic!("sniffer_stat: {e}: {}", String::from_utf8_lossy(&r)))
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        } else {
            eprintln!("sensor log {}:\n{}", self.log.display(), self.stderr());
        }
    }
}

/// One request on a fresh connection, reply read to EOF (10 s limit).
pub fn request(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    try_request(addr, bytes, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("request {:?}: {e}", String::from_utf8_lossy(bytes)))
}

pub fn try_request(addr: SocketAddr, bytes: &[u8], limit: Duration) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, limit)?;
    s.set_read_timeout(Some(limit))?;
    s.set_write_timeout(Some(limit))?;
    s.write_all(bytes)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// Like `request`, then half-closes (as `nc -N` does) instead of relying on `\r\n\r\n`.
pub fn request_half_close(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).expect("write");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read reply");
    out
}

/// s16le bytes to samples.
pub fn samples(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
        .collect()
}

/// Reads a WAV file's samples (interleaved if stereo) and its channel count.
pub fn read_wav(path: &Path) -> (Vec<f32>, u16, u32) {
    let mut r = hound::WavReader::open(path).expect("open wav");
    let spec = r.spec();
    let s = r
        .samples::<i16>()
        .map(|s| f32::from(s.expect("wav sample")))
        .collect();
    (s, spec.channels, spec.sample_rate)
}

fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    let (a, b) = (&a[..n], &b[..n]);
    let ma = a.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
    let mb = b.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    if saa == 0.0 || sbb == 0.0 {
        return 0.0;
    }
    sab / (saa * sbb).sqrt()
}

fn envelope(x: &[f32], block: usize) -> Vec<f32> {
    x.chunks_exact(block)
        .map(|c| c.iter().map(|v| v.abs()).sum::<f32>() / block as f32)
        .collect()
}

/// Finds where `template` best matches inside `audio` (coarse search on 5 ms envelopes, then
/// sample-exact around the best candidates) and returns `(offset, normalised correlation)`.
pub fn best_alignment(template: &[f32], audio: &[f32]) -> (usize, f64) {
    const BLOCK: usize = 40;
    assert!(
        template.len() <= audio.len(),
        "template ({}) longer than the audio searched ({})",
        template.len(),
        audio.len()
    );
    let et = envelope(template, BLOCK);
    let ea = envelope(audio, BLOCK);
    let mut coarse: Vec<(usize, f64)> = (0..=ea.len().saturating_sub(et.len()))
        .map(|lag| (lag, pearson(&et, &ea[lag..])))
        .collect();
    coarse.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut best = (0, f64::MIN);
    for &(lag, _) in coarse.iter().take(4) {
        let centre = lag * BLOCK;
        let lo = centre.saturating_sub(2 * BLOCK);
        let hi = (centre + 2 * BLOCK).min(audio.len() - template.len());
        for off in lo..=hi {
            let c = pearson(template, &audio[off..off + template.len()]);
            if c > best.1 {
                best = (off, c);
            }
        }
    }
    best
}

/// Share of a signal's energy at `freq` (Goertzel over 50 ms windows, relative to the
/// window's total energy; a pure tone gives about 0.5·N/2 … normalised to ~1).
pub fn tone_share(x: &[f32], rate: f64, freq: f64) -> f64 {
    let n = (rate * 0.05) as usize;
    let mut tone = 0.0;
    let mut total = 0.0;
    for w in x.chunks_exact(n) {
        let k = (0.5 + n as f64 * freq / rate).floor();
        let omega = 2.0 * std::f64::consts::PI * k / n as f64;
        let coeff = 2.0 * omega.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in w {
            let s = f64::from(v) + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        // A pure tone of amplitude A at bin k gives power (A·n/2)², energy A²·n/2.
        tone += power * 2.0 / n as f64;
        total += w.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
    }
    if total == 0.0 {
        0.0
    } else {
        tone / total
    }
}

/// Everything a `stream` connection (`command`) sends until EOF, decoded, each item with when it
/// arrived; each read may wait `limit`. The stream must end cleanly after its end frame.
pub fn read_stream_timed(
    addr: SocketAddr,
    command: &str,
    limit: Duration,
) -> Vec<(Instant, StreamItem)> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(limit)).unwrap();
    s.write_all(format!("{command}\r\n\r\n").as_bytes())
        .unwrap();
    let mut dec = StreamDecoder::new();
    let mut items = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = s.read(&mut buf).expect("stream read (timed out?)");
        if n == 0 {
            break;
        }
        dec.push(&buf[..n]);
        while let Some(item) = dec.next_item().expect("valid stream") {
            items.push((Instant::now(), item));
        }
    }
    dec.finish()
        .expect("stream ends cleanly after its end frame");
    items
}

/// [`read_stream_timed`] without the arrival times.
pub fn read_stream(addr: SocketAddr, command: &str, limit: Duration) -> Vec<StreamItem> {
    read_stream_timed(addr, command, limit)
        .into_iter()
        .map(|(_, item)| item)
        .collect()
}

/// The left (caller) and right (called) channels of a stereo stream's audio frames.
#[allow(dead_code)]
pub fn stereo_channels(
    items: &[earshot_manager::stream_proto::StreamItem],
) -> (Vec<f32>, Vec<f32>) {
    use earshot_manager::stream_proto::Frame;
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for item in items {
        if let StreamItem::Frame(Frame::Audio(a)) = item {
            assert_eq!(a.channels, 2, "a stereo stream");
            for pair in a.samples.chunks_exact(2) {
                left.push(f32::from(pair[0]));
                right.push(f32::from(pair[1]));
            }
        }
    }
    (left, right)
}

/// A WAV of a whole call (at least 3 s of 8 kHz stereo) that is silence after its header: what
/// an encrypted call without its key must give, never ciphertext decoded as audio.
#[allow(dead_code)]
pub fn assert_silent_wav(wav: &[u8], what: &str) {
    assert!(
        wav.len() > 44 + 2 * 2 * 8000 * 3,
        "{what}: the call's length: {} bytes",
        wav.len()
    );
    assert!(
        wav[44..].iter().all(|&b| b == 0),
        "{what}: silence, not ciphertext decoded as G.711"
    );
}

/// `earshot analyze --json OPTIONS PCAP`, which must succeed, parsed.
#[allow(dead_code)]
pub fn analyze_json_with<S: AsRef<std::ffi::OsStr>>(
    options: &[S],
    pcap: &Path,
) -> serde_json::Value {
    let out = earshot()
        .args(["analyze", "--json"])
        .args(options)
        .arg(pcap)
        .output()
        .expect("run earshot analyze");
    assert!(
        out.status.success(),
        "earshot analyze {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze --json prints JSON")
}
