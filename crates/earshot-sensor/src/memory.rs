//! Memory back to the system once calls have ended.
//!
//! glibc's malloc keeps what a program frees for its next allocations: after 100,000 calls came
//! and went, the sensor's heap is mostly free chunks between a few live ones, and RSS stays at
//! the peak for the life of the process (a sensor that went from 153 MB idle to 350 MB with 200
//! calls stayed there once they ended). `malloc_trim(0)` hands every free page of every arena
//! back with `madvise`, whatever lies around it. It walks the heap, so it is asked for only when
//! many calls have left the table since the last time: [`TrimPolicy`] says when, and
//! [`after_expire`] is the pipeline's once-a-second hook.

use std::sync::Mutex;

/// Calls that must have left the table since the last trim (or since its peak) before the
/// next: fewer free too little to be worth a walk of the heap.
pub const TRIM_AFTER_CALLS: usize = 1_000;

/// When to give memory back, from the number of calls in the table once a second: after the
/// table has fallen by at least `after_calls` below the highest it reached since the last trim,
/// and by at least half of it (a busy sensor whose calls come and go at a steady rate reuses
/// its free memory at once and gains nothing from a trim).
///
/// The trim comes one tick after the fall: the calls' copies in the published call list
/// (and anything else that lives until the next publication) are freed only after the engine
/// removed them, and a trim before that would miss them.
#[derive(Debug)]
pub struct TrimPolicy {
    after_calls: usize,
    peak: usize,
    due: bool,
    /// The last trim left calls in the table: when they too are gone, trim once more, however
    /// few they were (the peak's published list and tables are freed with the last of them).
    partial: bool,
    /// Ticks until the trailing trim after the last one (0: none pending).
    again_in: u32,
}

/// Ticks (seconds) from a trim to its trailing one. What is freed just after a trim is missed
/// by it: published lists still held by a Manager API reader, the fan-out thread freeing the
/// ended calls' rewind a moment after the pipeline removed them. At 100,000 calls that left
/// 213 MB of 670 in one run and 31 MB in another; one more walk a few seconds later, when the
/// stragglers are gone, takes the run-to-run luck out of it.
const TRAILING_TRIM_TICKS: u32 = 5;

impl TrimPolicy {
    pub const fn new(after_calls: usize) -> Self {
        TrimPolicy {
            after_calls,
            peak: 0,
            due: false,
            partial: false,
            again_in: 0,
        }
    }

    /// The table holds `calls` now; true when memory should be given back now.
    pub fn on_tick(&mut self, calls: usize) -> bool {
        if std::mem::take(&mut self.due) {
            self.peak = calls;
            self.partial = calls > 0;
            self.again_in = TRAILING_TRIM_TICKS;
            return true;
        }
        if self.again_in > 0 {
            self.again_in -= 1;
            if self.again_in == 0 {
                return true;
            }
        }
        self.peak = self.peak.max(calls);
        let gone = self.peak - calls;
        let emptied = calls == 0 && self.peak > 0 && self.partial;
        self.due = emptied || (gone >= self.after_calls && gone * 2 >= self.peak);
        false
    }
}

static POLICY: Mutex<TrimPolicy> = Mutex::new(TrimPolicy::new(TRIM_AFTER_CALLS));

/// The pipeline's hook after each expiry: trims the allocator when [`TrimPolicy`] says so.
/// One policy for the process, as the allocator is one for the process. True when it trimmed.
pub fn after_expire(calls: usize) -> bool {
    let due = match POLICY.lock() {
        Ok(mut p) => p.on_tick(calls),
        Err(poisoned) => poisoned.into_inner().on_tick(calls),
    };
    if due {
        give_back();
        tracing::debug!(calls, "gave free memory back to the system (malloc_trim)");
    }
    due
}

/// Returns free heap pages to the system now.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only releases memory that is free; it is
    // thread-safe (it locks each arena in turn).
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_after_a_peak_has_gone() {
        let mut p = TrimPolicy::new(1_000);
        for calls in [0, 5_000, 10_000, 10_000] {
            assert!(!p.on_tick(calls), "growing: {calls}");
        }
        assert!(!p.on_tick(9_500), "500 calls gone: not enough");
        assert!(!p.on_tick(6_000), "4,000 gone but less than half");
        assert!(
            !p.on_tick(4_000),
            "6,000 of 10,000 gone: due at the next tick"
        );
        assert!(p.on_tick(4_000), "a tick later");
        assert!(!p.on_tick(4_000), "once");
        assert!(!p.on_tick(3_500));
        assert!(!p.on_tick(0), "the rest gone");
        assert!(p.on_tick(0));
        assert!(!p.on_tick(0));
    }

    #[test]
    fn a_remainder_left_by_a_trim_is_trimmed_when_it_goes() {
        let mut p = TrimPolicy::new(1_000);
        p.on_tick(10_000);
        assert!(!p.on_tick(800));
        assert!(p.on_tick(800), "9,200 gone");
        assert!(
            !p.on_tick(0),
            "800 gone, fewer than 1,000, but the table is empty now"
        );
        assert!(p.on_tick(0));
        let later: Vec<bool> = (0..20).map(|_| p.on_tick(0)).collect();
        let trailing = TRAILING_TRIM_TICKS as usize - 1;
        let mut expected = vec![false; 20];
        expected[trailing] = true;
        assert_eq!(
            later, expected,
            "one trailing trim, for what was freed just after"
        );
    }

    #[test]
    fn a_steady_table_is_never_trimmed() {
        let mut p = TrimPolicy::new(1_000);
        for i in 0..1_000 {
            assert!(!p.on_tick(20_000 + (i % 7) * 100));
        }
    }

    #[test]
    fn small_tables_are_never_trimmed() {
        let mut p = TrimPolicy::new(1_000);
        for _ in 0..100 {
            assert!(!p.on_tick(900));
            assert!(!p.on_tick(0));
        }
    }
}
