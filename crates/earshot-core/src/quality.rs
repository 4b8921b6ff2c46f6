//! Quality over time and the split of a stream's loss into capture loss and network loss.
//!
//! * Per-second points ([`earshot_rtp::Timeline`]) per stream, as [`Config::timeline`] says:
//!   a ring of the last seconds live, a bounded series offline.
//! * Capture loss: a packet the sensor missed is not the call's fault. Two kinds of evidence:
//!   the far end's RTCP receiver reports (it got packets the sensor did not see), and the
//!   seconds in which the sensor's own drop counters rose ([`Engine::note_capture_gap`]).
//!   What neither explains stays network loss, as before.
//!
//! [`Config::timeline`]: crate::Config::timeline

use crate::engine::Engine;
use crate::stream::Stream;
use earshot_rtp::{ReportBlock, StreamStats, Timeline, TimelineMode};
use earshot_wire::Timestamp;
use std::collections::VecDeque;

/// A stream's cold quality state, boxed (most of a stream's life it is not read).
#[derive(Clone, Debug)]
pub struct StreamQuality {
    pub timeline: Timeline,
    /// The far end's latest report on this stream, if any RTCP carried one.
    pub far_end: Option<FarEndReport>,
}

/// What the receiver of a stream last said about it (an RTCP report block), next to what the
/// sensor had seen lost of the same sequence numbers when the report passed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FarEndReport {
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    /// The sensor's loss up to `highest_seq` (see `StreamStats::lost_up_to`).
    pub sensor_lost: i64,
    pub reports: u32,
}

impl FarEndReport {
    /// Packets the sensor missed that the receiver got, as of the report.
    pub fn capture_loss(&self) -> u64 {
        (self.sensor_lost - i64::from(self.cumulative_lost)).max(0) as u64
    }
}

/// Seconds in which the sensor dropped packets itself (kernel ring full, internal queue
/// full, a gap in the mirror it could count). Bounded: the oldest intervals go first.
#[derive(Clone, Debug, Default)]
pub struct CaptureGaps {
    /// (first second, last second, packets dropped), in time order, not overlapping.
    spans: VecDeque<(i64, i64, u64)>,
    /// Intervals forgotten because the list was full.
    pub forgotten: u64,
    /// Notes that came earlier than the last interval (a clock going back), not kept.
    pub out_of_order: u64,
}

/// Intervals [`CaptureGaps`] keeps: at one a second, more than an hour of them.
pub const MAX_CAPTURE_GAPS: usize = 4096;

impl CaptureGaps {
    /// Records `packets` dropped by the sensor between capture seconds `from` and `to`.
    pub fn note(&mut self, from: i64, to: i64, packets: u64) {
        let (from, to) = (from.min(to), from.max(to));
        if let Some(last) = self.spans.back_mut() {
            if from <= last.1.saturating_add(1) && to >= last.0 {
                last.0 = last.0.min(from);
                last.1 = last.1.max(to);
                last.2 = last.2.saturating_add(packets);
                return;
            }
            if to < last.0 {
                self.out_of_order += 1;
                return;
            }
        }
        if self.spans.len() >= MAX_CAPTURE_GAPS {
            self.spans.pop_front();
            self.forgotten += 1;
        }
        self.spans.push_back((from, to, packets));
    }

    /// True when the sensor dropped packets in capture second `sec` (a binary search; the
    /// usual answer, no gaps at all, is one comparison).
    #[inline]
    pub fn contains(&self, sec: i64) -> bool {
        if self.spans.is_empty() {
            return false;
        }
        let i = self.spans.partition_point(|s| s.1 < sec);
        self.spans.get(i).is_some_and(|s| s.0 <= sec)
    }

    /// The spans `(first second, last second)` that end at or after `sec`, in time order.
    pub fn spans_from(&self, sec: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        let i = self.spans.partition_point(|s| s.1 < sec);
        self.spans.range(i..).map(|s| (s.0, s.1))
    }

    pub fn dropped(&self) -> u64 {
        self.spans.iter().map(|s| s.2).sum()
    }
}

impl Stream {
    /// Accounts a packet in the stream's timeline (made on its first packet when the mode
    /// keeps one). Called before the stream's counters take the packet.
    #[inline]
    pub(crate) fn time_packet(&mut self, mode: TimelineMode, ts: Timestamp, gaps: &CaptureGaps) {
        if mode == TimelineMode::Off && self.quality.is_none() {
            return;
        }
        let q = self.quality.get_or_insert_with(|| {
            Box::new(StreamQuality {
                timeline: Timeline::new(mode),
                far_end: None,
            })
        });
        q.timeline
            .on_packet(ts.nanos(), &self.stats, |s| gaps.contains(s));
    }

    /// Takes the far end's report on this stream.
    pub(crate) fn far_end_report(&mut self, mode: TimelineMode, b: &ReportBlock) {
        let Some(sensor_lost) = self.stats.lost_up_to(b.highest_seq) else {
            return;
        };
        let q = self.quality.get_or_insert_with(|| {
            Box::new(StreamQuality {
                timeline: Timeline::new(mode),
                far_end: None,
            })
        });
        let reports = q.far_end.map_or(0, |f| f.reports).saturating_add(1);
        q.far_end = Some(FarEndReport {
            cumulative_lost: b.cumulative_lost,
            highest_seq: b.highest_seq,
            sensor_lost,
            reports,
        });
    }

    /// The stream's per-second points, if it keeps any.
    pub fn timeline(&self) -> Option<&Timeline> {
        self.quality.as_deref().map(|q| &q.timeline)
    }

    pub fn far_end(&self) -> Option<FarEndReport> {
        self.quality.as_deref().and_then(|q| q.far_end)
    }

    /// Packets the sensor missed but the call did not lose: what the far end's RTCP says it
    /// received beyond what the sensor saw, or what was lost in seconds the sensor dropped
    /// packets itself, whichever is more, and never more than the stream's loss.
    pub fn capture_loss(&self, gaps: &CaptureGaps) -> u64 {
        let lost = self.stats.lost().max(0) as u64;
        let Some(q) = self.quality.as_deref() else {
            return 0;
        };
        let rtcp = q.far_end.map_or(0, |f| f.capture_loss());
        let gap = q
            .timeline
            .capture_gap_lost(&self.stats, |sec| gaps.spans_from(sec));
        rtcp.max(gap).min(lost)
    }

    /// The stream's loss that is not capture loss (see [`Stream::capture_loss`]).
    pub fn network_loss(&self, gaps: &CaptureGaps) -> u64 {
        (self.stats.lost().max(0) as u64).saturating_sub(self.capture_loss(gaps))
    }
}

/// MOS of one second, for the stream's codec now (as [`Stream::mos`]); `None` where the stream
/// has no MOS at all, or for a second with no packets.
pub fn point_mos(s: &Stream, p: &earshot_rtp::QualityPoint) -> Option<f64> {
    if p.packets == 0 || s.quality_unknown().is_some() {
        return None;
    }
    let codec = s.current_codec().unwrap_or("");
    let r = earshot_rtp::r_factor(
        earshot_rtp::codec_impairment(codec),
        p.loss_percent(),
        p.jitter_ms(),
    );
    Some(earshot_rtp::mos_from_r(r))
}

/// A timeline's points, the still open second last (unless the timeline keeps nothing, or is
/// a series that is already full: the open second would not follow the kept ones).
pub fn all_points<'a>(
    t: &'a Timeline,
    stats: &'a StreamStats,
) -> impl Iterator<Item = (i64, earshot_rtp::QualityPoint)> + 'a {
    let open = match t.mode() {
        TimelineMode::Off => None,
        TimelineMode::Series(_) if t.left_out() > 0 => None,
        _ => t.open_point(stats),
    };
    t.points().chain(open)
}

impl Engine {
    /// The live sensor says its own drop counters (kernel, interface, internal queues) rose by
    /// `packets` between capture times `from` and `to`: losses of streams in those seconds
    /// count as possible capture loss, not the call's.
    pub fn note_capture_gap(&mut self, from: Timestamp, to: Timestamp, packets: u64) {
        let sec = |t: Timestamp| t.nanos().div_euclid(1_000_000_000);
        self.capture_gaps.note(sec(from), sec(to), packets);
    }

    pub fn capture_gaps(&self) -> &CaptureGaps {
        &self.capture_gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_merge_and_stay_bounded() {
        let mut g = CaptureGaps::default();
        assert!(!g.contains(5));
        g.note(5, 6, 10);
        g.note(6, 7, 3);
        g.note(20, 20, 1);
        g.note(1, 2, 1);
        assert!(g.contains(5) && g.contains(7) && g.contains(20));
        assert!(!g.contains(8) && !g.contains(4) && !g.contains(1));
        assert_eq!(g.out_of_order, 1);
        assert_eq!(g.dropped(), 14);
        for i in 0..(MAX_CAPTURE_GAPS as i64 + 10) {
            g.note(100 + 2 * i, 100 + 2 * i, 1);
        }
        assert_eq!(g.spans.len(), MAX_CAPTURE_GAPS);
        assert!(g.forgotten > 0);
    }
}
