//! Frames that own their bytes, for handing captured frames to another thread: a
//! [`FrameBatch`] copies many frames into one buffer, so capturing a packet costs a copy
//! rather than an allocation, and whoever frees the batch frees one buffer, not one per packet.
//! Both the live sensor (capture threads to the pipeline) and `earshot analyze` (reader thread
//! to the analysis) move frames this way.

use crate::{Frame, LinkType, Timestamp};

/// A run of frames whose bytes live in one buffer, in the order they were pushed.
#[derive(Clone, Debug, Default)]
pub struct FrameBatch {
    bytes: Vec<u8>,
    /// Per frame: capture time, link type and where its bytes end in `bytes` (each frame
    /// starts where the previous one ends).
    index: Vec<(Timestamp, LinkType, usize)>,
}

/// Room reserved per frame: RTP over Ethernet is about 200 bytes; larger frames grow the buffer.
const TYPICAL_FRAME: usize = 256;

impl FrameBatch {
    /// An empty batch with room for `frames` typical frames without reallocating.
    pub fn with_capacity(frames: usize) -> Self {
        FrameBatch {
            bytes: Vec::with_capacity(frames * TYPICAL_FRAME),
            index: Vec::with_capacity(frames),
        }
    }

    /// Copies one frame in at the end.
    pub fn push(&mut self, ts: Timestamp, link: LinkType, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        self.index.push((ts, link, self.bytes.len()));
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no frame is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes of all the frames together.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Empties the batch, keeping its allocations for the next frames.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.index.clear();
    }

    /// The frames, in the order they were pushed. `orig_len` is the length kept: a batch does
    /// not record how long a cut frame was on the wire.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = Frame<'_>> + '_ {
        let mut start = 0;
        self.index.iter().map(move |&(ts, link, end)| {
            let data = self.bytes.get(start..end).unwrap_or_default();
            start = end;
            Frame {
                ts,
                link,
                data,
                orig_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            }
        })
    }
}

/// A captured frame that owns its bytes (what a [`FrameBatch`] yields when taken apart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedFrame {
    /// Capture time.
    pub ts: Timestamp,
    /// How `data` begins.
    pub link: LinkType,
    /// The bytes as captured (possibly cut to the snap length).
    pub data: Vec<u8>,
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

/// An empty vector on the allocation of `v`, for frames of another lifetime: a list of a
/// batch's frames, remade for every batch, keeps its buffer instead of allocating one each
/// time (a large one is mapped and unmapped from the kernel). Collecting an emptied vector in
/// place reuses its buffer.
pub fn reuse_frame_list<'a, 'b>(mut v: Vec<Frame<'a>>) -> Vec<Frame<'b>> {
    v.clear();
    // The closure never runs (the vector is empty); it only changes the lifetime.
    v.into_iter()
        .map(|f| Frame {
            ts: f.ts,
            link: f.link,
            data: &[],
            orig_len: f.orig_len,
        })
        .collect()
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
        let owned: Vec<OwnedFrame> = b.clone().into_iter().collect();
        assert_eq!(owned[0].data, b"first");
        assert_eq!(owned[2].data, big);
        assert_eq!(owned[2].link, LinkType::HEP);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.frames().count(), 0);
        b.push(Timestamp(4), LinkType::RAW, b"again");
        assert_eq!(b.frames().next().map(|f| f.data), Some(&b"again"[..]));
    }

    #[test]
    fn reusing_a_frame_list_keeps_the_allocation() {
        let data = [0u8; 4];
        let frame = Frame {
            ts: Timestamp::from_nanos(0),
            link: LinkType(1),
            data: &data,
            orig_len: 4,
        };
        let v = vec![frame; 1000];
        let before = v.capacity();
        let reused: Vec<Frame<'static>> = reuse_frame_list(v);
        assert!(reused.is_empty());
        assert_eq!(reused.capacity(), before);
    }
}
