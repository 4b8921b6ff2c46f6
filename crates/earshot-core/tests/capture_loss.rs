//! Capture loss against network loss: packets the sensor missed are told from packets the
//! call lost, by the receiver's RTCP reports and by the sensor's own drop counters.

mod common;

use common::*;
use earshot_core::{Config, TimelineMode};

const CALLER_RTP: &str = "10.0.0.1:4000";
const CALLED_RTP: &str = "10.0.0.2:5000";
const CALLED_RTCP: &str = "10.0.0.2:5001";
const CALLER_RTCP: &str = "10.0.0.1:4001";
const SSRC: u32 = 0x1111;

/// A receiver report from the called party about the caller's stream.
fn rr(cumulative_lost: i32, highest: u32) -> Vec<u8> {
    let mut v = vec![0x81, 201, 0, 7];
    v.extend_from_slice(&0x2222u32.to_be_bytes());
    v.extend_from_slice(&SSRC.to_be_bytes());
    v.extend_from_slice(&((cumulative_lost as u32) & 0x00ff_ffff).to_be_bytes());
    v.extend_from_slice(&highest.to_be_bytes());
    v.extend_from_slice(&[0; 12]);
    v
}

/// A call whose caller sends 10 s of 20 ms packets, the sensor seeing none of sequence numbers
/// 100..110; every 2 s the called party reports what it lost (`reported(highest)`).
fn call(cfg: Config, reported: impl Fn(u16) -> i32, gap: bool) -> Harness {
    let mut h = Harness::new(cfg);
    let d = dialog("capture-loss", "ft");
    h.answered_call(&d, 0, 4000, 5000);
    for seq in 0u16..500 {
        let t = 2000 + i64::from(seq) * 20;
        if !(100..110).contains(&seq) {
            h.udp(
                t,
                CALLER_RTP,
                CALLED_RTP,
                &rtp(SSRC, seq, u32::from(seq) * 160, 0, &[0xff; 160]),
            );
        }
        if seq % 100 == 99 {
            h.udp(
                t + 5,
                CALLED_RTCP,
                CALLER_RTCP,
                &rr(reported(seq), u32::from(seq)),
            );
        }
        if gap && seq == 110 {
            // The sensor's counters rose by 10 while these packets passed.
            h.engine.note_capture_gap(ms(t - 200), ms(t), 10);
        }
    }
    h
}

fn caller_stream(h: &Harness) -> &earshot_core::Stream {
    let calls = h.engine.calls();
    let c = calls.first().expect("one call");
    c.streams
        .iter()
        .find(|s| s.key.ssrc == SSRC)
        .expect("caller stream")
}

#[test]
fn packets_the_receiver_got_are_capture_loss() {
    let h = call(Config::default(), |_| 0, false);
    let s = caller_stream(&h);
    let gaps = h.engine.capture_gaps();
    assert_eq!(s.stats.lost(), 10);
    assert_eq!(s.capture_loss(gaps), 10);
    assert_eq!(s.network_loss(gaps), 0);
    assert_eq!(s.far_end().map(|f| f.reports), Some(5));
}

#[test]
fn packets_the_receiver_lost_too_are_network_loss() {
    let h = call(
        Config::default(),
        |seq| if seq >= 110 { 10 } else { 0 },
        false,
    );
    let s = caller_stream(&h);
    let gaps = h.engine.capture_gaps();
    assert_eq!(s.capture_loss(gaps), 0);
    assert_eq!(s.network_loss(gaps), 10);
}

#[test]
fn loss_in_seconds_the_sensor_dropped_packets_is_capture_loss() {
    // The receiver says it lost them too (so RTCP alone says network), but the sensor's drop
    // counter rose in those seconds: possible capture loss, and reported as such.
    for mode in [
        TimelineMode::Ring(120),
        TimelineMode::Ring(2),
        TimelineMode::Off,
    ] {
        let cfg = Config {
            timeline: mode,
            ..Config::default()
        };
        let h = call(cfg, |_| 0, true);
        let s = caller_stream(&h);
        assert_eq!(s.capture_loss(h.engine.capture_gaps()), 10, "{mode:?}");
        let cfg = Config {
            timeline: mode,
            ..Config::default()
        };
        let h = call(cfg, |seq| if seq >= 110 { 10 } else { 0 }, true);
        let s = caller_stream(&h);
        assert_eq!(s.capture_loss(h.engine.capture_gaps()), 10, "{mode:?}");
    }
}

#[test]
fn without_evidence_all_loss_stays_the_networks() {
    let mut h = Harness::new(Config::default());
    let d = dialog("no-rtcp", "ft");
    h.answered_call(&d, 0, 4000, 5000);
    for seq in (0u16..200).filter(|q| q % 10 != 3) {
        let t = 2000 + i64::from(seq) * 20;
        h.udp(
            t,
            CALLER_RTP,
            CALLED_RTP,
            &rtp(SSRC, seq, u32::from(seq) * 160, 0, &[0xff; 160]),
        );
    }
    let s = caller_stream(&h);
    let gaps = h.engine.capture_gaps();
    assert_eq!(s.capture_loss(gaps), 0);
    assert_eq!(s.network_loss(gaps), 20);
    let points = s.timeline().map(|t| t.points().count());
    assert_eq!(points, Some(3), "4 s of packets: 3 closed seconds");
}
