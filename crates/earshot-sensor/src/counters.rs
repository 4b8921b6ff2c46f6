//! Counters shared between capture threads, the pipeline and the manager, as relaxed atomics:
//! they are statistics, and reading them must never slow down the threads that bump them.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct SensorCounters {
    /// Frames taken from sources.
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    /// Frames the kernel dropped before libpcap saw them (from pcap_stats).
    pub kernel_drops: AtomicU64,
    /// Frames dropped because the pipeline queue was full: our own loss, never the network's.
    pub internal_drops: AtomicU64,
    /// Listeners dropped because they fell behind.
    pub listener_drops: AtomicU64,
    /// Packets or events for listeners lost because the audio fan-out queue was full.
    pub audio_drops: AtomicU64,
    /// Frames the pipeline has processed.
    pub processed: AtomicU64,
}

impl SensorCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
