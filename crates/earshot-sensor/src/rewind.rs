//! Per-call rewind: the last seconds of each call's RTP, kept as packets (not audio), so a
//! listener who joins late can start from the beginning of the call or N seconds ago. Packets
//! are far smaller than decoded audio and only the listeners who ask pay for decoding.
//!
//! The pipeline thread owns the store, so handing a listener its rewind must cost it O(1)-ish
//! work, not a copy per packet: packets are packed into byte chunks, and a chunk once full is
//! sealed behind an `Arc`. A subscription takes the sealed chunks by pointer and copies only
//! the open one (at most 16 KiB); the fan-out thread reads the packets back and decodes them.

use earshot_core::{CallId, Party, PayloadFormat, RtpPacket};
use earshot_wire::Timestamp;
use std::collections::{HashMap, VecDeque};
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
    pub payload: Vec<u8>,
    pub format: Option<PayloadFormat>,
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
            payload: p.payload.to_vec(),
            format: p.format.cloned(),
        }
    }

    pub fn as_rtp(&self, call: CallId) -> RtpPacket<'_> {
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
/// Distinct payload formats remembered per chunk; more (a hostile SDP churn) are kept unnamed.
const CHUNK_FORMATS: usize = 16;
const NO_FORMAT: u8 = u8::MAX;
const FLAG_CALLED: u8 = 1;
const FLAG_MARKER: u8 = 2;
const FLAG_EVENT: u8 = 4;

/// Packets of one call, packed into one byte buffer: records are read back as [`RtpPacket`]s
/// borrowing from it. One allocation per chunk instead of two per packet.
#[derive(Clone, Debug, Default)]
pub struct Chunk {
    bytes: Vec<u8>,
    formats: Vec<PayloadFormat>,
    /// The format of the previous packet: where the call's copy keeps its encoding name, and
    /// its index in `formats`. A call's formats only grow (and their names never move while
    /// the call lives), so the same address with the same payload type is the same format;
    /// comparing names on every packet was a tenth of the pipeline thread at 10,000 calls.
    last_format: Option<(usize, u8, u8)>,
    last_ts: i64,
}

impl Chunk {
    /// The capacity of a buffer holding `len` bytes that needs `need` more: doubling up to
    /// the chunk size, so a short call holds little and a long one is not reallocated often.
    fn capacity_for(len: usize, capacity: usize, need: usize) -> usize {
        if capacity - len >= need {
            return capacity;
        }
        (capacity * 2).clamp(512, CHUNK_BYTES).max(len + need)
    }

    /// Bytes the buffer will grow by to take a record of `need` bytes.
    fn growth_for(&self, need: usize) -> usize {
        let (len, cap) = (self.bytes.len(), self.bytes.capacity());
        Self::capacity_for(len, cap, need) - cap
    }

    /// Where `f` is in this chunk's formats (added if new and there is room).
    fn format_index(&mut self, f: &PayloadFormat) -> u8 {
        let name = f.encoding.as_ptr() as usize;
        if let Some((at, pt, i)) = self.last_format {
            // An empty name has no storage of its own: compare those in full.
            if at == name && pt == f.pt && !f.encoding.is_empty() {
                return i;
            }
        }
        let i = match self.formats.iter().position(|k| k == f) {
            Some(i) => i as u8,
            None if self.formats.len() < CHUNK_FORMATS => {
                self.formats.push(f.clone());
                (self.formats.len() - 1) as u8
            }
            None => return NO_FORMAT,
        };
        self.last_format = Some((name, f.pt, i));
        i
    }

    fn push(&mut self, p: &RtpPacket<'_>) {
        let Ok(len) = u16::try_from(p.payload.len()) else {
            return;
        };
        let need = RECORD_HEADER + p.payload.len();
        let (used, cap) = (self.bytes.len(), self.bytes.capacity());
        let target = Self::capacity_for(used, cap, need);
        if target > cap {
            self.bytes.reserve_exact(target - used);
        }
        let format = p.format.map_or(NO_FORMAT, |f| self.format_index(f));
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
        let b = &mut self.bytes;
        b.extend_from_slice(&p.ts.nanos().to_le_bytes());
        b.extend_from_slice(&p.ssrc.to_le_bytes());
        b.extend_from_slice(&p.timestamp.to_le_bytes());
        b.extend_from_slice(&p.seq.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&[p.payload_type, flags, format, 0]);
        b.extend_from_slice(p.payload);
        self.last_ts = p.ts.nanos();
    }

    /// Bytes of memory this chunk holds.
    fn size(&self) -> usize {
        self.bytes.capacity() + self.formats.capacity() * std::mem::size_of::<PayloadFormat>()
    }

    /// The packet whose record starts at `pos`, and where the next one starts.
    pub fn read(&self, call: CallId, pos: usize) -> Option<(RtpPacket<'_>, usize)> {
        let h = self.bytes.get(pos..pos + RECORD_HEADER)?;
        let le = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default();
        let ts = i64::from_le_bytes(le(0..8).try_into().ok()?);
        let ssrc = u32::from_le_bytes(le(8..12).try_into().ok()?);
        let timestamp = u32::from_le_bytes(le(12..16).try_into().ok()?);
        let seq = u16::from_le_bytes(le(16..18).try_into().ok()?);
        let len = usize::from(u16::from_le_bytes(le(18..20).try_into().ok()?));
        let (payload_type, flags, format) = (h[20], h[21], h[22]);
        let start = pos + RECORD_HEADER;
        let payload = self.bytes.get(start..start + len)?;
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
            format: self.formats.get(usize::from(format)),
            event: flags & FLAG_EVENT != 0,
        };
        Some((packet, start + len))
    }
}

/// What a late listener replays: the call's chunks as they were when it subscribed, shared
/// with the store (sealed chunks) or copied (the open chunk, at most [`CHUNK_BYTES`]), and the
/// capture time it starts from. Taking one costs the pipeline one pointer copy per chunk.
#[derive(Clone, Debug)]
pub struct RewindSnapshot {
    pub call: CallId,
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
}

impl Default for CallRewind {
    fn default() -> Self {
        CallRewind {
            sealed: VecDeque::new(),
            oldest_ts: i64::MAX,
            open: Chunk::default(),
            bytes: 0,
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
    calls: HashMap<CallId, CallRewind>,
    spare: Vec<Vec<u8>>,
}

impl Rewind {
    pub fn new(limits: RewindLimits) -> Self {
        Rewind {
            limits,
            used: 0,
            overflow: 0,
            calls: HashMap::new(),
            spare: Vec::new(),
        }
    }

    pub fn push(&mut self, p: &RtpPacket<'_>) {
        if self.limits.keep_ns <= 0 {
            return;
        }
        let need = RECORD_HEADER + p.payload.len();
        let limits = self.limits;
        let c = self.calls.entry(p.call).or_default();
        if c.open.bytes.len() + need > CHUNK_BYTES && !c.open.bytes.is_empty() {
            let sealed = std::mem::take(&mut c.open);
            // The call fills chunks: its next one starts at full size, from a spare buffer
            // (counted from now on; the aging below makes room for it).
            let room = c.bytes + CHUNK_BYTES <= limits.per_call_bytes;
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
            let too_old = p.ts.nanos().saturating_sub(c.oldest_ts) > limits.keep_ns;
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
        c.open.push(p);
        let after = c.open.size();
        c.bytes = c.bytes + after - before;
        self.used = self.used + after - before;
    }

    /// What a listener starting at `since` replays: O(chunks) pointer copies and one copy of
    /// the open chunk (bounded by its size), however many packets the call has.
    pub fn snapshot(&self, call: CallId, since: Timestamp) -> RewindSnapshot {
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
        call: CallId,
        play_from: Timestamp,
        prime_ns: i64,
    ) -> RewindSnapshot {
        let since = Timestamp(play_from.nanos().saturating_sub(prime_ns.max(0)));
        RewindSnapshot {
            play_from,
            ..self.snapshot(call, since)
        }
    }

    pub fn forget(&mut self, call: CallId) {
        if let Some(c) = self.calls.remove(&call) {
            self.used -= c.bytes;
        }
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

    fn packet(call: CallId, i: u32, payload: &[u8]) -> RtpPacket<'_> {
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
            event: false,
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

    #[test]
    fn each_packet_keeps_its_own_format() {
        let fmt = |pt: u8, name: &str| PayloadFormat {
            pt,
            encoding: name.to_string(),
            clock_rate: 8000,
            channels: 1,
        };
        // A re-INVITE's new name for a payload type is a new format, whatever came before.
        let formats = [
            fmt(8, "PCMA"),
            fmt(0, "PCMU"),
            fmt(8, "G726-32"),
            fmt(9, ""),
        ];
        let mut r = Rewind::new(limits(1 << 20, 1 << 20));
        let payload = [0u8; 160];
        let order = [0, 0, 1, 1, 0, 2, 2, 0, 3, 3, 1];
        for (i, &f) in order.iter().enumerate() {
            let mut p = packet(1, i as u32, &payload);
            p.format = Some(&formats[f]);
            r.push(&p);
        }
        let mut s = r.snapshot(1, Timestamp(i64::MIN));
        let mut got = Vec::new();
        while s.next_packet(|p| got.push(p.format.map(|f| f.encoding.clone()))) {}
        let want: Vec<_> = order
            .iter()
            .map(|&f| Some(formats[f].encoding.clone()))
            .collect();
        assert_eq!(got, want);
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
