//! What TCP streams carry, after reassembly: plain SIP framed by Content-Length (RFC 3261
//! §18.3), SIP over WebSocket (RFC 7118), and media: RTP and RTCP framed by a 2-byte length
//! (RFC 4571, as SDP `TCP/RTP/AVP` and ICE-TCP, RFC 6544, use it; STUN frames between them are
//! skipped) or relayed by TURN over TCP (RFC 5766 ChannelData, padded to 4 bytes, between
//! unframed STUN messages).
//!
//! A flow is classified by its first bytes, whatever its ports: SIP text never looks like
//! either media framing (an ASCII byte never has RTP's version bits 2). Media frames are cut
//! from the reassembler's bytes in place; only a frame split across segments is copied, into
//! the flow's one reusable buffer, never more than one frame (≤ 64 KiB + header). A frame
//! header that is not plausible RTP, RTCP, STUN or ChannelData means the flow lost its framing:
//! it is counted ([`TcpMediaStats::desyncs`]) and the rest of the flow ignored. A gap in the
//! capture (missing segments) instead looks for the framing again after the hole.
//!
//! A flow whose first bytes are a TLS handshake record is one side of a TLS connection: both
//! sides go to one `earshot_tlsread::Connection`, and what it decrypts with the engine's key
//! log is framed like clear SIP over TCP (or WebSocket), one stream per side. Without keys
//! the connection is counted ([`TlsStats`]) and its bytes never read as SIP.

use crate::signalling::SipMeta;
use earshot_keylog::KeyLog;
use earshot_sip::websocket::WsDecoder;
use earshot_sip::{frame_message, looks_like_sip, Framing};
use earshot_tlsread::{Budget, Dir, Output};
use earshot_wire::tcp::{FlowKey, StreamEvent, TcpConfig, TcpReassembler};
use earshot_wire::{Packet, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};
use std::net::SocketAddr;
use std::ops::Range;

/// Unclassified bytes kept before a flow is declared not to carry SIP.
const CLASSIFY_LIMIT: usize = 4096;
/// A SIP message never legitimately needs more than this much buffered.
const MAX_BUFFER: usize = 1 << 20;
/// Flows whose classification is remembered; the map is cleared when it grows past this.
const MAX_FLOWS: usize = 65_536;
/// TLS connections followed at once; past this a new one is counted and not read. Each may
/// hold up to a record per side being reassembled and one being decrypted (~18 KiB each)
/// besides what waits for keys, so this bounds that memory too.
const MAX_TLS_CONNECTIONS: usize = 4096;
/// Bytes all TLS connections together keep while waiting for their keys (each at most
/// `earshot_tlsread::MAX_WAITING_BYTES`).
const TLS_WAITING_BUDGET: usize = 64 << 20;
/// A TLS connection with no bytes for this long (capture time) is forgotten, even if records
/// still wait for a key that never came.
const TLS_IDLE_NS: i64 = 300 * 1_000_000_000;

enum Kind {
    Unknown,
    Sip,
    WebSocket(Box<WsDecoder>),
    Media(MediaFraming),
    /// One side of a TLS connection (see [`TlsFlows`]).
    Tls(ConnKey, Dir),
    NotSip,
}

/// A TLS connection by its client's and its server's address.
type ConnKey = (SocketAddr, SocketAddr);

/// What a piece of a TCP stream handed to the caller is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Carried {
    /// One SIP message.
    Sip,
    /// One RTP or RTCP packet (a version-2 header; the media path tells which).
    Media,
}

/// How media is framed on a TCP flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaFraming {
    /// RFC 4571: a 2-byte big-endian length, then one packet (RTP, RTCP or STUN).
    Rfc4571,
    /// TURN over TCP (RFC 5766 §11): STUN messages and ChannelData (channel 0x4000–0x7FFF,
    /// 2-byte length, data padded to a multiple of 4).
    Turn,
}

/// Media found on TCP flows, for the capture counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpMediaStats {
    /// RTP or RTCP packets cut out of TCP flows and handed to the media path.
    pub frames: u64,
    /// STUN messages and non-RTP ChannelData skipped between them.
    pub skipped: u64,
    /// Flows whose framing broke (a header that is not plausible media); the rest of each
    /// such flow is ignored.
    pub desyncs: u64,
}

/// SIP over TLS, for the capture counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsStats {
    /// TLS connections seen (a flow starting with a ClientHello or ServerHello record).
    pub connections: u64,
    /// Connections of which at least one record was decrypted with the key log.
    pub decrypted: u64,
    /// Connections waiting for keys the key log does not have (one later decrypted leaves
    /// this count).
    pub without_key: u64,
    /// Records whose authentication failed (a wrong secret in the key log, or damaged bytes);
    /// never read.
    pub auth_failures: u64,
    /// Bytes of records dropped while waiting for keys (a connection's or all connections'
    /// limit reached, or a connection forgotten before its key came).
    pub dropped_waiting_bytes: u64,
    /// Connections that stopped looking like TLS (a record header TLS cannot send), or were
    /// not followed because too many were open.
    pub broken: u64,
}

struct FlowState {
    kind: Kind,
    buf: Vec<u8>,
    vlan: Option<u16>,
}

/// One TLS connection: the reader, and the decrypted stream of each side framed as SIP.
struct TlsConn {
    reader: earshot_tlsread::Connection,
    /// Client's, server's.
    inner: [FlowState; 2],
    /// Flows of the connection the reassembler still has open.
    open_flows: u8,
    last_ts: Timestamp,
    /// What of the reader's numbers is already in [`TlsStats`].
    counted: earshot_tlsread::Stats,
    counted_decrypted: bool,
    counted_without_key: bool,
    counted_broken: bool,
}

/// Every TLS connection being read, the bytes they keep waiting for keys, and which wait.
#[derive(Default)]
struct TlsFlows {
    conns: FxHashMap<ConnKey, TlsConn>,
    budget: Option<Budget>,
    stats: TlsStats,
    waiting: FxHashSet<ConnKey>,
    /// Connections that began waiting since the last look at the key log: only they are
    /// looked at while its generation stays the same.
    fresh: Vec<ConnKey>,
    polled_generation: Option<u64>,
}

pub(crate) struct TcpSip {
    reasm: TcpReassembler,
    flows: FxHashMap<FlowKey, FlowState>,
    pub(crate) media: TcpMediaStats,
    tls: TlsFlows,
}

/// Where a TCP flow's pieces go: what it is, who sent it (and when), and its bytes.
pub(crate) type TcpOut<'o> = dyn FnMut(Carried, SipMeta, &[u8]) + 'o;

impl Default for TcpSip {
    fn default() -> Self {
        TcpSip {
            reasm: TcpReassembler::new(TcpConfig::default()),
            flows: FxHashMap::default(),
            media: TcpMediaStats::default(),
            tls: TlsFlows::default(),
        }
    }
}

impl TcpSip {
    /// Feeds a TCP packet; `out` receives each complete SIP message and media packet found.
    pub(crate) fn push(&mut self, p: &Packet<'_>, out: &mut TcpOut<'_>) {
        let key = FlowKey {
            src: p.src,
            dst: p.dst,
        };
        if p.from_hep {
            // HEP agents send whole SIP messages, one per HEP packet.
            if looks_like_sip(p.payload) {
                out(
                    Carried::Sip,
                    SipMeta {
                        ts: p.ts,
                        src: p.src,
                        dst: p.dst,
                        vlan: p.vlan,
                    },
                    p.payload,
                );
            }
            return;
        }
        if matches!(
            self.flows.get(&key),
            Some(FlowState {
                kind: Kind::NotSip,
                ..
            })
        ) {
            return;
        }
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&key) {
            self.flows.clear();
        }
        self.flows
            .entry(key)
            .or_insert_with(|| FlowState::new(p.vlan));
        let flows = &mut self.flows;
        let stats = &mut self.media;
        let tls = &mut self.tls;
        self.reasm.packet(p, &mut |ev: StreamEvent<'_>| match ev {
            StreamEvent::Data { flow, ts, data } => {
                let Some(state) = flows.get_mut(&flow) else {
                    return;
                };
                if let Some(dir) = state.tls_start(data) {
                    state.kind = match tls.join(flow, dir, state.vlan, ts) {
                        Some(key) => Kind::Tls(key, dir),
                        None => Kind::NotSip,
                    };
                }
                match state.kind {
                    Kind::Tls(key, dir) => tls.feed(key, dir, ts, data, stats, out),
                    _ => state.feed(flow, ts, data, stats, out),
                }
            }
            StreamEvent::Gap { flow, .. } => match flows.get_mut(&flow) {
                // The record framing is lost with the missing bytes: the connection is read
                // no further (counted as broken).
                Some(FlowState {
                    kind: Kind::Tls(key, _),
                    ..
                }) => tls.lose(*key),
                Some(state) => state.resync(),
                None => {}
            },
            StreamEvent::Closed { flow, .. } => {
                if let Some(FlowState {
                    kind: Kind::Tls(key, _),
                    ..
                }) = flows.remove(&flow)
                {
                    tls.flow_closed(key);
                }
            }
        });
    }

    pub(crate) fn expire(&mut self, now: Timestamp) {
        let flows = &mut self.flows;
        let tls = &mut self.tls;
        self.reasm.expire(now, &mut |ev: StreamEvent<'_>| {
            if let StreamEvent::Closed { flow, .. } = ev {
                if let Some(FlowState {
                    kind: Kind::Tls(key, _),
                    ..
                }) = flows.remove(&flow)
                {
                    tls.flow_closed(key);
                }
            }
        });
        self.tls.expire(now);
    }

    /// Whether TLS connections wait for keys and the key log (at `generation`) may have
    /// them: only then is [`TcpSip::poll_tls`] worth calling.
    pub(crate) fn tls_wants_keys(&self, generation: u64) -> bool {
        !self.tls.waiting.is_empty()
            && (!self.tls.fresh.is_empty() || self.tls.polled_generation != Some(generation))
    }

    /// Reads the records that waited for keys the key log now has.
    pub(crate) fn poll_tls(&mut self, log: &KeyLog, out: &mut TcpOut<'_>) {
        self.tls.poll(log, &mut self.media, out);
    }

    pub(crate) fn tls_stats(&self) -> TlsStats {
        self.tls.stats
    }
}

impl TlsFlows {
    /// The connection a flow starting with a hello belongs to (created for the first of its
    /// two sides); `None` when too many are open.
    fn join(
        &mut self,
        flow: FlowKey,
        dir: Dir,
        vlan: Option<u16>,
        ts: Timestamp,
    ) -> Option<ConnKey> {
        let key = match dir {
            Dir::Client => (flow.src, flow.dst),
            Dir::Server => (flow.dst, flow.src),
        };
        if !self.conns.contains_key(&key) {
            self.stats.connections += 1;
            if self.conns.len() >= MAX_TLS_CONNECTIONS {
                self.stats.broken += 1;
                return None;
            }
        }
        let conn = self.conns.entry(key).or_insert_with(|| TlsConn {
            reader: earshot_tlsread::Connection::new(),
            inner: [FlowState::new(vlan), FlowState::new(vlan)],
            open_flows: 0,
            last_ts: ts,
            counted: Default::default(),
            counted_decrypted: false,
            counted_without_key: false,
            counted_broken: false,
        });
        conn.open_flows = conn.open_flows.saturating_add(1);
        Some(key)
    }

    fn feed(
        &mut self,
        key: ConnKey,
        dir: Dir,
        ts: Timestamp,
        data: &[u8],
        media: &mut TcpMediaStats,
        out: &mut TcpOut<'_>,
    ) {
        let budget = self
            .budget
            .get_or_insert_with(|| Budget::new(TLS_WAITING_BUDGET));
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        conn.last_ts = conn.last_ts.max(ts);
        let TlsConn { reader, inner, .. } = conn;
        reader.feed(dir, ts.nanos(), data, budget, &mut |o| {
            deliver(key, inner, o, media, out)
        });
        if conn.reader.is_waiting() && self.waiting.insert(key) {
            self.fresh.push(key);
        }
        count(&mut self.stats, conn);
    }

    /// Looks the waiting connections up in the key log: all of them when its generation
    /// moved, else only those that began waiting since the last look.
    fn poll(&mut self, log: &KeyLog, media: &mut TcpMediaStats, out: &mut TcpOut<'_>) {
        let generation = log.generation();
        let keys: Vec<ConnKey> = match self.polled_generation == Some(generation) {
            true => std::mem::take(&mut self.fresh),
            false => {
                self.fresh.clear();
                self.waiting.iter().copied().collect()
            }
        };
        self.polled_generation = Some(generation);
        let budget = self
            .budget
            .get_or_insert_with(|| Budget::new(TLS_WAITING_BUDGET));
        for key in keys {
            let Some(conn) = self.conns.get_mut(&key) else {
                self.waiting.remove(&key);
                continue;
            };
            let TlsConn { reader, inner, .. } = conn;
            reader.poll_keys(log, budget, &mut |o| deliver(key, inner, o, media, out));
            count(&mut self.stats, conn);
            if !conn.reader.is_waiting() {
                self.waiting.remove(&key);
                if conn.open_flows == 0 {
                    self.conns.remove(&key);
                }
            }
        }
    }

    /// Bytes of one side were never captured: the connection cannot be followed (counted as
    /// broken).
    fn lose(&mut self, key: ConnKey) {
        let budget = self
            .budget
            .get_or_insert_with(|| Budget::new(TLS_WAITING_BUDGET));
        if let Some(conn) = self.conns.get_mut(&key) {
            conn.reader.abandon(budget);
            count(&mut self.stats, conn);
        }
        self.waiting.remove(&key);
    }

    /// One side's flow ended; the connection goes with its last flow, unless records still
    /// wait for a key (a live key log may yet bring it).
    fn flow_closed(&mut self, key: ConnKey) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        conn.open_flows = conn.open_flows.saturating_sub(1);
        if conn.open_flows == 0 && !conn.reader.is_waiting() {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: ConnKey) {
        let budget = self
            .budget
            .get_or_insert_with(|| Budget::new(TLS_WAITING_BUDGET));
        if let Some(mut conn) = self.conns.remove(&key) {
            conn.reader.close(budget);
            count(&mut self.stats, &mut conn);
        }
        self.waiting.remove(&key);
    }

    fn expire(&mut self, now: Timestamp) {
        let idle: Vec<ConnKey> = self
            .conns
            .iter()
            .filter(|(_, c)| now.nanos().saturating_sub(c.last_ts.nanos()) > TLS_IDLE_NS)
            .map(|(k, _)| *k)
            .collect();
        for key in idle {
            self.remove(key);
        }
    }
}

/// Brings [`TlsStats`] up to date with what one connection's reader counted since.
fn count(stats: &mut TlsStats, conn: &mut TlsConn) {
    let now = conn.reader.stats();
    // The reader's numbers only grow; saturating all the same, a counter must never panic.
    stats.auth_failures += now.auth_failures.saturating_sub(conn.counted.auth_failures);
    stats.dropped_waiting_bytes += now
        .dropped_waiting_bytes
        .saturating_sub(conn.counted.dropped_waiting_bytes);
    conn.counted = now;
    if conn.reader.has_decrypted() && !conn.counted_decrypted {
        conn.counted_decrypted = true;
        stats.decrypted += 1;
    }
    let without_key = conn.reader.has_waited() && !conn.reader.has_decrypted();
    if without_key != conn.counted_without_key {
        conn.counted_without_key = without_key;
        match without_key {
            true => stats.without_key += 1,
            false => stats.without_key = stats.without_key.saturating_sub(1),
        }
    }
    if conn.reader.is_broken() && !conn.counted_broken {
        conn.counted_broken = true;
        stats.broken += 1;
    }
}

/// What a TLS connection decrypted goes to its side's stream, framed as SIP like clear TCP.
fn deliver(
    (client, server): ConnKey,
    inner: &mut [FlowState; 2],
    o: Output<'_>,
    media: &mut TcpMediaStats,
    out: &mut TcpOut<'_>,
) {
    let (dir, i) = match o {
        Output::Data { dir, .. } | Output::Gap { dir } => (dir, usize::from(dir == Dir::Server)),
    };
    let flow = match dir {
        Dir::Client => FlowKey {
            src: client,
            dst: server,
        },
        Dir::Server => FlowKey {
            src: server,
            dst: client,
        },
    };
    match o {
        Output::Data { ts, bytes, .. } => inner[i].feed(flow, Timestamp(ts), bytes, media, out),
        Output::Gap { .. } => inner[i].resync(),
    }
}

impl FlowState {
    fn new(vlan: Option<u16>) -> FlowState {
        FlowState {
            kind: Kind::Unknown,
            buf: Vec::new(),
            vlan,
        }
    }

    /// Which side of a TLS connection a flow is, from its first bytes: a handshake record
    /// whose first message is a ClientHello or a ServerHello. Only a flow not yet classified,
    /// at its very first bytes, can become TLS.
    fn tls_start(&self, data: &[u8]) -> Option<Dir> {
        if !matches!(self.kind, Kind::Unknown)
            || !self.buf.is_empty()
            || !earshot_tlsread::looks_like_tls(data)
        {
            return None;
        }
        match data.get(5) {
            Some(1) => Some(Dir::Client),
            Some(2) => Some(Dir::Server),
            _ => None,
        }
    }

    fn feed(
        &mut self,
        flow: FlowKey,
        ts: Timestamp,
        data: &[u8],
        stats: &mut TcpMediaStats,
        out: &mut TcpOut<'_>,
    ) {
        let meta = SipMeta {
            ts,
            src: flow.src,
            dst: flow.dst,
            vlan: self.vlan,
        };
        match &mut self.kind {
            Kind::WebSocket(ws) => {
                ws.push(data, &mut |msg: &[u8]| {
                    if looks_like_sip(msg) {
                        out(Carried::Sip, meta, msg);
                    }
                });
                return;
            }
            Kind::Media(framing) => {
                let framing = *framing;
                self.feed_media(framing, meta, data, stats, out);
                return;
            }
            Kind::NotSip | Kind::Tls(..) => return,
            Kind::Unknown | Kind::Sip => {}
        }
        self.buf.extend_from_slice(data);
        if matches!(self.kind, Kind::Unknown) {
            self.classify();
            match &mut self.kind {
                Kind::WebSocket(ws) => {
                    let pending = std::mem::take(&mut self.buf);
                    ws.push(&pending, &mut |msg: &[u8]| {
                        if looks_like_sip(msg) {
                            out(Carried::Sip, meta, msg);
                        }
                    });
                    return;
                }
                Kind::Media(framing) => {
                    // Once per flow: the classified bytes are framed like any later segment.
                    let framing = *framing;
                    let pending = std::mem::take(&mut self.buf);
                    self.feed_media(framing, meta, &pending, stats, out);
                    return;
                }
                _ => {}
            }
        }
        if matches!(self.kind, Kind::Sip) {
            self.drain_messages(meta, out);
        }
    }

    /// Cuts media packets out of `data`: in place where a frame lies within it, through
    /// `self.buf` (which then holds at most the one frame that spans segments) otherwise.
    fn feed_media(
        &mut self,
        framing: MediaFraming,
        meta: SipMeta,
        mut data: &[u8],
        stats: &mut TcpMediaStats,
        out: &mut TcpOut<'_>,
    ) {
        // First finish the frame an earlier segment began.
        while !self.buf.is_empty() {
            let (need, payload) = match frame_head(framing, &self.buf) {
                Head::Need(n) => (n, None),
                Head::Frame { total, payload } => (total, Some(payload)),
                Head::Bad => return self.desync(stats),
            };
            if self.buf.len() < need {
                let take = (need - self.buf.len()).min(data.len());
                self.buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.buf.len() < need {
                    return;
                }
                // The header is complete now, or the frame: look again.
                continue;
            }
            if let Some(payload) = payload {
                emit_media(payload.map(|r| &self.buf[r]), meta, stats, out);
            }
            self.buf.clear();
        }
        while !data.is_empty() {
            match frame_head(framing, data) {
                Head::Frame { total, payload } if total <= data.len() => {
                    emit_media(payload.map(|r| &data[r]), meta, stats, out);
                    data = &data[total..];
                }
                Head::Bad => return self.desync(stats),
                Head::Frame { .. } | Head::Need(_) => {
                    self.buf.extend_from_slice(data);
                    return;
                }
            }
        }
    }

    fn desync(&mut self, stats: &mut TcpMediaStats) {
        stats.desyncs += 1;
        self.kind = Kind::NotSip;
        self.buf = Vec::new();
    }

    fn classify(&mut self) {
        let head = &self.buf[..self.buf.len().min(512)];
        let start = skip_crlf(head);
        let text = &head[start..];
        if text.starts_with(b"GET ") || text.starts_with(b"HTTP/1.1 101") {
            if contains_ignore_case(head, b"websocket") {
                self.kind = Kind::WebSocket(Box::default());
            } else if head.len() >= 512 {
                self.kind = Kind::NotSip;
            }
        } else if looks_like_sip(text) {
            self.kind = Kind::Sip;
        } else if let Some(framing) = media_framing(&self.buf) {
            self.kind = Kind::Media(framing);
        } else if let Some(pos) = find_sip_start(&self.buf) {
            // The capture began mid-message: start at the next message boundary.
            self.buf.drain(..pos);
            self.kind = Kind::Sip;
        } else if let Some(pos) = find_rfc4571_start(&self.buf) {
            // Media whose start was not captured (or lost in a gap): frame from the first
            // offset where two plausible frames follow each other.
            self.buf.drain(..pos);
            self.kind = Kind::Media(MediaFraming::Rfc4571);
        } else if self.buf.len() > CLASSIFY_LIMIT {
            self.kind = Kind::NotSip;
            self.buf = Vec::new();
        }
    }

    fn drain_messages(&mut self, meta: SipMeta, out: &mut TcpOut<'_>) {
        let mut consumed = 0;
        loop {
            let rest = &self.buf[consumed..];
            match frame_message(rest) {
                Framing::Complete(n) if n > 0 => {
                    let msg = &rest[..n];
                    let start = skip_crlf(msg);
                    if start < msg.len() {
                        out(Carried::Sip, meta, &msg[start..]);
                    }
                    consumed += n;
                }
                Framing::KeepAlive(n) if n > 0 => consumed += n,
                Framing::Complete(_) | Framing::KeepAlive(_) | Framing::NeedMore => break,
                Framing::Invalid => match find_sip_start(&rest[1.min(rest.len())..]) {
                    Some(pos) => consumed += pos + 1,
                    None => {
                        consumed = self.buf.len();
                        break;
                    }
                },
            }
        }
        self.buf.drain(..consumed);
        if self.buf.len() > MAX_BUFFER {
            self.buf.clear();
        }
    }

    fn resync(&mut self) {
        self.buf.clear();
        match &mut self.kind {
            Kind::WebSocket(ws) => **ws = WsDecoder::default(),
            // Framing is lost with the missing bytes: classify what follows afresh.
            Kind::Media(_) => self.kind = Kind::Unknown,
            _ => {}
        }
    }
}

/// The STUN magic cookie (RFC 5389 §6), in every STUN message at bytes 4..8.
const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// The shortest RTCP packet (a receiver report without blocks); RTP needs 12.
const MIN_MEDIA: usize = 8;
const STUN_HEADER: usize = 20;
/// Offsets tried when looking for RFC 4571 framing in a stream joined mid-way.
const SCAN_LIMIT: usize = 512;

/// What the bytes at the start of a frame say.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// At least this many bytes are needed to tell.
    Need(usize),
    /// The frame takes `total` bytes; `payload` is where its RTP or RTCP lies (none for STUN
    /// and ChannelData that is not RTP, which are skipped).
    Frame {
        total: usize,
        payload: Option<Range<usize>>,
    },
    /// Not plausible media: the framing is lost.
    Bad,
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

fn is_rtp_version(b: u8) -> bool {
    b >> 6 == 2
}

/// DTLS 1.0/1.2 record content types (change_cipher_spec, alert, handshake, application_data,
/// heartbeat, tls12_cid), a subset of RFC 7983's 20–63.
const DTLS_CONTENT_TYPES: std::ops::RangeInclusive<u8> = 20..=25;
/// A DTLS record header: type, version, epoch, sequence number, length.
const DTLS_RECORD_HEADER: usize = 13;

/// Whether `b` starts like a DTLS 1.0 or 1.2 record: a content type and version 0xFEFF or
/// 0xFEFD (a byte a chance RTP or STUN frame does not have there). Fewer than three bytes:
/// no.
fn is_dtls_record(b: &[u8]) -> bool {
    matches!(b, [t, 0xFE, 0xFD | 0xFF, ..] if DTLS_CONTENT_TYPES.contains(t))
}

/// Reads a frame header; never trusts a length further than the 16 bits that carry it.
fn frame_head(framing: MediaFraming, b: &[u8]) -> Head {
    match framing {
        MediaFraming::Rfc4571 => {
            if b.len() < 3 {
                return Head::Need(3);
            }
            let len = be16(b, 0);
            if is_rtp_version(b[2]) && len >= MIN_MEDIA {
                return Head::Frame {
                    total: 2 + len,
                    payload: Some(2..2 + len),
                };
            }
            // ICE-TCP carries DTLS-SRTP's handshake in the same framing (RFC 6544, RFC 7983):
            // handed to the media path like RTP, where the call's DTLS observer reads it.
            if DTLS_CONTENT_TYPES.contains(&b[2]) {
                if b.len() < 5 {
                    return Head::Need(5);
                }
                return match is_dtls_record(&b[2..]) && len >= DTLS_RECORD_HEADER {
                    true => Head::Frame {
                        total: 2 + len,
                        payload: Some(2..2 + len),
                    },
                    false => Head::Bad,
                };
            }
            // ICE-TCP (RFC 6544) sends its connectivity checks in the same framing.
            if b[2] >> 6 != 0 || len < STUN_HEADER {
                return Head::Bad;
            }
            if b.len() < 10 {
                return Head::Need(10);
            }
            match b[6..10] == STUN_MAGIC {
                true => Head::Frame {
                    total: 2 + len,
                    payload: None,
                },
                false => Head::Bad,
            }
        }
        MediaFraming::Turn => {
            if b.len() < 4 {
                return Head::Need(4);
            }
            let len = be16(b, 2);
            match b[0] >> 6 {
                0 if len % 4 != 0 => Head::Bad,
                0 if b.len() < 8 => Head::Need(8),
                0 if b[4..8] == STUN_MAGIC => Head::Frame {
                    total: STUN_HEADER + len,
                    payload: None,
                },
                // ChannelData; over TCP padded to a multiple of 4 (RFC 5766 §11.5).
                1 if len == 0 => Head::Frame {
                    total: 4,
                    payload: None,
                },
                1 if b.len() < 5 => Head::Need(5),
                1 => Head::Frame {
                    total: 4 + len.next_multiple_of(4),
                    payload: (len >= MIN_MEDIA
                        && (is_rtp_version(b[4]) || is_dtls_record(&b[4..])))
                    .then_some(4..4 + len),
                },
                _ => Head::Bad,
            }
        }
    }
}

/// Hands one frame's RTP or RTCP to the media path; STUN and the like are counted only.
fn emit_media(
    payload: Option<&[u8]>,
    meta: SipMeta,
    stats: &mut TcpMediaStats,
    out: &mut TcpOut<'_>,
) {
    match payload {
        Some(p) => {
            stats.frames += 1;
            out(Carried::Media, meta, p);
        }
        None => stats.skipped += 1,
    }
}

/// True when `b` starts with a whole frame of this framing and the bytes after it begin
/// another frame of the same flow (see [`same_flow`]), or it is one RTP packet that fills `b`
/// exactly and `one_fills` (only at the start of a flow, where a segment begins with a frame:
/// at an offset found by scanning, some frame always ends where the bytes do); `None` while
/// too few bytes are in to tell.
fn two_frames(framing: MediaFraming, b: &[u8], one_fills: bool) -> Option<bool> {
    let (total, payload) = match frame_head(framing, b) {
        Head::Frame { total, payload } => (total, payload),
        Head::Need(_) => return None,
        Head::Bad => return Some(false),
    };
    match b.get(total..) {
        // A segment holding exactly one RTP packet, as most senders write them.
        Some([]) if one_fills && payload.is_some_and(|r| r.len() >= 12) => Some(true),
        None | Some([]) => None,
        Some(rest) => match frame_head(framing, rest) {
            Head::Frame { .. } if rest.len() < 16 => None,
            Head::Frame { .. } => Some(same_flow(framing, b, rest)),
            Head::Need(_) => None,
            Head::Bad => Some(false),
        },
    }
}

/// Whether two consecutive frames (each given from its first byte on, at least 16 bytes)
/// look like one flow's media rather than chance bytes: a STUN frame (its magic cookie is
/// proof enough), RTCP whose own length fits its frame, or RTP of the same SSRC; TURN
/// ChannelData on the same channel. Version bits and a packet type alone are not enough:
/// scanning an encrypted stream joined mid-way finds those by chance.
fn same_flow(framing: MediaFraming, a: &[u8], b: &[u8]) -> bool {
    let (at, len_at) = match framing {
        MediaFraming::Rfc4571 => (2, 0),
        MediaFraming::Turn => (4, 2),
    };
    let stun = |f: &[u8]| match framing {
        MediaFraming::Rfc4571 => !is_rtp_version(f[2]),
        MediaFraming::Turn => f[0] >> 6 == 0,
    };
    if stun(a) || stun(b) {
        return true;
    }
    if framing == MediaFraming::Turn && a[..2] != b[..2] {
        return false;
    }
    match (
        packet_sig(a, at, be16(a, len_at)),
        packet_sig(b, at, be16(b, len_at)),
    ) {
        (Some(Sig::Rtcp), Some(_)) | (Some(_), Some(Sig::Rtcp)) => true,
        (Some(Sig::Rtp(x)), Some(Sig::Rtp(y))) => x == y,
        _ => false,
    }
}

enum Sig {
    Rtp([u8; 4]),
    Rtcp,
}

/// RTP (by SSRC) or RTCP (its first packet's length, in 32-bit words less one, within a
/// frame of whole words) for the packet of `len` bytes at `f[at..]`.
fn packet_sig(f: &[u8], at: usize, len: usize) -> Option<Sig> {
    let p = f.get(at..at + 12)?;
    if (200..=206).contains(&p[1]) {
        let words = be16(p, 2) + 1;
        return (len % 4 == 0 && words * 4 <= len).then_some(Sig::Rtcp);
    }
    (len >= 12).then_some(Sig::Rtp([p[8], p[9], p[10], p[11]]))
}

/// The media framing a flow's first bytes show, if any. A STUN message first (magic cookie)
/// is TURN at once; otherwise two consecutive frames must agree (see [`two_frames`]). A first
/// frame longer than the classification window is not taken for media: random bytes (an
/// encrypted stream) announce such lengths with RTP's version bits one time in four.
fn media_framing(b: &[u8]) -> Option<MediaFraming> {
    if b.len() >= 8 && b[0] >> 6 == 0 && b[4..8] == STUN_MAGIC {
        return Some(MediaFraming::Turn);
    }
    [MediaFraming::Rfc4571, MediaFraming::Turn]
        .into_iter()
        .find(|&f| two_frames(f, b, true) == Some(true))
}

/// The first offset (within [`SCAN_LIMIT`]) where two RFC 4571 frames of RTP or RTCP follow
/// each other.
fn find_rfc4571_start(b: &[u8]) -> Option<usize> {
    (1..b.len().min(SCAN_LIMIT)).find(|&i| {
        let rest = &b[i..];
        matches!(
            frame_head(MediaFraming::Rfc4571, rest),
            Head::Frame {
                payload: Some(_),
                ..
            }
        ) && two_frames(MediaFraming::Rfc4571, rest, false) == Some(true)
    })
}

fn skip_crlf(b: &[u8]) -> usize {
    b.iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(b.len())
}

/// Offset of the first line start (after a newline) that looks like a SIP start line.
fn find_sip_start(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(nl) = buf.get(i..)?.iter().position(|&c| c == b'\n') {
        let start = i + nl + 1;
        let line = buf.get(start..)?;
        if looks_like_sip(line) {
            return Some(start);
        }
        i = start;
    }
    None
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> FlowKey {
        FlowKey {
            src: "10.0.0.1:5000".parse().unwrap(),
            dst: "10.0.0.2:6000".parse().unwrap(),
        }
    }

    fn new_state() -> FlowState {
        FlowState {
            kind: Kind::Unknown,
            buf: Vec::new(),
            vlan: None,
        }
    }

    /// Feeds `chunks` as consecutive in-order segments; returns the media packets out.
    fn feed_all(
        state: &mut FlowState,
        stats: &mut TcpMediaStats,
        chunks: &[&[u8]],
    ) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for c in chunks {
            state.feed(flow(), Timestamp(0), c, stats, &mut |what, _m, b: &[u8]| {
                assert_eq!(what, Carried::Media);
                got.push(b.to_vec());
            });
        }
        got
    }

    fn rtp(seq: u16, len: usize) -> Vec<u8> {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 160, 0xA1, 0x1C, 0xE0, 0x01]);
        p.resize(len.max(12), 0xFF);
        p
    }

    fn rfc4571(p: &[u8]) -> Vec<u8> {
        let mut f = (p.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(p);
        f
    }

    fn stream_of(n: u16) -> (Vec<Vec<u8>>, Vec<u8>) {
        let pkts: Vec<Vec<u8>> = (0..n).map(|i| rtp(i, 12 + usize::from(i) * 7)).collect();
        let bytes = pkts.iter().flat_map(|p| rfc4571(p)).collect();
        (pkts, bytes)
    }

    #[test]
    fn rfc4571_frames_come_out_whole_however_the_stream_is_cut() {
        let (pkts, bytes) = stream_of(20);
        for cut in [1, 2, 3, 5, 13, 64, 173, bytes.len()] {
            let mut state = new_state();
            let mut stats = TcpMediaStats::default();
            let chunks: Vec<&[u8]> = bytes.chunks(cut).collect();
            let got = feed_all(&mut state, &mut stats, &chunks);
            assert_eq!(got, pkts, "segments of {cut} bytes");
            assert_eq!(stats.frames, 20);
            assert_eq!(stats.desyncs, 0);
            assert!(matches!(state.kind, Kind::Media(MediaFraming::Rfc4571)));
            assert!(state.buf.is_empty());
        }
    }

    #[test]
    fn a_zero_length_frame_is_a_desync_counted_once_and_the_flow_dropped() {
        let (pkts, mut bytes) = stream_of(3);
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&rfc4571(&rtp(9, 20)));
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let got = feed_all(&mut state, &mut stats, &[&bytes, &rfc4571(&rtp(10, 20))]);
        assert_eq!(got, pkts);
        assert_eq!(stats.desyncs, 1);
        assert!(matches!(state.kind, Kind::NotSip));
        assert_eq!(state.buf.capacity(), 0);
    }

    #[test]
    fn garbage_after_frames_is_a_desync_not_misparsed() {
        let (pkts, mut bytes) = stream_of(4);
        bytes.extend_from_slice(b"\x01\x00GARBAGE GARBAGE GARBAGE");
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let got = feed_all(&mut state, &mut stats, &[&bytes, &stream_of(4).1]);
        assert_eq!(got, pkts);
        assert_eq!(stats.desyncs, 1);
        assert_eq!(stats.frames, 4);
    }

    #[test]
    fn a_65535_byte_frame_buffers_one_frame_at_most_and_comes_out_whole() {
        let (pkts, start) = stream_of(2);
        let big = rtp(2, 65535);
        let framed = rfc4571(&big);
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let mut got = feed_all(&mut state, &mut stats, &[&start, &framed[..1000]]);
        assert_eq!(got, pkts);
        for c in framed[1000..].chunks(1400) {
            got.extend(feed_all(&mut state, &mut stats, &[c]));
            assert!(state.buf.len() <= framed.len());
            assert!(state.buf.capacity() <= 2 * framed.len());
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], big);
        assert!(state.buf.is_empty());
    }

    #[test]
    fn a_length_announcing_65535_on_a_single_segment_waits_without_growing() {
        // A hostile header: version 2, the largest length, then nothing more.
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let (_, mut bytes) = stream_of(2);
        bytes.extend_from_slice(&[0xFF, 0xFF, 0x80, 0x00]);
        let got = feed_all(&mut state, &mut stats, &[&bytes]);
        assert_eq!(got.len(), 2);
        assert_eq!(state.buf.len(), 4);
        assert!(state.buf.capacity() < 1024);
    }

    #[test]
    fn garbage_never_classifies_as_media() {
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let noise: Vec<u8> = (0..6000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let got = feed_all(
            &mut state,
            &mut stats,
            &noise.chunks(100).collect::<Vec<_>>(),
        );
        assert!(got.is_empty());
        assert!(matches!(state.kind, Kind::NotSip));
    }

    #[test]
    fn ice_tcp_stun_between_frames_is_skipped() {
        let mut stun = vec![0x00, 0x01, 0x00, 0x00];
        stun.extend_from_slice(&STUN_MAGIC);
        stun.extend_from_slice(&[7; 12]);
        let mut bytes = rfc4571(&stun);
        let (pkts, media) = stream_of(3);
        bytes.extend_from_slice(&media);
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let got = feed_all(&mut state, &mut stats, &[&bytes]);
        assert_eq!(got, pkts);
        assert_eq!((stats.frames, stats.skipped, stats.desyncs), (3, 1, 0));
    }

    fn channel_data(p: &[u8]) -> Vec<u8> {
        let mut f = vec![0x40, 0x01];
        f.extend_from_slice(&(p.len() as u16).to_be_bytes());
        f.extend_from_slice(p);
        f.resize(f.len().next_multiple_of(4), 0);
        f
    }

    #[test]
    fn turn_channel_data_between_stun_messages_is_framed_with_its_padding() {
        // An Allocate request (STUN, 8 bytes of attributes), then ChannelData of odd lengths.
        let mut bytes = vec![0x00, 0x03, 0x00, 0x08];
        bytes.extend_from_slice(&STUN_MAGIC);
        bytes.extend_from_slice(&[1; 12]);
        bytes.extend_from_slice(&[0, 0x19, 0, 4, 17, 0, 0, 0]);
        let pkts: Vec<Vec<u8>> = (0..5).map(|i| rtp(i, 13 + usize::from(i))).collect();
        for p in &pkts {
            bytes.extend_from_slice(&channel_data(p));
        }
        bytes.extend_from_slice(&channel_data(b"not rtp"));
        bytes.extend_from_slice(&channel_data(&rtp(5, 12)));
        for cut in [1, 7, bytes.len()] {
            let mut state = new_state();
            let mut stats = TcpMediaStats::default();
            let got = feed_all(
                &mut state,
                &mut stats,
                &bytes.chunks(cut).collect::<Vec<_>>(),
            );
            assert!(matches!(state.kind, Kind::Media(MediaFraming::Turn)));
            assert_eq!(&got[..5], &pkts[..], "cut {cut}");
            assert_eq!(got[5], rtp(5, 12));
            assert_eq!((stats.frames, stats.skipped, stats.desyncs), (6, 2, 0));
        }
    }

    /// A DTLS 1.2 record of `len` bytes in all (header included).
    fn dtls_record(content_type: u8, len: usize) -> Vec<u8> {
        let mut r = vec![content_type, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 1];
        r.extend_from_slice(&((len - 13) as u16).to_be_bytes());
        r.resize(len, 0x5A);
        r
    }

    #[test]
    fn dtls_records_on_ice_tcp_and_turn_reach_the_media_path_with_the_rtp() {
        // ICE-TCP: a ClientHello alone in the first segment, then RTP, then application data.
        let hello = dtls_record(22, 120);
        let (pkts, media) = stream_of(3);
        let alert = dtls_record(21, 15);
        let mut bytes = rfc4571(&hello);
        bytes.extend_from_slice(&media);
        bytes.extend_from_slice(&rfc4571(&alert));
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let first = rfc4571(&hello).len();
        let got = feed_all(&mut state, &mut stats, &[&bytes[..first], &bytes[first..]]);
        assert!(matches!(state.kind, Kind::Media(MediaFraming::Rfc4571)));
        let mut want = vec![hello.clone()];
        want.extend(pkts.iter().cloned());
        want.push(alert);
        assert_eq!(got, want);
        assert_eq!((stats.frames, stats.desyncs), (5, 0));
        // TURN over TCP (an Allocate request first): DTLS in ChannelData is media too; other
        // data that is not RTP is skipped.
        let mut bytes = vec![0x00, 0x03, 0x00, 0x00];
        bytes.extend_from_slice(&STUN_MAGIC);
        bytes.extend_from_slice(&[1; 12]);
        bytes.extend_from_slice(&channel_data(&rtp(0, 20)));
        bytes.extend_from_slice(&channel_data(&hello));
        bytes.extend_from_slice(&channel_data(b"\x16 not a DTLS record"));
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let got = feed_all(&mut state, &mut stats, &[&bytes]);
        assert_eq!(got, vec![rtp(0, 20), hello]);
        assert_eq!((stats.frames, stats.skipped, stats.desyncs), (2, 2, 0));
    }

    #[test]
    fn a_dtls_content_type_without_dtls_version_loses_the_framing() {
        let (_, mut bytes) = stream_of(2);
        let mut fake = dtls_record(22, 40);
        fake[1] = 0x03; // TLS's version byte, not DTLS's
        bytes.extend_from_slice(&rfc4571(&fake));
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let got = feed_all(&mut state, &mut stats, &[&bytes]);
        assert_eq!(got.len(), 2);
        assert_eq!(stats.desyncs, 1);
    }

    #[test]
    fn after_a_gap_the_framing_is_found_again() {
        let (pkts, bytes) = stream_of(12);
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let first = feed_all(&mut state, &mut stats, &[&bytes[..100]]);
        state.resync();
        // The bytes after the hole start in the middle of a frame.
        let rest = feed_all(&mut state, &mut stats, &[&bytes[bytes.len() - 400..]]);
        assert!(!first.is_empty());
        assert!(rest.len() >= 3, "{} frames after the gap", rest.len());
        assert!(pkts.ends_with(&rest));
        assert_eq!(stats.desyncs, 0);
    }

    #[test]
    fn sip_on_tcp_is_still_sip() {
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        let mut state = new_state();
        let mut stats = TcpMediaStats::default();
        let mut n = 0;
        state.feed(
            flow(),
            Timestamp(0),
            msg,
            &mut stats,
            &mut |what, _m, b: &[u8]| {
                assert_eq!(what, Carried::Sip);
                assert_eq!(b, msg);
                n += 1;
            },
        );
        assert_eq!(n, 1);
    }

    /// An encrypted stream joined mid-way (as heplify's sip_ipv4_tcp_retrans.pcap has, on
    /// port 60022): random bytes, the first two announcing 55 122 bytes with RTP's version bits,
    /// in 52-byte segments. Neither that first "frame" nor a frame that happens to end where
    /// the bytes do at a scanned offset may make it media.
    #[test]
    fn an_encrypted_stream_is_not_taken_for_media() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut bytes: Vec<u8> = (0..8000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        bytes[..3].copy_from_slice(&[0xD7, 0x52, 0xAC]);
        for seed in 0..20u8 {
            let mut state = new_state();
            let mut stats = TcpMediaStats::default();
            let mut b = bytes.clone();
            for (i, v) in b.iter_mut().enumerate().skip(3) {
                *v ^= seed.wrapping_mul(31).wrapping_add(i as u8);
            }
            let got = feed_all(&mut state, &mut stats, &b.chunks(52).collect::<Vec<_>>());
            assert!(got.is_empty(), "seed {seed}: {} frames", got.len());
            assert_eq!(stats.desyncs, 0, "seed {seed}");
        }
    }

    fn tcp<'a>(src: &str, dst: &str, seq: u32, payload: &'a [u8]) -> Packet<'a> {
        Packet {
            ts: Timestamp(1),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            vlan: None,
            transport: earshot_wire::Transport::Tcp {
                seq,
                syn: false,
                fin: false,
                rst: false,
            },
            payload,
            from_hep: false,
        }
    }

    /// A ClientHello record (random 0x42...) and an INVITE-sized record after it.
    fn client_side() -> Vec<u8> {
        let mut hello = vec![1, 0, 0, 38, 3, 3];
        hello.extend_from_slice(&[0x42; 32]);
        hello.extend_from_slice(&[0, 0, 0, 0]);
        let mut bytes = vec![0x16, 3, 1, 0, hello.len() as u8];
        bytes.extend_from_slice(&hello);
        bytes
    }

    #[test]
    fn a_tls_flow_without_keys_is_counted_and_never_read_as_sip() {
        let mut t = TcpSip::default();
        let mut quiet = |_: Carried, _: SipMeta, _: &[u8]| panic!("nothing is read as SIP");
        t.push(
            &tcp("10.0.0.1:40000", "10.0.0.2:5061", 1, &client_side()),
            &mut quiet,
        );
        // A TLS 1.2 ServerHello (ECDHE-RSA-AES128-GCM-SHA256) from the server.
        let mut hello = vec![2, 0, 0, 38, 3, 3];
        hello.extend_from_slice(&[0x5E; 32]);
        hello.extend_from_slice(&[0, 0xC0, 0x2F, 0]);
        let mut server = vec![0x16, 3, 3, 0, hello.len() as u8];
        server.extend_from_slice(&hello);
        t.push(
            &tcp("10.0.0.2:5061", "10.0.0.1:40000", 1, &server),
            &mut quiet,
        );
        // ChangeCipherSpec, then a protected record that looks like SIP: still only TLS.
        let mut bytes = vec![0x14, 3, 3, 0, 1, 1, 0x17, 3, 3, 0, 32];
        bytes.extend_from_slice(b"INVITE sip:bob@example SIP/2.0\r\n");
        let next = 1 + client_side().len() as u32;
        t.push(
            &tcp("10.0.0.1:40000", "10.0.0.2:5061", next, &bytes),
            &mut quiet,
        );
        let stats = t.tls_stats();
        assert_eq!((stats.connections, stats.without_key), (1, 1), "{stats:?}");
        assert!(
            t.tls_wants_keys(0),
            "a new waiter is looked up at the first chance"
        );
        t.poll_tls(&KeyLog::default(), &mut quiet);
        assert!(
            !t.tls_wants_keys(0),
            "then not again until the key log moves"
        );
        assert!(t.tls_wants_keys(1));
    }

    #[test]
    fn segments_far_ahead_on_a_tls_side_do_not_panic_and_the_idle_connection_is_forgotten() {
        let mut t = TcpSip::default();
        let first = client_side();
        t.push(
            &tcp("10.0.0.1:40000", "10.0.0.2:5061", 1, &first),
            &mut |_, _, _: &[u8]| {},
        );
        // Segments far past the next expected byte (held or skipped by the reassembler).
        let later = [0x17u8, 3, 3, 0, 4, 1, 2, 3, 4];
        for i in 0..40u32 {
            t.push(
                &tcp("10.0.0.1:40000", "10.0.0.2:5061", 100_000 + i * 9, &later),
                &mut |_, _, _: &[u8]| {},
            );
        }
        t.expire(Timestamp(i64::MAX / 2));
        let stats = t.tls_stats();
        assert_eq!(stats.connections, 1);
        assert!(stats.broken <= 1, "{stats:?}");
        assert!(t.tls.conns.is_empty(), "forgotten once idle");
    }
}
