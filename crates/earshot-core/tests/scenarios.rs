//! Scenario tests: each behaviour the call engine promises, proved on hand-built SIP and RTP.

mod common;

use common::*;
use earshot_core::{CallState, Config, Event, Party};
use earshot_wire::{LinkType, Timestamp};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// 1. Call states and timestamps

#[test]
fn invite_only_is_trying() {
    let mut h = Harness::default();
    h.c2s(0, &invite("c1", "ft", 1, CALLER_IP, 4000, &[0]));
    let c = h.only_call();
    assert_eq!(c.state, CallState::Trying);
    assert_eq!(c.start, ms(0));
    assert_eq!((c.ring, c.answer, c.end), (None, None, None));
}

#[test]
fn ringing_early_answered_ended() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.c2s(0, &invite("c1", "ft", 1, CALLER_IP, 4000, &[0]));
    h.s2c(5, &response(100, "Trying", &d, 1, "INVITE", None, None));
    assert_eq!(h.only_call().state, CallState::Trying);
    h.s2c(
        100,
        &response(180, "Ringing", &d, 1, "INVITE", Some("t"), None),
    );
    assert_eq!(h.only_call().state, CallState::Ringing);
    assert_eq!(h.only_call().ring, Some(ms(100)));
    let ans = sdp(CALLED_IP, 6000, &[0]);
    h.s2c(
        200,
        &response(183, "Progress", &d, 1, "INVITE", Some("t"), Some(&ans)),
    );
    assert_eq!(h.only_call().state, CallState::Early);
    assert_eq!(h.only_call().ring, Some(ms(100)), "ring is the first 18x");
    h.s2c(
        3000,
        &response(200, "OK", &d, 1, "INVITE", Some("t"), Some(&ans)),
    );
    h.c2s(3010, &request("ACK", &d, 1, Some("t"), false, None, None));
    let c = h.only_call();
    assert_eq!(c.state, CallState::Answered);
    assert_eq!(c.answer, Some(ms(3000)));
    assert_eq!(c.sip_code, Some(200));
    assert_eq!(c.end, None);
    h.s2c(9000, &request("BYE", &d, 7, Some("t"), true, None, None));
    h.c2s(9005, &response(200, "OK", &d, 7, "BYE", Some("t"), None));
    let c = h.only_call();
    assert_eq!(c.state, CallState::Ended);
    assert_eq!(c.end, Some(ms(9000)));
    assert_eq!(c.duration_ns(), 9_000_000_000);
    assert_eq!(
        c.sip_code,
        Some(200),
        "the BYE's 200 is not the call's code"
    );
}

#[test]
fn early_183_with_sdp() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.c2s(0, &invite("c1", "ft", 1, CALLER_IP, 4000, &[0]));
    let ans = sdp(CALLED_IP, 6000, &[0]);
    h.s2c(
        50,
        &response(183, "Progress", &d, 1, "INVITE", Some("t"), Some(&ans)),
    );
    let c = h.only_call();
    assert_eq!(c.state, CallState::Early);
    assert_eq!(c.ring, Some(ms(50)));
}

#[test]
fn busy_is_failed_with_code() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.c2s(0, &invite("c1", "ft", 1, CALLER_IP, 4000, &[0]));
    h.s2c(
        40,
        &response(486, "Busy Here", &d, 1, "INVITE", Some("t"), None),
    );
    h.c2s(50, &request("ACK", &d, 1, Some("t"), false, None, None));
    let c = h.only_call();
    assert_eq!(c.state, CallState::Failed);
    assert_eq!(c.sip_code, Some(486));
    assert_eq!(c.end, Some(ms(40)));
    assert_eq!(c.reason.as_deref(), Some("Busy Here"));
}

#[test]
fn cancel_then_487_is_cancelled() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.c2s(0, &invite("c1", "ft", 1, CALLER_IP, 4000, &[0]));
    h.s2c(
        20,
        &response(180, "Ringing", &d, 1, "INVITE", Some("t"), None),
    );
    h.c2s(2000, &request("CANCEL", &d, 1, None, false, None, None));
    h.s2c(2005, &response(200, "OK", &d, 1, "CANCEL", Some("t"), None));
    assert_eq!(h.only_call().state, CallState::Ringing);
    h.s2c(
        2010,
        &response(487, "Request Terminated", &d, 1, "INVITE", Some("t"), None),
    );
    let c = h.only_call();
    assert_eq!(c.state, CallState::Cancelled);
    assert_eq!(c.sip_code, Some(487));
    assert_eq!(c.end, Some(ms(2010)));
    assert_eq!(c.answer, None);
}

#[test]
fn auth_retry_is_one_answered_call() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    let offer = sdp(CALLER_IP, 4000, &[0]);
    h.c2s(0, &invite("c1", "ft", 1, CALLER_IP, 4000, &[0]));
    h.s2c(
        10,
        &response(
            407,
            "Proxy Authentication Required",
            &d,
            1,
            "INVITE",
            Some("a"),
            None,
        ),
    );
    h.c2s(20, &request("ACK", &d, 1, Some("a"), false, None, None));
    assert_eq!(h.only_call().state, CallState::Failed);
    let retry = request(
        "INVITE",
        &d,
        2,
        None,
        false,
        Some("CallerPhone/1.0"),
        Some(("application/sdp", &offer)),
    );
    h.c2s(30, &retry);
    assert_eq!(h.only_call().state, CallState::Trying);
    h.s2c(
        100,
        &response(180, "Ringing", &d, 2, "INVITE", Some("b"), None),
    );
    let ans = sdp(CALLED_IP, 6000, &[0]);
    h.s2c(
        500,
        &response(200, "OK", &d, 2, "INVITE", Some("b"), Some(&ans)),
    );
    let c = h.only_call();
    assert_eq!(c.state, CallState::Answered);
    assert_eq!(c.sip_code, Some(200));
    assert_eq!(c.start, ms(0), "the call starts at the first INVITE");
    assert_eq!(c.answer, Some(ms(500)));
    assert_eq!(c.ring, Some(ms(100)));
    assert_eq!(c.end, None);
    assert_eq!(c.to_tag.as_deref(), Some("b"));
    assert_eq!(c.reason, None, "the 407's reason is not the call's");
    assert_eq!(h.engine.counters().calls, 1);
}

// ---------------------------------------------------------------------------------------------
// 2. Parties

#[test]
fn caller_called_names_and_agents() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    let c = h.only_call();
    assert_eq!(c.caller, "1001");
    assert_eq!(c.called, "2002");
    assert_eq!(c.caller_name.as_deref(), Some("Alice Smith"));
    assert_eq!(c.called_name.as_deref(), Some("Bob"));
    assert_eq!(c.caller_domain.as_deref(), Some("example.com"));
    assert_eq!(c.caller_agent.as_deref(), Some("CallerPhone/1.0"));
    assert_eq!(c.called_agent.as_deref(), Some("CalledPhone/2.0"));
    assert_eq!(c.caller_sip, addr(CALLER_SIP));
    assert_eq!(c.called_sip, addr(CALLED_SIP));
}

// ---------------------------------------------------------------------------------------------
// 3. Dialog matching

#[test]
fn forked_dialogs_are_one_call() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.c2s(0, &invite("c1", "ft", 1, CALLER_IP, 4000, &[0]));
    h.s2c(
        10,
        &response(180, "Ringing", &d, 1, "INVITE", Some("fork1"), None),
    );
    h.s2c(
        20,
        &response(180, "Ringing", &d, 1, "INVITE", Some("fork2"), None),
    );
    let ans = sdp(CALLED_IP, 6000, &[0]);
    h.s2c(
        900,
        &response(200, "OK", &d, 1, "INVITE", Some("fork2"), Some(&ans)),
    );
    let c = h.only_call();
    assert_eq!(c.state, CallState::Answered);
    assert_eq!(c.to_tag.as_deref(), Some("fork2"));
    assert_eq!(c.ring, Some(ms(10)));
}

#[test]
fn reused_call_id_with_new_from_tag_is_a_second_call() {
    let d1 = dialog("same", "tag1");
    let d2 = dialog("same", "tag2");
    let mut h = Harness::default();
    h.answered_call(&d1, 0, 4000, 6000);
    h.s2c(5000, &request("BYE", &d1, 9, Some("tt"), true, None, None));
    h.answered_call(&d2, 10_000, 4000, 6000);
    let calls = h.engine.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].state, CallState::Ended);
    assert_eq!(calls[1].state, CallState::Answered);
    assert_eq!(calls[1].start, ms(10_000));
    assert_eq!(calls[1].from_tag.as_deref(), Some("tag2"));
    // The second call's BYE ends the second call only.
    h.c2s(
        20_000,
        &request("BYE", &d2, 2, Some("tt"), false, None, None),
    );
    let calls = h.engine.calls();
    assert_eq!(calls[0].end, Some(ms(5000)));
    assert_eq!(calls[1].end, Some(ms(20_000)));
}

#[test]
fn a_replayed_call_with_the_same_call_id_and_tags_is_a_new_call() {
    // A capture replayed in a loop repeats every Call-ID and tag: after the BYE, the same
    // initial INVITE must start a second call, and its media must go to that call.
    let d = dialog("looped", "tag1");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    h.s2c(5000, &request("BYE", &d, 9, Some("tt"), true, None, None));
    h.answered_call(&d, 10_000, 4000, 6000);
    let calls = h.engine.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].state, CallState::Ended);
    assert_eq!(calls[1].state, CallState::Answered);
    assert_eq!(calls[1].start, ms(10_000));
}

// ---------------------------------------------------------------------------------------------
// 4. Mid-call SDP

fn reoffer(h: &mut Harness, method: &str, d: &Dialog, t: i64, port: u16, codecs: &[u8]) {
    let offer = sdp(CALLER_IP, port, codecs);
    let req = request(
        method,
        d,
        2,
        Some("tt"),
        false,
        None,
        Some(("application/sdp", &offer)),
    );
    h.c2s(t, &req);
    let ans = sdp(CALLED_IP, 6000, codecs);
    h.s2c(
        t + 10,
        &response(200, "OK", d, 2, method, Some("tt"), Some(&ans)),
    );
}

#[test]
fn reinvite_moves_media_and_changes_codec() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    h.stream(1100, "10.0.0.2:6000", "10.0.0.1:4000", 0xB, 1, 10, 0);
    reoffer(&mut h, "INVITE", &d, 2000, 4100, &[18]);
    h.c2s(2020, &request("ACK", &d, 2, Some("tt"), false, None, None));
    h.stream(2100, "10.0.0.2:6000", "10.0.0.1:4100", 0xB2, 1, 10, 18);
    assert_eq!(h.engine.counters().calls, 1);
    let c = h.only_call();
    assert_eq!(
        c.state,
        CallState::Answered,
        "a re-INVITE is not a new call"
    );
    assert_eq!(c.answer, Some(ms(1000)), "nor a new answer");
    assert_eq!(c.streams.len(), 2, "{:#?}", c.streams);
    let new = &c.streams[1];
    assert_eq!(new.key.dst, addr("10.0.0.1:4100"));
    assert_eq!(new.party, Some(Party::Called));
    assert_eq!(new.codec.as_deref(), Some("G729"));
    assert_eq!(c.streams[0].codec.as_deref(), Some("PCMU"));
    assert!(h.engine.unassociated_streams().is_empty());
    assert!(
        h.sink
            .events
            .iter()
            .filter(|e| matches!(e, Event::MediaChanged(_)))
            .count()
            >= 2
    );
}

#[test]
fn update_with_sdp_moves_media() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    reoffer(&mut h, "UPDATE", &d, 2000, 4200, &[8]);
    h.stream(2100, "10.0.0.2:6000", "10.0.0.1:4200", 0xC, 1, 5, 8);
    let c = h.only_call();
    assert_eq!(c.streams.len(), 1);
    assert_eq!(c.streams[0].codec.as_deref(), Some("PCMA"));
    assert_eq!(c.streams[0].party, Some(Party::Called));
    assert_eq!(c.state, CallState::Answered);
}

#[test]
fn reinvite_from_called_party_is_attributed_to_called() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    let offer = sdp(CALLED_IP, 6100, &[0]);
    let req = request(
        "INVITE",
        &d,
        5,
        Some("tt"),
        true,
        None,
        Some(("application/sdp", &offer)),
    );
    h.s2c(2000, &req);
    // The caller now sends to the called party's new port.
    h.stream(2100, "10.0.0.1:4000", "10.0.0.2:6100", 0xA, 1, 5, 0);
    let c = h.only_call();
    assert_eq!(c.streams.len(), 1);
    assert_eq!(c.streams[0].party, Some(Party::Caller));
    assert_eq!(c.state, CallState::Answered);
}

// ---------------------------------------------------------------------------------------------
// 5. Non-call SIP

#[test]
fn register_options_subscribe_are_counted_not_calls() {
    let mut h = Harness::default();
    h.c2s(0, &simple_request("REGISTER", "r1"));
    h.c2s(1, &simple_request("REGISTER", "r2"));
    h.c2s(2, &simple_request("OPTIONS", "o1"));
    h.c2s(3, &simple_request("SUBSCRIBE", "s1"));
    h.s2c(
        4,
        &response(200, "OK", &dialog("o1", "r1"), 1, "OPTIONS", None, None),
    );
    assert!(h.engine.calls().is_empty());
    let c = h.engine.counters();
    assert_eq!(c.other_sip.get("REGISTER"), Some(&2));
    assert_eq!(c.other_sip.get("OPTIONS"), Some(&1));
    assert_eq!(c.other_sip.get("SUBSCRIBE"), Some(&1));
    assert_eq!(c.sip_messages, 5);
    assert_eq!(c.calls, 0);
    assert!(h.sink.events.is_empty());
}

// ---------------------------------------------------------------------------------------------
// 6. RTP association

#[test]
fn both_directions_with_parties() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    h.stream(1100, "10.0.0.1:4000", "10.0.0.2:6000", 0xA, 100, 50, 0);
    h.stream(1105, "10.0.0.2:6000", "10.0.0.1:4000", 0xB, 200, 50, 0);
    let c = h.only_call();
    assert_eq!(c.streams.len(), 2);
    let caller: Vec<_> = c.party_streams(Party::Caller).collect();
    let called: Vec<_> = c.party_streams(Party::Called).collect();
    assert_eq!(caller.len(), 1);
    assert_eq!(called.len(), 1);
    assert_eq!(caller[0].key.ssrc, 0xA);
    assert_eq!(called[0].key.ssrc, 0xB);
    assert_eq!(caller[0].stats.packets, 50);
    assert_eq!(caller[0].codec.as_deref(), Some("PCMU"));
    assert_eq!(h.engine.counters().rtp_packets, 100);
}

#[test]
fn nat_media_from_unannounced_address() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    // The caller's SDP says 10.0.0.5:4000, but its media leaves the NAT as 203.0.113.7:31000.
    let offer = sdp("10.0.0.5", 4000, &[0]);
    let answer = sdp("198.51.100.2", 6000, &[0]);
    let inv = request(
        "INVITE",
        &d,
        1,
        None,
        false,
        None,
        Some(("application/sdp", &offer)),
    );
    h.c2s(0, &inv);
    h.s2c(
        500,
        &response(200, "OK", &d, 1, "INVITE", Some("tt"), Some(&answer)),
    );
    h.stream(600, "203.0.113.7:31000", "198.51.100.2:6000", 0xA, 1, 20, 0);
    h.stream(610, "198.51.100.2:6000", "203.0.113.7:31000", 0xB, 1, 20, 0);
    // RTCP from behind the NAT, to port+1.
    h.udp(700, "203.0.113.7:31001", "198.51.100.2:6001", &rtcp_sr(0xA));
    let c = h.only_call();
    assert_eq!(c.streams.len(), 2, "{:#?}", c.streams);
    assert_eq!(c.streams[0].party, Some(Party::Caller));
    assert_eq!(c.streams[1].party, Some(Party::Called));
    assert_eq!(c.streams[1].key.dst, addr("203.0.113.7:31000"));
    assert_eq!(c.rtcp_packets, 1);
    assert!(h.engine.unassociated_streams().is_empty());
}

#[test]
fn rtcp_port_plus_one_and_mux() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    // Caller: RTCP on port+1. Called: rtcp-mux.
    let offer = sdp(CALLER_IP, 4000, &[0]);
    let answer = sdp_with(CALLED_IP, 6000, &[0], "a=rtcp-mux\r\n");
    let inv = request(
        "INVITE",
        &d,
        1,
        None,
        false,
        None,
        Some(("application/sdp", &offer)),
    );
    h.c2s(0, &inv);
    h.s2c(
        500,
        &response(200, "OK", &d, 1, "INVITE", Some("tt"), Some(&answer)),
    );
    h.udp(600, "10.0.0.2:6001", "10.0.0.1:4001", &rtcp_sr(0xB));
    h.udp(610, "10.0.0.1:4000", "10.0.0.2:6000", &rtcp_sr(0xA));
    // RTCP of an unknown flow is counted globally but belongs to no call.
    h.udp(620, "10.9.9.9:7001", "10.9.9.8:7001", &rtcp_sr(0xF));
    let c = h.only_call();
    assert_eq!(c.rtcp_packets, 2);
    assert!(c.streams.is_empty(), "RTCP is not an RTP stream");
    assert_eq!(h.engine.counters().rtcp_packets, 3);
}

#[test]
fn sipp_style_port_reuse_goes_to_the_second_call() {
    let d1 = dialog("call-1", "t1");
    let d2 = dialog("call-2", "t2");
    let mut h = Harness::default();
    h.answered_call(&d1, 0, 6000, 6000);
    // SIPp replays the same RTP (same SSRC) for every call.
    h.stream(1100, "10.0.0.1:6000", "10.0.0.2:6000", 0x1234, 1, 20, 0);
    h.stream(1100, "10.0.0.2:6000", "10.0.0.1:6000", 0x5678, 1, 20, 0);
    h.c2s(2000, &request("BYE", &d1, 2, Some("tt"), false, None, None));
    h.answered_call(&d2, 3000, 6000, 6000);
    h.stream(4100, "10.0.0.1:6000", "10.0.0.2:6000", 0x1234, 1, 30, 0);
    h.stream(4100, "10.0.0.2:6000", "10.0.0.1:6000", 0x5678, 1, 30, 0);
    let calls = h.engine.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].streams.len(), 2);
    assert_eq!(calls[1].streams.len(), 2);
    for s in &calls[0].streams {
        assert_eq!(s.stats.packets, 20);
    }
    for s in &calls[1].streams {
        assert_eq!(s.stats.packets, 30);
    }
    assert_eq!(calls[1].party_streams(Party::Caller).count(), 1);
    let call2 = calls[1].id;
    let to_call2 = h.sink.rtp.iter().filter(|r| r.0 == call2).count();
    assert_eq!(to_call2, 60);
}

#[test]
fn nat_port_reuse_reply_goes_to_the_second_call() {
    // Like SIPp behind a NAT: both calls' caller media leaves from the same public address,
    // which no SDP ever announces, so it is only known from rule 4 (learned).
    let mut h = Harness::default();
    for (i, (cid, tag)) in [("n1", "t1"), ("n2", "t2")].into_iter().enumerate() {
        let d = dialog(cid, tag);
        let t0 = i as i64 * 10_000;
        let offer = sdp("10.0.0.5", 4000, &[0]);
        let answer = sdp("198.51.100.2", 6000, &[0]);
        let inv = request(
            "INVITE",
            &d,
            1,
            None,
            false,
            None,
            Some(("application/sdp", &offer)),
        );
        h.c2s(t0, &inv);
        h.s2c(
            t0 + 500,
            &response(200, "OK", &d, 1, "INVITE", Some("tt"), Some(&answer)),
        );
        h.stream(
            t0 + 600,
            "203.0.113.7:31000",
            "198.51.100.2:6000",
            0xA,
            1,
            10,
            0,
        );
        h.stream(
            t0 + 610,
            "198.51.100.2:6000",
            "203.0.113.7:31000",
            0xB,
            1,
            10,
            0,
        );
        h.c2s(
            t0 + 5000,
            &request("BYE", &d, 2, Some("tt"), false, None, None),
        );
    }
    let calls = h.engine.calls();
    assert_eq!(calls.len(), 2);
    for c in calls {
        assert_eq!(
            c.streams.len(),
            2,
            "call {}: {:#?}",
            c.sip_call_id,
            c.streams
        );
        assert_eq!(c.party_streams(Party::Called).count(), 1);
        for s in &c.streams {
            assert_eq!(s.stats.packets, 10);
        }
    }
}

/// Sends one 20 ms PCMU packet of every (src, dst, SSRC) flow in turn, `n` rounds, as
/// concurrent calls' media interleaves on the wire.
fn interleaved(h: &mut Harness, t0: i64, flows: &[(&str, &str, u32)], seq0: u16, n: u16) {
    for i in 0..n {
        for &(src, dst, ssrc) in flows {
            let pkt = rtp(ssrc, seq0 + i, u32::from(seq0 + i) * 160, 0, &[0xff; 160]);
            h.udp(t0 + i64::from(i) * 20, src, dst, &pkt);
        }
    }
}

/// Each call named must hold exactly the two streams `want` gives it (caller's SSRC, called's
/// SSRC), each with every one of its packets.
fn assert_own_streams(h: &Harness, want: &[(&str, u32, u32)], packets: u64) {
    let calls = h.engine.calls();
    for &(cid, caller_ssrc, called_ssrc) in want {
        let c = calls.iter().find(|c| c.sip_call_id == cid).expect("call");
        let got: Vec<_> = c
            .streams
            .iter()
            .map(|s| (s.key.ssrc, s.party, s.stats.packets))
            .collect();
        let mut expect = vec![
            (caller_ssrc, Some(Party::Caller), packets),
            (called_ssrc, Some(Party::Called), packets),
        ];
        let mut sorted = got.clone();
        sorted.sort_by_key(|g| g.0);
        expect.sort_by_key(|g| g.0);
        assert_eq!(sorted, expect, "call {cid}: {got:x?}");
    }
    assert!(h.engine.unassociated_streams().is_empty());
}

#[test]
fn callers_sharing_a_callee_address_keep_their_own_streams() {
    // A media server answers every call on 10.0.0.2:6000; each caller has its own port. The
    // caller's packets must go to the call whose caller announced their source, not to the
    // newest call that announced 6000.
    let mut h = Harness::default();
    for (i, cid) in ["s1", "s2", "s3"].into_iter().enumerate() {
        h.answered_call(
            &dialog(cid, cid),
            i as i64 * 100,
            4000 + 100 * i as u16,
            6000,
        );
    }
    let flows = [
        ("10.0.0.1:4000", "10.0.0.2:6000", 0xA1),
        ("10.0.0.2:6000", "10.0.0.1:4000", 0xB1),
        ("10.0.0.1:4100", "10.0.0.2:6000", 0xA2),
        ("10.0.0.2:6000", "10.0.0.1:4100", 0xB2),
        ("10.0.0.1:4200", "10.0.0.2:6000", 0xA3),
        ("10.0.0.2:6000", "10.0.0.1:4200", 0xB3),
    ];
    interleaved(&mut h, 1500, &flows, 1, 30);
    // A fourth call announcing 6000 again while the others still talk changes nothing.
    h.answered_call(&dialog("s4", "s4"), 2200, 4300, 6000);
    interleaved(&mut h, 3300, &flows, 31, 20);
    let want = [("s1", 0xA1, 0xB1), ("s2", 0xA2, 0xB2), ("s3", 0xA3, 0xB3)];
    assert_own_streams(&h, &want, 50);
    let s4 = h.engine.calls().into_iter().find(|c| c.sip_call_id == "s4");
    assert!(s4.expect("call s4").streams.is_empty());
}

#[test]
fn a_call_on_the_rtcp_ports_of_another_keeps_its_own_rtp() {
    // Call 1 takes RTP ports 4000/6000 (RTCP 4001/6001); call 2 is given the next ports, 4001
    // and 6001, as its RTP (PBXes and test tools hand out consecutive ports). Call 2's RTP is
    // call 2's: an RTCP address of call 1 is no claim on RTP.
    let mut h = Harness::default();
    h.answered_call(&dialog("r1", "r1"), 0, 4000, 6000);
    h.answered_call(&dialog("r2", "r2"), 100, 4001, 6001);
    let flows = [
        ("10.0.0.1:4000", "10.0.0.2:6000", 0xA1),
        ("10.0.0.2:6000", "10.0.0.1:4000", 0xB1),
        ("10.0.0.1:4001", "10.0.0.2:6001", 0xA2),
        ("10.0.0.2:6001", "10.0.0.1:4001", 0xB2),
    ];
    interleaved(&mut h, 1000, &flows, 1, 20);
    assert_own_streams(&h, &[("r1", 0xA1, 0xB1), ("r2", 0xA2, 0xB2)], 20);
}

#[test]
fn calls_on_one_port_pair_are_told_apart_by_ssrc() {
    // Every call announces the same two addresses; only the SSRC tells them apart. Call 2 is
    // answered before call 1 sends anything: call 1's SSRC is still call 1's, the first
    // media of the oldest call without any.
    let mut h = Harness::default();
    let (a, b) = ("10.0.0.1:4000", "10.0.0.2:6000");
    h.answered_call(&dialog("p1", "p1"), 0, 4000, 6000);
    h.answered_call(&dialog("p2", "p2"), 100, 4000, 6000);
    interleaved(&mut h, 1200, &[(a, b, 0xA1), (b, a, 0xB1)], 1, 10);
    interleaved(
        &mut h,
        1400,
        &[(a, b, 0xA1), (b, a, 0xB1), (a, b, 0xA2), (b, a, 0xB2)],
        11,
        10,
    );
    // A third call on the same ports: the first two keep their SSRCs.
    h.answered_call(&dialog("p3", "p3"), 1600, 4000, 6000);
    let all = [
        (a, b, 0xA1),
        (b, a, 0xB1),
        (a, b, 0xA2),
        (b, a, 0xB2),
        (a, b, 0xA3),
        (b, a, 0xB3),
    ];
    interleaved(&mut h, 2700, &all, 21, 30);
    // Call 2's streams began ten packets after call 1's and call 3's twenty.
    let calls = h.engine.calls();
    let count = |cid: &str, ssrc: u32| {
        calls
            .iter()
            .find(|c| c.sip_call_id == cid)
            .and_then(|c| c.streams.iter().find(|s| s.key.ssrc == ssrc))
            .map(|s| s.stats.packets)
    };
    for (cid, ssrcs, n) in [
        ("p1", [0xA1, 0xB1], 50),
        ("p2", [0xA2, 0xB2], 40),
        ("p3", [0xA3, 0xB3], 30),
    ] {
        let c = calls.iter().find(|c| c.sip_call_id == cid).expect("call");
        assert_eq!(c.streams.len(), 2, "call {cid}: {:#?}", c.streams);
        for ssrc in ssrcs {
            assert_eq!(count(cid, ssrc), Some(n), "call {cid} SSRC {ssrc:x}");
        }
    }
    assert!(h.engine.unassociated_streams().is_empty());
}

#[test]
fn ssrc_change_is_a_new_stream_in_the_same_call_and_party() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    h.stream(1100, "10.0.0.1:4000", "10.0.0.2:6000", 0xA, 1, 10, 0);
    h.stream(1400, "10.0.0.1:4000", "10.0.0.2:6000", 0xAA, 500, 10, 0);
    let c = h.only_call();
    assert_eq!(c.streams.len(), 2);
    assert!(c.streams.iter().all(|s| s.party == Some(Party::Caller)));
    assert_eq!(c.streams[1].key.ssrc, 0xAA);
    assert_eq!(c.streams[1].stats.packets, 10);
}

#[test]
fn unannounced_rtp_needs_three_consecutive_packets() {
    let mut h = Harness::default();
    let src = "192.0.2.1:20000";
    let dst = "192.0.2.2:30000";
    h.udp(0, src, dst, &rtp(7, 10, 0, 0, &[1; 160]));
    h.udp(20, src, dst, &rtp(7, 11, 160, 0, &[1; 160]));
    assert!(h.engine.unassociated_streams().is_empty(), "not after 2");
    h.udp(40, src, dst, &rtp(7, 12, 320, 0, &[1; 160]));
    let u = h.engine.unassociated_streams();
    assert_eq!(u.len(), 1, "after 3 consecutive packets");
    assert_eq!(u[0].party, None);
    assert_eq!(u[0].stats.packets, 3, "the proving packets are counted too");
    h.udp(60, src, dst, &rtp(7, 13, 480, 0, &[1; 160]));
    assert_eq!(h.engine.unassociated_streams()[0].stats.packets, 4);
    assert_eq!(h.engine.counters().rtp_packets, 4);
    // Non-consecutive sequence numbers never qualify.
    for (i, seq) in [100u16, 300, 7, 9000, 42, 43, 45, 47]
        .into_iter()
        .enumerate()
    {
        h.udp(
            100 + i as i64,
            "192.0.2.3:20000",
            dst,
            &rtp(8, seq, 0, 0, &[1; 160]),
        );
    }
    assert_eq!(h.engine.unassociated_streams().len(), 1);
    assert!(h.sink.rtp.is_empty(), "the sink only hears calls' RTP");
    assert!(h.engine.calls().is_empty());
}

#[test]
fn unannounced_rtp_with_every_packet_twice_is_a_stream_with_duplicates() {
    // A mirror that captures each packet at two points (VoLTE uplinks): the copy must not
    // restart the three-packet proof.
    let mut h = Harness::default();
    let (src, dst) = ("192.0.2.1:20000", "192.0.2.2:30000");
    for i in 0..10u16 {
        let pkt = rtp(7, 100 + i, u32::from(i) * 160, 0, &[1; 160]);
        h.udp(i64::from(i) * 20, src, dst, &pkt);
        h.udp(i64::from(i) * 20, src, dst, &pkt);
    }
    let u = h.engine.unassociated_streams();
    assert_eq!(u.len(), 1, "the doubled stream is listed");
    assert_eq!(
        u[0].stats.packets, 20,
        "duplicates are received packets (RFC 3550)"
    );
    assert_eq!(u[0].stats.duplicates, 10);
    assert_eq!(u[0].stats.lost(), -10);
    assert_eq!(h.engine.counters().rtp_packets, 20);
}

#[test]
fn media_seen_before_its_sdp_joins_the_call_once_announced() {
    // The capture starts with media whose INVITE comes later (a re-INVITE seen first, a
    // capture started mid-setup): once an SDP announces the address, the flow belongs to it.
    let d = dialog("late", "ft");
    let mut h = Harness::default();
    h.stream(0, "10.0.0.2:6000", "10.0.0.1:4000", 0xB, 1, 10, 0);
    assert_eq!(h.engine.unassociated_streams().len(), 1);
    h.answered_call(&d, 500, 4000, 6000);
    h.stream(2000, "10.0.0.2:6000", "10.0.0.1:4000", 0xB, 11, 10, 0);
    let c = h.only_call();
    assert_eq!(c.streams.len(), 1, "{:#?}", c.streams);
    assert_eq!(c.streams[0].party, Some(Party::Called));
    assert_eq!(c.streams[0].stats.packets, 10);
    assert_eq!(h.sink.rtp.len(), 10);
}

#[test]
fn random_udp_garbage_never_becomes_a_stream() {
    let mut h = Harness::default();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..20_000 {
        let mut buf = Vec::with_capacity(200);
        let len = 1 + (x % 200) as usize;
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push(x as u8);
        }
        let src = format!("192.0.2.{}:{}", i % 7, 1024 + (i % 3));
        h.udp(i, &src, "192.0.2.200:40000", &buf);
    }
    assert!(h.engine.unassociated_streams().is_empty());
    assert!(h.engine.calls().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 7. DTMF and comfort noise

/// Sends one RFC 4733 event as a real phone does: start (marker), updates, three ends, all
/// with the event's RTP timestamp. Returns the next sequence number.
fn send_digit(h: &mut Harness, t: i64, seq: u16, rtp_ts: u32, code: u8) -> u16 {
    let mut seq = seq;
    for i in 0..6u16 {
        let end = i >= 3;
        let dur = (i.min(3) + 1) * 160;
        let p = rtp_m(0xA, seq, rtp_ts, 101, i == 0, &event(code, end, dur));
        h.udp(t + i64::from(i) * 20, "10.0.0.1:4000", "10.0.0.2:6000", &p);
        seq = seq.wrapping_add(1);
    }
    seq
}

#[test]
fn rfc4733_events_give_one_digit_each() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    let mut seq = 1;
    for (i, code) in [1u8, 5, 9, 11].into_iter().enumerate() {
        seq = send_digit(
            &mut h,
            2000 + i as i64 * 500,
            seq,
            8000 * (i as u32 + 1),
            code,
        );
    }
    let c = h.only_call();
    assert_eq!(c.dtmf, "159#");
    assert_eq!(c.streams.len(), 1);
    assert_eq!(c.streams[0].events, 24);
}

#[test]
fn repeated_digit_with_new_timestamp_counts_twice() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    let seq = send_digit(&mut h, 2000, 1, 1000, 5);
    send_digit(&mut h, 3000, seq, 9000, 5);
    assert_eq!(h.only_call().dtmf, "55");
}

#[test]
fn events_in_both_directions_at_once_count_once_per_event() {
    // The caller presses 1 while the called side sends 2 (an IVR, or a PBX that echoes):
    // their packets interleave, and each event must still give exactly one digit.
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    for i in 0..6u16 {
        let end = i >= 3;
        let dur = (i.min(3) + 1) * 160;
        let a = rtp_m(0xA, 10 + i, 1000, 101, i == 0, &event(1, end, dur));
        let b = rtp_m(0xB, 70 + i, 5000, 101, i == 0, &event(2, end, dur));
        h.udp(
            2000 + i64::from(i) * 20,
            "10.0.0.1:4000",
            "10.0.0.2:6000",
            &a,
        );
        h.udp(
            2005 + i64::from(i) * 20,
            "10.0.0.2:6000",
            "10.0.0.1:4000",
            &b,
        );
    }
    assert_eq!(h.only_call().dtmf, "12");
}

#[test]
fn sip_info_dtmf_relay() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    for (i, (ct, body)) in [
        ("application/dtmf-relay", "Signal=7\r\nDuration=160\r\n"),
        ("application/dtmf-relay", "Signal=*\r\nDuration=160\r\n"),
        ("application/dtmf", "3"),
    ]
    .into_iter()
    .enumerate()
    {
        let info = request(
            "INFO",
            &d,
            10 + i as u32,
            Some("tt"),
            false,
            None,
            Some((ct, body)),
        );
        h.c2s(2000 + i as i64 * 100, &info);
    }
    assert_eq!(h.only_call().dtmf, "7*3");
    assert!(h.engine.counters().other_sip.is_empty());
}

#[test]
fn events_and_comfort_noise_do_not_disturb_jitter() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    // 200 packets of 20 ms; packets 50..56 are a DTMF event (its timestamp frozen at the
    // event start, as RFC 4733 requires) and 120..125 comfort noise. Arrival is perfect.
    for i in 0..200u32 {
        let seq = i as u16 + 1;
        let t = 1100 + i64::from(i) * 20;
        let ts = i * 160;
        let pkt = match i {
            50..=55 => {
                let n = (i - 50) as u16;
                rtp_m(
                    0xA,
                    seq,
                    50 * 160,
                    101,
                    n == 0,
                    &event(5, n >= 3, (n + 1) * 160),
                )
            }
            120..=124 => rtp(0xA, seq, ts, 13, &[0x40]),
            _ => rtp(0xA, seq, ts, 0, &[0xff; 160]),
        };
        h.udp(t, "10.0.0.1:4000", "10.0.0.2:6000", &pkt);
    }
    let c = h.only_call();
    let s = &c.streams[0];
    assert_eq!(c.dtmf, "5");
    assert_eq!(s.events, 6);
    assert_eq!(s.comfort_noise, 5);
    assert_eq!(s.codec.as_deref(), Some("PCMU"));
    assert_eq!(s.payload_type, 0);
    assert!(
        s.stats.max_jitter_ms() < 0.01,
        "max jitter {}",
        s.stats.max_jitter_ms()
    );
    assert_eq!(s.stats.lost(), 0);
}

// ---------------------------------------------------------------------------------------------
// 8. Expiry and memory

#[test]
fn idle_call_times_out() {
    let cfg = Config {
        idle_timeout_ns: 60_000_000_000,
        ..Config::default()
    };
    let d = dialog("c1", "ft");
    let mut h = Harness::new(cfg);
    h.answered_call(&d, 0, 4000, 6000);
    h.stream(1100, "10.0.0.1:4000", "10.0.0.2:6000", 0xA, 1, 10, 0);
    let last = ms(1100 + 9 * 20);
    h.engine.expire(ms(30_000), &mut h.sink);
    assert_eq!(h.only_call().end, None, "not idle long enough");
    h.engine.expire(ms(1280 + 60_001), &mut h.sink);
    let c = h.only_call();
    assert!(c.timed_out);
    assert_eq!(c.end, Some(last), "ended at its last packet");
    assert_eq!(c.state, CallState::Answered);
    assert!(h
        .sink
        .events
        .iter()
        .any(|e| matches!(e, Event::CallState(_, CallState::Answered))));
}

#[test]
fn ended_calls_are_removed_and_forgotten() {
    let cfg = Config {
        retain_ended: false,
        linger_ns: 1_000_000_000,
        ..Config::default()
    };
    let d = dialog("c1", "ft");
    let mut h = Harness::new(cfg);
    h.answered_call(&d, 0, 4000, 6000);
    h.stream(1100, "10.0.0.1:4000", "10.0.0.2:6000", 0xA, 1, 10, 0);
    h.c2s(2000, &request("BYE", &d, 2, Some("tt"), false, None, None));
    h.engine.expire(ms(2500), &mut h.sink);
    assert_eq!(h.engine.calls().len(), 1, "lingers");
    h.engine.expire(ms(3001), &mut h.sink);
    assert!(h.engine.calls().is_empty());
    let id = h.sink.events.iter().find_map(|e| match e {
        Event::CallNew(id) => Some(*id),
        _ => None,
    });
    assert!(h.sink.events.contains(&Event::CallRemoved(id.unwrap())));
    // Late media of the removed call no longer finds it, and a late BYE makes no call.
    let heard = h.sink.rtp.len();
    h.stream(4000, "10.0.0.1:4000", "10.0.0.2:6000", 0xA, 11, 2, 0);
    h.c2s(4100, &request("BYE", &d, 2, Some("tt"), false, None, None));
    assert_eq!(h.sink.rtp.len(), heard);
    assert!(h.engine.calls().is_empty());
    assert_eq!(h.engine.counters().orphan_sip, 1);
    let sizes = h.engine.table_sizes();
    assert_eq!(sizes.calls, 0);
    assert_eq!(sizes.bindings, 0);
    assert_eq!(sizes.by_call_id, 0);
}

#[test]
fn removing_an_old_call_keeps_the_new_call_of_the_same_ports() {
    // SIPp style again, in a live sensor that drops ended calls: removing the first call
    // must not take the second call's streams (same addresses and SSRCs) with it.
    let cfg = Config {
        retain_ended: false,
        linger_ns: 1_000_000_000,
        ..Config::default()
    };
    let d1 = dialog("call-1", "t1");
    let d2 = dialog("call-2", "t2");
    let mut h = Harness::new(cfg);
    h.answered_call(&d1, 0, 6000, 6000);
    h.stream(1100, "10.0.0.1:6000", "10.0.0.2:6000", 0x1234, 1, 10, 0);
    h.c2s(1500, &request("BYE", &d1, 2, Some("tt"), false, None, None));
    h.answered_call(&d2, 1600, 6000, 6000);
    h.stream(2700, "10.0.0.1:6000", "10.0.0.2:6000", 0x1234, 1, 10, 0);
    h.engine.expire(ms(3000), &mut h.sink);
    assert_eq!(h.engine.calls().len(), 1);
    h.stream(3000, "10.0.0.1:6000", "10.0.0.2:6000", 0x1234, 11, 10, 0);
    let c = h.only_call();
    assert_eq!(c.sip_call_id, "call-2");
    assert_eq!(c.streams.len(), 1, "{:#?}", c.streams);
    assert_eq!(c.streams[0].stats.packets, 20);
    assert_eq!(c.streams[0].stats.lost(), 0);
}

#[test]
fn calls_sharing_addresses_are_forgotten_when_removed() {
    let cfg = Config {
        retain_ended: false,
        linger_ns: 1_000_000_000,
        ..Config::default()
    };
    let mut h = Harness::new(cfg);
    for (i, cid) in ["r1", "r2", "r3"].into_iter().enumerate() {
        let d = dialog(cid, cid);
        h.answered_call(&d, i as i64 * 100, 4000, 6000);
        let src = "10.0.0.1:4000";
        h.stream(1200, src, "10.0.0.2:6000", 0xA0 + i as u32, 1, 5, 0);
    }
    assert!(h.engine.table_sizes().sharers > 0);
    for (i, cid) in ["r1", "r2", "r3"].into_iter().enumerate() {
        let d = dialog(cid, cid);
        let bye = request("BYE", &d, 2, Some("tt"), false, None, None);
        h.c2s(2000 + i as i64, &bye);
    }
    h.engine.expire(ms(4000), &mut h.sink);
    let sizes = h.engine.table_sizes();
    assert_eq!((sizes.calls, sizes.bindings, sizes.sharers), (0, 0, 0));
    assert_eq!(sizes.flows, 0);
}

#[test]
fn ten_thousand_unfinished_calls_expire_to_empty_tables() {
    let cfg = Config {
        retain_ended: false,
        idle_timeout_ns: 60_000_000_000,
        linger_ns: 1_000_000_000,
        ..Config::default()
    };
    let mut h = Harness::new(cfg);
    for i in 0..10_000u32 {
        let cid = format!("bulk-{i}");
        let d = dialog(&cid, "ft");
        let t0 = i64::from(i);
        let port = 10_000 + (i % 20_000) as u16 * 2;
        let offer = sdp(CALLER_IP, port, &[0]);
        let answer = sdp(CALLED_IP, port, &[0]);
        let inv = request(
            "INVITE",
            &d,
            1,
            None,
            false,
            None,
            Some(("application/sdp", &offer)),
        );
        h.c2s(t0, &inv);
        h.s2c(
            t0,
            &response(200, "OK", &d, 1, "INVITE", Some("tt"), Some(&answer)),
        );
        let src = format!("198.51.100.{}:{}", i % 250, 20_000 + i % 1000);
        h.udp(
            t0,
            &src,
            &format!("{CALLED_IP}:{port}"),
            &rtp(i, 1, 0, 0, &[1; 20]),
        );
    }
    assert_eq!(h.engine.active_calls(), 10_000);
    let start = std::time::Instant::now();
    h.engine.expire(ms(10_000 + 61_000), &mut h.sink);
    assert!(start.elapsed().as_secs() < 5, "expiry is not quadratic");
    let removed = h
        .sink
        .events
        .iter()
        .filter(|e| matches!(e, Event::CallRemoved(_)))
        .count();
    assert_eq!(removed, 10_000);
    let sizes = h.engine.table_sizes();
    assert_eq!(sizes.calls, 0);
    assert_eq!(sizes.by_call_id, 0);
    assert_eq!(sizes.bindings, 0, "{sizes:?}");
    assert_eq!(sizes.flows, 0, "{sizes:?}");
}

/// A call that re-INVITEs without end, each time to a new port with a new payload mapping (a
/// broken endpoint, or an attack), or whose sender changes SSRC without end, stays bounded:
/// endpoints, formats, bindings and streams stop growing, and the newest media still reaches
/// the call.
#[test]
fn endless_reinvites_keep_a_call_bounded() {
    let mut h = Harness::default();
    let d = dialog("reinvites", "ft");
    h.answered_call(&d, 0, 4000, 6000);
    let reinvites: u16 = 2_000;
    for n in 1..=reinvites {
        let t = 2_000 + i64::from(n) * 10;
        let port = 10_000 + 2 * n;
        let pt = 96 + (n % 32) as u8;
        let offer = sdp_with(
            CALLER_IP,
            port,
            &[0, pt],
            &format!("a=rtpmap:{pt} codec{n}/8000\r\n"),
        );
        let inv = request(
            "INVITE",
            &d,
            u32::from(n) + 1,
            Some("tt"),
            false,
            None,
            Some(("application/sdp", &offer)),
        );
        h.c2s(t, &inv);
        if n % 100 == 0 {
            let from = format!("{CALLER_IP}:{port}");
            h.udp(
                t + 1,
                &from,
                &format!("{CALLED_IP}:6000"),
                &rtp(1, n, 0, 0, &[1; 160]),
            );
        }
    }
    let c = h.only_call();
    assert!(c.media.len() <= 16, "{} media endpoints", c.media.len());
    assert!(c.formats.len() <= 64, "{} formats", c.formats.len());
    let sizes = h.engine.table_sizes();
    assert!(sizes.bindings <= 64, "{sizes:?}");
    // The called party's reply to the endpoint of the last re-INVITE is this call's.
    let last = format!("{CALLER_IP}:{}", 10_000 + 2 * reinvites);
    h.udp(
        30_000,
        &format!("{CALLED_IP}:6000"),
        &last,
        &rtp(2, 1, 0, 0, &[1; 160]),
    );
    let c = h.only_call();
    assert!(
        c.streams.iter().any(|s| s.key.dst == addr(&last)),
        "the newest endpoint lost its binding: {:?}",
        c.streams.iter().map(|s| s.key).collect::<Vec<_>>()
    );
    // A sender that changes SSRC on every packet.
    for n in 0..1_000u32 {
        let pkt = rtp(1_000 + n, 1, 0, 0, &[1; 160]);
        h.udp(
            31_000 + i64::from(n),
            &last,
            &format!("{CALLED_IP}:6000"),
            &pkt,
        );
    }
    let c = h.only_call();
    assert!(c.streams.len() <= 64, "{} streams", c.streams.len());
    let sizes = h.engine.table_sizes();
    assert!(sizes.flows <= 64, "{sizes:?}");
}

// ---------------------------------------------------------------------------------------------
// 9. SIP over TCP and WebSocket

const C_TCP: &str = "10.0.0.1:40000";
const S_TCP: &str = "10.0.0.2:5060";

#[test]
fn tcp_split_message_in_three_segments() {
    let mut h = Harness::default();
    let inv = invite("tcp1", "ft", 1, CALLER_IP, 4000, &[0]);
    h.tcp(0, C_TCP, S_TCP, 999, true, &[]);
    let (a, rest) = inv.split_at(30);
    let (b, c) = rest.split_at(rest.len() / 2);
    h.tcp(1, C_TCP, S_TCP, 1000, false, a);
    assert!(h.engine.calls().is_empty());
    h.tcp(2, C_TCP, S_TCP, 1000 + a.len() as u32, false, b);
    assert!(
        h.engine.calls().is_empty(),
        "not before the body is complete"
    );
    h.tcp(3, C_TCP, S_TCP, 1000 + (a.len() + b.len()) as u32, false, c);
    assert_eq!(h.only_call().sip_call_id, "tcp1");
    assert_eq!(h.engine.counters().sip_messages, 1);
}

#[test]
fn tcp_two_messages_in_one_segment_and_retransmission() {
    let d = dialog("tcp2", "ft");
    let mut h = Harness::default();
    let inv = invite("tcp2", "ft", 1, CALLER_IP, 4000, &[0]);
    h.tcp(0, C_TCP, S_TCP, 0, true, &[]);
    h.tcp(1, C_TCP, S_TCP, 1, false, &inv);
    // Retransmitted INVITE segment: must not count twice.
    h.tcp(2, C_TCP, S_TCP, 1, false, &inv);
    let mut two = response(100, "Trying", &d, 1, "INVITE", None, None);
    two.extend_from_slice(&response(180, "Ringing", &d, 1, "INVITE", Some("t"), None));
    h.tcp(3, S_TCP, C_TCP, 0, true, &[]);
    h.tcp(4, S_TCP, C_TCP, 1, false, &two);
    // A retransmission that partly overlaps new data: only the new part is read.
    let ack = request("ACK", &d, 1, Some("t"), false, None, None);
    let mut overlap = inv[inv.len() - 10..].to_vec();
    overlap.extend_from_slice(&ack);
    h.tcp(5, C_TCP, S_TCP, 1 + inv.len() as u32 - 10, false, &overlap);
    h.tcp(6, C_TCP, S_TCP, 1 + inv.len() as u32 - 10, false, &overlap);
    assert_eq!(h.engine.counters().sip_messages, 4);
    let c = h.only_call();
    assert_eq!(c.state, CallState::Ringing);
    assert_eq!(c.sip_messages, 4);
}

#[test]
fn tcp_out_of_order_segments() {
    let d = dialog("tcp3", "ft");
    let mut h = Harness::default();
    let inv = invite("tcp3", "ft", 1, CALLER_IP, 4000, &[0]);
    let ack = request("ACK", &d, 1, Some("t"), false, None, None);
    h.tcp(0, C_TCP, S_TCP, 0, true, &[]);
    h.tcp(1, C_TCP, S_TCP, 1, false, &inv[..100]);
    // The rest of the INVITE and the ACK arrive swapped.
    let ack_seq = 1 + inv.len() as u32;
    h.tcp(2, C_TCP, S_TCP, ack_seq, false, &ack);
    assert!(h.engine.calls().is_empty());
    h.tcp(3, C_TCP, S_TCP, 101, false, &inv[100..]);
    assert_eq!(h.engine.counters().sip_messages, 2);
    assert_eq!(h.only_call().sip_messages, 2);
}

fn ws_frame(payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0x81];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65_536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[test]
fn sip_over_websocket() {
    let mut h = Harness::default();
    let c = "10.0.0.1:50000";
    let s = "10.0.0.2:8080";
    let up = b"GET /ws HTTP/1.1\r\nHost: 10.0.0.2\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n";
    h.tcp(0, c, s, 0, true, &[]);
    h.tcp(0, s, c, 0, true, &[]);
    h.tcp(1, c, s, 1, false, up);
    h.tcp(2, s, c, 1, false, ok);
    let frame = ws_frame(
        &invite("ws1", "ft", 1, CALLER_IP, 4000, &[0]),
        [0x12, 0x34, 0x56, 0x78],
    );
    h.tcp(3, c, s, 1 + up.len() as u32, false, &frame);
    let call = h.only_call();
    assert_eq!(call.sip_call_id, "ws1");
    assert_eq!(call.caller, "1001");
}

// ---------------------------------------------------------------------------------------------
// 11. Sink

#[test]
fn sink_hears_events_and_only_associated_rtp() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    h.stream(1100, "10.0.0.1:4000", "10.0.0.2:6000", 0xA, 1, 3, 0);
    h.stream(1100, "10.0.0.2:6000", "10.0.0.1:4000", 0xB, 1, 2, 8);
    // Unassociated RTP, even once proven, never reaches the sink.
    h.stream(1100, "192.0.2.1:20000", "192.0.2.2:20000", 0xC, 1, 10, 0);
    h.c2s(3000, &request("BYE", &d, 2, Some("tt"), false, None, None));
    let id = h.only_call().id;
    assert_eq!(
        h.sink.events,
        vec![
            Event::CallNew(id),
            Event::MediaChanged(id),
            Event::CallState(id, CallState::Ringing),
            Event::MediaChanged(id),
            Event::CallState(id, CallState::Answered),
            Event::CallState(id, CallState::Ended),
        ]
    );
    assert_eq!(h.sink.rtp.len(), 5);
    for r in &h.sink.rtp[..3] {
        assert_eq!((r.0, r.1, r.2, r.3), (id, Party::Caller, 0, 0xA));
        assert_eq!(r.5, vec![0xff; 160]);
    }
    for r in &h.sink.rtp[3..] {
        assert_eq!((r.0, r.1, r.2, r.3), (id, Party::Called, 8, 0xB));
    }
    assert_eq!(h.engine.unassociated_streams().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 10. Robustness

const LINKS: [u32; 8] = [0, 1, 101, 113, 276, 228, 229, 9];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_frames_never_panic(
        frames in proptest::collection::vec(
            (0usize..LINKS.len(), proptest::collection::vec(any::<u8>(), 0..300)),
            1..20,
        )
    ) {
        let mut engine = earshot_core::Engine::default();
        for (i, (link, bytes)) in frames.iter().enumerate() {
            engine.handle_frame(
                Timestamp::from_nanos(i as i64 * 1000),
                LinkType(LINKS[*link]),
                bytes,
                &mut earshot_core::NullSink,
            );
        }
        engine.expire(Timestamp::from_nanos(i64::MAX / 2), &mut earshot_core::NullSink);
    }

    #[test]
    fn random_payloads_never_panic(
        packets in proptest::collection::vec(
            (any::<bool>(), any::<u16>(), any::<u16>(), any::<u32>(), any::<u8>(),
             proptest::collection::vec(any::<u8>(), 0..400)),
            1..30,
        )
    ) {
        let mut engine = earshot_core::Engine::default();
        for (i, (tcp, sport, dport, seq, flags, bytes)) in packets.iter().enumerate() {
            let transport = if *tcp {
                earshot_wire::Transport::Tcp {
                    seq: *seq,
                    syn: flags & 1 != 0,
                    fin: flags & 2 != 0,
                    rst: flags & 4 != 0,
                }
            } else {
                earshot_wire::Transport::Udp
            };
            let p = earshot_wire::Packet {
                ts: Timestamp::from_nanos(i as i64),
                src: std::net::SocketAddr::from(([10, 0, 0, 1], *sport)),
                dst: std::net::SocketAddr::from(([10, 0, 0, 2], *dport)),
                vlan: None,
                transport,
                payload: bytes,
                from_hep: flags & 8 != 0,
            };
            engine.handle_packet(&p, &mut earshot_core::NullSink);
        }
    }

    #[test]
    fn mutated_call_never_panics(
        mutations in proptest::collection::vec(
            (0usize..64, any::<usize>(), any::<u8>(), 0u8..4),
            0..12,
        )
    ) {
        let d = dialog("m1", "ft");
        let answer = sdp(CALLED_IP, 6000, &[0, 101]);
        let mut msgs: Vec<(bool, Vec<u8>)> = vec![
            (true, invite("m1", "ft", 1, CALLER_IP, 4000, &[0, 101])),
            (false, response(180, "Ringing", &d, 1, "INVITE", Some("t"), None)),
            (false, response(200, "OK", &d, 1, "INVITE", Some("t"), Some(&answer))),
            (true, request("ACK", &d, 1, Some("t"), false, None, None)),
        ];
        for i in 0..20u16 {
            msgs.push((true, rtp(0xA, i, u32::from(i) * 160, 0, &[0xff; 160])));
            msgs.push((false, rtp(0xB, i, u32::from(i) * 160, 101, &event(5, i > 15, i * 160))));
        }
        msgs.push((true, request("BYE", &d, 2, Some("t"), false, None, None)));
        for (which, pos, byte, op) in mutations {
            let Some((_, m)) = msgs.get_mut(which % 64) else { continue };
            if m.is_empty() { continue; }
            let at = pos % m.len();
            match op {
                0 => m[at] = byte,
                1 => m.truncate(at),
                2 => m.insert(at, byte),
                _ => { m.drain(at..(at + usize::from(byte)).min(m.len())); }
            }
        }
        let mut h = Harness::default();
        for (i, (from_caller, m)) in msgs.iter().enumerate() {
            let sip = earshot_sip::looks_like_sip(m) || i < 4 || i == msgs.len() - 1;
            let (src, dst) = match (sip, from_caller) {
                (true, true) => (CALLER_SIP, CALLED_SIP),
                (true, false) => (CALLED_SIP, CALLER_SIP),
                (false, true) => ("10.0.0.1:4000", "10.0.0.2:6000"),
                (false, false) => ("10.0.0.2:6000", "10.0.0.1:4000"),
            };
            h.udp(i as i64 * 20, src, dst, m);
        }
        h.engine.expire(ms(1_000_000_000), &mut h.sink);
    }
}
