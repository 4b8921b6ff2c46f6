use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A latency histogram with fixed upper bounds (in seconds): one relaxed atomic per bucket, so
/// observing never waits and never allocates.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds in nanoseconds, ascending; observations above the last go to `overflow`.
    bounds_ns: Vec<u64>,
    bounds_s: &'static [f64],
    /// Not cumulative: each observation lands in exactly one slot (the last is +Inf).
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
}

/// A consistent-enough copy of a histogram for rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, cumulative count), ascending, without +Inf.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    /// `bounds` are upper bounds in seconds, ascending; non-finite or negative ones are
    /// ignored (the +Inf bucket is always there).
    pub fn new(bounds: &'static [f64]) -> Self {
        let bounds_ns: Vec<u64> = bounds
            .iter()
            .filter(|b| b.is_finite() && **b >= 0.0)
            .map(|b| (b * 1e9).round() as u64)
            .collect();
        let counts = (0..=bounds_ns.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram {
            bounds_ns,
            bounds_s: bounds,
            counts,
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Counts one observation of `d` (saturating at `u64::MAX` nanoseconds, about 584 years).
    pub fn observe(&self, d: Duration) {
        self.observe_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Counts one observation of `ns` nanoseconds, for callers that already hold a raw count
    /// and would only convert it into a `Duration` and back.
    pub fn observe_ns(&self, ns: u64) {
        // `le` is inclusive: a value equal to a bound belongs to that bucket.
        let slot = self.bounds_ns.partition_point(|b| *b < ns);
        if let Some(c) = self.counts.get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Cumulative counts. The total is the sum of the buckets read here, so `_count` always
    /// equals the `+Inf` bucket even while other threads observe.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.bounds_ns.len());
        let mut running = 0u64;
        let finite = self.bounds_s.iter().filter(|b| b.is_finite() && **b >= 0.0);
        for (bound, c) in finite.zip(&self.counts) {
            running += c.load(Ordering::Relaxed);
            buckets.push((*bound, running));
        }
        let overflow = self.counts.last().map_or(0, |c| c.load(Ordering::Relaxed));
        HistogramSnapshot {
            buckets,
            count: running + overflow,
            sum_seconds: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_inclusive_buckets_and_accumulate() {
        let h = Histogram::new(&[0.01, 0.1, 1.0]);
        h.observe(Duration::from_millis(10)); // == first bound
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3)); // +Inf only
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.01, 1), (0.1, 3), (1.0, 3)]);
        assert_eq!(s.count, 4);
        assert!((s.sum_seconds - 3.11).abs() < 1e-9, "{}", s.sum_seconds);
    }

    #[test]
    fn non_finite_bounds_are_ignored() {
        let h = Histogram::new(&[f64::NAN, 0.5, f64::INFINITY]);
        h.observe(Duration::from_millis(100));
        h.observe(Duration::from_secs(1));
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.5, 1)]);
        assert_eq!(s.count, 2);
    }

    #[test]
    fn concurrent_observers_lose_nothing() {
        let h = std::sync::Arc::new(Histogram::new(&[0.001, 0.01]));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for n in 0..1000u64 {
                        h.observe_ns(n * (i + 1) * 10_000);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.snapshot().count, 4000);
    }
}
