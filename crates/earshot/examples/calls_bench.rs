//! Player figures for BENCHMARKS.md ("Player: the call directory at scale"): many sensors with
//! many calls, many pages following the call list, one `earshot player` process.
//!
//! The bench runs SENSORS stand-in earshot sensors in its own process, each speaking the
//! Manager API's `calls` subscription (docs/manager-protocol.md): a snapshot of CALLS calls,
//! `synced`, then every second a `changed` line for every call with `duration` = the seconds
//! since the bench started (what a real sensor's once-a-second numbers look like, for every
//! call at once). The release `earshot player` runs as a child with those sensors in its
//! registry. PAGES pages open `/api/calls/stream?limit=100` as the page does, half at the top
//! of the list (they share one window), half each at its own offset.
//!
//! It reports: how long `/api/calls?limit=100` (the first page) takes once the directory is
//! full; each page's first event; the **update latency**: for each page and each second k,
//! from the moment the sensors started writing second k's changes to the moment the page got
//! an event with duration k (p50, p99, max); the player's CPU and RSS over the measured
//! window; and how many times each sensor was asked anything (one `calls` each, no `listcalls`).
//!
//! ```text
//! cargo build --release -p earshot --bin earshot --example calls_bench
//! target/release/examples/calls_bench --earshot target/release/earshot [--sensors 10]
//!     [--calls 10000] [--pages 100] [--seconds 20] [--warmup 5]
//! ```

use anyhow::{bail, Context, Result};
#[path = "common/mod.rs"]
mod common;
use common::{free_port, http, login, run, Children};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

struct Opts {
    earshot: PathBuf,
    sensors: usize,
    calls: usize,
    pages: usize,
    seconds: f64,
    warmup: f64,
}

fn opts() -> Result<Opts> {
    let mut o = Opts {
        earshot: PathBuf::from("target/release/earshot"),
        sensors: 10,
        calls: 10_000,
        pages: 100,
        seconds: 20.0,
        warmup: 5.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--earshot" => o.earshot = value()?.into(),
            "--sensors" => o.sensors = value()?.parse()?,
            "--calls" => o.calls = value()?.parse()?,
            "--pages" => o.pages = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--warmup" => o.warmup = value()?.parse()?,
            other => bail!("unknown option {other}; see the comment at the top of calls_bench.rs"),
        }
    }
    Ok(o)
}

/// What the stand-in sensors were asked.
#[derive(Default)]
struct Asked {
    subscriptions: AtomicUsize,
    other: AtomicUsize,
}

fn callref(sensor: usize, call: usize) -> String {
    format!("0x{:x}", (sensor << 24) | (call + 1))
}

/// One stand-in sensor: every `calls` connection gets the snapshot, `synced`, then each
/// second (from `start`) a `changed` line per call.
async fn stand_in(
    listener: tokio::net::TcpListener,
    sensor: usize,
    calls: usize,
    start: Instant,
    asked: Arc<Asked>,
) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let asked = asked.clone();
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            if String::from_utf8_lossy(&req).trim() != "calls" {
                asked.other.fetch_add(1, Ordering::Relaxed);
                return;
            }
            asked.subscriptions.fetch_add(1, Ordering::Relaxed);
            let mut out = Vec::new();
            for c in 0..calls {
                let line = serde_json::json!({"event": "snapshot", "call": {
                    "callreference": callref(sensor, c), "callid": format!("{sensor}-{c}@bench"),
                    "caller": format!("+1555{sensor:02}{c:06}"), "called": format!("+1666{sensor:02}{c:06}"),
                    "callstate": "answered", "duration": 0, "callercodec_name": "PCMA",
                    "calledcodec_name": "PCMA", "caller_quality_unknown": null,
                    "called_quality_unknown": null, "caller_mos": 4.4, "called_mos": 4.4}});
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
            }
            out.extend_from_slice(b"{\"event\":\"synced\"}\n");
            if sock.write_all(&out).await.is_err() {
                return;
            }
            let mut k = start.elapsed().as_secs() + 1;
            loop {
                tokio::time::sleep_until((start + Duration::from_secs(k)).into()).await;
                out.clear();
                for c in 0..calls {
                    let _ = writeln!(
                        out,
                        "{{\"event\":\"changed\",\"callref\":\"{}\",\"fields\":{{\"duration\":{k}}}}}",
                        callref(sensor, c)
                    );
                }
                if sock.write_all(&out).await.is_err() {
                    return;
                }
                k += 1;
            }
        });
    }
}

/// `/api/calls?limit=100`: (seconds taken, total listed).
async fn first_page(addr: SocketAddr, cookie: &str) -> Result<(f64, u64)> {
    let req = format!(
        "GET /api/calls?limit=100 HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    let t = Instant::now();
    let (_, body) = http(addr, req).await?;
    let took = t.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_str(&body).context("parse /api/calls")?;
    Ok((took, v["total"].as_u64().unwrap_or(0)))
}

/// What one page saw: its first event's delay, and per second k the update latency.
#[derive(Default)]
struct PageTally {
    first_event_s: Option<f64>,
    latencies_ms: Vec<f64>,
    events: u64,
    bytes: u64,
}

async fn page(
    addr: SocketAddr,
    cookie: String,
    offset: usize,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> Result<PageTally> {
    let mut sock = tokio::net::TcpStream::connect(addr).await?;
    let opened = Instant::now();
    let req = format!(
        "GET /api/calls/stream?offset={offset}&limit=100 HTTP/1.0\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await?;
    let mut lines = tokio::io::BufReader::new(sock).lines();
    let mut t = PageTally::default();
    let mut seen_k = 0u64;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Ok(line) = tokio::time::timeout(left, lines.next_line()).await else {
            break;
        };
        let Some(line) = line? else {
            bail!("the player closed a page's stream");
        };
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let now = Instant::now();
        t.events += 1;
        t.bytes += data.len() as u64;
        t.first_event_s
            .get_or_insert(now.duration_since(opened).as_secs_f64());
        let v: serde_json::Value = serde_json::from_str(data)?;
        let k = v["upsert"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["duration"].as_u64())
            .max()
            .unwrap_or(0);
        if k > seen_k {
            seen_k = k;
            let written = start + Duration::from_secs(k);
            if written >= measure_from {
                t.latencies_ms
                    .push(now.saturating_duration_since(written).as_secs_f64() * 1e3);
            }
        }
    }
    Ok(t)
}

/// (CPU seconds, RSS bytes) of a process.
fn usage(pid: u32) -> Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let rss_pages: u64 = fields[21].parse()?;
    Ok((ticks / 100.0, rss_pages * 4096))
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let o = opts()?;
    let dir = std::env::temp_dir().join(format!("earshot-calls-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = format!("sqlite://{}", dir.join("p.db").display());
    let start = Instant::now();
    let mut asked = Vec::new();
    for s in 0..o.sensors {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = l.local_addr()?.port();
        let a = Arc::new(Asked::default());
        asked.push(a.clone());
        tokio::spawn(stand_in(l, s + 1, o.calls, start, a));
        let (id, port, name) = ((s + 1).to_string(), port.to_string(), format!("s{}", s + 1));
        run(
            &o.earshot,
            &[
                "sensors",
                "add",
                "--id",
                &id,
                "--name",
                &name,
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--database",
                &db,
            ],
            None,
        )?;
    }
    run(
        &o.earshot,
        &[
            "users",
            "add",
            "bench",
            "--role",
            "viewer",
            "--password-stdin",
            "--database",
            &db,
        ],
        Some("bench-pass\n"),
    )?;
    let web = free_port()?;
    let listen = format!("127.0.0.1:{web}");
    let player = Command::new(&o.earshot)
        .args([
            "player",
            "--listen",
            &listen,
            "--database",
            &db,
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = player.id();
    let _children = Children(vec![player]);
    let addr: SocketAddr = listen.parse()?;
    let up = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if up.elapsed() > Duration::from_secs(20) {
            bail!("the player did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cookie = login(addr).await?;
    let want = (o.sensors * o.calls) as u64;
    let filled = Instant::now();
    loop {
        let (_, total) = first_page(addr, &cookie).await?;
        if total == want {
            break;
        }
        if filled.elapsed() > Duration::from_secs(60) {
            bail!("the directory holds {total} of {want} calls after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fill_s = filled.elapsed().as_secs_f64();
    let mut firsts = Vec::new();
    for _ in 0..20 {
        firsts.push(first_page(addr, &cookie).await?.0 * 1e3);
    }

    let opened = Instant::now();
    let measure_from = opened + Duration::from_secs_f64(o.warmup);
    let end = measure_from + Duration::from_secs_f64(o.seconds);
    let span = o.sensors * o.calls - 100;
    let pages: Vec<_> = (0..o.pages)
        .map(|i| {
            // Half at the top (one shared window), half spread over the list.
            let offset = if i % 2 == 0 { 0 } else { (i * 7919) % span };
            tokio::spawn(page(addr, cookie.clone(), offset, start, measure_from, end))
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let (cpu0, _) = usage(pid)?;
    let t0 = Instant::now();
    let mut tallies = Vec::new();
    for p in pages {
        tallies.push(p.await??);
    }
    let (cpu1, rss) = usage(pid)?;
    let cpu_pct = (cpu1 - cpu0) / t0.elapsed().as_secs_f64() * 100.0;

    let mut lat: Vec<f64> = tallies
        .iter()
        .flat_map(|t| t.latencies_ms.clone())
        .collect();
    let mut first_ev: Vec<f64> = tallies
        .iter()
        .filter_map(|t| t.first_event_s.map(|s| s * 1e3))
        .collect();
    let events: u64 = tallies.iter().map(|t| t.events).sum();
    let bytes: u64 = tallies.iter().map(|t| t.bytes).sum();
    let subs: Vec<usize> = asked
        .iter()
        .map(|a| a.subscriptions.load(Ordering::Relaxed))
        .collect();
    let other: usize = asked.iter().map(|a| a.other.load(Ordering::Relaxed)).sum();
    println!(
        "sensors {} x {} calls, {} pages, {:.0} s measured after {:.0} s warm-up",
        o.sensors, o.calls, o.pages, o.seconds, o.warmup
    );
    println!("directory full {fill_s:.1} s after login");
    println!(
        "first page (/api/calls?limit=100): p50 {:.1} ms, max {:.1} ms",
        pct(&mut firsts, 0.5),
        pct(&mut firsts, 1.0)
    );
    println!(
        "first stream event: p50 {:.0} ms, max {:.0} ms",
        pct(&mut first_ev, 0.5),
        pct(&mut first_ev, 1.0)
    );
    println!(
        "update latency ({} samples): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        lat.len(),
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0)
    );
    println!(
        "events {events}, {:.1} KB/s per page",
        bytes as f64 / 1e3 / (o.pages as f64) / (end - opened).as_secs_f64()
    );
    println!(
        "player CPU {cpu_pct:.0} % of a core, RSS {:.0} MB",
        rss as f64 / 1e6
    );
    println!("sensors asked: calls subscriptions per sensor {subs:?}, other commands {other}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
