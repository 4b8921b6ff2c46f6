//! What sources produce and how they hand it over.

use crate::counters::SensorCounters;
use crossbeam_channel::{Sender, TrySendError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
