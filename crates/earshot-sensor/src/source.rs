//! What sources produce and how they hand it over.

use crate::counters::SensorCounters;
use crossbeam_channel::{Sender, TrySendError};
use earshot_wire::{Frame, LinkType, Timestamp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A captured frame that owns its bytes (what a [`FrameBatch`] yields when taken apart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedFrame {
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: Vec<u8>,
}

/// Frames travel in batches: one channel operation per batch instead of per frame keeps the
/// hand-off cheap at millions of packets per second. A batch keeps every frame's bytes in one
/// buffer, so capturing a packet costs a copy rather than an allocation, and the pipeline
/// thread frees one buffer per batch rather than one per packet allocated on another thread.
#[derive(Clone, Debug, Default)]
pub struct FrameBatch {
    bytes: Vec<u8>,
    frames: Vec<Slot>,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    ts: Timestamp,
    link: LinkType,
    start: usize,
    len: usize,
}

/// Room reserved per frame: RTP over Ethernet is about 200 bytes; larger frames grow the buffer.
const TYPICAL_FRAME: usize = 256;

impl FrameBatch {
    pub fn with_capacity(frames: usize) -> Self {
        FrameBatch {
            bytes: Vec::with_capacity(frames * TYPICAL_FRAME),
            frames: Vec::with_capacity(frames),
        }
    }

    pub fn push(&mut self, ts: Timestamp, link: LinkType, data: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.frames.push(Slot {
            ts,
            link,
            start,
            len: data.len(),
        });
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes of all the frames together.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The frames, in the order they were pushed.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = Frame<'_>> + '_ {
        self.frames.iter().map(|s| {
            let data = self.bytes.get(s.start..s.start + s.len).unwrap_or_default();
            Frame {
                ts: s.ts,
                link: s.link,
                data,
                orig_len: u32::try_from(s.len).unwrap_or(u32::MAX),
            }
        })
    }
}

impl IntoIterator for FrameBatch {
    type Item = OwnedFrame;
    type IntoIter = std::vec::IntoIter<OwnedFrame>;

    /// Takes the batch apart into frames that own their bytes (an allocation each: for tests
    /// and tools, not the packet path).
    fn into_iter(self) -> Self::IntoIter {
        let frames: Vec<OwnedFrame> = self
            .frames()
            .map(|f| OwnedFrame {
                ts: f.ts,
                link: f.link,
                data: f.data.to_vec(),
            })
            .collect();
        frames.into_iter()
    }
}

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
        let n = self.count(&batch);
        match self.tx.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                SensorCounters::add(&self.counters.internal_drops, n);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
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
    fn a_batch_gives_back_its_frames_in_order() {
        let mut b = FrameBatch::with_capacity(2);
        assert!(b.is_empty());
        let big = vec![7u8; 3 * TYPICAL_FRAME];
        b.push(Timestamp(1), LinkType::ETHERNET, b"first");
        b.push(Timestamp(2), LinkType::RAW, &[]);
        b.push(Timestamp(3), LinkType::HEP, &big);
        assert_eq!(b.len(), 3);
        assert_eq!(b.byte_len(), 5 + big.len());
        let seen: Vec<(i64, LinkType, Vec<u8>, u32)> = b
            .frames()
            .map(|f| (f.ts.nanos(), f.link, f.data.to_vec(), f.orig_len))
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, LinkType::ETHERNET, b"first".to_vec(), 5),
                (2, LinkType::RAW, Vec::new(), 0),
                (3, LinkType::HEP, big.clone(), big.len() as u32),
            ]
        );
        let owned: Vec<OwnedFrame> = b.into_iter().collect();
        assert_eq!(owned[0].data, b"first");
        assert_eq!(owned[2].data, big);
        assert_eq!(owned[2].link, LinkType::HEP);
    }
}
