//! Time is input: a call's times are packet times, which a capture record or a HEP envelope
//! can put anywhere. Calls must still age on the clock `expire` is given, and always expire.

mod common;

use common::*;
use earshot_core::{CallState, Config};
use earshot_wire::Timestamp;

const SECOND_MS: i64 = 1000;
/// 2106, as far as a HEP envelope's 32-bit seconds reach.
const YEAR_2106_MS: i64 = 4_294_967_295 * SECOND_MS;

fn live() -> Config {
    Config {
        idle_timeout_ns: 300 * 1_000_000_000,
        linger_ns: 10 * 1_000_000_000,
        retain_ended: false,
        ..Config::default()
    }
}

#[test]
fn a_call_stamped_in_the_future_expires_on_the_callers_clock() {
    let mut h = Harness::new(live());
    let now_ms = 1_700_000_000 * SECOND_MS;
    h.c2s(
        YEAR_2106_MS,
        &invite("future", "ft", 1, CALLER_IP, 4000, &[0]),
    );
    assert_eq!(h.engine.calls().len(), 1);
    // The caller's clock moves on past the idle timeout and the linger; the call's own times
    // are 136 years ahead of it.
    for s in 0..=400 {
        h.engine.expire(ms(now_ms + s * SECOND_MS), &mut h.sink);
    }
    assert!(
        h.engine.calls().is_empty(),
        "a call stamped in 2106 never expired"
    );
}

#[test]
fn a_future_call_is_listed_no_later_than_now_and_keeps_aging() {
    let mut h = Harness::new(Config {
        retain_ended: true,
        ..live()
    });
    let now_ms = 1_700_000_000 * SECOND_MS;
    h.c2s(
        YEAR_2106_MS,
        &invite("future", "ft", 1, CALLER_IP, 4000, &[0]),
    );
    h.engine.expire(ms(now_ms), &mut h.sink);
    let c = h.only_call();
    assert!(c.start <= ms(now_ms), "start {:?} is after now", c.start);
    assert!(c.last_packet <= ms(now_ms));
    assert_eq!(c.state, CallState::Trying);
    h.engine.expire(ms(now_ms + 301 * SECOND_MS), &mut h.sink);
    assert!(
        h.only_call().timed_out,
        "idle for 301 s on the clock, not timed out"
    );
}

#[test]
fn time_at_the_ends_of_the_range_does_not_overflow() {
    let mut h = Harness::new(live());
    h.udp_at(
        Timestamp::from_nanos(i64::MIN),
        CALLER_SIP,
        CALLED_SIP,
        &invite("past", "ft", 1, CALLER_IP, 4000, &[0]),
    );
    h.udp_at(
        Timestamp::from_nanos(i64::MAX),
        CALLER_SIP,
        CALLED_SIP,
        &invite("future", "ft", 1, CALLER_IP, 4002, &[0]),
    );
    for t in [i64::MIN, 0, i64::MAX] {
        h.engine.expire(Timestamp::from_nanos(t), &mut h.sink);
    }
    assert!(h.engine.calls().is_empty());
}
