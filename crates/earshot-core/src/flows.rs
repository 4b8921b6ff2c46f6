//! The flow table: which stream an RTP packet's (source, destination, SSRC) belongs to.
//!
//! Every RTP packet looks itself up here, then reads its call and its stream. With thousands
//! of streams these three reads are mostly cache misses, and they depend on each other, so
//! they were most of the cost of a packet. Two things take them off the critical path:
//!
//! * IPv4 keys (nearly all traffic) also live in a two-way set-associative front table of one
//!   cache line per entry, whose set is computed from the packet alone, so it can be fetched
//!   early. Two ways because with one, flows that share a slot evict each other on every
//!   packet (about a third of 2,000 flows in 4,096 slots).
//! * Each front entry remembers where its call and stream were last found in memory. Those
//!   addresses are only ever used as prefetch hints (a prefetch never faults and reads nothing
//!   into the program), so a stale one after a table grew costs a wasted prefetch, not safety.
//!
//! [`FlowTable::prefetch_entry`] and then [`FlowTable::prefetch_places`] run a few packets
//! ahead of the packet being accounted (see `lookahead.rs`), and by the time that packet comes
//! its lines are in cache.

use crate::media::StreamLoc;
use crate::stream::StreamKey;
use rustc_hash::FxHashMap;
use std::net::{SocketAddr, SocketAddrV4};

/// Sets of two front entries: a power of two. 8,192 sets (1 MB of address space, of which
/// only the entries in use are ever touched) keep flows that overflow a set rare up to about
/// 10,000 active streams; beyond that the map answers for them.
const SET_BITS: u32 = 13;
/// Marks an empty front entry (no stream has this index).
const EMPTY: u32 = u32::MAX;

/// An IPv4 flow key packed into two words: addresses, then ports and SSRC.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Key4([u64; 2]);

impl Key4 {
    pub fn new(src: SocketAddrV4, dst: SocketAddrV4, ssrc: u32) -> Self {
        Key4([
            u64::from(src.ip().to_bits()) << 32 | u64::from(dst.ip().to_bits()),
            u64::from(src.port()) << 48 | u64::from(dst.port()) << 32 | u64::from(ssrc),
        ])
    }

    pub fn of(key: &StreamKey) -> Option<Self> {
        match (key.src, key.dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => Some(Key4::new(s, d, key.ssrc)),
            _ => None,
        }
    }

    /// Where this key's set (its two front entries) lies in the front table.
    fn set(self) -> std::ops::Range<usize> {
        // Fx-style multiply-and-take-the-top-bits: cheap, and mixes every input bit into them.
        let h = (self.0[0].rotate_left(26) ^ self.0[1]).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        let first = (h >> (64 - SET_BITS)) as usize * 2;
        first..first + 2
    }
}

#[derive(Copy, Clone, Debug)]
#[repr(C, align(64))]
struct Front {
    key: Key4,
    loc: StreamLoc,
    /// Where the call and the stream were when this flow's last packet was accounted.
    call_at: usize,
    stream_at: usize,
}

impl Default for Front {
    fn default() -> Self {
        Front {
            key: Key4::default(),
            loc: StreamLoc {
                call: None,
                idx: EMPTY,
                epoch: 0,
            },
            call_at: 0,
            stream_at: 0,
        }
    }
}

impl Front {
    fn holds(&self, key: Key4) -> bool {
        self.key == key && self.loc.idx != EMPTY
    }
}

pub(crate) struct FlowTable {
    map: FxHashMap<StreamKey, StreamLoc>,
    front: Box<[Front]>,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable {
            map: FxHashMap::default(),
            front: vec![Front::default(); 2 << SET_BITS].into_boxed_slice(),
        }
    }
}

impl FlowTable {
    /// Where a flow's stream lives, without touching the front table.
    pub fn peek(&self, key: &StreamKey) -> Option<StreamLoc> {
        self.map.get(key).copied()
    }

    /// Where an IPv4 flow's stream lives, if the front table has it.
    pub fn front(&self, key: Key4) -> Option<StreamLoc> {
        self.entry(key).map(|f| f.loc)
    }

    /// Where a flow's stream lives; an IPv4 flow found in the map takes its front entry.
    pub fn find(&mut self, key: &StreamKey) -> Option<StreamLoc> {
        let Some(k4) = Key4::of(key) else {
            return self.peek(key);
        };
        if let Some(f) = self.entry(k4) {
            return Some(f.loc);
        }
        let loc = self.peek(key)?;
        self.set_front(k4, loc);
        Some(loc)
    }

    pub fn insert(&mut self, key: StreamKey, loc: StreamLoc) {
        self.map.insert(key, loc);
        if let Some(k4) = Key4::of(&key) {
            self.set_front(k4, loc);
        }
    }

    pub fn remove(&mut self, key: &StreamKey) {
        self.map.remove(key);
        if let Some(f) = Key4::of(key).and_then(|k4| self.entry_mut(k4)) {
            *f = Front::default();
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// Gives back the map's slack after a peak (the front table is fixed in size).
    pub fn shrink(&mut self) {
        crate::engine::shrink_map(&mut self.map);
    }

    fn entry(&self, key: Key4) -> Option<&Front> {
        let set = self.front.get(key.set())?;
        set.iter().find(|f| f.holds(key))
    }

    fn entry_mut(&mut self, key: Key4) -> Option<&mut Front> {
        let set = self.front.get_mut(key.set())?;
        set.iter_mut().find(|f| f.holds(key))
    }

    /// Puts a flow first in its set; the entry it displaces moves second, and the second is
    /// forgotten (the map still has it), so each set keeps its two most recently placed flows.
    fn set_front(&mut self, key: Key4, loc: StreamLoc) {
        let fresh = Front {
            key,
            loc,
            call_at: 0,
            stream_at: 0,
        };
        if let Some(f) = self.entry_mut(key) {
            *f = fresh;
            return;
        }
        if let Some([first, second]) = self.front.get_mut(key.set()) {
            *second = std::mem::replace(first, fresh);
        }
    }

    /// Remembers where a flow's call and stream are, for [`FlowTable::prefetch_places`].
    pub fn remember_place<C, S>(&mut self, key: Key4, call: &C, stream: &S) {
        if let Some(f) = self.entry_mut(key) {
            f.call_at = call as *const C as usize;
            f.stream_at = stream as *const S as usize;
        }
    }

    /// Starts loading the front entries a coming packet of this flow will look at.
    pub fn prefetch_entry(&self, key: Key4) {
        if let Some(set) = self.front.get(key.set()) {
            for f in set {
                prefetch(f as *const Front as usize);
            }
        }
    }

    /// Starts loading the call and stream of a coming packet of this flow, if its front entry
    /// (best fetched by [`FlowTable::prefetch_entry`] a little earlier) knows where they are.
    pub fn prefetch_places(&self, key: Key4) {
        if let Some(f) = self.entry(key).filter(|f| f.call_at != 0) {
            prefetch(f.call_at);
            // The fields a packet updates span the stream's first five cache lines.
            for line in 0..5 {
                prefetch(f.stream_at + 64 * line);
            }
        }
    }
}

/// Asks the CPU to bring the cache line holding `addr` closer; a hint, nothing more.
#[inline(always)]
pub(crate) fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch instruction never faults and never makes data visible to the
    // program, whatever the address (stale, unmapped or null); it only warms the cache.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> StreamKey {
        StreamKey {
            src: SocketAddr::from(([10, 0, 0, 1], 4000)),
            dst: SocketAddr::from(([10, 0, 0, 2], 5000)),
            ssrc: n,
        }
    }

    fn loc(idx: u32) -> StreamLoc {
        StreamLoc {
            call: Some(7),
            idx,
            epoch: 1,
        }
    }

    #[test]
    fn front_and_map_agree_through_insert_and_remove() {
        let mut t = FlowTable::default();
        // Enough keys that many share a front slot and evict each other.
        for n in 0..20_000 {
            t.insert(key(n), loc(n));
        }
        for n in 0..20_000 {
            assert_eq!(t.find(&key(n)).map(|l| l.idx), Some(n));
        }
        for n in (0..20_000).step_by(2) {
            t.remove(&key(n));
        }
        for n in 0..20_000 {
            let want = (n % 2 == 1).then_some(n);
            assert_eq!(t.find(&key(n)).map(|l| l.idx), want, "key {n}");
        }
        assert_eq!(t.len(), 10_000);
    }

    #[test]
    fn ipv6_flows_use_the_map_alone() {
        let mut t = FlowTable::default();
        let k = StreamKey {
            src: "[2001:db8::1]:4000".parse().unwrap(),
            dst: "[2001:db8::2]:5000".parse().unwrap(),
            ssrc: 9,
        };
        t.insert(k, loc(3));
        assert_eq!(t.find(&k).map(|l| l.idx), Some(3));
        t.remove(&k);
        assert_eq!(t.find(&k).map(|l| l.idx), None);
    }
}
