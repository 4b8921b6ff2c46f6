//! Signals of `earshot sensor`: SIGTERM while a client streams a call ends the stream with an
//! end frame saying why and the process exits within 2 s; SIGHUP swaps the token from the
//! configuration file while an open stream carries on, and a broken file keeps the old one.

#[path = "common/sensor.rs"]
mod sensor;

use earshot_manager::stream_proto::{EndReason, Frame, StreamDecoder, StreamItem};
use sensor::{try_request, Sensor};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A synthetic capture of one 60 s G.711 call: long enough to be listened to mid-call.
fn capture(dir: &Path) -> PathBuf {
    let out = dir.join("call.pcap");
    let res = sensor::earshot()
        .args([
            "synth",
            "--calls",
            "1",
            "--seconds",
            "60",
            "--codec",
            "pcmu",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run earshot synth");
    assert!(
        res.status.success(),
        "synth failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    out
}

fn write_config(path: &Path, token: &str) {
    let text = format!("[manager]\ntoken = \"{token}\"\nallow = [\"127.0.0.0/8\"]\n");
    std::fs::write(path, text).expect("write config");
}

fn signal(s: &Sensor, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(s.pid()).expect("pid fits");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
}

fn authed(addr: SocketAddr, token: &str, command: &str) -> Vec<u8> {
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("auth {token}\r\n")
    };
    let req = format!("{auth}{command}\r\n\r\n");
    try_request(addr, req.as_bytes(), Duration::from_secs(5)).unwrap_or_default()
}

/// The call reference of the first call listed, waiting until one is.
fn first_call(addr: SocketAddr, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = authed(addr, token, "listcalls json");
        if let Ok(serde_json::Value::Array(rows)) = serde_json::from_slice(&reply) {
            if let Some(r) = rows
                .get(1)
                .and_then(|row| row.get(0))
                .and_then(|v| v.as_str())
            {
                return r.to_string();
            }
        }
        assert!(Instant::now() < deadline, "no call listed: {reply:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `stream` connection, decoded as it arrives.
struct Stream {
    sock: TcpStream,
    dec: StreamDecoder,
    eof: bool,
}

impl Stream {
    fn open(addr: SocketAddr, token: &str, callref: &str) -> Stream {
        let mut sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock.write_all(format!("auth {token}\r\nstream {callref}\r\n\r\n").as_bytes())
            .unwrap();
        let mut s = Stream {
            sock,
            dec: StreamDecoder::new(),
            eof: false,
        };
        match s.next() {
            Some(StreamItem::Header(h)) => {
                assert_eq!(h.callreference, callref.trim_start_matches("0x"))
            }
            other => panic!("expected the stream header, got {other:?}"),
        }
        s
    }

    /// The next item, or `None` at EOF.
    fn next(&mut self) -> Option<StreamItem> {
        let mut buf = [0u8; 16384];
        loop {
            if let Some(item) = self.dec.next_item().expect("valid stream") {
                return Some(item);
            }
            if self.eof {
                return None;
            }
            let n = self.sock.read(&mut buf).expect("stream read (timed out?)");
            if n == 0 {
                self.eof = true;
                self.dec.finish().expect("stream ends after its end frame");
            }
            self.dec.push(&buf[..n]);
        }
    }

    /// Reads until `n` audio frames arrived; panics on an end frame.
    fn audio_frames(&mut self, n: usize) -> Vec<u32> {
        let mut seqs = Vec::new();
        while seqs.len() < n {
            match self.next() {
                Some(StreamItem::Frame(Frame::Audio(a))) => seqs.push(a.seq),
                Some(StreamItem::Frame(Frame::End(e))) => panic!("the stream ended: {e:?}"),
                Some(_) => {}
                None => panic!("the stream closed without an end frame"),
            }
        }
        seqs
    }
}

#[test]
fn sigterm_mid_stream_sends_an_end_frame_and_exits_within_2s() {
    let dir = sensor::scratch("sigterm");
    let pcap = capture(&dir);
    let config = dir.join("sensor.toml");
    write_config(&config, "s3cret");
    let mut s = Sensor::start(&[
        "--config",
        config.to_str().unwrap(),
        "--pcap",
        pcap.to_str().unwrap(),
        "--loop",
        "--log-format",
        "json",
    ]);
    let callref = first_call(s.addr, "s3cret");
    let mut stream = Stream::open(s.addr, "s3cret", &callref);
    stream.audio_frames(10);

    let sent = Instant::now();
    signal(&s, libc::SIGTERM);
    let mut end = None;
    while let Some(item) = stream.next() {
        if let StreamItem::Frame(Frame::End(e)) = item {
            end = Some(e);
        }
    }
    let end = end.expect("an end frame before the connection closed");
    assert_eq!(end.reason, EndReason::ServerShutdown);
    assert_eq!(end.detail.as_deref(), Some("sensor shutting down"));
    let status = s
        .wait_exit(Duration::from_secs(2).saturating_sub(sent.elapsed()))
        .unwrap_or_else(|| panic!("still running 2 s after SIGTERM:\n{}", s.stderr()));
    eprintln!("exited {:?} after SIGTERM", sent.elapsed());
    assert!(status.success(), "exit status {status}:\n{}", s.stderr());

    // --log-format json: every line is one JSON object; the start and the stop are logged.
    let log = s.stderr();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(messages.contains(&"manager API listening"), "{log}");
    assert!(messages.contains(&"stopped"), "{log}");
}

#[test]
fn sighup_swaps_the_token_and_an_open_stream_carries_on() {
    let dir = sensor::scratch("sighup");
    let pcap = capture(&dir);
    let config = dir.join("sensor.toml");
    write_config(&config, "old-token");
    let mut s = Sensor::start(&[
        "--config",
        config.to_str().unwrap(),
        "--pcap",
        pcap.to_str().unwrap(),
        "--loop",
    ]);
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    let callref = first_call(s.addr, "old-token");
    let mut stream = Stream::open(s.addr, "old-token", &callref);
    let before = stream.audio_frames(5);

    write_config(&config, "new-token");
    signal(&s, libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while authed(s.addr, "new-token", "getversion") != version {
        assert!(
            Instant::now() < deadline,
            "the new token was not accepted after SIGHUP:\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        authed(s.addr, "old-token", "getversion"),
        b"error: unauthorized\n"
    );

    // The stream opened with the old token keeps flowing, without a gap.
    let after = stream.audio_frames(50);
    let seqs: Vec<u32> = before.iter().chain(&after).copied().collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "audio frames lost around the reload: {seqs:?}"
    );

    // A broken file is refused as a whole: the running token stays, and the reason is logged.
    std::fs::write(&config, "[manager]\ntokn = \"typo\"\n").unwrap();
    signal(&s, libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.stderr().contains("reload failed") {
        assert!(
            Instant::now() < deadline,
            "no reload failure logged:\n{}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(s.stderr().contains("tokn"), "{}", s.stderr());
    assert!(s.alive());
    assert_eq!(authed(s.addr, "new-token", "getversion"), version);
    stream.audio_frames(5);
}

/// A client that stopped reading cannot hold the sensor up: with its buffers full the stream
/// cannot even take the end frame, and the sensor still exits within 2 s of SIGTERM.
#[test]
fn sigterm_exits_within_2s_despite_a_stuck_stream_client() {
    let dir = sensor::scratch("sigterm-stuck");
    let pcap = capture(&dir);
    let mut s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--loop"]);
    let callref = first_call(s.addr, "");
    // Let two seconds of the call into the rewind buffer: at 48 kHz stereo, 384 kB, far more
    // than the socket buffers of a client that never reads.
    std::thread::sleep(Duration::from_secs(2));
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&s.addr.into()).expect("connect");
    let mut stuck: TcpStream = sock.into();
    stuck
        .write_all(format!("stream {callref} rate=48000 channels=2 from=start\r\n\r\n").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));

    let sent = Instant::now();
    signal(&s, libc::SIGTERM);
    let status = s
        .wait_exit(Duration::from_secs(2))
        .unwrap_or_else(|| panic!("still running 2 s after SIGTERM:\n{}", s.stderr()));
    eprintln!(
        "exited {:?} after SIGTERM with a stuck client",
        sent.elapsed()
    );
    assert!(status.success(), "exit status {status}:\n{}", s.stderr());
    drop(stuck);
}

/// `earshot player`: SIGHUP re-reads the file (a broken one is refused and logged, the player
/// keeps serving), and SIGTERM stops it within 2 s even with a request left half-sent.
#[test]
fn player_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = sensor::scratch("player-signals");
    let config = dir.join("player.toml");
    let player_config = |port: u16| format!("[manager]\nhost = \"127.0.0.1\"\nport = {port}\n");
    std::fs::write(&config, player_config(5029)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.join("player.log");
    let child = sensor::earshot()
        .arg("player")
        .arg("--config")
        .arg(&config)
        .arg("--database")
        .arg(format!("sqlite://{}?mode=rwc", dir.join("p.db").display()))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "human",
        ])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start earshot player");
    struct Player(std::process::Child);
    impl Drop for Player {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut p = Player(child);
    let pid = libc::pid_t::try_from(p.0.id()).unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait_log = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !read_log().contains(what) {
            assert!(
                Instant::now() < deadline,
                "{what:?} never logged:\n{}",
                read_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let kill = |sig| {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    };
    wait_log("listening on");

    std::fs::write(&config, player_config(6029)).unwrap();
    kill(libc::SIGHUP);
    wait_log("configuration reloaded");
    assert!(read_log().contains("6029"), "{}", read_log());

    std::fs::write(&config, "[manager]\nhots = \"x\"\n").unwrap();
    kill(libc::SIGHUP);
    wait_log("reload failed");
    assert!(read_log().contains("hots"), "{}", read_log());
    assert!(
        matches!(p.0.try_wait(), Ok(None)),
        "the player died on a bad reload"
    );

    // Half a request: graceful shutdown would wait for it forever.
    let mut half = TcpStream::connect(("127.0.0.1", port)).expect("connect to the player");
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    kill(libc::SIGTERM);
    let deadline = sent + Duration::from_secs(2);
    let status = loop {
        if let Ok(Some(s)) = p.0.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "player still running 2 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("player exited {:?} after SIGTERM", sent.elapsed());
    assert!(status.success(), "exit status {status}:\n{}", read_log());
    drop(half);
}
