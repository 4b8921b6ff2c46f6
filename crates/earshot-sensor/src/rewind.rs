//! Per-call rewind: the last seconds of each call's RTP, kept as packets (not audio), so a
//! listener who joins late can start from the beginning of the call or N seconds ago. Packets
//! are far smaller than decoded audio and only the listeners who ask pay for decoding.
//!
//! The pipeline thread owns the store, so handing a listener its rewind must cost it O(1)-ish
//! work, not a copy per packet: packets are packed into byte chunks, and a chunk once full is
//! sealed behind an `Arc`. A subscription takes the sealed chunks by pointer and copies only
//! the open one (at most 16 KiB); the fan-out thread reads the packets back and decodes them.

use earshot_core::{CallKey, Party, PayloadFormat, RtpPacket};
use earshot_wire::Timestamp;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// A packet kept for rewind, owning its payload.
#[derive(Clone, Debug)]
pub struct KeptPacket {
    pub party: Party,
    pub ts: Timestamp,
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    pub marker: bool,
    pub event: bool,
    pub encrypted: bool,
    pub payload: Vec<u8>,
    pub format: Option<PayloadFormat>,
    pub format_index: Option<u8>,
}

impl KeptPacket {
    pub fn from_rtp(p: &RtpPacket<'_>) -> Self {
        KeptPacket {
            party: p.party,
            ts: p.ts,
            ssrc: p.ssrc,
            seq: p.seq,
            timestamp: p.timestamp,
            payload_type: p.payload_type,
            marker: p.marker,
            event: p.event,
            encrypted: p.encrypted,
            payload: p.payload.to_vec(),
            format: p.format.cloned(),
            format_index: p.format_index,
        }
    }

    pub fn as_rtp(&self, call: CallKey) -> RtpPacket<'_> {
        RtpPacket {
            call,
            party: self.party,
            ts: self.ts,
            ssrc: self.ssrc,
            seq: self.seq,
            timestamp: self.timestamp,
            payload_type: self.payload_type,
            marker: self.marker,
            payload: &self.payload,
            format: self.format.as_ref(),
            format_index: self.format_index,
            encrypted: self.encrypted,
            event: self.event,
        }
    }
}

/// How much of a call's past a listener joining mid-call decodes (and discards) to warm its
/// decoders. A cold GSM decoder on a steady tone never converges, so a few hundred
/// milliseconds are not enough: the decoders must start where the encoder's state was near its
/// own start (speech pauses, the call's start). 30 s covers that for most calls and bounds the
/// work per new listener (decoded in batches in the fan-out thread, never on the packet path).
pub const PRIME_NS: i64 = 30 * 1_000_000_000;

/// The record header of a packet in a rewind chunk: capture time (8), SSRC (4), RTP timestamp
/// (4), sequence (2), payload length (2), payload type, flags, format index (1 each), padding.
const RECORD_HEADER: usize = 24;
/// A chunk is sealed (and shared, never copied again) once it holds this many bytes; the open
/// chunk is the only part a subscription copies, so this bounds the copy per subscription.
const CHUNK_BYTES: usize = 16 * 1024;
const NO_FORMAT: u8 = u8::MAX;
const FLAG_CALLED: u8 = 1;
const FLAG_MARKER: u8 = 2;
const FLAG_EVENT: u8 = 4;
const FLAG_ENCRYPTED: u8 = 8;

/// Writes the record of `p` (header, then payload) at the end of `out`; false (nothing
/// written) for a payload too long for the record's 16-bit length.
fn write_record(out: &mut Vec<u8>, p: &RtpPacket<'_>) -> bool {
    let Ok(len) = u16::try_from(p.payload.len()) else {
        return false;
    };
    let mut flags = 0;
    if p.party == Party::Called {
        flags |= FLAG_CALLED;
    }
    if p.marker {
        flags |= FLAG_MARKER;
    }
    if p.event {
        flags |= FLAG_EVENT;
    }
    if p.encrypted {
        flags |= FLAG_ENCRYPTED;
    }
    let format = p.format_index.unwrap_or(NO_FORMAT);
    out.extend_from_slice(&p.ts.nanos().to_le_bytes());
    out.extend_from_slice(&p.ssrc.to_le_bytes());
    out.extend_from_slice(&p.timestamp.to_le_bytes());
    out.extend_from_slice(&p.seq.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[p.payload_type, flags, format, 0]);
    out.extend_from_slice(p.payload);
    true
}

/// The packet whose record starts at `pos` in `bytes`, and where the next record starts. The
/// record's format byte is a position in `formats` (the call's, see
/// [`RtpPacket::format_index`]).
fn read_record<'a>(
    bytes: &'a [u8],
    pos: usize,
    call: CallKey,
    formats: &'a [PayloadFormat],
) -> Option<(RtpPacket<'a>, usize)> {
    let h = bytes.get(pos..pos + RECORD_HEADER)?;
    let le = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default();
    let ts = i64::from_le_bytes(le(0..8).try_into().ok()?);
    let ssrc = u32::from_le_bytes(le(8..12).try_into().ok()?);
    let timestamp = u32::from_le_bytes(le(12..16).try_into().ok()?);
    let seq = u16::from_le_bytes(le(16..18).try_into().ok()?);
    let len = usize::from(u16::from_le_bytes(le(18..20).try_into().ok()?));
    let (payload_type, flags, format) = (h[20], h[21], h[22]);
    let start = pos + RECORD_HEADER;
    let payload = bytes.get(start..start + len)?;
    let format_index = (format != NO_FORMAT).then_some(format);
    let packet = RtpPacket {
        call,
        party: if flags & FLAG_CALLED != 0 {
            Party::Called
        } else {
            Party::Caller
        },
        ts: Timestamp(ts),
        ssrc,
        seq,
        timestamp,
        payload_type,
        marker: flags & FLAG_MARKER != 0,
        payload,
        format: format_index.and_then(|i| formats.get(usize::from(i))),
        format_index,
        event: flags & FLAG_EVENT != 0,
        encrypted: flags & FLAG_ENCRYPTED != 0,
    };
    Some((packet, start + len))
}

/// The packet a single record (from [`PacketBatch::records`]) holds.
pub(crate) fn record_packet<'a>(
    record: &'a [u8],
    call: CallKey,
    formats: &'a [PayloadFormat],
) -> Option<RtpPacket<'a>> {
    read_record(record, 0, call, formats).map(|(p, _)| p)
}

/// The capture time of the record at the start of `record`.
fn record_ts(record: &[u8]) -> i64 {
    record
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(i64::MIN, i64::from_le_bytes)
}

/// The RTP packets of many calls on their way from the pipeline thread to the fan-out thread,
/// in arrival order in one buffer: the pipeline's work per packet is one sequential copy (the
/// scattering into each call's rewind, cold memory at 10,000 calls, happens on the fan-out's
/// core). The buffer goes back to the pipeline once read, so a batch costs no allocation.
///
/// What must not be lost with the packets travels with them: the calls' formats (before the
/// packets, which name them by position) and the calls that ended (after). When the hand-off
/// is full, only the packets are dropped.
#[derive(Debug, Default)]
pub struct PacketBatch {
    bytes: Vec<u8>,
    packets: usize,
    formats: Vec<(CallKey, Arc<[PayloadFormat]>)>,
    forgets: Vec<CallKey>,
    /// Every call that still exists, sorted, when the pipeline had to drop formats and ended
    /// calls: the fan-out forgets the others before taking the batch in.
    retain: Option<Vec<CallKey>>,
}

/// Bytes before a packet's record in a batch: its call.
const CALL_PREFIX: usize = 8;

impl PacketBatch {
    pub fn push(&mut self, p: &RtpPacket<'_>) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&p.call.to_le_bytes());
        if write_record(&mut self.bytes, p) {
            self.packets += 1;
        } else {
            self.bytes.truncate(at);
        }
    }

    /// The call's formats from now on (they only grow; see [`RtpPacket::format_index`]).
    pub fn set_formats(&mut self, call: CallKey, formats: Arc<[PayloadFormat]>) {
        self.formats.push((call, formats));
    }

    /// The call is gone: its rewind is freed once this batch's packets are in.
    pub fn forget(&mut self, call: CallKey) {
        self.forgets.push(call);
    }

    /// Only these calls (sorted) still exist: the rest of the store is freed first.
    pub fn retain_only(&mut self, calls: Vec<CallKey>) {
        self.retain = Some(calls);
    }

    pub fn packets(&self) -> usize {
        self.packets
    }

    /// Bytes of packet records (what the hand-off's byte bound counts).
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Nothing to hand over: no packet, format or ended call.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
            && self.formats.is_empty()
            && self.forgets.is_empty()
            && self.retain.is_none()
    }

    /// Drops the packets (counted by the caller), keeping formats and ended calls.
    pub fn drop_packets(&mut self) {
        self.bytes.clear();
        self.packets = 0;
    }

    /// Empties the batch for reuse, keeping its buffers' memory.
    pub fn clear(&mut self) {
        self.drop_packets();
        self.formats.clear();
        self.forgets.clear();
        self.retain = None;
    }

    /// Formats to set before the packets are taken in.
    pub(crate) fn formats(&self) -> &[(CallKey, Arc<[PayloadFormat]>)] {
        &self.formats
    }

    /// The calls that still exist, if the pipeline lost track of which ended (sorted).
    pub(crate) fn retain(&self) -> Option<&[CallKey]> {
        self.retain.as_deref()
    }

    /// Calls to forget after the packets are taken in.
    pub(crate) fn forgets(&self) -> &[CallKey] {
        &self.forgets
    }

    /// Formats and ended calls together (the metadata the pipeline keeps when the hand-off
    /// is full), so that their number can be bounded.
    pub(crate) fn metadata(&self) -> usize {
        self.formats.len() + self.forgets.len()
    }

    /// The records in arrival order: each packet's call and its record (as [`Chunk`]s keep it).
    pub(crate) fn records(&self) -> impl Iterator<Item = (CallKey, &[u8])> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            let head = self.bytes.get(pos..pos + CALL_PREFIX + RECORD_HEADER)?;
            let call = CallKey::from_le_bytes(head[..CALL_PREFIX].try_into().ok()?);
            let len_at = CALL_PREFIX + 18;
            let len = usize::from(u16::from_le_bytes(
                head[len_at..len_at + 2].try_into().ok()?,
            ));
            let start = pos + CALL_PREFIX;
            let end = start + RECORD_HEADER + len;
            let record = self.bytes.get(start..end)?;
            pos = end;
            Some((call, record))
        })
    }
}

/// Packets of one call, packed into one byte buffer: records are read back as [`RtpPacket`]s
/// borrowing from it. One allocation per chunk instead of two per packet.
#[derive(Clone, Debug, Default)]
pub struct Chunk {
    bytes: Vec<u8>,
    /// The call's formats when the chunk was last written (a superset of every format its
    /// records name: a call's formats only grow).
    formats: Option<Arc<[PayloadFormat]>>,
    last_ts: i64,
    /// The capacity the buffer takes when it gets its first record (0: the smallest).
    grow_to: usize,
}

impl Chunk {
    /// The capacity a chunk takes for a record of `need` bytes: what it has while the record
    /// fits, or for an empty chunk `grow_to` (at least 512 bytes and the record). A chunk that
    /// holds records is never reallocated: a full one is sealed and the next one is twice as
    /// big, up to the chunk size ([`Rewind::push_record`]), so a short call holds little and
    /// its packets are copied once, not again at every doubling (at 10,000 calls the
    /// reallocations' copies were a quarter of the fan-out thread).
    fn capacity_for(len: usize, capacity: usize, need: usize, grow_to: usize) -> usize {
        if capacity - len >= need {
            return capacity;
        }
        grow_to.clamp(512, CHUNK_BYTES).max(len + need)
    }

    /// Bytes the buffer will grow by to take a record of `need` bytes.
    fn growth_for(&self, need: usize) -> usize {
        let (len, cap) = (self.bytes.len(), self.bytes.capacity());
        Self::capacity_for(len, cap, need, self.grow_to) - cap
    }

    /// Whether a record of `need` bytes needs a new chunk: this one holds records and has no
    /// room left for it.
    fn is_full_for(&self, need: usize) -> bool {
        !self.bytes.is_empty() && self.bytes.len() + need > self.bytes.capacity()
    }

    /// Appends a record as [`write_record`] made it: one copy.
    fn push_record(&mut self, record: &[u8]) {
        let (used, cap) = (self.bytes.len(), self.bytes.capacity());
        let target = Self::capacity_for(used, cap, record.len(), self.grow_to);
        if target > cap {
            self.bytes.reserve_exact(target - used);
        }
        self.bytes.extend_from_slice(record);
        self.last_ts = record_ts(record);
    }

    /// Bytes of memory this chunk holds (its formats are the call's, shared).
    fn size(&self) -> usize {
        self.bytes.capacity()
    }

    /// The packet whose record starts at `pos`, and where the next one starts.
    pub fn read(&self, call: CallKey, pos: usize) -> Option<(RtpPacket<'_>, usize)> {
        let formats = self.formats.as_deref().unwrap_or_default();
        read_record(&self.bytes, pos, call, formats)
    }
}

/// What a late listener replays: the call's chunks as they were when it subscribed, shared
/// with the store (sealed chunks) or copied (the open chunk, at most [`CHUNK_BYTES`]), and the
/// capture time it starts from. Taking one costs the pipeline one pointer copy per chunk.
#[derive(Clone, Debug)]
pub struct RewindSnapshot {
    pub call: CallKey,
    pub since: Timestamp,
    /// Where the listener's audio starts: packets before it are decoded only to warm the
    /// decoders (GSM, G.722, G.726, Opus, Speex… carry state from packet to packet), and what
    /// they decode to is not sent. Equal to `since` for a plain rewind.
    pub play_from: Timestamp,
    chunks: VecDeque<Arc<Chunk>>,
    pos: usize,
}

impl RewindSnapshot {
    /// The next kept packet at or after `since`, handed to `f`; false once none is left.
    pub fn next_packet(&mut self, f: impl FnOnce(&RtpPacket<'_>)) -> bool {
        loop {
            let Some(chunk) = self.chunks.front() else {
                return false;
            };
            if chunk.last_ts < self.since.nanos() {
                self.chunks.pop_front();
                self.pos = 0;
                continue;
            }
            match chunk.read(self.call, self.pos) {
                Some((p, next)) => {
                    self.pos = next;
                    if p.ts >= self.since {
                        f(&p);
                        return true;
                    }
                }
                None => {
                    self.chunks.pop_front();
                    self.pos = 0;
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// One call's rewind: sealed chunks, oldest first, and the chunk being filled.
struct CallRewind {
    sealed: VecDeque<Arc<Chunk>>,
    /// The oldest sealed chunk's newest packet time (`i64::MAX` with none), kept here so that
    /// the age check on every packet reads only this entry: at 10,000 calls the chunk itself
    /// is cold memory, and reading it was a tenth of the pipeline thread's time.
    oldest_ts: i64,
    open: Chunk,
    bytes: usize,
    /// The call's formats, as the pipeline last sent them.
    formats: Option<Arc<[PayloadFormat]>>,
}

impl Default for CallRewind {
    fn default() -> Self {
        CallRewind {
            sealed: VecDeque::new(),
            oldest_ts: i64::MAX,
            open: Chunk::default(),
            bytes: 0,
            formats: None,
        }
    }
}

/// Full-size chunk buffers given up by aged-out chunks, for the next chunk a long call opens:
/// once the store is full, a call's packets then cost no allocation at all (without it every
/// chunk grew from 512 bytes by doubling, page faults and copies included). At most 1 MiB
/// waits here, outside the budget.
const SPARE_BUFFERS: usize = 64;

/// Limits of the rewind store.
#[derive(Clone, Copy, Debug)]
pub struct RewindLimits {
    /// How far back each call is kept (capture time).
    pub keep_ns: i64,
    /// Bytes for all calls together.
    pub budget_bytes: usize,
    /// Bytes for one call: a single call with huge or frequent packets cannot take the budget.
    pub per_call_bytes: usize,
}

/// Rewind buffers of all calls, bounded by age per call, by bytes per call and by bytes
/// overall. Packets that do not fit are counted (`overflow`), never waited for.
pub struct Rewind {
    limits: RewindLimits,
    used: usize,
    overflow: u64,
    /// Keyed by the engine's call numbers, which no packet chooses: a fast hash is safe, and
    /// this map is looked up for every packet kept.
    calls: FxHashMap<CallKey, CallRewind>,
    spare: Vec<Vec<u8>>,
}

impl Rewind {
    pub fn new(limits: RewindLimits) -> Self {
        Rewind {
            limits,
            used: 0,
            overflow: 0,
            calls: FxHashMap::default(),
            spare: Vec::new(),
        }
    }

    /// Keeps one packet, for tests: the fan-out takes records from a [`PacketBatch`].
    #[cfg(test)]
    pub fn push(&mut self, p: &RtpPacket<'_>) {
        let mut record = Vec::new();
        if write_record(&mut record, p) {
            self.push_record(p.call, &record);
        }
    }

    /// The call's formats from now on: records name their format by its position in them.
    pub fn set_formats(&mut self, call: CallKey, formats: Arc<[PayloadFormat]>) {
        let c = self.calls.entry(call).or_default();
        c.open.formats = Some(formats.clone());
        c.formats = Some(formats);
    }

    /// The call's formats as last set.
    pub fn formats(&self, call: CallKey) -> &[PayloadFormat] {
        self.calls
            .get(&call)
            .and_then(|c| c.formats.as_deref())
            .unwrap_or_default()
    }

    /// Keeps one packet's record (as [`write_record`] made it) for `call`, within the limits.
    pub fn push_record(&mut self, call: CallKey, record: &[u8]) {
        if self.limits.keep_ns <= 0 {
            return;
        }
        let need = record.len();
        let ts = record_ts(record);
        let limits = self.limits;
        let c = self.calls.entry(call).or_default();
        if c.open.is_full_for(need) {
            let sealed = std::mem::take(&mut c.open);
            c.open.formats = c.formats.clone();
            c.open.grow_to = sealed.size().saturating_mul(2);
            // A call that fills whole chunks takes its next one from a spare buffer (counted
            // from now on; the aging below makes room for it).
            let room =
                sealed.size() >= CHUNK_BYTES && c.bytes + CHUNK_BYTES <= limits.per_call_bytes;
            if let Some(bytes) = room.then(|| self.spare.pop()).flatten() {
                c.open.bytes = bytes;
                let size = c.open.size();
                c.bytes += size;
                self.used += size;
            }
            if c.sealed.is_empty() {
                c.oldest_ts = sealed.last_ts;
            }
            c.sealed.push_back(Arc::new(sealed));
        }
        let grow = c.open.growth_for(need);
        // Age out whole chunks, then give up the oldest ones while over a limit: a full
        // budget stops a call's growth without starving the calls that still have room.
        loop {
            let too_old = ts.saturating_sub(c.oldest_ts) > limits.keep_ns;
            let over_call = c.bytes + grow > limits.per_call_bytes;
            let over_all = self.used + grow > limits.budget_bytes;
            if !(too_old || over_call || over_all) {
                break;
            }
            let Some(gone) = c.sealed.pop_front() else {
                break;
            };
            c.oldest_ts = c.sealed.front().map_or(i64::MAX, |k| k.last_ts);
            let size = gone.size();
            c.bytes -= size;
            self.used -= size;
            // A chunk no listener holds any more gives its buffer back for reuse.
            if let Ok(chunk) = Arc::try_unwrap(gone) {
                let mut bytes = chunk.bytes;
                if bytes.capacity() >= CHUNK_BYTES && self.spare.len() < SPARE_BUFFERS {
                    bytes.clear();
                    self.spare.push(bytes);
                }
            }
        }
        let before = c.open.size();
        if c.bytes + grow > limits.per_call_bytes || self.used + grow > limits.budget_bytes {
            self.overflow += 1;
            return;
        }
        c.open.push_record(record);
        let after = c.open.size();
        c.bytes = c.bytes + after - before;
        self.used = self.used + after - before;
    }

    /// What a listener starting at `since` replays: O(chunks) pointer copies and one copy of
    /// the open chunk (bounded by its size), however many packets the call has.
    pub fn snapshot(&self, call: CallKey, since: Timestamp) -> RewindSnapshot {
        let mut chunks = VecDeque::new();
        if let Some(c) = self.calls.get(&call) {
            chunks.extend(
                c.sealed
                    .iter()
                    .filter(|k| k.last_ts >= since.nanos())
                    .cloned(),
            );
            if !c.open.bytes.is_empty() && c.open.last_ts >= since.nanos() {
                chunks.push_back(Arc::new(c.open.clone()));
            }
        }
        RewindSnapshot {
            call,
            since,
            play_from: since,
            chunks,
            pos: 0,
        }
    }

    /// What a listener whose audio starts at `play_from` replays: the packets from up to
    /// `prime_ns` before it, to warm its decoders (their output is discarded), then the rest.
    /// A listener "from now" gets this with `play_from` now: a cold decoder on a stationary
    /// signal (libgsm on a steady tone) never converges to what the encoder meant, so joining
    /// mid-call must decode the call's recent past first.
    pub fn primed_snapshot(
        &self,
        call: CallKey,
        play_from: Timestamp,
        prime_ns: i64,
    ) -> RewindSnapshot {
        let since = Timestamp(play_from.nanos().saturating_sub(prime_ns.max(0)));
        RewindSnapshot {
            play_from,
            ..self.snapshot(call, since)
        }
    }

    pub fn forget(&mut self, call: CallKey) {
        if let Some(c) = self.calls.remove(&call) {
            self.used -= c.bytes;
        }
    }

    /// Forgets every call not in `live` (sorted): the calls whose end was not heard of.
    pub fn retain_only(&mut self, live: &[CallKey]) {
        let used = &mut self.used;
        self.calls.retain(|id, c| {
            let keep = live.binary_search(id).is_ok();
            if !keep {
                *used -= c.bytes;
            }
            keep
        });
    }

    pub fn bytes(&self) -> usize {
        self.used
    }

    /// Packets not kept because a call or the whole store was at its byte limit.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(call: CallKey, i: u32, payload: &[u8]) -> RtpPacket<'_> {
        RtpPacket {
            call,
            party: if i % 2 == 0 {
                Party::Caller
            } else {
                Party::Called
            },
            ts: Timestamp(i64::from(i) * 10_000_000),
            ssrc: 7,
            seq: i as u16,
            timestamp: i * 80,
            payload_type: 8,
            marker: i == 0,
            payload,
            format: None,
            format_index: None,
            event: false,
            encrypted: false,
        }
    }

    fn limits(budget: usize, per_call: usize) -> RewindLimits {
        RewindLimits {
            keep_ns: 60_000_000_000,
            budget_bytes: budget,
            per_call_bytes: per_call,
        }
    }

    fn replay(s: &mut RewindSnapshot) -> Vec<u16> {
        let mut seqs = Vec::new();
        while s.next_packet(|p| seqs.push(p.seq)) {}
        seqs
    }

    #[test]
    fn packets_come_back_as_they_went_in_from_where_asked() {
        let mut r = Rewind::new(limits(1 << 30, 1 << 30));
        let payload = [0xd5u8; 160];
        for i in 0..1000 {
            r.push(&packet(1, i, &payload));
        }
        let mut all = r.snapshot(1, Timestamp(i64::MIN));
        let mut first = None;
        all.next_packet(|p| first = Some((p.seq, p.party, p.marker, p.payload.to_vec())));
        assert_eq!(first, Some((0, Party::Caller, true, payload.to_vec())));
        assert_eq!(replay(&mut all), (1..1000).collect::<Vec<u16>>());
        let mut late = r.snapshot(1, Timestamp(500 * 10_000_000));
        assert_eq!(replay(&mut late), (500..1000).collect::<Vec<u16>>());
        assert!(replay(&mut r.snapshot(2, Timestamp(i64::MIN))).is_empty());
    }

    #[test]
    fn a_snapshot_shares_sealed_chunks_and_copies_at_most_one() {
        let mut r = Rewind::new(limits(1 << 30, 1 << 30));
        for i in 0..10_000 {
            r.push(&packet(1, i, &[0; 160]));
        }
        let s = r.snapshot(1, Timestamp(i64::MIN));
        let c = r.calls.get(&1).expect("call kept");
        let shared = s
            .chunks
            .iter()
            .filter(|k| c.sealed.iter().any(|m| Arc::ptr_eq(k, m)))
            .count();
        assert_eq!(shared, c.sealed.len(), "sealed chunks are shared");
        assert!(
            s.chunks.len() <= c.sealed.len() + 1,
            "at most the open chunk is copied"
        );
        assert!(
            c.sealed.len() < 200,
            "{} chunks for 10,000 packets",
            c.sealed.len()
        );
    }

    #[test]
    fn a_chunk_is_never_reallocated_once_it_holds_packets() {
        // A call's chunks double (512 bytes, 1 KiB, … 16 KiB) by sealing a full one and
        // opening a bigger one, not by moving its packets into a bigger buffer.
        let mut r = Rewind::new(limits(1 << 30, 1 << 30));
        let payload = [0xd5u8; 160];
        let mut open: Option<(*const u8, usize)> = None;
        let mut moved = 0;
        for i in 0..2_000 {
            r.push(&packet(1, i, &payload));
            let c = &r.calls[&1];
            let now = (c.open.bytes.as_ptr(), c.sealed.len());
            if let Some((ptr, sealed)) = open {
                if sealed == now.1 && ptr != now.0 {
                    moved += 1;
                }
            }
            open = Some(now);
        }
        assert_eq!(moved, 0, "an open chunk's packets were moved {moved} times");
        let sizes: Vec<usize> = r.calls[&1].sealed.iter().map(|k| k.size()).collect();
        assert_eq!(&sizes[..6], &[512, 1024, 2048, 4096, 8192, CHUNK_BYTES]);
        assert!(sizes[6..].iter().all(|&n| n == CHUNK_BYTES), "{sizes:?}");
        let all = replay(&mut r.snapshot(1, Timestamp(i64::MIN)));
        assert_eq!(all, (0..2000).collect::<Vec<u16>>());
    }

    #[test]
    fn one_call_stays_within_its_bytes_and_the_store_within_its_budget() {
        let mut r = Rewind::new(limits(1 << 20, 256 << 10));
        let big = [0u8; 1400];
        for i in 0..5000 {
            r.push(&packet(1, i, &big));
        }
        let one = r.calls.get(&1).map_or(0, |c| c.bytes);
        assert!(one <= 256 << 10, "one call holds {one} bytes");
        for call in 2..20 {
            for i in 0..5000 {
                r.push(&packet(call, i, &big));
            }
        }
        assert!(r.bytes() <= 1 << 20, "the store holds {} bytes", r.bytes());
        let newest = replay(&mut r.snapshot(1, Timestamp(i64::MIN)));
        assert_eq!(
            newest.last(),
            Some(&4999),
            "a call keeps its newest packets"
        );
        r.forget(1);
        assert!(r.bytes() <= 1 << 20);
        for call in 2..20 {
            r.forget(call);
        }
        assert_eq!(r.bytes(), 0, "forgetting every call frees every byte");
    }

    #[test]
    fn a_full_store_reuses_the_buffers_of_the_chunks_it_gives_up() {
        // 8 calls of 160-byte packets in a store that holds about 20 chunks: it is full
        // after a few seconds of traffic, and from then on every call ages out its oldest
        // chunk to seal a new one.
        let mut r = Rewind::new(limits(20 * CHUNK_BYTES, 4 * CHUNK_BYTES));
        let payload = [0xd5u8; 160];
        let mut reused = 0;
        for i in 0..2_000 {
            for call in 0..8 {
                r.push(&packet(call, i, &payload));
                // A chunk just opened, at full size from its first packet on.
                let c = &r.calls[&call];
                let first = c.open.bytes.len() == RECORD_HEADER + payload.len();
                if first && c.open.bytes.capacity() >= CHUNK_BYTES {
                    reused += 1;
                }
            }
            assert!(r.bytes() <= 20 * CHUNK_BYTES, "over budget: {}", r.bytes());
        }
        assert!(
            reused > 100,
            "chunks opened from spare buffers: {reused}, spare {}, overflow {}, bytes {}",
            r.spare.len(),
            r.overflow,
            r.bytes()
        );
        assert!(r.spare.len() <= SPARE_BUFFERS);
        // What is kept still replays in order, newest last.
        let kept = replay(&mut r.snapshot(5, Timestamp(i64::MIN)));
        assert_eq!(kept.last(), Some(&1999));
        assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "gapless");
    }

    fn fmt(pt: u8, name: &str) -> PayloadFormat {
        PayloadFormat {
            pt,
            encoding: name.to_string(),
            clock_rate: 8000,
            channels: 1,
            encrypted: false,
            fmtp: None,
        }
    }

    #[test]
    fn each_packet_keeps_its_own_format() {
        // The call's formats grow (a re-INVITE's new name for payload type 8 is a new entry);
        // every packet names its entry by position, so older packets keep the old name.
        let first: Arc<[PayloadFormat]> = vec![fmt(8, "PCMA"), fmt(0, "PCMU")].into();
        let mut grown = first.to_vec();
        grown.extend([fmt(8, "G726-32"), fmt(9, "")]);
        let grown: Arc<[PayloadFormat]> = grown.into();
        let mut r = Rewind::new(limits(1 << 20, 1 << 20));
        r.set_formats(1, first);
        let payload = [0u8; 160];
        let order = [0, 0, 1, 1, 0, 2, 2, 0, 3, 3, 1];
        for (i, &f) in order.iter().enumerate() {
            if f >= 2 {
                r.set_formats(1, grown.clone());
            }
            let mut p = packet(1, i as u32, &payload);
            p.format_index = Some(f as u8);
            r.push(&p);
        }
        let mut s = r.snapshot(1, Timestamp(i64::MIN));
        let mut got = Vec::new();
        while s.next_packet(|p| got.push(p.format.map(|f| f.encoding.clone()))) {}
        let want: Vec<_> = order
            .iter()
            .map(|&f| Some(grown[f].encoding.clone()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_batch_carries_packets_in_order_and_keeps_its_metadata_when_they_are_dropped() {
        let mut b = PacketBatch::default();
        b.set_formats(7, vec![fmt(8, "PCMA")].into());
        for i in 0..100u32 {
            let call = u64::from(i % 3);
            let payload = [i as u8; 33];
            let mut p = packet(call, i, &payload);
            p.format_index = Some(0);
            b.push(&p);
        }
        // A payload too long for a record is left out, and nothing else is disturbed.
        b.push(&packet(1, 100, &vec![0u8; 70_000]));
        b.forget(2);
        assert_eq!(b.packets(), 100);
        let got: Vec<(CallKey, u16, u8)> = b
            .records()
            .map(|(call, rec)| {
                let p = record_packet(rec, call, &[]).expect("a packet");
                (call, p.seq, p.payload[0])
            })
            .collect();
        let want: Vec<(CallKey, u16, u8)> = (0..100u32)
            .map(|i| (u64::from(i % 3), i as u16, i as u8))
            .collect();
        assert_eq!(got, want);
        b.drop_packets();
        assert_eq!((b.packets(), b.bytes(), b.records().count()), (0, 0, 0));
        assert_eq!((b.formats().len(), b.forgets()), (1, &[2][..]));
        assert!(!b.is_empty(), "the metadata still has to go");
        b.clear();
        assert!(b.is_empty());
    }

    #[test]
    fn old_chunks_age_out() {
        let mut r = Rewind::new(RewindLimits {
            keep_ns: 1_000_000_000,
            ..limits(1 << 30, 1 << 30)
        });
        for i in 0..1000 {
            r.push(&packet(1, i, &[0; 160]));
        }
        let seqs = replay(&mut r.snapshot(1, Timestamp(i64::MIN)));
        // 10 s of packets, 1 s kept: whole chunks go, so a little more than 1 s may remain.
        assert!(seqs.len() < 300, "{} packets kept", seqs.len());
        assert_eq!(seqs.last(), Some(&999));
    }
}
