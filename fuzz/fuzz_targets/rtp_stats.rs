#![no_main]
//! RTP/RTCP recognition and per-stream statistics on hostile packet runs: arrival times that
//! go back or jump, sequence numbers and timestamps anywhere, clock rates from 0 to huge. The
//! numbers a report shows must stay finite and in range.

use earshot_rtp::{
    codec_impairment, is_rtcp, mos_from_r, r_factor, report_blocks, Rtp, StreamStats,
    TelephoneEvent, Timeline, TimelineMode,
};
use libfuzzer_sys::fuzz_target;

const CODECS: [&str; 5] = ["PCMU", "G729", "opus", "unknown", ""];

fn packet_views(buf: &[u8]) {
    let _ = is_rtcp(buf);
    // RTCP report blocks: never more than the datagram holds (24 bytes each).
    let blocks = report_blocks(buf).count();
    assert!(blocks <= buf.len() / 24, "{blocks} blocks in {} bytes", buf.len());
    if let Some(rtp) = Rtp::parse(buf) {
        assert!(rtp.payload().len() <= buf.len());
        let _ = (
            rtp.marker(),
            rtp.payload_type(),
            rtp.sequence(),
            rtp.timestamp(),
            rtp.ssrc(),
        );
        if let Some(ev) = TelephoneEvent::parse(rtp.payload()) {
            let _ = ev.digit();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        packet_views(rest);
        return;
    }
    let mut stats = StreamStats::default();
    // Per-second points on the same hostile clock: bounded by the ring, whatever the jumps.
    let mut ring = Timeline::new(TimelineMode::Ring(8));
    let mut series = Timeline::new(TimelineMode::Series(16));
    let mut arrival = 0i64;
    // Records of 12 bytes: time step (i32 µs), seq, timestamp, payload type, rate selector.
    for r in rest.chunks_exact(12) {
        let step = i64::from(i32::from_le_bytes([r[0], r[1], r[2], r[3]]));
        arrival = match r[11] {
            0xfe => i64::MIN,
            0xff => i64::MAX,
            _ => arrival.saturating_add(step * 1000),
        };
        let seq = u16::from_le_bytes([r[4], r[5]]);
        let timestamp = u32::from_le_bytes([r[6], r[7], r[8], r[9]]);
        let rate = match r[11] % 6 {
            0 => None,
            1 => Some(8000),
            2 => Some(48000),
            3 => Some(0),
            4 => Some(u32::MAX),
            _ => Some(u32::from(r[11]) * 1000),
        };
        ring.on_packet(arrival, &stats, |s| s % 3 == 0);
        series.on_packet(arrival, &stats, |_| false);
        stats.on_packet(
            arrival,
            seq,
            timestamp,
            r[10] & 0x7f,
            r[10] & 0x80 != 0,
            160,
            rate,
        );
    }
    assert!(ring.points().count() <= 8 && series.points().count() <= 16);
    // Drop spans every third second from where the timeline starts (a bounded list, as the
    // sensor's capture gaps are).
    let _ = ring.capture_gap_lost(&stats, |from| {
        (0..64i64).map(move |i| {
            let s = from.saturating_add(i.saturating_mul(3));
            (s, s)
        })
    });
    let _ = stats.lost_up_to(u32::from(selector) << 8);
    for (_, p) in ring.points().chain(ring.open_point(&stats)) {
        assert!((0.0..=100.0).contains(&p.loss_percent()));
    }
    let loss = stats.loss_percent();
    assert!((0.0..=100.0).contains(&loss), "loss {loss}");
    let _ = (stats.expected(), stats.lost(), stats.clock_rate());
    for j in [
        stats.jitter_ms(),
        stats.mean_jitter_ms(),
        stats.max_jitter_ms(),
        stats.max_delta_ms(),
    ] {
        assert!(!j.is_nan(), "jitter is NaN");
    }
    let imp = codec_impairment(CODECS[usize::from(selector >> 1) % CODECS.len()]);
    let mos = mos_from_r(r_factor(imp, loss, stats.jitter_ms()));
    assert!((1.0..=4.5).contains(&mos), "MOS {mos}");
});
