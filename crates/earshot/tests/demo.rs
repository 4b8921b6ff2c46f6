//! `earshot demo` as a user runs it (the README's `cargo run --release -- demo`, here the built
//! binary on free ports): within 10 s its Manager API lists at least three calls in different
//! codecs, and the web player, logged in with the printed demo login, lists them too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The demo process, stopped when the test ends however it ends: SIGTERM first, so that it
/// removes its temporary directory, then a kill if it lingers.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the demo prints on its one line: URL, user, password, manager address.
#[derive(Debug)]
struct Banner {
    web: SocketAddr,
    user: String,
    password: String,
    manager: SocketAddr,
}

fn parse_banner(line: &str) -> Option<Banner> {
    let word_after = |key: &str| {
        let at = line.find(key)? + key.len();
        line[at..].split_whitespace().next().map(str::to_string)
    };
    let url = word_after("open ")?;
    let web = url
        .strip_prefix("http://")?
        .trim_end_matches('/')
        .parse()
        .ok()?;
    Some(Banner {
        web,
        user: word_after("user: ")?,
        password: word_after("password: ")?,
        manager: word_after("manager: ")?.parse().ok()?,
    })
}

/// Starts the demo on free ports; with `tmp`, its temporary directory goes there.
fn start_demo(tmp: Option<&Path>) -> (Demo, Banner, Instant) {
    let (demo, banner, started, _) = start_demo_with(tmp, &[]);
    (demo, banner, started)
}

/// [`start_demo`] with more arguments; also the lines printed before the banner.
fn start_demo_with(tmp: Option<&Path>, extra: &[&str]) -> (Demo, Banner, Instant, Vec<String>) {
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_earshot"));
    if let Some(dir) = tmp {
        cmd.env("TMPDIR", dir);
    }
    let mut child = cmd
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--manager",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run earshot demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let demo = Demo(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = started + Duration::from_secs(10);
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(b) = parse_banner(&line) {
                    return (demo, b, started, before);
                }
                before.push(line);
            }
            Err(_) => {
                drop(demo);
                let mut err = String::new();
                let _ = stderr.read_to_string(&mut err);
                panic!("earshot demo printed no `open … user: … password: … manager: …` line within 10 s; stderr:\n{err}");
            }
        }
    }
}

fn listcalls(addr: SocketAddr) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = s.write_all(b"listcalls\n");
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// (callreference, codecs) of every call in a text `listcalls` reply.
fn calls_of(listing: &str) -> Vec<(String, String)> {
    listing
        .split("[call]")
        .skip(1)
        .filter_map(|block| {
            let field = |k: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            };
            Some((field("callreference:")?, field("codecs:")?))
        })
        .collect()
}

/// A callreference as the sensor's text listing and the player's JSON spell it alike (the
/// player writes it as 0x-prefixed hex).
fn plain_ref(r: &str) -> String {
    r.trim_start_matches("0x").to_lowercase()
}

/// One HTTP/1.1 exchange on a fresh connection: (status, headers, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read reply");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

#[test]
fn demo_shows_calls_in_several_codecs_within_ten_seconds() {
    let (_demo, banner, started) = start_demo(None);
    assert_eq!(banner.user, "demo");
    assert!(banner.password.len() >= 12, "a real password: {banner:?}");

    // The Manager API: calls in G.711, G.722, Opus and AMR-WB (the slots start 150 ms apart).
    const CODECS: [&str; 4] = ["PCMA", "G722", "OPUS", "AMR-WB"];
    let deadline = started + Duration::from_secs(10);
    let calls = loop {
        let calls = calls_of(&listcalls(banner.manager));
        let all: String = calls.iter().map(|(_, c)| c.to_uppercase() + ",").collect();
        if CODECS.iter().all(|c| all.contains(&format!("{c},"))) {
            eprintln!("after {:?}: {calls:?}", started.elapsed());
            break calls;
        }
        assert!(
            Instant::now() < deadline,
            "no calls in {CODECS:?} within 10 s; last listing: {calls:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // The player, with the printed login, lists the same calls.
    let body = format!(
        r#"{{"name":"{}","password":"{}"}}"#,
        banner.user, banner.password
    );
    let (status, head, reply) = http(
        banner.web,
        "POST",
        "/api/login",
        "Content-Type: application/json\r\n",
        &body,
    );
    assert_eq!(status, 200, "login with the printed password: {reply}");
    let cookie = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().split(';').next().unwrap_or("").to_string())
        })
        .expect("a session cookie");
    let (status, _, listing) = http(
        banner.web,
        "GET",
        "/api/calls",
        &format!("Cookie: {cookie}\r\n"),
        "",
    );
    assert_eq!(status, 200, "{listing}");
    let listing: serde_json::Value = serde_json::from_str(&listing).expect("JSON call list");
    let shown: Vec<String> = listing["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter_map(|c| c["callreference"].as_str().map(plain_ref))
        .collect();
    let listed = calls
        .iter()
        .filter(|(r, _)| shown.contains(&plain_ref(r)))
        .count();
    assert!(
        listed >= 3,
        "the player lists the sensor's calls: sensor {calls:?}, player {shown:?}"
    );
    assert!(
        listing["errors"].as_array().is_none_or(Vec::is_empty),
        "{listing}"
    );

    // A wrong password is refused: the printed one is the only way in.
    let (status, _, _) = http(
        banner.web,
        "POST",
        "/api/login",
        "Content-Type: application/json\r\n",
        r#"{"name":"demo","password":"demo"}"#,
    );
    assert_eq!(status, 401);
}

#[test]
fn demo_refuses_a_non_loopback_address() {
    let out = Command::new(env!("CARGO_BIN_EXE_earshot"))
        .args(["demo", "--listen", "0.0.0.0:0"])
        .output()
        .expect("run earshot demo");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
}

/// SIGTERM, SIGINT and SIGHUP each stop the demo cleanly: it exits with success and removes
/// its temporary directory (a SIGHUP is the terminal going away; the demo has nothing to
/// reload).
#[test]
fn demo_stops_cleanly_on_sigterm_sigint_and_sighup() {
    for (name, sig) in [
        ("TERM", libc::SIGTERM),
        ("INT", libc::SIGINT),
        ("HUP", libc::SIGHUP),
    ] {
        let tmp =
            std::env::temp_dir().join(format!("earshot-demo-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("create scratch dir");
        let (mut demo, _, _) = start_demo(Some(&tmp));
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            1,
            "SIG{name}: the demo made its temporary directory"
        );
        let pid = libc::pid_t::try_from(demo.0.id()).expect("pid fits");
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = demo.0.try_wait().expect("wait for the demo") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "SIG{name}: the demo still runs after 5 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "SIG{name}: the demo exited with {status}");
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
        assert!(left.is_empty(), "SIG{name}: left behind {left:?}");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

/// `earshot demo --embed-example`: a dashboard on another origin whose backend lists the calls
/// and mints listen tokens with its API key, and whose page embeds the element from the player;
/// the player allows that origin (CORS on the element's script) and no other.
#[test]
fn the_embedding_example_runs_a_dashboard_on_another_origin() {
    let (_demo, banner, _, before) =
        start_demo_with(None, &["--embed-example", "--embed-listen", "127.0.0.1:0"]);
    let line = before
        .iter()
        .find(|l| l.starts_with("embedding example:"))
        .unwrap_or_else(|| panic!("no embedding example line: {before:?}"));
    let dash: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    assert_ne!(dash, banner.web);
    let (status, _, page) = http(dash, "GET", "/", "", "");
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("http://{}/earshot-player.js", banner.web)),
        "{page}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let callref = loop {
        let (status, _, body) = http(dash, "GET", "/calls", "", "");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if let Some(r) = v["calls"][0]["callreference"].as_str() {
            break r.to_string();
        }
        assert!(Instant::now() < deadline, "no call: {body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (status, _, body) = http(
        dash,
        "GET",
        &format!("/token?sensor_id=1&callref={callref}"),
        "",
        "",
    );
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("\"token\":\"elt1."), "{body}");
    let origin = format!("origin: http://{dash}\r\n");
    let (_, head, _) = http(banner.web, "GET", "/earshot-player.js", &origin, "");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("access-control-allow-origin: http://{dash}")),
        "{head}"
    );
    let (_, head, _) = http(
        banner.web,
        "GET",
        "/earshot-player.js",
        "origin: http://evil.example\r\n",
        "",
    );
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{head}"
    );
}
