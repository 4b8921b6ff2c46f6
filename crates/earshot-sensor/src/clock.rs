//! The sensor's notion of "now", on the capture clock, guarded against the packets it is
//! built from.
//!
//! Between packets, time is the last capture time plus the wall time since (so audio is
//! released and calls age during silences). Packets move it, but a capture time is input: a
//! replayed file or a datagram can carry any time at all. So no observation moves the clock
//! forward by more than `max_step_ns` past where it already stands. The pipeline's clock
//! (expiry, listings, rewind) is also monotonic: an old time never moves it back. The audio
//! fan-out's clock instead follows its packets back (it has to stay with the listeners' audio,
//! which a clock running ahead would make late), but forward by a step at most, too.
//!
//! Sans-IO: the caller passes the wall clock as monotonic nanoseconds (`mono_ns`, e.g. the time
//! since the sensor started), so every behaviour here is deterministic and tested.

/// A capture-time clock that no single observation can move far.
#[derive(Debug, Clone)]
pub struct BoundedClock {
    /// Capture time, and the monotonic wall time it was set at.
    base: Option<(i64, i64)>,
    max_step_ns: i64,
    monotonic: bool,
    /// Observations that were ahead by more than a step (each moved the clock by one step).
    clamped: u64,
}

impl BoundedClock {
    /// Never moves back; forward by at most `max_step_ns` per observation.
    pub fn monotonic(max_step_ns: i64) -> Self {
        Self::new(max_step_ns, true)
    }

    /// Follows observations back freely; forward by at most `max_step_ns` per observation.
    pub fn following(max_step_ns: i64) -> Self {
        Self::new(max_step_ns, false)
    }

    fn new(max_step_ns: i64, monotonic: bool) -> Self {
        BoundedClock {
            base: None,
            max_step_ns: max_step_ns.max(0),
            monotonic,
            clamped: 0,
        }
    }

    /// Capture time now; `None` before the first observation.
    pub fn now(&self, mono_ns: i64) -> Option<i64> {
        let (ts, at) = self.base?;
        Some(ts.saturating_add(mono_ns.saturating_sub(at).max(0)))
    }

    /// Takes a packet's capture time seen at `mono_ns` and returns the clock's time after it:
    /// the packet's own time unless that is more than a step ahead (or, when monotonic,
    /// behind the clock). The first observation sets the clock.
    pub fn observe(&mut self, ts: i64, mono_ns: i64) -> i64 {
        let Some(current) = self.now(mono_ns) else {
            self.base = Some((ts, mono_ns));
            return ts;
        };
        let limit = current.saturating_add(self.max_step_ns);
        let next = if ts > limit {
            self.clamped += 1;
            limit
        } else if self.monotonic {
            ts.max(current)
        } else {
            ts
        };
        self.base = Some((next, mono_ns));
        next
    }

    /// How many observations were further ahead than one step.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_000 * S;
    /// 2106, as far as a HEP envelope's seconds reach.
    const FAR: i64 = 4_294_967_295 * S;

    #[test]
    fn follows_packets_and_extrapolates_between_them() {
        let mut c = BoundedClock::monotonic(S);
        assert_eq!(c.now(0), None);
        assert_eq!(c.observe(T0, 0), T0);
        assert_eq!(c.now(20_000_000), Some(T0 + 20_000_000));
        assert_eq!(c.observe(T0 + 40_000_000, 20_000_000), T0 + 40_000_000);
        assert_eq!(c.now(30_000_000), Some(T0 + 50_000_000));
    }

    #[test]
    fn one_packet_moves_it_forward_by_a_step_at_most() {
        for mut c in [BoundedClock::monotonic(S), BoundedClock::following(S)] {
            c.observe(T0, 0);
            assert_eq!(c.observe(FAR, 0), T0 + S);
            assert_eq!(c.observe(i64::MAX, 0), T0 + 2 * S);
            assert_eq!(c.clamped(), 2);
            assert_eq!(c.now(i64::MAX), Some(i64::MAX), "saturates, never wraps");
        }
    }

    #[test]
    fn the_monotonic_clock_never_goes_back() {
        let mut c = BoundedClock::monotonic(S);
        c.observe(T0, 0);
        assert_eq!(c.observe(0, 10), T0 + 10);
        assert_eq!(c.observe(i64::MIN, 20), T0 + 20);
        assert_eq!(c.now(30), Some(T0 + 30));
    }

    #[test]
    fn the_following_clock_goes_back_with_its_packets() {
        let mut c = BoundedClock::following(S);
        c.observe(T0, 0);
        c.observe(FAR, 0);
        assert_eq!(c.observe(T0 + 20_000_000, 20_000_000), T0 + 20_000_000);
        assert_eq!(c.now(40_000_000), Some(T0 + 40_000_000));
    }

    #[test]
    fn a_fast_replay_is_followed_step_by_step() {
        // Capture time running ten times faster than the wall: each packet is ahead of the
        // extrapolation, but by less than a step.
        let mut c = BoundedClock::monotonic(S);
        c.observe(T0, 0);
        for k in 1..=100 {
            let ts = T0 + k * 200_000_000;
            assert_eq!(c.observe(ts, k * 20_000_000), ts);
        }
        assert_eq!(c.clamped(), 0);
    }
}
