//! The call list the manager reads: a persistent (copy-on-write) table, so that publishing a
//! new version costs what changed, not the number of calls.
//!
//! Calls sit in arrival order in fixed-size chunks behind `Arc`s. The pipeline edits its own
//! copy (`Arc::make_mut` copies a chunk only if a published version still shares it) and
//! publishes by cloning the chunk list: a pointer per chunk. Readers iterate the chunks, and a
//! `calls` subscriber compares chunk pointers with the version it saw last, so it looks inside
//! only the chunks that changed.
//!
//! Written here rather than taken from a persistent-collections crate (`imbl`, `rpds`): those
//! are ordered by key, not by arrival, iterate a tree instead of flat arrays, and do not expose
//! which parts two versions share, which is what makes the subscriber's diff cheap.

use crate::callref::CallRef;
use crate::listcalls::CallSummary;
use std::collections::HashMap;
use std::sync::Arc;

/// Calls per chunk. A change copies one chunk (64 pointers, 512 bytes); an emptied chunk is
/// dropped, and a chunk kept alive by one long call costs at most this many pointers.
pub const CHUNK: usize = 64;

/// Index partitions: adding or removing a call copies one partition of the callref index.
const INDEX_PARTS: usize = 256;

/// Where a call sits: its chunk's id (ids only grow) and its slot in the chunk. Calls never
/// move, so the index holds a call's slot for as long as it is listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Slot {
    chunk: u64,
    index: usize,
}

/// One chunk of the table: its id and its slots.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub id: u64,
    pub calls: Vec<Option<Arc<CallSummary>>>,
}

impl Chunk {
    fn live(&self) -> usize {
        self.calls.iter().filter(|c| c.is_some()).count()
    }
}

/// A version of the call table. Cloning it is a pointer copy per chunk and per index part.
#[derive(Clone, Debug)]
pub struct Listing {
    chunks: Vec<Arc<Chunk>>,
    /// The id the next chunk gets.
    next_chunk: u64,
    len: usize,
    index: Vec<Arc<HashMap<CallRef, Slot>>>,
}

impl Default for Listing {
    fn default() -> Self {
        Listing {
            chunks: Vec::new(),
            next_chunk: 0,
            len: 0,
            index: (0..INDEX_PARTS).map(|_| Arc::default()).collect(),
        }
    }
}

fn part(r: CallRef) -> usize {
    // Call references are already well mixed (a Feistel permutation of a counter).
    (r.as_u64() as usize) % INDEX_PARTS
}

impl Listing {
    /// Calls listed.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The calls in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CallSummary>> + Clone {
        self.chunks
            .iter()
            .flat_map(|c| c.calls.iter().filter_map(Option::as_ref))
    }

    /// The calls in arrival order, as the listing functions take them.
    pub fn summaries(&self) -> impl Iterator<Item = &CallSummary> + Clone {
        self.iter().map(|c| &**c)
    }

    /// The chunks, for a reader that compares versions ([`Arc::ptr_eq`] on a chunk: unchanged).
    pub fn chunks(&self) -> &[Arc<Chunk>] {
        &self.chunks
    }

    pub fn find(&self, r: CallRef) -> Option<&Arc<CallSummary>> {
        let slot = self.slot(r)?;
        let at = self.position(slot.chunk)?;
        self.chunks[at].calls.get(slot.index)?.as_ref()
    }

    fn slot(&self, r: CallRef) -> Option<Slot> {
        self.index[part(r)].get(&r).copied()
    }

    fn position(&self, chunk: u64) -> Option<usize> {
        self.chunks.binary_search_by_key(&chunk, |c| c.id).ok()
    }

    /// A call's new version (by its callref): it replaces the old one where it is, or, for a
    /// call not listed yet, is appended. True when it was appended.
    pub fn put(&mut self, summary: Arc<CallSummary>) -> bool {
        match self.slot(summary.callref) {
            Some(slot) => {
                self.set(slot, summary);
                false
            }
            None => {
                self.push(summary);
                true
            }
        }
    }

    fn push(&mut self, summary: Arc<CallSummary>) {
        let r = summary.callref;
        let open = self.chunks.last().is_some_and(|c| c.calls.len() < CHUNK);
        if !open {
            let id = self.next_chunk;
            self.next_chunk += 1;
            self.chunks.push(Arc::new(Chunk {
                id,
                calls: Vec::with_capacity(CHUNK),
            }));
        }
        let Some(last) = self.chunks.last_mut() else {
            unreachable!("a chunk was just ensured");
        };
        let chunk = Arc::make_mut(last);
        chunk.calls.push(Some(summary));
        let slot = Slot {
            chunk: chunk.id,
            index: chunk.calls.len() - 1,
        };
        Arc::make_mut(&mut self.index[part(r)]).insert(r, slot);
        self.len += 1;
    }

    fn set(&mut self, slot: Slot, summary: Arc<CallSummary>) {
        let Some(at) = self.position(slot.chunk) else {
            return;
        };
        let chunk = Arc::make_mut(&mut self.chunks[at]);
        if let Some(entry @ Some(_)) = chunk.calls.get_mut(slot.index) {
            *entry = Some(summary);
        }
    }

    /// Walks up to `count` chunks in order, from the first whose id is at least `from`:
    /// `update` gives a call's new summary (its callref unchanged), or `None` to keep it. A
    /// chunk in which nothing changed stays shared with the published versions. Returns where
    /// the next walk starts: the following chunk's id, or 0 after the last chunk.
    ///
    /// The pipeline refreshes every call's numbers once a second this way, a run of chunks
    /// per publish, so a publish copies (and a `calls` subscriber compares) those chunks
    /// only, not one call in every chunk.
    pub fn update_chunks(
        &mut self,
        from: u64,
        count: usize,
        mut update: impl FnMut(&CallSummary) -> Option<Arc<CallSummary>>,
    ) -> u64 {
        let start = self.chunks.partition_point(|c| c.id < from);
        let end = start.saturating_add(count).min(self.chunks.len());
        for at in start..end {
            for i in 0..self.chunks[at].calls.len() {
                let Some(fresh) = self.chunks[at].calls[i].as_deref().and_then(&mut update) else {
                    continue;
                };
                let chunk = Arc::make_mut(&mut self.chunks[at]);
                if let Some(entry @ Some(_)) = chunk.calls.get_mut(i) {
                    debug_assert_eq!(entry.as_ref().map(|c| c.callref), Some(fresh.callref));
                    *entry = Some(fresh);
                }
            }
        }
        self.chunks.get(end).map_or(0, |c| c.id)
    }

    /// Takes a call out; a chunk left empty (and not the open one) is dropped.
    pub fn remove(&mut self, r: CallRef) -> Option<Arc<CallSummary>> {
        let slot = self.slot(r)?;
        let at = self.position(slot.chunk)?;
        let chunk = Arc::make_mut(&mut self.chunks[at]);
        let gone = chunk.calls.get_mut(slot.index)?.take()?;
        let full = chunk.calls.len() == CHUNK;
        if full && chunk.live() == 0 {
            self.chunks.remove(at);
        }
        Arc::make_mut(&mut self.index[part(gone.callref)]).remove(&gone.callref);
        self.len -= 1;
        Some(gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(n: u64) -> Arc<CallSummary> {
        Arc::new(crate::calls_feed::tests::call(n))
    }

    /// For each chunk of two versions, whether they share it.
    fn shared_chunks(a: &Listing, b: &Listing) -> Vec<bool> {
        a.chunks()
            .iter()
            .zip(b.chunks())
            .map(|(x, y)| Arc::ptr_eq(x, y))
            .collect()
    }

    fn ids(l: &Listing) -> Vec<u64> {
        l.iter().map(|c| c.id).collect()
    }

    fn callref(n: u64) -> CallRef {
        CallRef::from_u64(0x100 + n)
    }

    #[test]
    fn keeps_arrival_order_through_removals() {
        let mut l = Listing::default();
        for n in 0..200 {
            assert!(l.put(summary(n)), "a new call is appended");
        }
        for n in (0..200).filter(|n| n % 3 == 0) {
            assert_eq!(l.remove(callref(n)).map(|c| c.id), Some(n));
        }
        let want: Vec<u64> = (0..200).filter(|n| n % 3 != 0).collect();
        assert_eq!(ids(&l), want);
        assert_eq!(l.len(), want.len());
        assert!(l.find(callref(3)).is_none());
        assert_eq!(l.find(callref(4)).map(|c| c.id), Some(4));
        assert!(l.remove(callref(0)).is_none(), "removed twice");
    }

    #[test]
    fn a_published_version_does_not_change_and_shares_what_did_not() {
        let mut l = Listing::default();
        for n in 0..(3 * CHUNK as u64) {
            l.put(summary(n));
        }
        let published = l.clone();
        let mut changed = (*summary(5)).clone();
        changed.duration_secs = 9;
        assert!(!l.put(Arc::new(changed)), "replaced where it was");
        assert_eq!(l.len(), 3 * CHUNK);
        assert_eq!(published.find(callref(5)).map(|c| c.duration_secs), Some(0));
        assert_eq!(l.find(callref(5)).map(|c| c.duration_secs), Some(9));
        assert_eq!(ids(&l), (0..(3 * CHUNK as u64)).collect::<Vec<_>>());
        let shared = shared_chunks(&published, &l);
        assert_eq!(
            shared,
            [false, true, true],
            "only the first chunk was copied"
        );
    }

    #[test]
    fn emptied_chunks_are_dropped_and_memory_comes_back() {
        let mut l = Listing::default();
        let all = 10 * CHUNK as u64;
        for n in 0..all {
            l.put(summary(n));
        }
        for n in 0..(9 * CHUNK as u64) {
            l.remove(callref(n));
        }
        assert_eq!(l.chunks().len(), 1);
        assert_eq!(l.len(), CHUNK);
        for n in (9 * CHUNK as u64)..all {
            l.remove(callref(n));
        }
        assert!(l.is_empty());
        assert!(l.chunks().is_empty());
        assert!(l.index.iter().all(|p| p.is_empty()));
        // A new call after everything ended starts a new chunk.
        assert!(l.put(summary(9999)));
        assert_eq!(l.find(callref(9999)).map(|c| c.id), Some(9999));
    }

    #[test]
    fn a_walk_over_chunks_copies_only_those_it_changed_and_goes_round() {
        let mut l = Listing::default();
        for n in 0..(4 * CHUNK as u64) {
            l.put(summary(n));
        }
        let published = l.clone();
        let bump = |c: &CallSummary| {
            let mut fresh = c.clone();
            fresh.duration_secs += 1;
            Some(Arc::new(fresh))
        };
        let mut seen = Vec::new();
        let next = l.update_chunks(0, 2, |c| {
            seen.push(c.id);
            bump(c)
        });
        assert_eq!(seen, (0..(2 * CHUNK as u64)).collect::<Vec<_>>());
        assert_eq!(
            next,
            l.chunks()[2].id,
            "the walk goes on at the third chunk"
        );
        let next = l.update_chunks(next, 2, |c| (c.id % 2 == 0).then(|| bump(c)).flatten());
        assert_eq!(next, 0, "after the last chunk the walk starts over");
        let shared = shared_chunks(&published, &l);
        assert_eq!(shared, [false; 4], "every chunk had a change");
        assert_eq!(published.find(callref(1)).map(|c| c.duration_secs), Some(0));
        assert_eq!(l.find(callref(1)).map(|c| c.duration_secs), Some(1));
        assert_eq!(
            l.find(callref(3 * CHUNK as u64 + 1))
                .map(|c| c.duration_secs),
            Some(0)
        );
        assert_eq!(
            l.find(callref(3 * CHUNK as u64 + 2))
                .map(|c| c.duration_secs),
            Some(1)
        );

        let before = l.clone();
        let next = l.update_chunks(0, 10, |_| None);
        assert_eq!(next, 0);
        assert_eq!(
            shared_chunks(&before, &l),
            [true; 4],
            "nothing changed: nothing copied"
        );
        // A walk resumes where it was even if the chunk it stopped at has gone since.
        for n in (2 * CHUNK as u64)..(3 * CHUNK as u64) {
            l.remove(callref(n));
        }
        let mut seen = Vec::new();
        l.update_chunks(before.chunks()[2].id, 1, |c| {
            seen.push(c.id);
            None
        });
        assert_eq!(seen.first(), Some(&(3 * CHUNK as u64)));
    }

    #[test]
    fn the_open_chunk_is_kept_while_it_can_take_calls() {
        let mut l = Listing::default();
        l.put(summary(1));
        let a = l.slot(callref(1)).expect("listed");
        l.remove(callref(1));
        l.put(summary(2));
        let b = l.slot(callref(2)).expect("listed");
        assert_eq!(a.chunk, b.chunk, "the open chunk is reused");
        assert_eq!(ids(&l), [2]);
    }
}
