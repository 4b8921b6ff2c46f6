//! Player figures for BENCHMARKS.md ("Player: simultaneous listeners"): how many browser-style
//! WebSocket listeners one `earshot player` process serves without audio gaps on loopback.
//!
//! The release `earshot` binary runs as two children: `earshot sensor --pcap … --speed 1`
//! replaying a `synth` capture of CALLS concurrent calls in real time, and `earshot player`
//! with that sensor as its default one. The bench logs in as a listener (`POST /api/login`,
//! session cookie) and opens N WebSockets to `/api/listen` exactly as the page does
//! (`rate=48000&channels=2`, same-origin `Origin` header), spread round-robin over the calls.
//!
//! Per listener, over the measured window (after a warm-up):
//! * **lost**: gaps in the audio frames' `seq` (frames the sensor or player dropped because this
//!   listener fell behind);
//! * **late**: frames that would have reached an empty jitter buffer. Each frame's arrival is
//!   compared with its ideal time on a steady 20 ms schedule, anchored at the listener's earliest
//!   frame relative to that schedule; a frame more than B ms behind it would have underrun a
//!   buffer of B ms (B = 40, the page's floor, and 120 ms, the top of its usual range).
//!
//! Also: the player process's CPU (from /proc, user + system, as % of one core) and its RSS.
//!
//! ```text
//! cargo build --release -p earshot --bin earshot --example player_bench
//! target/release/examples/player_bench --earshot target/release/earshot [--listeners 500]
//!     [--calls 10] [--seconds 20] [--warmup 5] [--rate 48000] [--channels 2] [--format s16le|opus]
//! ```
//!
//! `--format opus --rate 16000` is what the page asks for where the browser has WebCodecs; the
//! bench then also shows what Opus saves: the bytes each listener receives per second.
//!
//! ```text
//! ```

use anyhow::{bail, Context, Result};
#[path = "common/mod.rs"]
mod common;
use common::{free_port, http, login, run, Children};
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

struct Opts {
    earshot: PathBuf,
    listeners: usize,
    calls: u32,
    seconds: f64,
    warmup: f64,
    rate: u32,
    channels: u8,
    format: String,
}

fn opts() -> Result<Opts> {
    let mut o = Opts {
        earshot: PathBuf::from("target/release/earshot"),
        listeners: 500,
        calls: 10,
        seconds: 20.0,
        warmup: 5.0,
        rate: 48000,
        channels: 2,
        format: "s16le".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--earshot" => o.earshot = value()?.into(),
            "--listeners" => o.listeners = value()?.parse()?,
            "--calls" => o.calls = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--warmup" => o.warmup = value()?.parse()?,
            "--rate" => o.rate = value()?.parse()?,
            "--channels" => o.channels = value()?.parse()?,
            "--format" => o.format = value()?,
            other => bail!("unknown option {other}; see the comment at the top of player_bench.rs"),
        }
    }
    Ok(o)
}

async fn callrefs(addr: SocketAddr, cookie: &str) -> Result<Vec<String>> {
    let req = format!(
        "GET /api/calls HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    let (_, body) = http(addr, req).await?;
    let v: serde_json::Value = serde_json::from_str(&body).context("parse /api/calls")?;
    Ok(v["calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .filter_map(|c| c["callreference"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

#[derive(Default, Clone)]
struct Tally {
    frames: u64,
    lost: u64,
    late_40: u64,
    late_120: u64,
    max_late_ms: f64,
    ended_early: bool,
    /// The error the player sent instead of audio, if it did.
    refused: Option<String>,
    /// Bytes of audio frames (head included) received in the window.
    bytes: u64,
    /// Arrival wall time − capture time of the frame's first sample, ms, per frame.
    ages_ms: Vec<f64>,
}

/// Reads one listener's frames until `end`; counts only those that arrive after `start`.
async fn listen(
    addr: SocketAddr,
    cookie: String,
    callref: String,
    format: (u32, u8, String),
    start: Instant,
    end: Instant,
) -> Result<Tally> {
    let (rate, channels, encoding) = format;
    let url = format!(
        "ws://{addr}/api/listen?callref={callref}&rate={rate}&channels={channels}&from=now&format={encoding}"
    );
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("cookie", cookie.parse()?);
    req.headers_mut()
        .insert("origin", format!("http://{addr}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    let mut t = Tally::default();
    let mut last_seq: Option<u32> = None;
    // (arrival − ideal) per frame in the window, in ms; the ideal schedule is 20 ms per frame.
    let mut offsets = Vec::new();
    let mut first: Option<(Instant, u32)> = None;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let msg = match tokio::time::timeout(left, ws.next()).await {
            Err(_) => break,
            Ok(None) | Ok(Some(Err(_))) => {
                t.ended_early = true;
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        if let Message::Text(text) = &msg {
            if text.contains("\"error\"") {
                t.refused = Some(text.to_string());
            }
        }
        let Message::Binary(b) = msg else { continue };
        use earshot_manager::stream_proto::{KIND_AUDIO, KIND_OPUS};
        if b.len() < 22 || !matches!(b[0], KIND_AUDIO | KIND_OPUS) {
            continue;
        }
        let now = Instant::now();
        let seq = u32::from_be_bytes([b[5], b[6], b[7], b[8]]);
        if let Some(prev) = last_seq {
            let gap = seq.wrapping_sub(prev).wrapping_sub(1);
            if now >= start && gap < 1_000_000 {
                t.lost += u64::from(gap);
            }
        }
        last_seq = Some(seq);
        if now < start {
            continue;
        }
        t.frames += 1;
        t.bytes += b.len() as u64;
        let capture_ns =
            i64::from_be_bytes([b[9], b[10], b[11], b[12], b[13], b[14], b[15], b[16]]);
        let wall_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        t.ages_ms.push((wall_ns - capture_ns) as f64 / 1e6);
        let (t0, s0) = *first.get_or_insert((now, seq));
        let ideal_ms = f64::from(seq.wrapping_sub(s0)) * 20.0;
        offsets.push(now.duration_since(t0).as_secs_f64() * 1000.0 - ideal_ms);
    }
    let _ = ws.close(None).await;
    if let Some(min) = offsets.iter().copied().reduce(f64::min) {
        for o in &offsets {
            let late = o - min;
            t.max_late_ms = t.max_late_ms.max(late);
            t.late_40 += u64::from(late > 40.0);
            t.late_120 += u64::from(late > 120.0);
        }
    }
    Ok(t)
}

/// (user + system CPU seconds, RSS bytes) of a process, from /proc.
fn cpu_and_rss(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    Some((ticks / 100.0, rss_pages * 4096))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let o = opts()?;
    let dir = std::env::temp_dir().join(format!("earshot-player-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pcap = dir.join("calls.pcap");
    let db = format!("sqlite://{}?mode=rwc", dir.join("p.db").display());
    let call_seconds = (o.warmup + o.seconds + 15.0).ceil().to_string();
    let calls = o.calls.to_string();
    let pcap_s = pcap.display().to_string();
    run(
        &o.earshot,
        &[
            "synth",
            "--calls",
            &calls,
            "--seconds",
            &call_seconds,
            "--codec",
            "pcma",
            "--out",
            &pcap_s,
        ],
        None,
    )?;
    run(
        &o.earshot,
        &[
            "users",
            "add",
            "bench",
            "--role",
            "listener",
            "--password-stdin",
            "--database",
            &db,
        ],
        Some("bench-pass\n"),
    )?;
    let sensor_port = free_port()?;
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let manager = format!("127.0.0.1:{sensor_port}");
    let spawn = |args: &[&str]| {
        Command::new(&o.earshot)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    let mut children = Children(Vec::new());
    children.0.push(spawn(&[
        "sensor",
        "--pcap",
        &pcap_s,
        "--speed",
        "1",
        "--manager",
        &manager,
    ])?);
    // One bench user opens every listener: lift the per-user cap on a call (4 by default, for
    // a person's windows and tabs) so it does not stand in for 500 people.
    let player_conf = dir.join("player.toml");
    std::fs::write(
        &player_conf,
        "[listening]\nmax_per_user_per_call = 100000\n",
    )?;
    let player_conf = player_conf.display().to_string();
    children.0.push(spawn(&[
        "player",
        "--config",
        &player_conf,
        "--listen",
        &web.to_string(),
        "--database",
        &db,
        "--manager",
        &manager,
    ])?);
    let player_pid = children.0[1].id();

    let deadline = Instant::now() + Duration::from_secs(20);
    let cookie = loop {
        match login(web).await {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => return Err(e.context("log in to the player")),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let refs = loop {
        let refs = callrefs(web, &cookie).await.unwrap_or_default();
        if refs.len() >= o.calls as usize {
            break refs;
        }
        if Instant::now() > deadline {
            bail!("only {} of {} calls listed", refs.len(), o.calls);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let start = Instant::now() + Duration::from_secs_f64(o.warmup);
    let end = start + Duration::from_secs_f64(o.seconds);
    let tasks: Vec<_> = (0..o.listeners)
        .map(|i| {
            let (cookie, callref) = (cookie.clone(), refs[i % refs.len()].clone());
            tokio::spawn(listen(
                web,
                cookie,
                callref,
                (o.rate, o.channels, o.format.clone()),
                start,
                end,
            ))
        })
        .collect();
    tokio::time::sleep_until(start.into()).await;
    let before = cpu_and_rss(player_pid);
    tokio::time::sleep_until(end.into()).await;
    let after = cpu_and_rss(player_pid);

    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok(t) => all.push(t),
            Err(e) => {
                failed += 1;
                eprintln!("listener failed: {e:#}");
            }
        }
    }
    let sum = |f: fn(&Tally) -> u64| all.iter().map(f).sum::<u64>();
    let expected = (o.seconds * 50.0) as u64 * o.listeners as u64;
    let with = |f: fn(&Tally) -> bool| all.iter().filter(|t| f(t)).count();
    let max_late = all.iter().map(|t| t.max_late_ms).fold(0.0, f64::max);
    let mut lates: Vec<f64> = all.iter().map(|t| t.max_late_ms).collect();
    lates.sort_by(f64::total_cmp);
    let p99_late = lates
        .get((lates.len() * 99 / 100).min(lates.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    println!(
        "listeners {} over {} calls, {} s window after {} s warm-up ({} Hz, {} channel(s), {}, 20 ms frames)",
        o.listeners, o.calls, o.seconds, o.warmup, o.rate, o.channels, o.format
    );
    let refused = all.iter().filter_map(|t| t.refused.as_deref()).next();
    println!(
        "  connected {} (failed {failed}, closed early {}{})",
        all.len(),
        with(|t| t.ended_early),
        refused
            .map(|r| format!("; refused: {r}"))
            .unwrap_or_default()
    );
    println!(
        "  audio frames {} of ~{expected} expected; lost (seq gaps) {}",
        sum(|t| t.frames),
        sum(|t| t.lost)
    );
    println!(
        "  late frames: > 40 ms {} (listeners affected {}), > 120 ms {} (listeners {})",
        sum(|t| t.late_40),
        with(|t| t.late_40 > 0),
        sum(|t| t.late_120),
        with(|t| t.late_120 > 0)
    );
    let per_listener = sum(|t| t.bytes) as f64 / o.seconds / all.len().max(1) as f64;
    println!(
        "  received per listener {:.2} KB/s; all listeners {:.1} Mbit/s",
        per_listener / 1000.0,
        per_listener * all.len() as f64 * 8.0 / 1e6
    );
    println!("  worst lateness per listener: p99 {p99_late:.1} ms, max {max_late:.1} ms");
    let mut ages: Vec<f64> = all.iter().flat_map(|t| t.ages_ms.iter().copied()).collect();
    ages.sort_by(f64::total_cmp);
    let pct = |p: usize| {
        ages.get((ages.len() * p / 100).min(ages.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "  frame age at arrival (capture of its first sample → bench): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(50),
        pct(99),
        ages.last().copied().unwrap_or(f64::NAN)
    );
    if let (Some((c0, _)), Some((c1, rss))) = (before, after) {
        println!(
            "  player process: CPU {:.0}% of one core, RSS {:.1} MB",
            100.0 * (c1 - c0) / o.seconds,
            rss as f64 / 1e6
        );
    }
    drop(children);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
