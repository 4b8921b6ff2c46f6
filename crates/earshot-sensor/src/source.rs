//! What sources produce and how they hand it over.
//!
//! One batching policy for every source (live capture, capture files, HEP): a batch holds at
//! most [`BATCH_FRAMES`] frames and is handed over when it is full, when the source has nothing
//! more to read right now (a pause in traffic never strands frames), or when its first frame
//! has waited [`BATCH_LATENCY`] while frames keep trickling in. [`Batcher`] applies it; the HEP
//! socket, which drains what the kernel holds without waiting, never reaches the latency bound.

use crate::counters::SensorCounters;
use crossbeam_channel::{Sender, TrySendError};
use earshot_wire::{LinkType, Timestamp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames per batch at most: one channel operation per batch keeps the hand-off cheap, and a
/// bounded batch keeps the queue's memory bounded (capacity × this many frames).
pub const BATCH_FRAMES: usize = 256;
/// The longest a partial batch is held while frames keep coming: small against the 20 ms of
/// audio a packet carries, so batching never adds audible delay.
pub const BATCH_LATENCY: Duration = Duration::from_millis(5);

/// A batch being filled under the policy above.
pub struct Batcher {
    batch: FrameBatch,
    /// When the batch's first frame was pushed.
    started: Instant,
}

impl Default for Batcher {
    fn default() -> Self {
        Batcher {
            batch: FrameBatch::with_capacity(BATCH_FRAMES),
            started: Instant::now(),
        }
    }
}

impl Batcher {
    /// Adds a frame; the first frame of a batch starts its latency clock.
    pub fn push(&mut self, ts: Timestamp, link: LinkType, data: &[u8]) {
        if self.batch.is_empty() {
            self.started = Instant::now();
        }
        self.batch.push(ts, link, data);
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// The batch is full or its first frame has waited long enough.
    pub fn is_due(&self) -> bool {
        !self.batch.is_empty()
            && (self.batch.len() >= BATCH_FRAMES || self.started.elapsed() >= BATCH_LATENCY)
    }

    /// The batch if the policy says to hand it over now: it is due, or the source has nothing
    /// more to read (`idle`) and it holds any frame.
    pub fn take_due(&mut self, idle: bool) -> Option<FrameBatch> {
        if idle || self.is_due() {
            self.take()
        } else {
            None
        }
    }

    /// The batch, whatever its size, if it holds any frame: before the source sleeps and when
    /// it stops.
    pub fn take(&mut self) -> Option<FrameBatch> {
        if self.batch.is_empty() {
            return None;
        }
        Some(std::mem::replace(
            &mut self.batch,
            FrameBatch::with_capacity(BATCH_FRAMES),
        ))
    }
}

/// Frames travel in batches: one channel operation per batch instead of per frame keeps the
/// hand-off cheap at millions of packets per second.
pub use earshot_wire::{FrameBatch, OwnedFrame};

/// The sending side of the pipeline queue. `send` never blocks: a full queue drops the batch
/// and counts its frames as internal drops.
#[derive(Clone)]
pub struct FrameSender {
    tx: Sender<FrameBatch>,
    counters: Arc<SensorCounters>,
}

impl FrameSender {
    pub fn new(tx: Sender<FrameBatch>, counters: Arc<SensorCounters>) -> Self {
        FrameSender { tx, counters }
    }

    /// Hands a batch over; false when the pipeline has gone away (time to stop).
    pub fn send(&self, batch: FrameBatch) -> bool {
        !matches!(self.offer(batch), Offer::Closed)
    }

    /// Hands a batch over and says what became of it, so that a source can report its own
    /// drops (the counters are shared by every source).
    pub fn offer(&self, batch: FrameBatch) -> Offer {
        let n = self.count(&batch);
        match self.tx.try_send(batch) {
            Ok(()) => Offer::Sent,
            Err(TrySendError::Full(_)) => {
                SensorCounters::add(&self.counters.internal_drops, n);
                Offer::Dropped(n)
            }
            Err(TrySendError::Disconnected(_)) => Offer::Closed,
        }
    }

    /// Hands a batch over, waiting while the queue is full. Only for sources that may apply
    /// back-pressure without losing anything (a file replayed as fast as possible).
    pub fn send_blocking(&self, batch: FrameBatch) -> bool {
        self.count(&batch);
        self.tx.send(batch).is_ok()
    }

    /// Counts a batch as taken from its source (frames and bytes); returns its frame count.
    fn count(&self, batch: &FrameBatch) -> u64 {
        let n = batch.len() as u64;
        let bytes = batch.byte_len() as u64;
        SensorCounters::add(&self.counters.frames, n);
        SensorCounters::add(&self.counters.bytes, bytes);
        n
    }

    pub fn counters(&self) -> &Arc<SensorCounters> {
        &self.counters
    }
}

/// What [`FrameSender::offer`] did with a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    Sent,
    /// The queue was full: this many frames were dropped (and counted as internal drops).
    Dropped(u64),
    /// The pipeline has gone away: time to stop.
    Closed,
}

/// Shared stop request: sources poll it between reads.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_due_when_full_or_late_and_taken_whole() {
        let mut b = Batcher::default();
        assert!(
            !b.is_due() && b.take().is_none(),
            "an empty batch is never handed over"
        );
        for _ in 0..BATCH_FRAMES - 1 {
            b.push(Timestamp(0), LinkType::ETHERNET, &[0; 60]);
        }
        // Generous: on a loaded machine the 255 pushes may themselves take over 5 ms.
        if b.started.elapsed() < BATCH_LATENCY {
            assert!(!b.is_due(), "255 fresh frames are not due yet");
        }
        b.push(Timestamp(0), LinkType::ETHERNET, &[0; 60]);
        assert!(b.is_due(), "a full batch is due");
        assert_eq!(b.take().map(|t| t.len()), Some(BATCH_FRAMES));
        assert!(b.is_empty());
        b.push(Timestamp(0), LinkType::ETHERNET, &[0; 60]);
        b.started = Instant::now() - BATCH_LATENCY;
        assert!(b.is_due(), "a late partial batch is due");
    }
}
