//! Calls made of RTP alone (`Config::rtp_only_calls`, see `rtp_only.rs`): a live sensor plays
//! streams whose SIP it never sees.

mod common;
use common::*;
use earshot_core::{is_rtp_only, CallState, Config, Event, Party, PayloadFormat};

fn rtp_only() -> Harness {
    Harness::new(Config {
        rtp_only_calls: true,
        ..Config::default()
    })
}

#[test]
fn a_stream_without_sip_becomes_a_call_with_both_directions_and_every_packet() {
    let mut h = rtp_only();
    let (a, b) = ("192.0.2.1:20000", "192.0.2.2:30000");
    h.stream(0, a, b, 0xA, 100, 50, 8);
    h.stream(5, b, a, 0xB, 7000, 50, 8);
    let c = h.only_call();
    assert!(is_rtp_only(c), "{}", c.sip_call_id);
    assert_eq!(c.state, CallState::Answered);
    assert_eq!((c.caller.as_str(), c.called.as_str()), (a, b));
    assert_eq!(c.streams.len(), 2, "{:#?}", c.streams);
    let party_packets: Vec<_> = c
        .streams
        .iter()
        .map(|s| (s.party, s.key.ssrc, s.stats.packets))
        .collect();
    assert_eq!(
        party_packets,
        [
            (Some(Party::Caller), 0xA, 50),
            (Some(Party::Called), 0xB, 50)
        ],
        "the proving packets stay in the stream's statistics"
    );
    assert_eq!(c.codecs(), ["PCMA"]);
    assert!(h.engine.unassociated_streams().is_empty());
    assert_eq!(h.engine.counters().rtp_packets, 100);
    // The sink hears every packet after the proof (the first three proved it RTP), so a
    // listener can play the call.
    let heard = |p: Party| h.sink.rtp.iter().filter(|r| r.1 == p).count();
    assert_eq!((heard(Party::Caller), heard(Party::Called)), (47, 47));
    assert!(matches!(h.sink.events.first(), Some(Event::CallNew(_))));
}

#[test]
fn off_by_default_streams_without_sip_stay_unassociated() {
    let mut h = Harness::default();
    h.stream(0, "192.0.2.1:20000", "192.0.2.2:30000", 0xA, 1, 20, 0);
    assert!(h.engine.calls().is_empty());
    assert_eq!(h.engine.unassociated_streams().len(), 1);
    assert!(h.sink.rtp.is_empty());
}

#[test]
fn a_configured_format_names_a_dynamic_payload_type() {
    let mut h = Harness::new(Config {
        rtp_only_calls: true,
        rtp_only_formats: vec![PayloadFormat {
            pt: 111,
            encoding: "opus".into(),
            clock_rate: 48_000,
            channels: 2,
            encrypted: false,
            fmtp: None,
        }],
        ..Config::default()
    });
    h.stream(0, "192.0.2.1:20000", "192.0.2.2:30000", 0xA, 1, 20, 111);
    let c = h.only_call();
    assert_eq!(c.codecs(), ["opus"]);
    assert_eq!(c.streams[0].clock_rate, 48_000);
}

#[test]
fn a_call_made_of_rtp_ends_after_its_own_idle_time_not_sips() {
    let mut h = rtp_only();
    h.stream(0, "192.0.2.1:20000", "192.0.2.2:30000", 0xA, 1, 20, 0);
    let last = 19 * 20;
    h.engine.expire(ms(last + 9_000), &mut h.sink);
    assert!(
        h.only_call().end.is_none(),
        "still within 10 s of its last packet"
    );
    h.engine.expire(ms(last + 11_000), &mut h.sink);
    let c = h.only_call();
    assert!(c.timed_out && c.end.is_some(), "{c:#?}");
}

#[test]
fn an_sdp_seen_later_takes_the_media_over() {
    // The capture missed the INVITE but sees a re-INVITE's call later, or SIP arrives on a
    // second interface late: the SIP call is the real one.
    let mut h = rtp_only();
    h.stream(0, "10.0.0.2:6000", "10.0.0.1:4000", 0xB, 1, 10, 0);
    assert_eq!(h.engine.calls().len(), 1);
    let d = dialog("late", "ft");
    h.answered_call(&d, 500, 4000, 6000);
    h.stream(2000, "10.0.0.2:6000", "10.0.0.1:4000", 0xB, 11, 10, 0);
    let calls = h.engine.calls();
    let sip = calls
        .iter()
        .find(|c| !is_rtp_only(c))
        .expect("the SIP call");
    assert_eq!(sip.streams.len(), 1, "{:#?}", sip.streams);
    assert_eq!(sip.streams[0].stats.packets, 10);
}

#[test]
fn garbage_udp_makes_no_call() {
    let mut h = rtp_only();
    for i in 0..200u16 {
        let junk: Vec<u8> = (0..172).map(|k| (k as u16 * 31 + i * 7) as u8).collect();
        h.udp(i64::from(i), "192.0.2.1:20000", "192.0.2.2:30000", &junk);
    }
    assert!(h.engine.calls().is_empty());
}

#[test]
fn calls_made_of_rtp_count_against_the_call_limit() {
    let mut h = Harness::new(Config {
        rtp_only_calls: true,
        max_calls: 3,
        ..Config::default()
    });
    for port in 0..10u16 {
        let src = format!("192.0.2.1:{}", 20000 + port * 2);
        h.stream(0, &src, "192.0.2.2:30000", u32::from(port), 1, 5, 0);
    }
    assert_eq!(h.engine.calls().len(), 3);
    assert_eq!(h.engine.counters().calls_dropped, 7);
}
