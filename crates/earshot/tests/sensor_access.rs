//! Access control and hostile clients on the Manager API: a disallowed source, tokens,
//! oversized requests, a slow-drip client, 1,000 connections at once, unknown commands and
//! binary garbage. Each gets the documented answer, nothing crashes, others keep being served.

#[path = "common/sensor.rs"]
mod sensor;

use sensor::{request, request_half_close, Sensor};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn version() -> Vec<u8> {
    env!("CARGO_PKG_VERSION").as_bytes().to_vec()
}

fn capture() -> Option<String> {
    let dir = sensor::shared("voipmonitor")?;
    Some(dir.join("call.pcap").to_string_lossy().into_owned())
}

#[test]
fn disallowed_source_is_closed_without_reply() {
    let Some(pcap) = capture() else { return };
    // Loopback is not in 10.0.0.0/8. The helper's readiness probe would never be answered, so
    // start the sensor by hand.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = sensor::earshot()
        .args([
            "sensor",
            "--pcap",
            &pcap,
            "--allow",
            "10.0.0.0/8",
            "--manager",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = Kill(&mut child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut closed = 0;
    let mut outcomes = Vec::new();
    while Instant::now() < deadline && closed < 3 {
        match refused_probe(addr) {
            Ok(r) => {
                assert!(r.is_empty(), "a disallowed client got {r:?}");
                closed += 1;
            }
            Err(e) => outcomes.push(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        closed, 3,
        "the sensor never accepted and closed connections: {outcomes:?}"
    );
    assert!(
        matches!(guard.0.try_wait(), Ok(None)),
        "sensor still running"
    );
}

/// Connects and asks for the version. The sensor closes a disallowed connection without
/// reading it, so the kernel may answer the request bytes with a reset rather than an orderly
/// close: both are "closed without a reply" (`Ok` with what was received). `Err` when the
/// connection could not be made (not listening yet) or stayed open.
fn refused_probe(addr: std::net::SocketAddr) -> Result<Vec<u8>, String> {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    let limit = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    let closed =
        |e: &std::io::Error| matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe);
    match s.write_all(b"getversion\r\n\r\n") {
        Err(e) if closed(&e) => return Ok(Vec::new()),
        Err(e) => return Err(format!("write: {e}")),
        Ok(()) => {}
    }
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) if closed(&e) => Ok(out),
        Err(e) => Err(format!("read: {e}")),
    }
}

#[test]
fn token_is_required_when_configured() {
    let Some(pcap) = capture() else { return };
    // The readiness probe sends no token: it gets `error: unauthorized`, which is an answer.
    let s = Sensor::start(&["--pcap", &pcap, "--speed", "4", "--token", "s3cret"]);
    assert_eq!(s.cmd("getversion"), b"error: unauthorized\n");
    assert_eq!(
        request(s.addr, b"auth wrong\r\ngetversion\r\n\r\n"),
        b"error: unauthorized\n"
    );
    assert_eq!(
        request_half_close(s.addr, b"auth s3cre\nlistcalls\n"),
        b"error: unauthorized\n"
    );
    assert_eq!(
        request_half_close(s.addr, b"auth s3cret\ngetversion\n"),
        version()
    );
    let listing = request_half_close(s.addr, b"auth s3cret\nlistcalls\n");
    assert!(
        !listing.starts_with(b"error"),
        "{}",
        String::from_utf8_lossy(&listing)
    );
}

#[test]
fn refuses_a_public_address_without_token() {
    let Some(pcap) = capture() else { return };
    let out = sensor::earshot()
        .args(["sensor", "--pcap", &pcap, "--manager", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token") && err.contains("127.0.0.1"),
        "the message says how to fix it: {err}"
    );
}

#[test]
fn hostile_clients_get_documented_answers() {
    let Some(pcap) = capture() else { return };
    let s = Sensor::start(&["--pcap", &pcap, "--speed", "4"]);
    let v = version();

    // Unknown command and binary garbage: `command not found\n`.
    assert_eq!(s.cmd("thisisnotacommand"), b"command not found\n");
    let garbage: Vec<u8> = (0..=255u8)
        .rev()
        .chain(b"\xff\xfe\x00\r\n\r\n".iter().copied())
        .collect();
    assert_eq!(request(s.addr, &garbage), b"command not found\n");
    assert_eq!(
        request_half_close(s.addr, b"\x00\x01\x02"),
        b"command not found\n"
    );
    // Missing arguments: a usage error.
    assert!(s.cmd("listen").starts_with(b"error: usage: "));

    // Oversized request: refused once it passes 64 KiB.
    let mut big = TcpStream::connect(s.addr).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = big.write_all(&vec![b'a'; 70 * 1024]);
    let mut reply = Vec::new();
    let _ = big.read_to_end(&mut reply);
    assert_eq!(reply, b"error: request too large\n");

    // A slow-drip client (one byte a second) does not hold anyone up; its request ends after
    // 500 ms of silence, as documented, so it gets `command not found` for "g".
    let addr = s.addr;
    let drip = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut reply = Vec::new();
        for &b in b"getversion" {
            if c.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
            // The server may already have answered and closed.
            c.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 64];
            match c.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            c.set_nonblocking(false).unwrap();
        }
        let _ = c.read_to_end(&mut reply);
        reply
    });
    let silent = TcpStream::connect(s.addr).unwrap(); // connects and never sends
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(s.cmd("getversion"), v);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "served while a client drips"
    );
    assert_eq!(drip.join().unwrap(), b"command not found\n");
    drop(silent);

    // 1,000 connections at once, more than the 256 that may wait unauthenticated: each gets the
    // version, or `error: too many connections` (pushed out by newer ones before it was read),
    // or is closed (pushed out at the moment its request arrived: the kernel may reset it).
    let mut conns = Vec::new();
    for _ in 0..1000 {
        let c = TcpStream::connect_timeout(&s.addr, Duration::from_secs(5)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        conns.push(c);
    }
    for c in &mut conns {
        let _ = c.write_all(b"getversion\r\n\r\n");
    }
    let (mut served, mut busy, mut closed) = (0, 0, 0);
    for (i, c) in conns.iter_mut().enumerate() {
        let mut reply = Vec::new();
        match c.read_to_end(&mut reply) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("connection {i}: {e} (got {reply:?})"),
        }
        if reply == v {
            served += 1;
        } else if reply == b"error: too many connections\n" {
            busy += 1;
        } else if reply.is_empty() {
            closed += 1;
        } else {
            panic!("connection {i} got {:?}", String::from_utf8_lossy(&reply));
        }
    }
    eprintln!("1000 connections: {served} served, {busy} too many, {closed} closed");
    assert!(served > 0);
    drop(conns);

    // Still serving, still running.
    assert_eq!(s.cmd("getversion"), v);
    assert!(s
        .cmd_text("listcalls json")
        .starts_with("[[\"callreference\""));
    let mut s = s;
    assert!(s.alive());
}

/// A sensor started by hand (its own environment, a configuration file that sets `listen`),
/// killed when dropped; its log is kept for the assertions.
struct Manual {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    log: std::path::PathBuf,
}

impl Manual {
    /// Runs `earshot sensor --hep 127.0.0.1:0 ARGS` with `envs`, reached on loopback at `port`,
    /// and waits until it answers (an `error: unauthorized` is an answer).
    fn start(port: u16, args: &[&str], envs: &[(&str, &str)], dir: &std::path::Path) -> Manual {
        let log = dir.join("sensor.log");
        let mut cmd = sensor::earshot();
        cmd.args(["sensor", "--hep", "127.0.0.1:0"])
            .args(args)
            .env_remove("EARSHOT_TOKEN")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create log"));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start earshot sensor");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut m = Manual { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = sensor::try_request(addr, b"getversion\r\n\r\n", Duration::from_secs(2))
            {
                if !r.is_empty() {
                    return m;
                }
            }
            assert!(
                Instant::now() < deadline && matches!(m.child.try_wait(), Ok(None)),
                "the sensor did not start:\n{}",
                m.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Manual {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("sensor log:\n{}", self.log_text());
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The Manager API is bound beyond loopback with a token. A reloaded file that moves `listen`
/// back to loopback and drops the token must be refused: reload cannot move the socket, so it
/// would leave the bound, reachable address without a token.
#[test]
fn reload_cannot_drop_the_token_of_an_api_bound_beyond_loopback() {
    let dir = sensor::scratch("reload-token");
    let port = free_port();
    let config = dir.join("sensor.toml");
    std::fs::write(
        &config,
        format!("[manager]\nlisten = \"0.0.0.0:{port}\"\ntoken = \"s3cret\"\n"),
    )
    .unwrap();
    let s = Manual::start(port, &["--config", config.to_str().unwrap()], &[], &dir);
    assert_eq!(
        request(s.addr, b"getversion\r\n\r\n"),
        b"error: unauthorized\n"
    );
    std::fs::write(
        &config,
        format!("[manager]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let pid = libc::pid_t::try_from(s.child.id()).expect("pid fits");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.log_text().contains("reload") {
        assert!(
            Instant::now() < deadline,
            "no reload logged:\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        request(s.addr, b"getversion\r\n\r\n"),
        b"error: unauthorized\n",
        "the token must stay in force:\n{}",
        s.log_text()
    );
    assert_eq!(
        request_half_close(s.addr, b"auth s3cret\ngetversion\n"),
        version()
    );
    let log = s.log_text();
    assert!(
        log.contains("reload refused") && log.contains(&format!("0.0.0.0:{port}")),
        "the refusal names the bound address:\n{log}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Tokens from every source are trimmed (a configured token with spaces around it matches what
/// a client sends, which is trimmed too), and the token can come from the environment
/// (EARSHOT_TOKEN, not visible in `ps`) or a file (--token-file).
#[test]
fn tokens_are_trimmed_and_read_from_the_environment_or_a_file() {
    let dir = sensor::scratch("token-sources");
    let check = |s: &Manual| {
        assert_eq!(
            request(s.addr, b"getversion\r\n\r\n"),
            b"error: unauthorized\n",
            "a token is set"
        );
        assert_eq!(
            request_half_close(s.addr, b"auth s3cret\ngetversion\n"),
            version(),
            "{}",
            s.log_text()
        );
    };

    let port = free_port();
    let config = dir.join("sensor.toml");
    std::fs::write(&config, "[manager]\ntoken = \"  s3cret \"\n").unwrap();
    let listen = format!("127.0.0.1:{port}");
    let args = ["--config", config.to_str().unwrap(), "--manager", &listen];
    check(&Manual::start(port, &args, &[], &dir));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = [("EARSHOT_TOKEN", " s3cret\n")];
    check(&Manual::start(port, &["--manager", &listen], &env, &dir));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let file = dir.join("token");
    std::fs::write(&file, "s3cret\n").unwrap();
    let args = ["--token-file", file.to_str().unwrap(), "--manager", &listen];
    check(&Manual::start(port, &args, &[], &dir));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    check(&Manual::start(
        port,
        &["--token", " s3cret ", "--manager", &listen],
        &[],
        &dir,
    ));
    let _ = std::fs::remove_dir_all(dir);
}
