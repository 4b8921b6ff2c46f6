//! IPv4/IPv6 fragment reassembly with bounded memory.
//!
//! Limits: at most `max_datagrams` datagrams in progress (the oldest is dropped to make room)
//! and `max_bytes` per datagram. Overlaps: duplicated fragments are common on mirror ports
//! (the same packet seen twice) and are accepted when the overlapping bytes agree; an overlap
//! with different bytes drops the whole datagram (as RFC 5722 requires for IPv6), because
//! any choice between the two versions could be exploited to show us something other than
//! what the endpoint reassembled. Coverage is tracked in 8-byte blocks, the unit of fragment
//! offsets.

use crate::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;

/// Identifies a datagram: RFC 791 (src, dst, id, protocol); for IPv6 `proto` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
}

pub(crate) struct Fragment<'a> {
    pub offset: usize,
    pub more: bool,
    /// IPv4 protocol or IPv6 next header; the first fragment's is the datagram's.
    pub next: u8,
    pub data: &'a [u8],
}

#[derive(Debug)]
struct Partial {
    started: Timestamp,
    data: Vec<u8>,
    /// One bit per 8-byte block received.
    have: Vec<u64>,
    total: Option<usize>,
    next: Option<u8>,
}

impl Partial {
    fn has(&self, block: usize) -> bool {
        self.have
            .get(block / 64)
            .is_some_and(|w| w & (1 << (block % 64)) != 0)
    }

    fn set(&mut self, block: usize) {
        if let Some(w) = self.have.get_mut(block / 64) {
            *w |= 1 << (block % 64);
        }
    }

    fn complete(&self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        (0..total.div_ceil(8)).all(|b| self.has(b))
    }

    /// Copies the blocks of `f` not yet received. `Err` if it contradicts the datagram's end
    /// or bytes already received.
    fn add(&mut self, f: &Fragment<'_>, max_bytes: usize) -> Result<(), ()> {
        let end = f.offset.checked_add(f.data.len()).ok_or(())?;
        if end > max_bytes || (f.more && f.data.len() % 8 != 0) {
            return Err(());
        }
        match (f.more, self.total) {
            (false, Some(t)) if t != end => return Err(()),
            (false, _) => self.total = Some(end),
            (true, Some(t)) if end > t => return Err(()),
            (true, _) => {}
        }
        if let Some(t) = self.total {
            if self.data.len() > t {
                return Err(());
            }
        }
        if f.offset == 0 {
            self.next = Some(f.next);
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        let first = f.offset / 8;
        for block in first..end.div_ceil(8) {
            let lo = block * 8;
            let hi = (lo + 8).min(end);
            let src = f.data.get(lo - f.offset..hi - f.offset).ok_or(())?;
            let dst = self.data.get_mut(lo..hi).ok_or(())?;
            if self
                .have
                .get(block / 64)
                .is_some_and(|w| w & (1 << (block % 64)) != 0)
            {
                if dst != src {
                    return Err(());
                }
                continue;
            }
            dst.copy_from_slice(src);
            self.set(block);
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct FragTable {
    map: HashMap<FragKey, Partial>,
    max_datagrams: usize,
    max_bytes: usize,
    next_sweep: i64,
}

impl FragTable {
    pub(crate) fn new(max_datagrams: usize, max_bytes: usize) -> Self {
        Self {
            map: HashMap::new(),
            max_datagrams: max_datagrams.max(1),
            max_bytes,
            next_sweep: i64::MIN,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Adds a fragment; returns (first fragment's next header, payload) when the datagram is
    /// complete. `Err` drops the datagram as malformed.
    pub(crate) fn insert(
        &mut self,
        ts: Timestamp,
        key: FragKey,
        f: Fragment<'_>,
    ) -> Result<Option<(u8, Vec<u8>)>, ()> {
        if !self.map.contains_key(&key) && self.map.len() >= self.max_datagrams {
            self.evict_oldest();
        }
        let words = self.max_bytes.div_ceil(8).div_ceil(64);
        let p = self.map.entry(key).or_insert_with(|| Partial {
            started: ts,
            data: Vec::new(),
            have: vec![0; words],
            total: None,
            next: None,
        });
        if p.add(&f, self.max_bytes).is_err() {
            self.map.remove(&key);
            return Err(());
        }
        if !p.complete() {
            return Ok(None);
        }
        let Some(mut p) = self.map.remove(&key) else {
            return Ok(None);
        };
        p.data.truncate(p.total.unwrap_or(0));
        Ok(p.next.map(|n| (n, p.data)))
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .map
            .iter()
            .min_by_key(|(_, p)| p.started)
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            self.map.remove(&k);
        }
    }

    /// Drops datagrams older than `timeout_ns`; returns how many. Sweeps at most once per
    /// second of capture time so that a stream of fragments doesn't scan the table each time.
    pub(crate) fn expire(&mut self, now: Timestamp, timeout_ns: i64) -> u64 {
        if now.0 < self.next_sweep {
            return 0;
        }
        self.next_sweep = now.0.saturating_add(1_000_000_000);
        let before = self.map.len();
        self.map
            .retain(|_, p| now.0.saturating_sub(p.started.0) <= timeout_ns);
        (before - self.map.len()) as u64
    }
}
