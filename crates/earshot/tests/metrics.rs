//! `/metrics` of a real `earshot sensor` (replaying a call, `--metrics`) and of a player in
//! process, scraped before traffic, after it, and after a listening session: every scrape must
//! pass `promtool check metrics` (when promtool is installed; under CI=true it must be) and a
//! Rust parser of the text format, and the counters must move. The sample Grafana dashboard
//! may only query metrics that exist.

#[path = "common/sensor.rs"]
mod sensor;

use earshot_player::{auth, Config, Db, Role, Sensor, SensorKind};
use futures_util::StreamExt;
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{PrometheusType, PrometheusValue};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "correct horse";
const SCRAPE_TOKEN: &str = "scrape-s3cret";

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr")
}

/// One HTTP/1.1 request with `Connection: close`; (status, headers, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).await.expect("send request");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read reply");
        String::from_utf8(out).expect("UTF-8 reply")
    };
    let text = tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .expect("HTTP reply within 10 s");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete HTTP reply");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, head.to_string(), body.to_string())
}

/// The scrape's samples as `name{labels} -> value` (histograms by their `_count`), after
/// checking the text with promtool and the parser.
struct Scrape {
    text: String,
    families: HashMap<String, PrometheusType>,
    values: HashMap<String, f64>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        promtool_check(&text);
        let parsed = parse_prometheus(&text)
            .unwrap_or_else(|e| panic!("the metrics do not parse: {e:?}\n{text}"));
        let mut families = HashMap::new();
        let mut values = HashMap::new();
        for (name, fam) in &parsed.families {
            assert!(
                name.starts_with("earshot_"),
                "{name} lacks the earshot_ prefix"
            );
            assert!(!fam.help.is_empty(), "{name} has no HELP");
            if fam.family_type == PrometheusType::Counter {
                assert!(
                    name.ends_with("_total"),
                    "counter {name} must end in _total"
                );
            }
            families.insert(name.clone(), fam.family_type.clone());
            for sample in fam.iter_samples() {
                let labels: Vec<String> = sample
                    .get_labelset()
                    .unwrap_or_else(|e| panic!("{name}: {e:?}"))
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                let key = if labels.is_empty() {
                    name.clone()
                } else {
                    format!("{name}{{{}}}", labels.join(","))
                };
                let v = match &sample.value {
                    PrometheusValue::Counter(c) => c.value.as_f64(),
                    PrometheusValue::Gauge(g) => g.as_f64(),
                    PrometheusValue::Unknown(u) => u.as_f64(),
                    PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
                    PrometheusValue::Summary(s) => s.count.unwrap_or(0) as f64,
                };
                values.insert(key, v);
            }
        }
        Scrape {
            text,
            families,
            values,
        }
    }

    /// A sample's value; 0 when it is absent (a labelled counter not seen yet).
    fn get(&self, key: &str) -> f64 {
        self.values.get(key).copied().unwrap_or(0.0)
    }

    fn require(&self, key: &str) -> f64 {
        *self
            .values
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key} in\n{}", self.text))
    }

    /// Sum over every sample of a family.
    fn sum(&self, family: &str) -> f64 {
        self.values
            .iter()
            .filter(|(k, _)| *k == family || k.starts_with(&format!("{family}{{")))
            .map(|(_, v)| v)
            .sum()
    }
}

/// `promtool check metrics` on the text: problems fail the test. A missing promtool fails under
/// CI=true (CI installs Debian's `prometheus`) and is skipped with a notice elsewhere.
fn promtool_check(text: &str) {
    let promtool = std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into());
    let child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("promtool cannot run ({e}): CI needs it (apt-get install prometheus)");
            }
            eprintln!("notice: promtool not found ({e}); checked with the Rust parser only");
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
}

async fn scrape_sensor(addr: SocketAddr) -> Scrape {
    let (status, head, body) = http(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    Scrape::parse(body)
}

async fn scrape_player(addr: SocketAddr) -> Scrape {
    let bearer = format!("Bearer {SCRAPE_TOKEN}");
    let (status, head, body) =
        http(addr, "GET", "/metrics", &[("Authorization", &bearer)], "").await;
    assert_eq!(status, 200, "{head}\n{body}");
    Scrape::parse(body)
}

/// Waits until `check` holds for a fresh scrape (counters fed by the sensor's threads move
/// a little after the traffic that bumps them).
async fn scrape_until(addr: SocketAddr, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = scrape_sensor(addr).await;
        if check(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} within 20 s:\n{}", s.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn start_player(sensor: SocketAddr) -> SocketAddr {
    let dir = sensor::scratch("metrics-player");
    let url = format!("sqlite://{}?mode=rwc", dir.join("player.db").display());
    let db = Db::open(&url).await.expect("open database");
    let hash = auth::hash_password(PASSWORD).expect("hash");
    db.add_user("listener", &hash, Role::Listener)
        .await
        .expect("add user");
    let addr = free_addr();
    let config = Config {
        listen: addr.to_string(),
        database_url: url,
        default_sensor: Some(Sensor {
            id_sensor: 1,
            name: "default".into(),
            host: sensor.ip().to_string(),
            port: sensor.port(),
            token: None,
            tls: false,
            kind: SensorKind::Earshot,
        }),
        secure_cookie: false,
        metrics_token: Some(SCRAPE_TOKEN.into()),
        limits: Default::default(),
        embed: Default::default(),
        sensor_ca: None,
        tls: None,
        proxy_auth: None,
    };
    let (_reload, reloads) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(earshot_player::serve(
        config,
        std::future::pending(),
        reloads,
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "the player did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    addr
}

async fn login(player: SocketAddr, password: &str) -> Option<String> {
    let body = serde_json::json!({"name": "listener", "password": password}).to_string();
    let (status, head, _) = http(
        player,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        &body,
    )
    .await;
    if status != 200 {
        return None;
    }
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().to_string())
        })
        .and_then(|c| c.split(';').next().map(str::to_string))
}

/// Listens to the call through the player's WebSocket until the call ends (or 30 s); returns
/// the number of binary frames received.
async fn listen(player: SocketAddr, cookie: &str, callref: &str) -> usize {
    let mut req = format!("ws://{player}/api/listen?callref={callref}")
        .into_client_request()
        .expect("ws request");
    req.headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("WebSocket upgrade");
    let mut frames = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                frames += 1;
                // An end frame: the call is over.
                if b.first() == Some(&earshot_manager::stream_proto::KIND_END) {
                    break;
                }
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                assert!(!t.contains("\"error\""), "the relay failed: {t}");
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    frames
}

/// Every metric a dashboard panel queries, from its `expr` fields.
fn dashboard_metrics(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).expect("read the dashboard");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&doc, &mut exprs);
    assert!(!exprs.is_empty(), "the dashboard queries nothing");
    let mut names = BTreeSet::new();
    for e in exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("earshot_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// A histogram's series names map back to the family.
fn family_of(name: &str, families: &HashMap<String, PrometheusType>) -> bool {
    families.contains_key(name)
        || ["_bucket", "_sum", "_count"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|base| families.get(base) == Some(&PrometheusType::Histogram))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_and_player_metrics_move_with_traffic() {
    let Some(dir) = sensor::shared("voipmonitor") else {
        return;
    };
    let pcap = dir.join("call.pcap");
    let metrics = free_addr();
    let s = sensor::Sensor::start(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--speed",
        "4",
        "--loop",
        "--metrics",
        &metrics.to_string(),
    ]);

    // Before any listening: the page is valid, and the capture counters start moving.
    let first = scrape_sensor(metrics).await;
    assert_eq!(first.require("earshot_sensor_listeners"), 0.0);
    assert_eq!(
        first.require("earshot_sensor_frame_latency_seconds"),
        0.0,
        "no frame was sent yet"
    );
    let player = start_player(s.addr).await;
    let p0 = scrape_player(player).await;
    assert_eq!(p0.require("earshot_player_relay_frames_total"), 0.0);
    assert_eq!(p0.require("earshot_player_active_listen_sessions"), 0.0);

    // Without the token, the player's metrics are refused, even from loopback.
    let (status, _, _) = http(player, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 403);
    let (status, _, _) = http(
        player,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer wrong")],
        "",
    )
    .await;
    assert_eq!(status, 403);
    // The sensor's port serves /metrics only.
    let (status, _, _) = http(metrics, "GET", "/", &[], "").await;
    assert_eq!(status, 404);

    // Traffic: a call with RTP in the table.
    let row = s.wait_call_with_rtp(Duration::from_secs(20));
    let after_traffic = scrape_until(metrics, "SIP, RTP and a started call", |m| {
        m.get("earshot_sensor_packets_total{kind=\"sip\"}") > 0.0
            && m.get("earshot_sensor_packets_total{kind=\"rtp\"}") > 0.0
            && m.get("earshot_sensor_bytes_total{kind=\"rtp\"}") > 0.0
            && m.get("earshot_sensor_calls_started_total") >= 1.0
            && m.get("earshot_sensor_active_streams") >= 1.0
    })
    .await;
    assert!(
        after_traffic.require("earshot_sensor_frames_total")
            > first.require("earshot_sensor_frames_total")
            || first.require("earshot_sensor_frames_total") > 0.0
    );
    assert!(after_traffic.require("earshot_sensor_active_calls") >= 1.0);
    assert!(
        after_traffic
            .get("earshot_sensor_manager_requests_total{command=\"listcalls\",result=\"ok\"}")
            >= 1.0
    );
    let frames_before = after_traffic.require("earshot_sensor_frames_total");

    // A failed login, a successful one, and one listening session through the player.
    assert!(login(player, "wrong").await.is_none());
    let cookie = login(player, PASSWORD).await.expect("log in");
    let callref = row
        .iter()
        .find_map(|v| v.as_str().filter(|s| s.starts_with("0x")))
        .expect("a callreference in the row")
        .to_string();
    let frames = listen(player, &cookie, &callref).await;
    assert!(frames > 10, "only {frames} frames relayed");

    // The sensor fed a live listener: frames left with a measured latency, the stream request
    // was counted, and the call that was listened to has ended with its final code.
    let after_listen = scrape_until(metrics, "a listened stream and an ended call", |m| {
        m.get("earshot_sensor_frame_latency_seconds") > 0.0
            && m.sum("earshot_sensor_calls_ended_total") >= 1.0
            && m.get("earshot_sensor_manager_requests_total{command=\"stream\",result=\"ok\"}")
                >= 1.0
    })
    .await;
    assert!(after_listen.require("earshot_sensor_frames_total") > frames_before);
    assert!(after_listen.get("earshot_sensor_calls_ended_total{code=\"200\"}") >= 1.0);
    assert_eq!(
        after_listen.require("earshot_sensor_decode_errors_total{codec=\"pcma\"}"),
        0.0
    );
    assert!(after_listen
        .text
        .contains("earshot_sensor_frame_latency_seconds_bucket{le=\"+Inf\"}"));

    let p1 = scrape_player(player).await;
    assert_eq!(p1.require("earshot_player_logins_total"), 1.0);
    assert_eq!(p1.require("earshot_player_login_failures_total"), 1.0);
    assert_eq!(p1.require("earshot_player_listen_sessions_total"), 1.0);
    assert!(p1.require("earshot_player_relay_frames_total") >= frames as f64);
    assert!(p1.require("earshot_player_relay_bytes_total") > 0.0);
    assert!(p1.require("earshot_player_relay_latency_seconds") >= frames as f64);
    assert_eq!(p1.require("earshot_player_metrics_refusals_total"), 2.0);

    // The dashboard queries only metrics that exist.
    let mut families = after_listen.families.clone();
    families.extend(p1.families.clone());
    let dashboard = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/grafana-earshot.json");
    for name in dashboard_metrics(&dashboard) {
        assert!(
            family_of(&name, &families),
            "dist/grafana-earshot.json queries {name}, which neither /metrics has"
        );
    }
}

/// The sensor's metrics address on loopback, once it accepts connections.
async fn metrics_on_loopback(port: u16) -> SocketAddr {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "no metrics on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    addr
}

/// `[metrics] listen` in the configuration file, as a bare port: served on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_port_from_the_configuration_file() {
    let dir = sensor::scratch("metrics-config");
    let port = free_addr().port();
    let config = dir.join("sensor.toml");
    std::fs::write(&config, format!("[metrics]\nlisten = \"{port}\"\n")).expect("write config");
    let _s = sensor::Sensor::start(&["--config", config.to_str().unwrap(), "--hep", "127.0.0.1:0"]);
    let addr = metrics_on_loopback(port).await;
    let m = scrape_sensor(addr).await;
    assert_eq!(m.require("earshot_sensor_frames_total"), 0.0);
    assert_eq!(m.require("earshot_sensor_active_calls"), 0.0);
    let (status, _, _) = http(addr, "POST", "/metrics", &[], "").await;
    assert_eq!(status, 405);
}

/// A non-loopback address of this host, if it has one (to scrape as a client that is not
/// loopback, without leaving the machine).
fn own_outside_address() -> Option<std::net::IpAddr> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // Connecting a UDP socket sends nothing; it only picks the route's source address.
    probe.connect("192.0.2.1:9").ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// With `[metrics] token`, sensor scrapes need `Authorization: Bearer`; refusals are counted and
/// say what to send; SIGHUP swaps the token. Without a token, only loopback clients are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_metrics_need_the_token_or_loopback() {
    let dir = sensor::scratch("metrics-token");
    let port = free_addr().port();
    let config = dir.join("sensor.toml");
    let write = |token: &str| {
        let text = format!("[metrics]\nlisten = \"0.0.0.0:{port}\"\ntoken = \"{token}\"\n");
        std::fs::write(&config, text).expect("write config");
    };
    write("first-t0ken");
    let s = sensor::Sensor::start(&["--config", config.to_str().unwrap(), "--hep", "127.0.0.1:0"]);
    let addr = metrics_on_loopback(port).await;
    let get = |bearer: Option<&'static str>| async move {
        let auth = bearer.map(|b| ("Authorization", b));
        http(addr, "GET", "/metrics", auth.as_slice(), "").await
    };
    let (status, _, body) = get(None).await;
    assert_eq!(status, 403, "a token is set: even loopback must send it");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    assert_eq!(get(Some("Bearer wrong")).await.0, 403);
    let (status, head, body) = get(Some("Bearer first-t0ken")).await;
    assert_eq!(status, 200, "{head}\n{body}");
    let m = Scrape::parse(body);
    assert_eq!(m.require("earshot_sensor_metrics_refusals_total"), 2.0);

    write("second-t0ken");
    let pid = libc::pid_t::try_from(s.pid()).expect("pid fits");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(Some("Bearer second-t0ken")).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the new metrics token was not taken on SIGHUP:\n{}",
            s.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(Some("Bearer first-t0ken")).await.0, 403);

    // No token: loopback is served, another address of this host is not.
    std::fs::write(&config, format!("[metrics]\nlisten = \"0.0.0.0:{port}\"\n")).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(None).await.0 != 200 {
        assert!(Instant::now() < deadline, "token not dropped on SIGHUP");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(outside) = own_outside_address() else {
        eprintln!(
            "note: this host has no non-loopback address; the loopback-only check is skipped"
        );
        return;
    };
    let (status, _, body) = http(SocketAddr::new(outside, port), "GET", "/metrics", &[], "").await;
    assert_eq!(status, 403, "scraped from {outside} without a token");
    assert!(body.contains("loopback only"), "{body}");
}

/// Connections that send nothing cannot starve Prometheus: with far more of them open than
/// `/metrics` serves at once, a scrape is still answered at once, and the idle ones pushed out
/// are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_do_not_block_a_scrape() {
    let port = free_addr().port();
    let _s = sensor::Sensor::start(&["--hep", "127.0.0.1:0", "--metrics", &port.to_string()]);
    let addr = metrics_on_loopback(port).await;
    let mut idle = Vec::new();
    for i in 0..200 {
        let c = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("idle connection {i}: {e}"));
        idle.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let m = scrape_sensor(addr).await;
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "scrape answered after {took:?}"
    );
    let evicted = m.get("earshot_sensor_metrics_dropped_connections_total{reason=\"evicted\"}");
    assert!(
        evicted >= 100.0,
        "idle scrapers pushed out: {evicted}\n{}",
        m.text
    );
    drop(idle);
}

/// A WebRTC-style call (DTLS-SRTP, tests/captures/dtls-srtp) with its key log: /metrics says
/// the handshake was read and keyed and the media decrypted; without the key log, that the
/// handshake waits for a key. An operator sees there why such calls stay "encrypted".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtls_srtp_handshakes_and_keys_are_on_metrics() {
    let captures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures/dtls-srtp");
    let pcap = captures.join("dtls_srtp_aes_cm_80.pcap");
    let keys = captures.join("keys.log");
    for keyed in [true, false] {
        let metrics = free_addr();
        let mut args = vec![
            "--pcap",
            pcap.to_str().unwrap(),
            "--speed",
            "max",
            "--metrics",
        ];
        let addr = metrics.to_string();
        args.push(&addr);
        if keyed {
            args.extend(["--tls-keylog", keys.to_str().unwrap()]);
        }
        let _s = sensor::Sensor::start(&args);
        let m = scrape_until(metrics, "the DTLS handshake counted", |m| {
            m.get("earshot_sensor_dtls_handshakes_total") >= 1.0
                && m.get("earshot_sensor_srtp_packets_total{outcome=\"decrypted\"}")
                    + m.get("earshot_sensor_srtp_packets_total{outcome=\"no_key\"}")
                    > 0.0
        })
        .await;
        assert!(m.require("earshot_sensor_dtls_datagrams_total") >= 2.0);
        let (keyed_n, waiting) = (
            m.require("earshot_sensor_dtls_handshakes_keyed_total"),
            m.require("earshot_sensor_dtls_handshakes_without_key"),
        );
        if keyed {
            assert_eq!((keyed_n, waiting), (1.0, 0.0), "{}", m.text);
            assert!(m.get("earshot_sensor_srtp_packets_total{outcome=\"decrypted\"}") > 0.0);
        } else {
            assert_eq!((keyed_n, waiting), (0.0, 1.0), "{}", m.text);
            assert_eq!(
                m.get("earshot_sensor_srtp_packets_total{outcome=\"decrypted\"}"),
                0.0
            );
        }
        assert_eq!(
            m.require("earshot_sensor_dtls_unsupported_total{reason=\"profile\"}"),
            0.0
        );
    }
}

/// An SRTP call whose receivers send SRTCP reports (tests/captures/srtp/srtcp_rr.pcap, made by
/// libsrtp2): /metrics counts them decrypted, none refused, none without a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtcp_reports_are_on_metrics() {
    let pcap =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/captures/srtp/srtcp_rr.pcap");
    let metrics = free_addr();
    let addr = metrics.to_string();
    let _s = sensor::Sensor::start(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--speed",
        "max",
        "--metrics",
        &addr,
    ]);
    let m = scrape_until(metrics, "the SRTCP reports counted", |m| {
        m.get("earshot_sensor_srtcp_packets_total{outcome=\"decrypted\"}") > 0.0
    })
    .await;
    assert_eq!(
        m.require("earshot_sensor_srtcp_packets_total{outcome=\"auth_failed\"}"),
        0.0,
        "{}",
        m.text
    );
    assert_eq!(
        m.require("earshot_sensor_srtcp_packets_total{outcome=\"no_key\"}"),
        0.0,
        "{}",
        m.text
    );
}
