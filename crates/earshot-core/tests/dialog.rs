//! Hold, resume, re-INVITEs and codec changes, from the committed capture
//! `tests/captures/dialog/hold_reinvite.pcap` (see its README) and from hand-built SIP.

mod common;

use common::*;
use earshot_core::{CallState, Config, Engine, Event, Party};
use earshot_wire::CaptureReader;
use std::path::PathBuf;

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/dialog")
        .join(name)
}

/// Runs a capture through an engine, recording every event together with the call's hold
/// state at that moment.
fn run(name: &str) -> (Engine, Vec<(Event, bool)>) {
    struct Rec(Vec<(Event, bool)>);
    impl earshot_core::Sink for Rec {
        fn event(&mut self, e: &Event, call: &earshot_core::Call) {
            self.0.push((e.clone(), call.on_hold));
        }
    }
    let mut engine = Engine::new(Config::default());
    let mut rec = Rec(Vec::new());
    let mut reader = CaptureReader::open(&capture(name)).expect("the committed capture opens");
    while let Some(Ok(f)) = reader.next_frame() {
        engine.handle_frame(f.ts, f.link, f.data, &mut rec);
    }
    (engine, rec.0)
}

#[test]
fn baresip_style_hold_resume_and_codec_changes_are_events() {
    let (engine, events) = run("hold_reinvite.pcap");
    let calls = engine.calls();
    assert_eq!(calls.len(), 1);
    let c = calls[0];
    let id = c.id;
    let news: Vec<&Event> = events
        .iter()
        .map(|(e, _)| e)
        .filter(|e| {
            matches!(
                e,
                Event::Hold(_)
                    | Event::Resume(_)
                    | Event::Reinvite { .. }
                    | Event::CodecChange { .. }
            )
        })
        .collect();
    let cc = |party, payload_type| Event::CodecChange {
        call: id,
        party,
        payload_type,
    };
    let reinvite = |codec: Option<&str>| Event::Reinvite {
        call: id,
        codec: codec.map(str::to_string),
    };
    assert_eq!(
        news,
        vec![
            &reinvite(None),
            &Event::Hold(id),
            &reinvite(None),
            &Event::Resume(id),
            &reinvite(Some("PCMA")),
            // Both parties switch in the same 20 ms; the caller's packet comes first.
            &cc(Party::Caller, 8),
            &cc(Party::Called, 8),
            &reinvite(Some("G722")),
            &cc(Party::Caller, 9),
            &cc(Party::Called, 9),
        ],
        "{events:#?}"
    );
    assert_eq!(c.state, CallState::Ended);
    assert!(!c.on_hold, "resumed");
    assert_eq!(c.held_by, None);
    assert_eq!(c.reinvites, 4);
    assert_eq!(c.codecs(), vec!["PCMU", "PCMA", "G722"]);
    for party in [Party::Caller, Party::Called] {
        assert_eq!(c.current_codec(party), Some("G722"), "{party:?}");
    }
    // tshark -z rtp,streams: one stream per direction, 500 and 400 packets.
    let mut counts: Vec<u64> = c.streams.iter().map(|s| s.stats.packets).collect();
    counts.sort();
    assert_eq!(counts, vec![400, 500]);
    for s in &c.streams {
        assert_eq!(s.current_pt, Some(9));
        assert_eq!(s.codec_changes, 2);
        // PCMU carried most packets, but quality is judged for the codec in use: G.722's
        // impairment (0) rather than G.711's, both near 4.4 here.
        assert!(s.mos() > 4.0, "{}", s.mos());
    }
}

/// baresip_hold.pcap: two real baresip 1.0.0 instances (make-baresip.sh): the caller holds
/// with `a=sendonly` (answered `a=recvonly`), resumes, then sends a plain re-INVITE (the same
/// SDP again), then BYE. baresip cannot change the codec of a call in progress, so no
/// codec_change; hold_reinvite.pcap has those.
#[test]
fn a_real_baresip_call_holds_resumes_and_reinvites() {
    let (engine, events) = run("baresip_hold.pcap");
    let calls = engine.calls();
    assert_eq!(calls.len(), 1);
    let c = calls[0];
    let id = c.id;
    let news: Vec<(&Event, bool)> = events
        .iter()
        .filter(|(e, _)| {
            matches!(
                e,
                Event::Hold(_)
                    | Event::Resume(_)
                    | Event::Reinvite { .. }
                    | Event::CodecChange { .. }
            )
        })
        .map(|(e, on_hold)| (e, *on_hold))
        .collect();
    let reinvite = Event::Reinvite {
        call: id,
        codec: None,
    };
    assert_eq!(
        news,
        // Each re-INVITE's event comes once its answer is applied: the first one holds.
        vec![
            (&reinvite, true),
            (&Event::Hold(id), true),
            (&reinvite, false),
            (&Event::Resume(id), false),
            (&reinvite, false),
        ],
        "{events:#?}"
    );
    assert_eq!(c.state, CallState::Ended);
    assert!(!c.on_hold);
    assert_eq!(c.reinvites, 3);
    assert_eq!(c.codecs(), vec!["PCMU"]);
    // baresip_hold.tshark-rtp-streams.txt: 527 caller and 528 callee packets, no loss, mean
    // jitter 1.123 and 1.379 ms.
    let mut streams: Vec<(Option<Party>, u64, f64)> = c
        .streams
        .iter()
        .map(|s| (s.party, s.stats.packets, s.stats.mean_jitter_ms()))
        .collect();
    streams.sort_by_key(|s| s.1);
    assert_eq!(streams.len(), 2, "{streams:?}");
    assert_eq!((streams[0].0, streams[0].1), (Some(Party::Caller), 527));
    assert_eq!((streams[1].0, streams[1].1), (Some(Party::Called), 528));
    assert!((streams[0].2 - 1.123).abs() < 0.01, "{streams:?}");
    assert!((streams[1].2 - 1.379).abs() < 0.01, "{streams:?}");
    assert!(c.streams.iter().all(|s| s.stats.lost() == 0));
}

/// sipp_codec_change.pcap (make-sipp.sh): a SIPp call in PCMU moved to PCMA by a re-INVITE,
/// the callee (-rtp_echo) echoing the caller's packets, so both parties change codec. Both
/// streams carry the same SSRC (the echo), told apart by their addresses.
#[test]
fn a_sipp_reinvite_to_pcma_is_a_codec_change_of_both_parties() {
    let (engine, events) = run("sipp_codec_change.pcap");
    let calls = engine.calls();
    assert_eq!(calls.len(), 1);
    let c = calls[0];
    let id = c.id;
    let news: Vec<&Event> = events
        .iter()
        .map(|(e, _)| e)
        .filter(|e| {
            matches!(
                e,
                Event::Hold(_)
                    | Event::Resume(_)
                    | Event::Reinvite { .. }
                    | Event::CodecChange { .. }
            )
        })
        .collect();
    let cc = |party| Event::CodecChange {
        call: id,
        party,
        payload_type: 8,
    };
    let reinvite = Event::Reinvite {
        call: id,
        codec: Some("PCMA".into()),
    };
    assert_eq!(
        news,
        vec![&reinvite, &cc(Party::Caller), &cc(Party::Called)],
        "{events:#?}"
    );
    assert_eq!(c.state, CallState::Ended);
    assert_eq!(c.reinvites, 1);
    assert_eq!(c.codecs(), vec!["PCMU", "PCMA"]);
    // sipp_codec_change.tshark-rtp-streams.txt: 202 packets each way, no loss, mean jitter
    // 0.306 and 0.313 ms.
    assert_eq!(c.streams.len(), 2);
    for s in &c.streams {
        assert_eq!(s.stats.packets, 202);
        assert_eq!(s.stats.lost(), 0);
        assert_eq!(s.current_pt, Some(8));
        assert_eq!(s.codec_changes, 1);
        let j = s.stats.mean_jitter_ms();
        assert!((0.30..0.32).contains(&j), "{j}");
    }
    for party in [Party::Caller, Party::Called] {
        assert_eq!(c.current_codec(party), Some("PCMA"), "{party:?}");
    }
}

#[test]
fn hold_state_follows_the_offer_answer_pair() {
    let (_, events) = run("hold_reinvite.pcap");
    // The hold event comes with on_hold set, the resume with it cleared; the call is not on
    // hold before the first hold or after the resume.
    let mut held = Vec::new();
    for (e, on_hold) in &events {
        match e {
            Event::Hold(_) => held.push(("hold", *on_hold)),
            Event::Resume(_) => held.push(("resume", *on_hold)),
            _ => {}
        }
    }
    assert_eq!(held, vec![("hold", true), ("resume", false)]);
}

#[test]
fn called_party_hold_with_inactive_and_zero_address() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    // The called party holds with a=inactive; the caller answers inactive too.
    let offer = sdp_with(CALLED_IP, 6000, &[0], "a=inactive\r\n");
    let req = request(
        "INVITE",
        &d,
        9,
        Some("tt"),
        true,
        None,
        Some(("application/sdp", &offer)),
    );
    h.s2c(2000, &req);
    assert!(
        !h.only_call().on_hold,
        "an offer alone may still be refused"
    );
    let ans = sdp_with(CALLER_IP, 4000, &[0], "a=inactive\r\n");
    h.c2s(
        2010,
        &response(200, "OK", &d, 9, "INVITE", Some("tt"), Some(&ans)),
    );
    let c = h.only_call();
    assert!(c.on_hold);
    assert_eq!(c.held_by, Some(Party::Called));
    let id = c.id;
    assert!(h.sink.events.contains(&Event::Hold(id)));
    // Old style: the caller re-offers with c=0.0.0.0 (the called party's inactive still holds).
    let offer = sdp(CALLER_IP, 4000, &[0]).replace("IN IP4 10.0.0.1", "IN IP4 0.0.0.0");
    let req = request(
        "INVITE",
        &d,
        3,
        Some("tt"),
        false,
        None,
        Some(("application/sdp", &offer)),
    );
    h.c2s(3000, &req);
    let ans = sdp(CALLED_IP, 6000, &[0]);
    h.s2c(
        3010,
        &response(200, "OK", &d, 3, "INVITE", Some("tt"), Some(&ans)),
    );
    let c = h.only_call();
    assert!(c.on_hold);
    assert_eq!(c.held_by, Some(Party::Caller));
    assert!(!h.sink.events.contains(&Event::Resume(id)));
}

#[test]
fn retransmitted_reinvite_answer_is_one_event() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    let offer = sdp(CALLER_IP, 4000, &[8]);
    let req = request(
        "INVITE",
        &d,
        2,
        Some("tt"),
        false,
        None,
        Some(("application/sdp", &offer)),
    );
    h.c2s(2000, &req);
    let ans = sdp(CALLED_IP, 6000, &[8]);
    let ok = response(200, "OK", &d, 2, "INVITE", Some("tt"), Some(&ans));
    h.s2c(2010, &ok);
    h.s2c(2510, &ok);
    let id = h.only_call().id;
    let reinvites: Vec<&Event> = h
        .sink
        .events
        .iter()
        .filter(|e| matches!(e, Event::Reinvite { .. }))
        .collect();
    assert_eq!(
        reinvites,
        vec![&Event::Reinvite {
            call: id,
            codec: Some("PCMA".into())
        }]
    );
}

#[test]
fn a_stream_flipping_payload_types_reports_a_bounded_number_of_changes() {
    let d = dialog("c1", "ft");
    let mut h = Harness::default();
    h.answered_call(&d, 0, 4000, 6000);
    for i in 0..1000u16 {
        let pt = if i % 2 == 0 { 0 } else { 8 };
        let p = rtp(0xA, i, u32::from(i) * 160, pt, &[0xff; 160]);
        h.udp(
            1100 + i64::from(i) * 20,
            "10.0.0.1:4000",
            "10.0.0.2:6000",
            &p,
        );
    }
    let changes = h
        .sink
        .events
        .iter()
        .filter(|e| matches!(e, Event::CodecChange { .. }))
        .count();
    assert_eq!(changes, 64);
    assert_eq!(h.only_call().streams[0].codec_changes, 999);
}

#[test]
fn called_agent_comes_from_the_callee_not_the_proxys_100_trying() {
    let (engine, _) = run("hold_reinvite.pcap");
    let c = engine.calls()[0];
    assert_eq!(c.called_agent.as_deref(), Some("baresip callee"));
    assert_eq!(c.caller_agent.as_deref(), Some("baresip caller"));
}

#[test]
fn an_invite_answered_only_by_100_trying_ends_after_timer_b() {
    let cfg = Config {
        unanswered_timeout_ns: Some(32_000_000_000),
        ..Config::default()
    };
    let mut engine = Engine::new(cfg);
    let mut sink = Recorder::default();
    let mut reader = CaptureReader::open(&capture("unanswered.pcap")).expect("capture opens");
    let mut at_31 = None;
    while let Some(Ok(f)) = reader.next_frame() {
        engine.handle_frame(f.ts, f.link, f.data, &mut sink);
        let start = engine.calls()[0].start.nanos();
        // As a sensor does: age calls as time goes by.
        engine.expire(f.ts, &mut sink);
        if at_31.is_none() && f.ts.nanos() - start > 31_000_000_000 {
            at_31 = Some(engine.calls()[0].state);
        }
    }
    let calls = engine.calls();
    assert_eq!(
        at_31,
        Some(CallState::Unanswered),
        "the second call's INVITE is at 40 s"
    );
    assert_eq!(calls.len(), 2);
    let dead = calls[0];
    assert_eq!(dead.state, CallState::Unanswered);
    assert!(dead.timed_out);
    assert_eq!(
        dead.end,
        Some(dead.last_sip),
        "ended at its last SIP message (the 100)"
    );
    assert!(sink
        .events
        .contains(&Event::CallState(dead.id, CallState::Unanswered)));
    assert_eq!(calls[1].state, CallState::Answered, "{:?}", calls[1]);
    assert_eq!(calls[1].end, None);

    // Offline analysis (no such timeout) keeps it trying.
    let (engine, _) = run("unanswered.pcap");
    assert_eq!(engine.calls()[0].state, CallState::Trying);
}
