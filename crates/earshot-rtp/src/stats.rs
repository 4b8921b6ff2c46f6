//! Per-stream counters: loss per RFC 3550 A.3, interarrival jitter per RFC 3550 §6.4.1.
//!
//! Jitter follows the RFC's estimator J += (|D| − J)/16, with D the difference between the
//! arrival spacing and the RTP-timestamp spacing of consecutive packets, converted to ms with
//! the payload's clock rate (8000 for G.722, 48000 for Opus). The mean and maximum of that
//! running estimate are kept the way Wireshark's RTP analysis keeps them, so figures can be
//! compared with `tshark -z rtp,streams` line by line (see [`TSHARK_COMPATIBLE_NOTE`]).

/// How the reported figures relate to tshark's.
pub const TSHARK_COMPATIBLE_NOTE: &str = "Mean and max jitter use Wireshark's rules: the \
first packet, packets with the marker bit, comfort noise and the packet after it, and packets \
whose timestamp goes backwards update the estimate but not the mean/max; the mean divides by \
the number of packets seen before the current one. A step of more than 10 s between arrival \
and timestamp spacing is a restarted sender clock, not jitter: the reference restarts there. Unlike Wireshark, telephone-event packets \
(RFC 4733) are left out entirely: they keep the start timestamp of their event, so they carry \
no timing information for the audio clock.";

const CN: u8 = 13;
/// A difference between arrival spacing and timestamp spacing beyond this is a clock step.
const CLOCK_DISCONTINUITY_MS: f64 = 10_000.0;
const CN_OLD: u8 = 19;
/// Reordering beyond this many packets cannot be told from duplicates; such packets count as
/// out of order.
const DUP_WINDOW: u16 = 64;

/// Quality counters of one RTP stream (one SSRC in one direction).
///
/// `repr(C)` keeps the declared order, which puts what every packet updates first and the
/// rarely changed counters last: with thousands of streams, each cache line a packet touches
/// is likely a miss.
#[derive(Clone, Debug, Default)]
#[repr(C)]
pub struct StreamStats {
    pub packets: u64,
    pub bytes: u64,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    seq: SeqTracker,
    timing: Timing,
    pub duplicates: u64,
    pub out_of_order: u64,
}

impl StreamStats {
    /// Accounts one packet. `clock_rate` is the payload's RTP clock rate, `None` where it is
    /// unknown or meaningless (telephone-event), which keeps the packet out of the jitter.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn on_packet(
        &mut self,
        arrival_ns: i64,
        seq: u16,
        timestamp: u32,
        payload_type: u8,
        marker: bool,
        len: usize,
        clock_rate: Option<u32>,
    ) {
        if self.packets == 0 {
            self.first_seen_ns = arrival_ns;
        }
        self.packets += 1;
        self.bytes += len as u64;
        self.last_seen_ns = self.last_seen_ns.max(arrival_ns);
        match self.seq.update(seq) {
            SeqVerdict::Duplicate => self.duplicates += 1,
            SeqVerdict::Late => self.out_of_order += 1,
            SeqVerdict::InOrder => {}
        }
        if let Some(rate) = clock_rate.filter(|&r| r > 0) {
            // Saturating: arrival times come from the capture (or a HEP agent's envelope) and
            // may jump anywhere; a difference that does not fit is a clock discontinuity anyway.
            let now_ms = arrival_ns.saturating_sub(self.first_seen_ns) as f64 / 1e6;
            self.timing
                .update(now_ms, timestamp, payload_type, marker, rate, self.packets);
        }
    }

    /// The highest sequence number seen (modulo 2^16), `None` before the first packet.
    pub fn highest_seq(&self) -> Option<u16> {
        self.seq.started.then_some(self.seq.max)
    }

    /// Packets expected from the sequence numbers (RFC 3550 A.3: extended max − base + 1).
    pub fn expected(&self) -> u64 {
        self.seq.expected()
    }

    /// Expected minus received. Negative when duplicates outnumber losses, as RFC 3550 allows.
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.packets as i64
    }

    /// What the sensor saw lost of the sequence numbers up to `highest` (an RTCP report's
    /// extended highest sequence number; its low 16 bits are compared with this stream's).
    /// Packets the sensor saw after the report's highest are left out using the window of
    /// recent sequence numbers; a report further behind than that window is `None` (too old to
    /// compare). A report ahead of the sensor (it missed the latest packets) counts the
    /// packets in between as missing.
    pub fn lost_up_to(&self, highest: u32) -> Option<i64> {
        if !self.seq.started {
            return None;
        }
        let h = highest as u16;
        let behind = self.seq.max.wrapping_sub(h);
        if behind == 0 {
            return Some(self.lost());
        }
        if behind >= 0x8000 {
            // The receiver is ahead: the sensor missed `ahead` packets it has not seen yet.
            let ahead = h.wrapping_sub(self.seq.max);
            return Some(self.lost() + i64::from(ahead));
        }
        if behind >= DUP_WINDOW {
            return None;
        }
        // Bits 0..behind: sequence numbers max, max-1, ... newer than the report's highest.
        let newer = u64::from(behind);
        let mask = (1u64 << newer) - 1;
        let received_after = i64::from((self.seq.seen & mask).count_ones());
        Some(self.lost() - (newer as i64 - received_after))
    }

    pub fn loss_percent(&self) -> f64 {
        let expected = self.expected();
        if expected == 0 {
            return 0.0;
        }
        (self.lost().max(0) as f64 * 100.0 / expected as f64).min(100.0)
    }

    /// The current RFC 3550 jitter estimate, in ms.
    pub fn jitter_ms(&self) -> f64 {
        self.timing.jitter
    }
    pub fn mean_jitter_ms(&self) -> f64 {
        self.timing.mean_jitter
    }
    pub fn max_jitter_ms(&self) -> f64 {
        self.timing.max_jitter
    }
    /// The largest gap between consecutive regular packets, in ms.
    pub fn max_delta_ms(&self) -> f64 {
        self.timing.max_delta
    }
    /// The clock rate jitter was last computed with, 0 before the first timed packet.
    pub fn clock_rate(&self) -> u32 {
        self.timing.clock_rate
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum SeqVerdict {
    InOrder,
    Late,
    Duplicate,
}

/// Extended sequence numbers with a window that tells reordered packets from duplicates.
#[derive(Clone, Debug, Default)]
struct SeqTracker {
    started: bool,
    base: u16,
    max: u16,
    cycles: u64,
    /// Bit i set: sequence `max - i` was received.
    seen: u64,
}

impl SeqTracker {
    fn update(&mut self, seq: u16) -> SeqVerdict {
        if !self.started {
            *self = SeqTracker {
                started: true,
                base: seq,
                max: seq,
                cycles: 0,
                seen: 1,
            };
            return SeqVerdict::InOrder;
        }
        let ahead = seq.wrapping_sub(self.max);
        if ahead == 0 {
            return SeqVerdict::Duplicate;
        }
        if ahead < 0x8000 {
            if seq < self.max {
                self.cycles += 1;
            }
            self.seen = if ahead >= 64 {
                1
            } else {
                (self.seen << ahead) | 1
            };
            self.max = seq;
            return SeqVerdict::InOrder;
        }
        let behind = self.max.wrapping_sub(seq);
        if behind < DUP_WINDOW {
            let bit = 1u64 << behind;
            if self.seen & bit != 0 {
                return SeqVerdict::Duplicate;
            }
            self.seen |= bit;
        }
        SeqVerdict::Late
    }

    fn expected(&self) -> u64 {
        if !self.started {
            return 0;
        }
        let ext_max = self.cycles * 65536 + u64::from(self.max);
        (ext_max + 1).saturating_sub(u64::from(self.base))
    }
}

/// Wireshark-compatible jitter bookkeeping, in ms relative to the stream's first packet.
#[derive(Clone, Debug, Default)]
struct Timing {
    started: bool,
    last_time: f64,
    last_ts: i64,
    ts_cycles: i64,
    raw_last_ts: u32,
    last_pt: u8,
    clock_rate: u32,
    jitter: f64,
    mean_jitter: f64,
    max_jitter: f64,
    max_delta: f64,
}

impl Timing {
    fn extend(&mut self, ts: u32) -> i64 {
        if ts < self.raw_last_ts && self.raw_last_ts - ts > 0x8000_0000 {
            self.ts_cycles += 1;
        } else if ts > self.raw_last_ts && ts - self.raw_last_ts > 0x8000_0000 {
            // A late packet from before a wrap.
            return (self.ts_cycles - 1) * (1 << 32) + i64::from(ts);
        }
        self.raw_last_ts = ts;
        self.ts_cycles * (1 << 32) + i64::from(ts)
    }

    /// `count` is the packet's 1-based position in the stream, so `count - 1` packets came
    /// before it: Wireshark's divisor for the running mean.
    fn update(&mut self, now: f64, ts: u32, pt: u8, marker: bool, rate: u32, count: u64) {
        if !self.started {
            self.started = true;
            self.raw_last_ts = ts;
            self.last_ts = self.extend(ts);
            self.last_time = now;
            self.last_pt = pt;
            self.clock_rate = rate;
            return;
        }
        let ext = self.extend(ts);
        let nominal_ms = (ext - self.last_ts) as f64 * 1000.0 / f64::from(rate);
        let diff = (now - (self.last_time + nominal_ms)).abs();
        if ext < self.last_ts && diff <= CLOCK_DISCONTINUITY_MS {
            // A packet from the past (reordered, or a repeated timestamp): it says nothing
            // about the current transit time, and Wireshark skips it too.
            self.last_pt = pt;
            return;
        }
        if diff > CLOCK_DISCONTINUITY_MS {
            // The sender restarted its clock (a new source behind the same SSRC, a gateway
            // switching media): this is not network jitter, so restart the reference instead
            // of letting one step dominate the estimate for the rest of the stream.
            self.last_time = now;
            self.last_ts = ext;
            self.last_pt = pt;
            return;
        }
        self.jitter = (15.0 * self.jitter + diff) / 16.0;
        self.clock_rate = rate;
        let delta = now - self.last_time;
        let is_cn = pt == CN || pt == CN_OLD;
        let after_cn = self.last_pt == CN || self.last_pt == CN_OLD;
        if !marker && !is_cn && !after_cn {
            self.max_delta = self.max_delta.max(delta);
            self.max_jitter = self.max_jitter.max(self.jitter);
            let before = count.saturating_sub(1).max(1) as f64;
            self.mean_jitter = (self.mean_jitter * (before - 1.0) + self.jitter) / before;
        }
        self.last_pt = pt;
        self.last_time = now;
        self.last_ts = ext;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn feed(stats: &mut StreamStats, t_ms: f64, seq: u16, ts: u32) {
        stats.on_packet(
            (t_ms * MS as f64) as i64,
            seq,
            ts,
            0,
            false,
            172,
            Some(8000),
        );
    }

    /// Found by the `rtp_stats` fuzz target: an arrival time far before the stream's first
    /// packet overflowed the subtraction (a panic in debug builds, nonsense in release).
    #[test]
    fn arrival_times_at_the_ends_of_the_clock_do_not_overflow() {
        let mut s = StreamStats::default();
        s.on_packet(1, 0, 0, 0, false, 160, Some(8000));
        s.on_packet(i64::MIN, 1, 160, 0, false, 160, Some(8000));
        s.on_packet(i64::MAX, 2, 320, 0, false, 160, Some(8000));
        assert_eq!(s.packets, 3);
        assert!(s.jitter_ms().is_finite() && s.max_delta_ms().is_finite());
    }

    #[test]
    fn loss_up_to_a_reports_highest_sequence() {
        let mut s = StreamStats::default();
        for seq in (0u16..100).filter(|&q| q != 10 && q != 95) {
            feed(&mut s, f64::from(seq) * 20.0, seq, u32::from(seq) * 160);
        }
        assert_eq!(s.lost(), 2);
        assert_eq!(s.lost_up_to(50), Some(1), "95 is after the report");
        assert_eq!(s.lost_up_to(99), Some(2));
        assert_eq!(
            s.lost_up_to(0x0001_0063),
            Some(2),
            "cycles are the receiver's own"
        );
        assert_eq!(
            s.lost_up_to(102),
            Some(5),
            "the receiver has three the sensor has not"
        );
        assert_eq!(s.lost_up_to(20), None, "older than the window");
    }

    #[test]
    fn perfect_stream_has_no_loss_or_jitter() {
        let mut s = StreamStats::default();
        for i in 0..100u16 {
            feed(&mut s, f64::from(i) * 20.0, i, u32::from(i) * 160);
        }
        assert_eq!(s.packets, 100);
        assert_eq!(s.lost(), 0);
        assert!(s.max_jitter_ms() < 1e-9);
        assert!((s.max_delta_ms() - 20.0).abs() < 1e-9);
    }

    #[test]
    fn loss_across_sequence_wrap() {
        let mut s = StreamStats::default();
        let mut t = 0.0;
        for seq in (65530u16..=65535)
            .chain(0..10)
            .filter(|&q| q != 65534 && q != 3)
        {
            feed(&mut s, t, seq, u32::from(seq.wrapping_sub(65530)) * 160);
            t += 20.0;
        }
        assert_eq!(s.expected(), 16);
        assert_eq!(s.lost(), 2);
    }

    #[test]
    fn duplicates_and_reordering_are_told_apart() {
        let mut s = StreamStats::default();
        for (i, seq) in [1u16, 2, 4, 3, 3, 5, 5].into_iter().enumerate() {
            feed(&mut s, i as f64 * 20.0, seq, u32::from(seq) * 160);
        }
        assert_eq!(s.duplicates, 2);
        assert_eq!(s.out_of_order, 1);
        assert_eq!(s.expected(), 5);
        assert_eq!(s.lost(), -2, "RFC 3550 counts duplicates as received");
    }

    #[test]
    fn constant_offset_gives_the_rfc_estimate() {
        // Every second packet arrives 4 ms late: |D| alternates 4, 4, ...
        let mut s = StreamStats::default();
        for i in 0..200u16 {
            let late = if i % 2 == 1 { 4.0 } else { 0.0 };
            feed(&mut s, f64::from(i) * 20.0 + late, i, u32::from(i) * 160);
        }
        assert!((s.jitter_ms() - 4.0).abs() < 0.01, "{}", s.jitter_ms());
        assert!(s.max_jitter_ms() <= 4.0 + 1e-9);
        assert!(s.mean_jitter_ms() > 3.5 && s.mean_jitter_ms() < 4.0);
    }

    #[test]
    fn events_without_a_clock_stay_out_of_jitter() {
        let mut s = StreamStats::default();
        for i in 0..50u16 {
            feed(&mut s, f64::from(i) * 20.0, i, u32::from(i) * 160);
        }
        // An event: same timestamp repeated, not timed.
        for i in 50..60u16 {
            s.on_packet(i64::from(i) * 20 * MS, i, 50 * 160, 101, false, 16, None);
        }
        for i in 60..100u16 {
            feed(&mut s, f64::from(i) * 20.0, i, u32::from(i) * 160);
        }
        assert!(s.max_jitter_ms() < 1e-9, "{}", s.max_jitter_ms());
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn wideband_clock_uses_rtp_units() {
        // Opus: 48 kHz clock, 960 ticks per 20 ms.
        let mut s = StreamStats::default();
        for i in 0..50u16 {
            s.on_packet(
                i64::from(i) * 20 * MS,
                i,
                u32::from(i) * 960,
                111,
                false,
                80,
                Some(48000),
            );
        }
        assert!(s.max_jitter_ms() < 1e-9);
    }
}
