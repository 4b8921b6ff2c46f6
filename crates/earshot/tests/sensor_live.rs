//! The sensor on a live interface: a real SIPp call on loopback (the shared `loopback-call`
//! tool: SIPp caller streaming A-law audio, SIPp callee echoing it), captured by
//! `earshot sensor --interface lo` while it happens; `listcalls` and `stream` are checked
//! during the call.
//!
//! Needs root (or CAP_NET_RAW), libpcap, sipp and tcpdump. `.ci/run` installs them; elsewhere
//! the test skips with a notice when one is missing.

#[path = "common/sensor.rs"]
mod sensor;

use earshot_manager::stream_proto::{Frame, StreamDecoder, StreamItem};
use sensor::Sensor;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn skip_or_fail(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("live capture test cannot run under CI: {why}");
    }
    eprintln!("skipping: {why}");
}

/// 8 s of a 440 Hz tone, A-law encoded (ITU-T G.711), the raw payload loopback-call streams.
fn alaw_tone(seconds: usize) -> Vec<u8> {
    (0..seconds * 8000)
        .map(|i| {
            let x = (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin();
            alaw_encode((x * 12000.0) as i16)
        })
        .collect()
}

fn alaw_encode(sample: i16) -> u8 {
    let sign = if sample >= 0 { 0x80u8 } else { 0 };
    let mut mag = i32::from(sample).unsigned_abs().min(32635) as i32;
    let exponent = if mag >= 256 {
        let mut e = 7;
        let mut mask = 0x4000;
        while mag & mask == 0 && e > 1 {
            e -= 1;
            mask >>= 1;
        }
        e
    } else {
        0
    };
    let mantissa = if exponent == 0 {
        (mag >> 4) & 0x0f
    } else {
        (mag >> (exponent + 3)) & 0x0f
    };
    mag = (exponent << 4) | mantissa;
    (sign | mag as u8) ^ 0x55
}

fn stream_audio(addr: std::net::SocketAddr, callref: &str, limit: Duration) -> Vec<i16> {
    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    sock.write_all(format!("stream {callref}\r\n\r\n").as_bytes())
        .unwrap();
    let mut dec = StreamDecoder::new();
    let mut samples = Vec::new();
    let mut buf = [0u8; 8192];
    let started = Instant::now();
    while started.elapsed() < limit {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => dec.push(&buf[..n]),
            Err(_) => continue,
        }
        while let Ok(Some(item)) = dec.next_item() {
            if let StreamItem::Frame(Frame::Audio(a)) = item {
                samples.extend_from_slice(&a.samples);
            }
        }
    }
    samples
}

/// Ends loopback-call and its SIPp and tcpdump children if the test fails midway, so a
/// failed run does not leave them holding the ports for the next one.
struct CallGuard(Option<std::process::Child>);

impl CallGuard {
    fn wait(mut self) -> std::process::Output {
        self.0
            .take()
            .expect("child")
            .wait_with_output()
            .expect("loopback-call ends")
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_live_sipp_call_is_listed_and_streamed_while_it_happens() {
    let Some(tools) = sensor::shared("tools") else {
        return;
    };
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    for (ok, why) in [
        (is_root, "capturing on lo needs root"),
        (have("sipp"), "sipp is not installed (Debian: sip-tester)"),
        (have("tcpdump"), "tcpdump is not installed"),
    ] {
        if !ok {
            return skip_or_fail(why);
        }
    }
    let dir = sensor::scratch("live");
    let audio = dir.join("tone.al");
    std::fs::write(&audio, alaw_tone(8)).unwrap();
    let filter = "udp and (port 25060 or port 25070 or portrange 26000-26999)";
    let s = Sensor::start(&["--interface", "lo", "--filter", filter]);

    let call = Command::new(tools.join("loopback-call"))
        .arg("--audio")
        .arg(&audio)
        .args(["--codec", "pcma", "--seconds", "8", "--out"])
        .arg(dir.join("call.pcap"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run loopback-call");
    let call = CallGuard(Some(call));

    // The call appears in listcalls while it is up.
    let started = Instant::now();
    let callref = loop {
        let listing = s.cmd_text("listcalls");
        let answered = listing
            .split("[call]\n")
            .find(|b| b.contains("\ncaller: sipp\n") && b.contains("\nstate: answered\n"));
        if let Some(block) = answered {
            // loopback-call dials 1000 (`sipp -s 1000`).
            assert!(block.contains("\ncalled: 1000\n"), "{block}");
            break block
                .lines()
                .find_map(|l| l.strip_prefix("callreference: "))
                .expect("callreference line")
                .to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no answered SIPp call listed after {:?}: {listing:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // And its audio streams live: the echoed 440 Hz tone, not silence.
    let pcm = stream_audio(s.addr, &callref, Duration::from_secs(2));
    assert!(
        pcm.len() >= 8000,
        "at least 1 s of audio in 2 s, got {} samples",
        pcm.len()
    );
    let rms = (pcm.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
    assert!(rms > 1000.0, "the streamed audio is silent (rms {rms:.0})");

    let out = call.wait();
    assert!(
        out.status.success(),
        "loopback-call failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stat = s.stat();
    assert_eq!(
        stat["pbCountPacketDrop"], "0",
        "no capture drops on a single call: {stat}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_capture_options_reach_the_kernel_ring() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !is_root {
        return skip_or_fail("capturing on lo needs root");
    }
    // A filter nothing matches: only the ring's setup is looked at.
    let s = Sensor::start(&[
        "--interface",
        "lo",
        "--filter",
        "udp port 9 and udp port 7",
        "--snaplen",
        "2000",
        "--capture-buffer-mb",
        "8",
    ]);
    let log = s.stderr();
    // What the sensor read back from the socket and libpcap, not what it asked for.
    assert!(
        log.contains("ring=TPACKET_V3 ring_bytes=8388608 snaplen=2000"),
        "{log}"
    );
}
