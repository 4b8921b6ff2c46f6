//! Frames in runs: looking ahead to hide the cache misses of what the next packets will touch.
//!
//! Accounting an RTP packet reads its flow entry, its call and its stream. With thousands of
//! streams these reads miss the cache, and one after the other they were most of a packet's
//! cost. Given a run of frames, the engine decodes each frame's headers [`FAR`] frames early,
//! fetches that flow's front entry (see `flows.rs`), and [`NEAR`] frames early, when the entry
//! has arrived, fetches the call and stream it points to. By the time a frame's turn comes,
//! what it reads is in cache.
//!
//! The early look (a [`Peek`]) can be done on another thread with a [`Peeker`], which is how
//! `earshot analyze` splits the work: its reader thread peeks as it reads.

use crate::engine::{Engine, Sink};
use crate::flows::{prefetch, Key4};
use earshot_wire::{Decapsulator, Frame, Udp4};
use std::net::SocketAddrV4;

/// How many frames ahead flow entries are fetched, and then calls and streams: far enough apart
/// for a cache miss (~100 ns) to complete while the frames between are accounted. A frame's own
/// bytes are fetched before either, at [`DATA`].
const FAR: usize = 8;
const NEAR: usize = 4;
const DATA: usize = 32;

/// What a look ahead found in a frame: a plain IPv4 UDP datagram (where its payload lies in the
/// frame) and, if the payload looks like RTP, its flow. Borrows nothing, so it can be made on
/// another thread and travel with a copy of the frame's bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Peek {
    udp: Option<UdpAt>,
    key: Option<Key4>,
}

#[derive(Clone, Copy, Debug)]
struct UdpAt {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    vlan: Option<u16>,
    start: u32,
    end: u32,
}

impl Peek {
    fn udp<'f>(&self, frame: &Frame<'f>) -> Option<Udp4<'f>> {
        let u = self.udp?;
        Some(Udp4 {
            src: u.src,
            dst: u.dst,
            vlan: u.vlan,
            payload: frame.data.get(u.start as usize..u.end as usize)?,
        })
    }

    fn payload_at(&self, frame: &Frame<'_>) -> usize {
        let start = self.udp.map_or(0, |u| u.start as usize);
        frame.data.as_ptr() as usize + start
    }
}

/// Makes [`Peek`]s the way an [`Engine`] would: get one with [`Engine::peeker`].
#[derive(Debug)]
pub struct Peeker {
    decap: Decapsulator,
}

impl Peeker {
    #[inline]
    pub fn peek(&self, frame: &Frame<'_>) -> Peek {
        peek_with(&self.decap, frame)
    }
}

#[inline(always)]
fn peek_with(decap: &Decapsulator, f: &Frame<'_>) -> Peek {
    let Some(udp) = decap.peek_udp4(f.link, f.data) else {
        return Peek::default();
    };
    let key = match udp.payload.get(..12) {
        Some(&[0x80..=0xff, _, _, _, _, _, _, _, s0, s1, s2, s3]) => Some(Key4::new(
            udp.src,
            udp.dst,
            u32::from_be_bytes([s0, s1, s2, s3]),
        )),
        _ => None,
    };
    // The payload is a subslice of the frame, so its offset is a pointer difference.
    let start = udp.payload.as_ptr() as usize - f.data.as_ptr() as usize;
    Peek {
        udp: Some(UdpAt {
            src: udp.src,
            dst: udp.dst,
            vlan: udp.vlan,
            start: start as u32,
            end: (start + udp.payload.len()) as u32,
        }),
        key,
    }
}

impl Engine {
    /// A [`Peeker`] that decodes frames exactly as this engine's fast path does, for
    /// [`Engine::handle_peeked`].
    pub fn peeker(&self) -> Peeker {
        let cfg = self
            .decap
            .as_ref()
            .map(|d| d.config().clone())
            .unwrap_or_default();
        Peeker {
            decap: Decapsulator::with_config(cfg),
        }
    }

    /// Feeds a run of frames, exactly as [`Engine::handle_frame`] would one by one (a test
    /// holds it to that), but looking ahead to hide cache misses (see the module's notes).
    pub fn handle_frames(&mut self, frames: &[Frame<'_>], sink: &mut dyn Sink) {
        // Peeks of the frames ahead, by frame index modulo `FAR`.
        let mut ring = [Peek::default(); FAR];
        for (i, f) in frames.iter().take(FAR).enumerate() {
            ring[i] = self.peek(f);
        }
        for (i, f) in frames.iter().enumerate() {
            if let Some(ahead) = frames.get(i + DATA) {
                // Its headers, which the peek will read when it gets there.
                prefetch(ahead.data.as_ptr() as usize);
                prefetch(ahead.data.as_ptr() as usize + 63);
            }
            let near = ring[(i + NEAR) % FAR].key;
            let this = ring[i % FAR];
            self.account_frame(f, &this, near, sink);
            let far = frames
                .get(i + FAR)
                .map(|f| self.peek(f))
                .unwrap_or_default();
            if let Some(key) = far.key {
                self.flows.prefetch_entry(key);
            }
            ring[i % FAR] = far;
        }
    }

    /// [`Engine::handle_frames`] with the frames already peeked, elsewhere, by this engine's
    /// [`Engine::peeker`]: `peeks[i]` must be the peek of `frames[i]` (of the same bytes, which
    /// may have been copied since). A missing peek costs only speed (the frame takes the
    /// general path); the peek of another frame gives wrong results, though never a panic.
    pub fn handle_peeked(&mut self, frames: &[Frame<'_>], peeks: &[Peek], sink: &mut dyn Sink) {
        for (i, f) in frames.iter().enumerate() {
            if let (Some(ahead), Some(p)) = (frames.get(i + FAR), peeks.get(i + FAR)) {
                prefetch(p.payload_at(ahead));
                if let Some(key) = p.key {
                    self.flows.prefetch_entry(key);
                }
            }
            let near = peeks.get(i + NEAR).and_then(|p| p.key);
            let this = peeks.get(i).copied().unwrap_or_default();
            self.account_frame(f, &this, near, sink);
        }
    }

    fn peek(&self, f: &Frame<'_>) -> Peek {
        match &self.decap {
            Some(d) => peek_with(d, f),
            None => Peek::default(),
        }
    }

    fn account_frame(
        &mut self,
        f: &Frame<'_>,
        peek: &Peek,
        near: Option<Key4>,
        sink: &mut dyn Sink,
    ) {
        if let Some(key) = near {
            self.flows.prefetch_places(key);
        }
        self.count_frame(f.ts);
        match peek.udp(f) {
            Some(u) if self.decap.as_mut().is_some_and(|d| d.accept_peeked()) => {
                self.on_udp4(f.ts, &u, peek.key, sink)
            }
            _ => self.decode_layered(f.ts, f.link, f.data, sink),
        }
    }
}
