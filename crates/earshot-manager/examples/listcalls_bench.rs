//! How long `listcalls` formatting takes for a table of N calls: the whole table (text and
//! JSON) and a 100-call page. `cargo run --release -p earshot-manager --example listcalls_bench
//! -- 1000 10000 100000`. Pure formatting, no sensor: the figures in BENCHMARKS.md.

use earshot_manager::command::{parse_command, Command, ListCallsFormat};
use earshot_manager::listcalls::{self, CallSummary, LegSummary, ListContext};
use earshot_manager::CallRef;
use earshot_rtp::Party;
use earshot_sip::CallState;
use std::time::Instant;

fn leg(party: Party, n: u64) -> LegSummary {
    let ip = |x: u64| format!("10.{}.{}.{}", (x >> 16) & 255, (x >> 8) & 255, x & 255);
    LegSummary {
        party: Some(party),
        src: format!("{}:{}", ip(n), 10000 + (n % 50000))
            .parse()
            .expect("address"),
        dst: format!("{}:{}", ip(n + 1), 20000 + (n % 40000))
            .parse()
            .expect("address"),
        ssrc: n as u32,
        payload_type: 8,
        codec: Some("PCMA".into()),
        first_ns: 1_700_000_000_000_000_000,
        last_ns: 1_700_000_030_000_000_000,
        packets: 1500 + n % 100,
        lost: n % 7,
        loss_percent: (n % 7) as f64 / 15.0,
        jitter_ms: 0.1234567 * (n % 11) as f64,
        jitter_avg_ms: 0.15,
        jitter_max_ms: 0.35,
        mos: Some(4.4),
        unknown: None,
        video: false,
        encrypted: false,
        capture_loss: 0,
    }
}

fn summary(n: u64) -> CallSummary {
    let caller = leg(Party::Caller, 2 * n);
    let called = leg(Party::Called, 2 * n + 1);
    CallSummary {
        callref: CallRef::from_u64(0x5000_0000 + n),
        id: n,
        text: std::sync::Arc::new(earshot_manager::CallText {
            call_id: format!("{n}-synth@192.0.2.1").into(),
            caller: format!("1555{n:07}").into(),
            called: format!("1666{n:07}").into(),
            caller_name: Some(format!("Caller {n}").into()),
            caller_domain: Some("192.0.2.1".into()),
            called_domain: Some("192.0.2.2".into()),
            caller_agent: Some("synth".into()),
            called_agent: Some("synth".into()),
            codecs: vec!["PCMA".to_string()].into(),
            group: None,
        }),
        caller_ip: "192.0.2.1".parse().expect("address"),
        called_ip: "192.0.2.2".parse().expect("address"),
        state: CallState::Answered,
        last_sip_code: Some(200),
        start_ns: 1_700_000_000_000_000_000 + n as i64 * 1_000_000,
        answer_ns: Some(1_700_000_001_000_000_000),
        last_packet_ns: 1_700_000_030_000_000_000,
        last_sip_ns: 1_700_000_001_000_000_000,
        duration_secs: 30,
        connect_secs: 29,
        on_hold: false,
        held_by: None,
        reinvites: 0,
        vlan: None,
        sensor_id: Some(1),
        caller_leg: Some(caller.clone()),
        called_leg: Some(called.clone()),
        legs: vec![caller, called],
    }
}

/// Median of `runs` timings of `f`, in milliseconds, and the reply size.
fn time(runs: usize, mut f: impl FnMut() -> Vec<u8>) -> (f64, usize) {
    let mut ms = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let t = Instant::now();
        size = std::hint::black_box(f()).len();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], size)
}

fn params(line: &str) -> earshot_manager::command::ListParams {
    match parse_command(line) {
        Ok(Command::ListCalls(ListCallsFormat::JsonWithParams(p))) => p,
        other => panic!("{line}: {other:?}"),
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 10_000]
    } else {
        sizes
    };
    let ctx = ListContext { sensor_id: Some(1) };
    println!("| calls | text, whole table | JSON, whole table | JSON, 100-call page | JSON, page sorted by caller |");
    println!("|---|---|---|---|---|");
    for n in sizes {
        let calls: Vec<CallSummary> = (0..n).map(summary).collect();
        let runs = if n > 20_000 { 3 } else { 9 };
        let (text, text_b) = time(runs, || listcalls::listcalls_text(&calls));
        let all = params(r#"listcalls {"zip":"no"}"#);
        let (json, json_b) = time(runs, || listcalls::listcalls_json(&calls, Some(&all), ctx));
        let page = params(r#"listcalls {"limit":100}"#);
        let (pg, _) = time(runs, || listcalls::listcalls_json(&calls, Some(&page), ctx));
        let sorted = params(r#"listcalls {"limit":100,"sort_field":"caller","sort_dir":"desc"}"#);
        let (srt, _) = time(runs, || {
            listcalls::listcalls_json(&calls, Some(&sorted), ctx)
        });
        println!(
            "| {n} | {text:.1} ms ({:.1} MB) | {json:.1} ms ({:.1} MB) | {pg:.2} ms | {srt:.2} ms |",
            text_b as f64 / 1e6,
            json_b as f64 / 1e6
        );
    }
}
