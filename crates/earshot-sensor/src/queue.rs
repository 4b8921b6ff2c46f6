//! The queue from the fan-out thread to one listener's connection, bounded in bytes: per
//! listener, and by one memory budget for all listeners together. Frames differ a hundredfold
//! in size (8 kHz mono against 48 kHz stereo), so a bound in frames bounds nothing. A send
//! that would go over either bound fails, and the fan-out drops that listener and counts it.

use earshot_manager::stream_proto::Frame;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frames per queue as a backstop: the byte bounds are what normally stops a listener.
const MAX_FRAMES: usize = 16_384;

/// Bytes that may be queued for all listeners at once.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes queued for listeners right now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                (u + n <= self.limit).then_some(u + n)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// Memory a queued frame holds (its samples dominate).
pub fn frame_bytes(f: &Frame) -> usize {
    let body = match f {
        Frame::Audio(a) => a.samples.capacity() * 2,
        Frame::Opus(o) => o.packet.capacity(),
        _ => 128,
    };
    body + std::mem::size_of::<Frame>()
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// This listener's queue is at its byte bound: it is not keeping up.
    Full,
    /// All listeners together are at the memory budget.
    OverBudget,
    /// The connection is gone.
    Closed,
}

struct Account {
    queued: AtomicUsize,
    budget: Arc<MemoryBudget>,
}

impl Account {
    fn release(&self, n: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
        self.budget.give_back(n);
    }
}

/// The fan-out's end of a listener queue.
#[derive(Clone)]
pub struct FrameTx {
    tx: mpsc::Sender<Frame>,
    account: Arc<Account>,
    limit: usize,
}

/// The connection's end of a listener queue. Dropping it frees what is still queued.
pub struct FrameRx {
    rx: mpsc::Receiver<Frame>,
    account: Arc<Account>,
}

/// A queue holding at most `limit` bytes of frames, drawn from `budget`.
pub fn channel(limit: usize, budget: Arc<MemoryBudget>) -> (FrameTx, FrameRx) {
    let (tx, rx) = mpsc::channel(MAX_FRAMES);
    let account = Arc::new(Account {
        queued: AtomicUsize::new(0),
        budget,
    });
    (
        FrameTx {
            tx,
            account: account.clone(),
            limit,
        },
        FrameRx { rx, account },
    )
}

impl FrameTx {
    /// Queues a frame without waiting. An end frame is small and always let through (up to
    /// the frame backstop), so a refused or dropped listener still learns why.
    pub fn try_send(&self, frame: Frame) -> Result<(), SendError> {
        let n = frame_bytes(&frame);
        let end = matches!(frame, Frame::End(_));
        let a = &self.account;
        if !end {
            if a.queued.load(Ordering::Relaxed) + n > self.limit {
                return Err(SendError::Full);
            }
            if !a.budget.take(n) {
                return Err(SendError::OverBudget);
            }
        } else {
            a.budget.used.fetch_add(n, Ordering::Relaxed);
        }
        a.queued.fetch_add(n, Ordering::Relaxed);
        match self.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(e) => {
                a.release(n);
                match e {
                    mpsc::error::TrySendError::Full(_) => Err(SendError::Full),
                    mpsc::error::TrySendError::Closed(_) => Err(SendError::Closed),
                }
            }
        }
    }

    /// Bytes waiting in this queue.
    pub fn queued(&self) -> usize {
        self.account.queued.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl FrameRx {
    pub async fn recv(&mut self) -> Option<Frame> {
        let f = self.rx.recv().await?;
        self.account.release(frame_bytes(&f));
        Some(f)
    }

    pub fn try_recv(&mut self) -> Option<Frame> {
        let f = self.rx.try_recv().ok()?;
        self.account.release(frame_bytes(&f));
        Some(f)
    }

    /// True when the fan-out let go of this listener (dropped it, or the sensor stopped).
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed() && self.rx.is_empty()
    }
}

impl Drop for FrameRx {
    fn drop(&mut self) {
        self.rx.close();
        while self.try_recv().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use earshot_manager::stream_proto::{AudioFrame, EndFrame, EndReason};

    fn audio(samples: usize) -> Frame {
        Frame::Audio(AudioFrame {
            seq: 0,
            capture_ts_ns: 0,
            rate: 48000,
            channels: 2,
            samples: vec![0; samples],
        })
    }

    fn end() -> Frame {
        Frame::End(EndFrame {
            reason: EndReason::Overflow,
            detail: None,
        })
    }

    #[test]
    fn a_queue_holds_its_bytes_and_no_more() {
        let budget = MemoryBudget::new(1 << 30);
        let (tx, mut rx) = channel(64 * 1024, budget.clone());
        let mut sent = 0;
        while tx.try_send(audio(1920)).is_ok() {
            sent += 1;
        }
        assert_eq!(tx.try_send(audio(1920)), Err(SendError::Full));
        assert!(
            (15..=16).contains(&sent),
            "{sent} frames of 3.8 kB in 64 kB"
        );
        assert!(tx.queued() <= 64 * 1024);
        assert!(tx.try_send(end()).is_ok(), "the end frame always fits");
        while rx.try_recv().is_some() {}
        assert_eq!(tx.queued(), 0);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn listeners_share_one_budget_and_a_dropped_receiver_gives_its_bytes_back() {
        let budget = MemoryBudget::new(100 * 1024);
        let (a, rx_a) = channel(64 * 1024, budget.clone());
        let (b, _rx_b) = channel(64 * 1024, budget.clone());
        while a.try_send(audio(1920)).is_ok() {}
        let mut err = Ok(());
        while err.is_ok() {
            err = b.try_send(audio(1920));
        }
        assert_eq!(err, Err(SendError::OverBudget));
        assert!(budget.used() <= 100 * 1024);
        drop(rx_a);
        assert!(
            budget.used() < 40 * 1024,
            "{} bytes still held",
            budget.used()
        );
        assert_eq!(a.try_send(audio(1920)), Err(SendError::Closed));
    }
}
