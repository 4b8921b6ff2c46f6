//! Quality over time: one point per second of a stream (packets, loss, jitter), computed from
//! the packets' capture timestamps, so a dip at 0:42 shows as a dip at 0:42.
//!
//! A point is closed when the first packet of a later second arrives; its loss is the growth
//! of the stream's RFC 3550 "expected" count during that second minus the packets received in
//! it, so the points' losses add up to the stream's [`StreamStats::lost`] (up to the open
//! second). Its jitter is the RFC estimate at the end of the second.
//!
//! Bounded whatever the clock does: capture time is hostile input (a HEP agent's envelope, a
//! damaged pcap record). Seconds without packets between two points are filled with empty
//! points only up to the timeline's capacity; a longer jump starts the kept points over (a
//! ring) or stops keeping them (a series), and is counted, never looped over. A packet from an
//! earlier second than the open one (reordering in the capture) counts in the open second.

use crate::stats::StreamStats;

/// One second of a stream. Six bytes, so a live sensor can keep two minutes of every stream of
/// 100,000 calls in under 150 MB (see [`TimelineMode::Ring`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct QualityPoint {
    /// Packets received in the second (saturating).
    pub packets: u16,
    /// Packets missing from the sequence in the second: expected minus received, negative when
    /// duplicates outnumber losses, as RFC 3550 counts (saturating).
    pub lost: i16,
    /// RFC 3550 jitter estimate at the end of the second, in tenths of a millisecond
    /// (saturating at 6553.5 ms).
    pub jitter_dms: u16,
}

impl QualityPoint {
    pub fn jitter_ms(&self) -> f64 {
        f64::from(self.jitter_dms) / 10.0
    }

    /// Loss in the second as a percentage of the packets expected in it (0 when none was).
    pub fn loss_percent(&self) -> f64 {
        let lost = i64::from(self.lost.max(0));
        let expected = i64::from(self.packets) + lost;
        if expected == 0 {
            return 0.0;
        }
        (lost as f64 * 100.0 / expected as f64).min(100.0)
    }
}

/// How much of a stream's history a [`Timeline`] keeps.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimelineMode {
    /// No points (offline analysis without `--timeline`).
    Off,
    /// The last N seconds (a live sensor): older points are overwritten.
    Ring(u16),
    /// The first N seconds of the stream (offline `--timeline`): later points are counted in
    /// [`Timeline::left_out`], not kept.
    Series(u32),
}

impl TimelineMode {
    fn capacity(self) -> usize {
        match self {
            TimelineMode::Off => 0,
            TimelineMode::Ring(n) => usize::from(n),
            TimelineMode::Series(n) => n as usize,
        }
    }
}

/// Per-second points of one stream. A ring starts with room for [`FIRST_POINTS`] seconds,
/// taken with the timeline (at the stream's first packet, which allocates the stream anyway),
/// and doubles as later seconds close: four more allocations in a two-minute ring's life
/// (at 8, 16, 32 and 64 seconds), never one for a packet within a second, never beyond its
/// capacity. So a short call holds a few points, not the whole ring (a live sensor's 120-point
/// ring is 720 bytes a stream; 100,000 calls of a few seconds would otherwise hold 140 MB).
#[derive(Clone, Debug)]
pub struct Timeline {
    mode: TimelineMode,
    /// Capture second (Unix) of the open point; `None` before the first packet.
    open_sec: Option<i64>,
    /// The stream's expected and received counts when the open second began.
    expected_at_open: u64,
    packets_at_open: u64,
    /// Closed points, oldest first from `head` (a ring once full).
    points: Vec<QualityPoint>,
    head: usize,
    /// Capture second of the oldest kept point.
    first_sec: i64,
    /// Points closed but not kept: a full series, or a ring that overwrote them.
    left_out: u64,
    /// Seconds a forward jump of the clock skipped without making points for them.
    skipped_seconds: u64,
    /// A series that saw a jump longer than its capacity keeps nothing after it.
    stopped: bool,
    /// Packets lost in seconds the sensor flagged as its own drops, of the points no longer
    /// kept (overwritten or left out): see [`Timeline::capture_gap_lost`].
    gap_lost_dropped: u64,
}

const NS_PER_SEC: i64 = 1_000_000_000;

/// Seconds a ring has room for from its start (48 bytes).
const FIRST_POINTS: usize = 8;

impl Timeline {
    pub fn new(mode: TimelineMode) -> Self {
        Timeline {
            mode,
            open_sec: None,
            expected_at_open: 0,
            packets_at_open: 0,
            points: match mode {
                TimelineMode::Ring(n) => Vec::with_capacity(usize::from(n).min(FIRST_POINTS)),
                _ => Vec::new(),
            },
            head: 0,
            first_sec: 0,
            left_out: 0,
            skipped_seconds: 0,
            stopped: false,
            gap_lost_dropped: 0,
        }
    }

    /// Accounts a packet arriving at `arrival_ns`. Call it *before* `stats` counts the packet,
    /// so a second that this packet closes holds exactly the packets before it.
    ///
    /// `is_gap` says whether the sensor dropped packets itself in a capture second; it is asked
    /// only about a point that leaves the timeline (overwritten or not kept), so its losses
    /// stay counted as possible capture loss after it is gone.
    #[inline]
    pub fn on_packet(
        &mut self,
        arrival_ns: i64,
        stats: &StreamStats,
        is_gap: impl Fn(i64) -> bool,
    ) {
        let sec = arrival_ns.div_euclid(NS_PER_SEC);
        match self.open_sec {
            // Nearly every packet: the same second, or an earlier one (reordered capture).
            Some(open) if sec <= open => {}
            Some(open) => self.close(open, sec, stats, &is_gap),
            None => self.open(sec, stats),
        }
    }

    fn open(&mut self, sec: i64, stats: &StreamStats) {
        self.open_sec = Some(sec);
        self.expected_at_open = stats.expected();
        self.packets_at_open = stats.packets;
    }

    /// Closes the open second `open`, fills the silent seconds up to `sec` (bounded), opens `sec`.
    fn close(&mut self, open: i64, sec: i64, stats: &StreamStats, is_gap: &dyn Fn(i64) -> bool) {
        let point = self.point_since_open(stats);
        self.keep(open, point, is_gap);
        let silent = sec.saturating_sub(open).saturating_sub(1);
        let cap = self.mode.capacity() as i64;
        if silent > cap {
            // A jump longer than everything kept: no point in filling it.
            self.skipped_seconds = self.skipped_seconds.saturating_add(silent as u64);
            match self.mode {
                TimelineMode::Ring(_) => {
                    self.left_out = self.left_out.saturating_add(self.points.len() as u64);
                    let dropped = self.gap_lost_kept(is_gap);
                    self.gap_lost_dropped = self.gap_lost_dropped.saturating_add(dropped);
                    self.points.clear();
                    self.head = 0;
                }
                TimelineMode::Series(_) => self.stopped = true,
                TimelineMode::Off => {}
            }
        } else {
            for s in 1..=silent {
                self.keep(open + s, QualityPoint::default(), is_gap);
            }
        }
        self.open(sec, stats);
    }

    fn point_since_open(&self, stats: &StreamStats) -> QualityPoint {
        let expected = stats.expected().saturating_sub(self.expected_at_open);
        let received = stats.packets.saturating_sub(self.packets_at_open);
        let lost = i128::from(expected) - i128::from(received);
        QualityPoint {
            packets: u16::try_from(received).unwrap_or(u16::MAX),
            lost: lost.clamp(i128::from(i16::MIN), i128::from(i16::MAX)) as i16,
            jitter_dms: (stats.jitter_ms() * 10.0).round().clamp(0.0, 65535.0) as u16,
        }
    }

    fn keep(&mut self, sec: i64, p: QualityPoint, is_gap: &dyn Fn(i64) -> bool) {
        let cap = self.mode.capacity();
        if cap == 0 || self.stopped {
            self.leave_out(sec, p, is_gap);
            return;
        }
        if self.points.is_empty() {
            self.first_sec = sec;
            self.head = 0;
        }
        if self.points.len() < cap {
            let len = self.points.len();
            if len == self.points.capacity() {
                let want = len.saturating_mul(2).max(FIRST_POINTS).min(cap);
                self.points.reserve_exact(want - len);
            }
            self.points.push(p);
            return;
        }
        match self.mode {
            TimelineMode::Ring(_) => {
                let oldest = self.first_sec;
                if let Some(slot) = self.points.get_mut(self.head) {
                    let old = std::mem::replace(slot, p);
                    self.leave_out(oldest, old, is_gap);
                }
                self.head = (self.head + 1) % cap;
                self.first_sec = self.first_sec.saturating_add(1);
            }
            _ => self.leave_out(sec, p, is_gap),
        }
    }

    /// Counts a point that is not (or no longer) kept.
    fn leave_out(&mut self, sec: i64, p: QualityPoint, is_gap: &dyn Fn(i64) -> bool) {
        self.left_out = self.left_out.saturating_add(1);
        if p.lost > 0 && is_gap(sec) {
            self.gap_lost_dropped = self.gap_lost_dropped.saturating_add(p.lost as u64);
        }
    }

    fn gap_lost_kept(&self, is_gap: &dyn Fn(i64) -> bool) -> u64 {
        self.points()
            .filter(|(s, p)| p.lost > 0 && is_gap(*s))
            .map(|(_, p)| p.lost as u64)
            .sum()
    }

    /// Packets lost in the seconds the sensor flagged as its own drops, over the whole stream:
    /// the points kept, those gone, and the open second. `spans_from(sec)` gives the flagged
    /// spans of seconds `(first, last)` that end at or after `sec`, in time order and not
    /// overlapping (as the sensor's capture-gap list keeps them).
    ///
    /// Asked once a second for every stream of a live sensor, so it looks only at the kept
    /// seconds inside the spans that overlap the timeline (none, nearly always), not at every
    /// kept point: the cost follows the sensor's drops, not the timeline's length.
    pub fn capture_gap_lost<I>(&self, stats: &StreamStats, spans_from: impl FnOnce(i64) -> I) -> u64
    where
        I: IntoIterator<Item = (i64, i64)>,
    {
        let open = self.open_point(stats);
        let len = self.points.len() as i64;
        let last = match open {
            Some((sec, _)) => sec,
            None if len > 0 => self.first_sec.saturating_add(len - 1),
            None => return self.gap_lost_dropped,
        };
        let first = if len > 0 { self.first_sec } else { last };
        let mut lost = self.gap_lost_dropped;
        for (from, to) in spans_from(first) {
            if from > last {
                break;
            }
            lost = lost.saturating_add(self.lost_between(from.max(first), to.min(last)));
            if let Some((sec, p)) = open {
                if (from..=to).contains(&sec) && p.lost > 0 {
                    lost = lost.saturating_add(p.lost as u64);
                }
            }
        }
        lost
    }

    /// Packets lost in the kept points of seconds `from..=to` (positive losses only).
    fn lost_between(&self, from: i64, to: i64) -> u64 {
        let len = self.points.len() as i64;
        let lo = from.saturating_sub(self.first_sec).max(0);
        let hi = to.saturating_sub(self.first_sec).min(len - 1);
        (lo..=hi)
            .filter_map(|i| {
                self.points
                    .get(((self.head as i64 + i) % len.max(1)) as usize)
            })
            .filter(|p| p.lost > 0)
            .map(|p| p.lost as u64)
            .sum()
    }

    /// The kept points, oldest first, with their capture second (Unix).
    pub fn points(&self) -> impl Iterator<Item = (i64, QualityPoint)> + '_ {
        let (newer, older) = self.points.split_at(self.head.min(self.points.len()));
        older
            .iter()
            .chain(newer)
            .enumerate()
            .map(|(i, p)| (self.first_sec.saturating_add(i as i64), *p))
    }

    /// The second still open (its packets so far), as a point, with its capture second.
    pub fn open_point(&self, stats: &StreamStats) -> Option<(i64, QualityPoint)> {
        self.open_sec.map(|s| (s, self.point_since_open(stats)))
    }

    /// Points closed but not kept (see [`Timeline`]).
    pub fn left_out(&self) -> u64 {
        self.left_out
    }

    /// Seconds skipped by forward jumps of the capture clock.
    pub fn skipped_seconds(&self) -> u64 {
        self.skipped_seconds
    }

    pub fn mode(&self) -> TimelineMode {
        self.mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    /// Feeds a 50 packet/s stream for `secs` seconds starting at second 1000, leaving out the
    /// sequence numbers `lose` says.
    fn run(mode: TimelineMode, secs: i64, lose: impl Fn(u16) -> bool) -> (Timeline, StreamStats) {
        let mut t = Timeline::new(mode);
        let mut s = StreamStats::default();
        for i in 0..(secs * 50) {
            let seq = i as u16;
            if lose(seq) {
                continue;
            }
            let at = 1000 * 1000 * MS + i * 20 * MS;
            t.on_packet(at, &s, |_| false);
            s.on_packet(at, seq, (i * 160) as u32, 0, false, 172, Some(8000));
        }
        (t, s)
    }

    #[test]
    fn one_point_per_second_and_losses_add_up() {
        let (t, s) = run(TimelineMode::Series(3600), 10, |q| q % 20 == 7);
        let points: Vec<_> = t.points().collect();
        assert_eq!(points.len(), 9, "the tenth second is still open");
        assert_eq!(points[0].0, 1000);
        assert_eq!(points[8].0, 1008);
        let open = t.open_point(&s).expect("open second");
        let lost: i64 = points
            .iter()
            .chain(std::iter::once(&open))
            .map(|(_, p)| i64::from(p.lost))
            .sum();
        assert_eq!(lost, s.lost());
        assert!(points.iter().all(|(_, p)| p.packets + p.lost as u16 <= 51));
    }

    #[test]
    fn a_lossy_second_shows_as_one_dip() {
        // Second 3 (sequence numbers 150..200) loses half its packets.
        let (t, _) = run(TimelineMode::Ring(120), 6, |q| {
            (150..200).contains(&q) && q % 2 == 0
        });
        let points: Vec<_> = t.points().map(|(_, p)| p).collect();
        assert_eq!(points[3].lost, 25);
        assert!((points[3].loss_percent() - 50.0).abs() < 1e-9);
        assert!(points
            .iter()
            .enumerate()
            .all(|(i, p)| i == 3 || p.lost == 0));
    }

    #[test]
    fn a_ring_keeps_the_last_seconds() {
        let (t, _) = run(TimelineMode::Ring(4), 10, |_| false);
        let secs: Vec<_> = t.points().map(|(s, _)| s).collect();
        assert_eq!(secs, vec![1005, 1006, 1007, 1008]);
        assert_eq!(t.left_out(), 5);
        assert!(t.points.capacity() <= 4);
    }

    #[test]
    fn a_ring_grows_with_the_stream_up_to_its_capacity() {
        // A 3-second stream holds a few points, a long one exactly the ring, and the buffer
        // grows a bounded number of times.
        let (short, _) = run(TimelineMode::Ring(120), 3, |_| false);
        assert_eq!(short.points.capacity(), FIRST_POINTS);
        let mut t = Timeline::new(TimelineMode::Ring(120));
        let s = StreamStats::default();
        let mut grown = 0;
        let mut cap = t.points.capacity();
        for sec in 0..600 {
            t.on_packet(sec * NS_PER_SEC, &s, |_| false);
            if t.points.capacity() != cap {
                grown += 1;
                cap = t.points.capacity();
            }
        }
        assert_eq!(t.points.capacity(), 120);
        assert_eq!(t.points().count(), 120);
        assert!(grown <= 4, "grew {grown} times");
    }

    #[test]
    fn a_series_stops_at_its_capacity() {
        let (t, _) = run(TimelineMode::Series(3), 10, |_| false);
        assert_eq!(t.points().count(), 3);
        assert_eq!(t.left_out(), 6);
    }

    #[test]
    fn a_jump_of_the_clock_makes_no_point_per_skipped_second() {
        let mut t = Timeline::new(TimelineMode::Ring(120));
        let s = StreamStats::default();
        t.on_packet(0, &s, |_| false);
        t.on_packet(i64::MAX, &s, |_| false);
        t.on_packet(i64::MIN, &s, |_| false);
        t.on_packet(5 * NS_PER_SEC, &s, |_| false);
        assert!(t.points.capacity() <= 120);
        assert!(t.skipped_seconds() > 1_000_000);
        let mut series = Timeline::new(TimelineMode::Series(10));
        series.on_packet(0, &s, |_| false);
        series.on_packet(NS_PER_SEC * 1_000_000, &s, |_| false);
        series.on_packet(NS_PER_SEC * 1_000_001, &s, |_| false);
        assert_eq!(series.points().count(), 1);
        assert_eq!(series.left_out(), 1);
    }

    #[test]
    fn silent_seconds_are_empty_points() {
        let mut t = Timeline::new(TimelineMode::Ring(120));
        let s = StreamStats::default();
        t.on_packet(0, &s, |_| false);
        t.on_packet(4 * NS_PER_SEC, &s, |_| false);
        let pts: Vec<_> = t.points().collect();
        assert_eq!(pts.len(), 4);
        assert_eq!(pts[3], (3, QualityPoint::default()));
    }

    #[test]
    fn losses_in_flagged_seconds_stay_counted_after_they_leave_the_ring() {
        let mut t = Timeline::new(TimelineMode::Ring(2));
        let mut s = StreamStats::default();
        let gap = |sec: i64| sec == 1001;
        for i in 0..(6 * 50i64) {
            let seq = i as u16;
            // Second 1001 loses 5 packets, second 1003 loses 1.
            if (55..60).contains(&seq) || seq == 160 {
                continue;
            }
            let at = 1000 * NS_PER_SEC + i * 20 * MS;
            t.on_packet(at, &s, gap);
            s.on_packet(at, seq, (i * 160) as u32, 0, false, 172, Some(8000));
        }
        assert!(
            t.points().all(|(sec, _)| sec > 1001),
            "second 1001 left the ring"
        );
        assert_eq!(t.capture_gap_lost(&s, spans(&[(1001, 1001)])), 5);
    }

    #[test]
    fn off_keeps_nothing() {
        let (t, _) = run(TimelineMode::Off, 5, |_| false);
        assert_eq!(t.points().count(), 0);
        assert_eq!(t.points.capacity(), 0);
    }

    /// `spans_from` over a fixed list of spans, as the sensor's capture-gap list answers it.
    fn spans(list: &[(i64, i64)]) -> impl FnOnce(i64) -> Vec<(i64, i64)> + '_ {
        move |sec| list.iter().copied().filter(|s| s.1 >= sec).collect()
    }

    /// The same sum the slow way: every kept point, the gone ones, the open second.
    fn gap_lost_by_walking(t: &Timeline, s: &StreamStats, list: &[(i64, i64)]) -> u64 {
        let is_gap = |sec: i64| list.iter().any(|&(a, b)| (a..=b).contains(&sec));
        let open = t
            .open_point(s)
            .filter(|(sec, p)| p.lost > 0 && is_gap(*sec))
            .map_or(0, |(_, p)| p.lost as u64);
        t.gap_lost_dropped + t.gap_lost_kept(&is_gap) + open
    }

    #[test]
    fn gap_losses_from_the_spans_equal_a_walk_over_every_point() {
        // Rings of several sizes, wrapped or not, with losses in many seconds and spans before,
        // inside, across and after what is kept.
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut counted = 0;
        for cap in [1u16, 2, 5, 120] {
            for seconds in [1i64, 3, 7, 130, 300] {
                let mut t = Timeline::new(TimelineMode::Ring(cap));
                let mut st = StreamStats::default();
                let mut seq = 0u16;
                for i in 0..seconds * 10 {
                    seq = seq.wrapping_add(1 + (next() % 4 == 0) as u16 * (next() % 3) as u16);
                    let at = 1000 * NS_PER_SEC + i * 100 * MS;
                    t.on_packet(at, &st, |_| false);
                    st.on_packet(at, seq, (i * 800) as u32, 0, false, 172, Some(8000));
                }
                let lists: [&[(i64, i64)]; 5] = [
                    &[],
                    &[(990, 999)],
                    &[(1000, 1000), (1002, 1004), (1010, 1400)],
                    &[(900, 1100)],
                    &[(1000 + seconds - 1, 1000 + seconds + 5)],
                ];
                for list in lists {
                    let walked = gap_lost_by_walking(&t, &st, list);
                    counted += usize::from(walked > 0);
                    assert_eq!(
                        t.capture_gap_lost(&st, spans(list)),
                        walked,
                        "ring {cap}, {seconds} s, spans {list:?}"
                    );
                }
            }
        }
        assert!(
            counted > 30,
            "most cases have losses in flagged seconds: {counted}"
        );
    }
}
