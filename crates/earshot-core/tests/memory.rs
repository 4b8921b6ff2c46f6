//! Memory the engine keeps per call is bounded, and given back when calls leave: a live sensor
//! holds 100,000 calls in a few KB each and must not keep a peak's memory once they ended.

mod common;

use common::*;
use earshot_core::{Config, SipRecord};

const SECOND_MS: i64 = 1000;

fn live() -> Config {
    Config {
        retain_ended: false,
        linger_ns: SECOND_MS * 1_000_000,
        sip_log_messages: 32,
        ..Config::default()
    }
}

/// A dialog of its own for call `i`: Call-ID, tag and SIP addresses.
fn nth(i: u32) -> Dialog {
    dialog(&format!("call-{i}@memory"), &format!("t{i}"))
}

/// An answered call `i` with RTP both ways and a BYE, its media on ports of its own.
fn whole_call(h: &mut Harness, i: u32, t0: i64) {
    let d = nth(i);
    let (a, b) = (10_000 + 2 * i as u16, 40_000 + 2 * i as u16);
    h.answered_call(&d, t0, a, b);
    let (caller, called) = (format!("{CALLER_IP}:{a}"), format!("{CALLED_IP}:{b}"));
    h.stream(t0 + 1020, &caller, &called, i, 0, 2, 0);
    h.stream(t0 + 1020, &called, &caller, i + 1_000_000, 0, 2, 0);
    h.c2s(
        t0 + 1100,
        &request("BYE", &d, 2, Some("tt"), false, None, None),
    );
}

fn logged_bytes(log: &[SipRecord]) -> usize {
    log.iter().map(|m| m.text.len()).sum()
}

/// An INFO of the first call's dialog with a body of `n` bytes that are not UTF-8: each
/// becomes a three-byte replacement character when the log turns it into text.
fn big_info(cseq: u32, n: usize) -> Vec<u8> {
    let d = nth(0);
    let mut m = request(
        "INFO",
        &d,
        cseq,
        Some("tt"),
        false,
        None,
        Some(("application/octet-stream", &"x".repeat(n))),
    );
    let body = m.len() - n;
    m[body..].fill(0xff);
    m
}

/// A call's SIP log is bounded in bytes whatever its messages: many, long, and not text.
#[test]
fn a_calls_sip_log_stays_within_its_byte_budget() {
    let cfg = live();
    let mut h = Harness::new(cfg.clone());
    h.answered_call(&nth(0), 0, 10_000, 40_000);
    for cseq in 2..200 {
        h.c2s(2000 + i64::from(cseq), &big_info(cseq, 3000));
    }
    let call = h.only_call();
    assert_eq!(call.sip_messages, 203);
    for m in &call.sip_log {
        assert!(
            m.text.len() <= cfg.sip_log_bytes,
            "a message kept {} bytes of text, more than sip_log_bytes {}",
            m.text.len(),
            cfg.sip_log_bytes
        );
    }
    assert!(
        logged_bytes(&call.sip_log) <= 8 << 10,
        "the call keeps {} bytes of SIP text",
        logged_bytes(&call.sip_log)
    );
    assert!(
        call.sip_log.len() >= 5,
        "the dialog itself is kept: {}",
        call.sip_log.len()
    );
}

/// The budget counts what the log costs (records and text) exactly, the engine's total is the
/// sum of its calls', and messages left out are counted.
#[test]
fn sip_log_bytes_are_accounted_and_skipped_messages_counted() {
    let cfg = live();
    let mut h = Harness::new(cfg.clone());
    h.answered_call(&nth(0), 0, 10_000, 40_000);
    for cseq in 2..50 {
        h.c2s(2000 + i64::from(cseq), &big_info(cseq, 1500));
    }
    let call = h.only_call();
    let cost = call.sip_log_bytes();
    assert!(cost <= cfg.sip_log_call_bytes, "{cost}");
    assert!(
        cost > cfg.sip_log_call_bytes - 200,
        "the budget is used: {cost}"
    );
    assert_eq!(call.sip_log.capacity(), call.sip_log.len(), "no spare room");
    assert_eq!(h.engine.table_sizes().sip_log_bytes, cost);
    let kept = call.sip_log.len() as u64;
    assert_eq!(h.engine.counters().sip_log_skipped, 53 - kept);
}

/// All calls' logs together stay within the total budget; a removed call's bytes come back
/// and later calls log again.
#[test]
fn the_total_sip_log_budget_is_shared_and_given_back() {
    let cfg = Config {
        sip_log_total_bytes: 20 << 10,
        ..live()
    };
    let mut h = Harness::new(cfg.clone());
    for i in 0..40 {
        whole_call(&mut h, i, i64::from(i));
    }
    let sizes = h.engine.table_sizes();
    assert!(sizes.sip_log_bytes <= 20 << 10, "{}", sizes.sip_log_bytes);
    let sum: usize = h.engine.calls().iter().map(|c| c.sip_log_bytes()).sum();
    assert_eq!(sum, sizes.sip_log_bytes);
    assert!(h.engine.counters().sip_log_skipped > 0);
    assert!(
        h.engine.calls()[0].sip_log.len() >= 5,
        "the first calls log"
    );
    assert!(h.engine.calls()[39].sip_log.is_empty(), "the last do not");

    h.engine.expire(ms(10 * SECOND_MS), &mut h.sink);
    assert!(h.engine.calls().is_empty());
    assert_eq!(h.engine.table_sizes().sip_log_bytes, 0);
    whole_call(&mut h, 100, 11 * SECOND_MS);
    assert_eq!(h.only_call().sip_log.len(), 6, "a later call logs again");
}

/// With `sip_log_call_id` only that call logs: the calls before it spend none of the total
/// budget, which would otherwise have run out before it (`earshot ladder` on a big capture).
#[test]
fn a_log_for_one_call_id_is_not_starved_by_the_others() {
    let cfg = Config {
        retain_ended: true,
        sip_log_total_bytes: 20 << 10,
        sip_log_call_id: Some("call-39@memory".into()),
        ..live()
    };
    let mut h = Harness::new(cfg);
    for i in 0..40 {
        whole_call(&mut h, i, i64::from(i));
    }
    let calls = h.engine.calls();
    assert_eq!(calls.len(), 40);
    for c in &calls {
        if c.sip_call_id == "call-39@memory" {
            assert_eq!(
                c.sip_log.len(),
                6,
                "the call asked for logs all of its dialog"
            );
        } else {
            assert!(c.sip_log.is_empty(), "{} logs nothing", c.sip_call_id);
        }
    }
}

/// After a peak of calls has come and gone, the engine's tables shrink back instead of
/// keeping their peak's buckets for the life of the process.
#[test]
fn tables_shrink_after_a_peak() {
    let mut h = Harness::new(live());
    const CALLS: u32 = 5_000;
    for i in 0..CALLS {
        whole_call(&mut h, i, 0);
    }
    let sizes = h.engine.table_sizes();
    assert_eq!(sizes.calls, CALLS as usize);
    assert_eq!(sizes.flows, 2 * CALLS as usize);
    let peak = h.engine.table_capacities();
    assert!(peak.calls >= CALLS as usize && peak.flows >= 2 * CALLS as usize);

    // A few calls stay up through the expiry (no BYE): tables shrink, they do not empty.
    for i in CALLS..CALLS + 10 {
        h.answered_call(&nth(i), 5 * SECOND_MS, 10_000 + 2 * i as u16, 40_000);
    }
    h.engine.expire(ms(6 * SECOND_MS), &mut h.sink);
    assert_eq!(h.engine.table_sizes().calls, 10);
    let after = h.engine.table_capacities();
    for (name, cap) in [
        ("calls", after.calls),
        ("by_call_id", after.by_call_id),
        ("bindings", after.bindings),
        ("flows", after.flows),
    ] {
        assert!(cap <= 1024, "{name} still has room for {cap} entries");
    }
    // Still working: the remaining calls are found and a new one is tracked.
    whole_call(&mut h, 9_999, 7 * SECOND_MS);
    assert_eq!(h.engine.table_sizes().calls, 11);
}
