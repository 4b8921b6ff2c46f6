//! Damaged, hostile and wrong inputs through the `earshot` binary: every one ends with a short
//! error naming the file (or a warning and the results so far), never with a panic, and the
//! process stays within bounded memory whatever the input.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn earshot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_earshot"))
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "earshot-bad-input-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn analyze(path: &Path) -> Output {
    earshot()
        .arg("analyze")
        .arg(path)
        .output()
        .expect("run earshot")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An unreadable input: non-zero exit and one line on stderr that names the file.
fn assert_clean_error(path: &Path) {
    let out = analyze(path);
    let err = stderr(&out);
    assert!(
        !err.contains("panicked"),
        "{}: panicked: {err}",
        path.display()
    );
    assert!(!out.status.success(), "{}: exit 0: {err}", path.display());
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{}: expected one line, got {err:?}",
        path.display()
    );
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(
        err.contains(name),
        "{}: error does not name the file: {err:?}",
        path.display()
    );
}

#[test]
fn zero_length_file() {
    let tmp = TempDir::new("empty");
    let p = tmp.path("empty.pcap");
    std::fs::write(&p, b"").expect("write");
    assert_clean_error(&p);
}

#[test]
fn wrong_magic() {
    let tmp = TempDir::new("magic");
    let p = tmp.path("not-a-capture.pcap");
    std::fs::write(&p, b"This is a text file, not a capture.\n").expect("write");
    assert_clean_error(&p);
    // Too short for even the magic number.
    let short = tmp.path("three-bytes.pcap");
    std::fs::write(&short, [0xd4, 0xc3, 0xb2]).expect("write");
    assert_clean_error(&short);
}

#[test]
fn nonexistent_file() {
    let tmp = TempDir::new("missing");
    assert_clean_error(&tmp.path("does-not-exist.pcap"));
}

#[test]
fn directory() {
    let tmp = TempDir::new("dir");
    let d = tmp.path("a-directory.pcap");
    std::fs::create_dir(&d).expect("mkdir");
    assert_clean_error(&d);
}

/// Offsets of the record boundaries of a classic pcap file (either byte order).
fn record_offsets(data: &[u8]) -> Vec<usize> {
    let le = match data.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1]) | Some([0x4d, 0x3c, 0xb2, 0xa1]) => true,
        Some([0xa1, 0xb2, 0xc3, 0xd4]) | Some([0xa1, 0xb2, 0x3c, 0x4d]) => false,
        _ => panic!("not a classic pcap file"),
    };
    let mut out = Vec::new();
    let mut pos = 24;
    while let Some(h) = data.get(pos..pos + 16) {
        out.push(pos);
        let b = [h[8], h[9], h[10], h[11]];
        let incl = if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        };
        pos += 16 + incl as usize;
    }
    out
}

#[test]
fn truncated_capture_keeps_what_came_before() {
    let Some(pcaps) = common::shared_pcaps() else {
        return;
    };
    let src = pcaps.join("wireshark/sip-rtp-g711.pcap");
    let data = std::fs::read(&src).expect("read shared capture");
    let records = record_offsets(&data);
    assert!(records.len() > 100);
    // Cut inside the data of a record well after the call was set up.
    let rec = records[records.len() / 2];
    let cut = rec + 16 + 20;
    assert!(records.binary_search(&cut).is_err());
    let tmp = TempDir::new("trunc");
    let p = tmp.path("truncated.pcap");
    std::fs::write(&p, &data[..cut]).expect("write");
    let out = earshot()
        .args(["analyze", "--json"])
        .arg(&p)
        .output()
        .expect("run earshot");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "truncated file is not fatal: {err}");
    assert!(
        err.contains("truncated.pcap"),
        "a warning names the file: {err:?}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let calls = doc["calls"].as_array().expect("calls array");
    assert_eq!(calls.len(), 1, "the call before the cut is reported");

    // Cut inside a record header too.
    let p2 = tmp.path("truncated-header.pcap");
    std::fs::write(&p2, &data[..records[10] + 7]).expect("write");
    let out = analyze(&p2);
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
}

/// xorshift64*: fast enough to make 100 MB in well under a second.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn pcap_header(link: u32) -> Vec<u8> {
    let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65_535u32.to_le_bytes());
    h.extend_from_slice(&link.to_le_bytes());
    h
}

/// Peak resident memory of a running process in KiB, from /proc (Linux only).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `earshot analyze` on `path`, polling its peak memory until it exits.
fn run_bounded(path: &Path, limit: Duration) -> (Output, u64) {
    let mut child = earshot()
        .arg("analyze")
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn earshot");
    let pid = child.id();
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut so, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut se, &mut v);
        v
    });
    let start = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("earshot did not finish {} within {limit:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status,
        stdout: t_out.join().expect("stdout thread"),
        stderr: t_err.join().expect("stderr thread"),
    };
    (out, peak)
}

const HUNDRED_MB: usize = 100 << 20;
const PEAK_LIMIT_KIB: u64 = 200 * 1024;

#[test]
fn hundred_megabytes_of_random_bytes_behind_a_pcap_header() {
    let tmp = TempDir::new("random");
    let p = tmp.path("random.pcap");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).expect("create"));
    f.write_all(&pcap_header(1)).expect("write");
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..HUNDRED_MB / buf.len() {
        rng.fill(&mut buf);
        f.write_all(&buf).expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    let (out, peak) = run_bounded(&p, Duration::from_secs(300));
    let err = stderr(&out);
    eprintln!("random bytes: peak RSS {peak} KiB; stderr {err:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("random.pcap"),
        "a warning names the file: {err:?}"
    );
    if peak > 0 {
        assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB");
    }
}

#[test]
fn hundred_megabytes_of_random_frames() {
    // Random bytes framed as valid records, so every one reaches the decoder and the engine:
    // a quarter are Ethernet/IPv4/UDP to random ports (half of them SIP's) with random
    // payloads, the rest random from the link layer up.
    let tmp = TempDir::new("frames");
    let p = tmp.path("random-frames.pcap");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).expect("create"));
    f.write_all(&pcap_header(1)).expect("write");
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let mut written = 0usize;
    let mut frame = vec![0u8; 1600];
    let mut i: u32 = 0;
    while written < HUNDRED_MB {
        let r = rng.next();
        let len = 14 + (r % 1500) as usize;
        rng.fill(&mut frame[..len]);
        if r >> 60 < 4 && len >= 42 {
            // Ethernet + IPv4 + UDP headers around the random payload.
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
            let ip_len = (len - 14) as u16;
            frame[14..34].copy_from_slice(&[
                0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ]);
            frame[16..18].copy_from_slice(&ip_len.to_be_bytes());
            if r >> 59 & 1 == 0 {
                frame[36..38].copy_from_slice(&5060u16.to_be_bytes());
            }
            frame[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
            frame[40..42].copy_from_slice(&[0, 0]);
        }
        let mut rec = Vec::with_capacity(16);
        rec.extend_from_slice(&(i / 50).to_le_bytes());
        rec.extend_from_slice(&((i % 50) * 20_000).to_le_bytes());
        rec.extend_from_slice(&(len as u32).to_le_bytes());
        rec.extend_from_slice(&(len as u32).to_le_bytes());
        f.write_all(&rec).expect("write");
        f.write_all(&frame[..len]).expect("write");
        written += 16 + len;
        i += 1;
    }
    f.flush().expect("flush");
    drop(f);
    let (out, peak) = run_bounded(&p, Duration::from_secs(600));
    let err = stderr(&out);
    eprintln!(
        "{i} random frames: peak RSS {peak} KiB; stderr {err:?}; {} bytes out",
        out.stdout.len()
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
    if peak > 0 {
        assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB");
    }
}
