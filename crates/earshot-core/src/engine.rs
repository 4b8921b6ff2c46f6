//! The engine: one entry point for captured frames, the call table, and its bookkeeping.

use crate::call::{Call, CallKey, CallState, Party, PayloadFormat};
use crate::flows::{FlowTable, Key4};
use crate::media::{Binding, Candidate};
use crate::signalling::SipMeta;
use crate::stream::{Stream, StreamKey};
use earshot_wire::{DecapConfig, Decapsulator, LinkType, Packet, Timestamp, Transport, Udp4};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Limits and timeouts. Times are in capture time, so offline analysis and live capture age
/// calls identically.
#[derive(Clone, Debug)]
pub struct Config {
    /// A call with no SIP and no RTP for this long is ended (state kept, `timed_out` set).
    pub idle_timeout_ns: i64,
    /// How long an ended call stays in the table before [`Engine::expire`] removes it.
    pub linger_ns: i64,
    pub max_calls: usize,
    pub max_unassociated: usize,
    pub max_candidates: usize,
    /// Keep calls forever (offline analysis); a live sensor sets this to false.
    pub retain_ended: bool,
    /// SIP messages kept per call, in order (for `active_call_info`); 0 keeps none. Each is
    /// cut at `sip_log_bytes`, and a call's log at `sip_log_call_bytes` (records included, see
    /// `SipRecord::cost`), all calls' logs together at `sip_log_total_bytes`: at 100,000 calls
    /// the log must not be what memory is spent on. Messages not kept are counted
    /// (`CaptureCounters::sip_log_skipped`).
    pub sip_log_messages: usize,
    pub sip_log_bytes: usize,
    pub sip_log_call_bytes: usize,
    pub sip_log_total_bytes: usize,
    /// Keeps the SIP log of the calls with this Call-ID only (`earshot ladder`): the other
    /// calls of a big capture then spend none of `sip_log_total_bytes`. `None` logs every call.
    pub sip_log_call_id: Option<String>,
    /// HEP envelope times further than this from the time of receipt are replaced by it
    /// (`DecapConfig::hep_max_skew_ns`); `None` trusts them (offline analysis).
    pub hep_max_skew_ns: Option<i64>,
    /// An INVITE that got no response beyond 100 Trying for this long is over: state
    /// `Unanswered`, `timed_out` set. 32 s is SIP's Timer B, after which the caller's own
    /// transaction gives up. `None` (offline analysis) leaves such calls to the idle timeout.
    pub unanswered_timeout_ns: Option<i64>,
    /// Streams no SDP claims become calls of their own (see `rtp_only.rs`), so a live sensor
    /// can play media whose SIP it does not see. Off for offline analysis, which lists them
    /// as unassociated streams.
    pub rtp_only_calls: bool,
    /// A call made of RTP alone ends after this long without media (it has no BYE).
    pub rtp_only_idle_ns: i64,
    /// What dynamic payload types carry in calls made of RTP alone (the operator's word,
    /// `PT=NAME/RATE`), when no SDP on the wire says.
    pub rtp_only_formats: Vec<PayloadFormat>,
    /// What legs of one call through a B2BUA are grouped by (see `correlation.rs`).
    pub correlation: crate::correlation::Correlation,
    /// Per-second quality points each stream keeps (see `quality.rs`): a ring of the last
    /// seconds live (6 bytes a second a stream, allocated at the stream's first packet),
    /// a bounded series offline, or none.
    pub timeline: earshot_rtp::TimelineMode,
}

/// Seconds of per-second quality a live engine keeps per stream: two minutes, 720 bytes.
pub const DEFAULT_TIMELINE_SECONDS: u16 = 120;

impl Default for Config {
    fn default() -> Self {
        Config {
            idle_timeout_ns: 300 * 1_000_000_000,
            linger_ns: 10 * 1_000_000_000,
            max_calls: 1_000_000,
            max_unassociated: 100_000,
            max_candidates: 65_536,
            retain_ended: true,
            sip_log_messages: 0,
            sip_log_bytes: 4096,
            // A whole INVITE dialog with two SDPs is 3-4 KB; 8 KiB leaves room for a re-INVITE.
            sip_log_call_bytes: 8 << 10,
            // 64 MiB: every call's dialog up to ~16,000 calls, 670 B a call at 100,000.
            sip_log_total_bytes: 64 << 20,
            sip_log_call_id: None,
            hep_max_skew_ns: None,
            unanswered_timeout_ns: None,
            rtp_only_calls: false,
            rtp_only_idle_ns: 10 * 1_000_000_000,
            rtp_only_formats: Vec::new(),
            correlation: Default::default(),
            timeline: earshot_rtp::TimelineMode::Ring(DEFAULT_TIMELINE_SECONDS),
        }
    }
}

/// What happened to a call; delivered to the [`Sink`] together with the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    CallNew(CallKey),
    CallState(CallKey, CallState),
    /// An SDP moved or added media (re-INVITE, UPDATE, early media).
    MediaChanged(CallKey),
    /// The call is about to leave the table.
    CallRemoved(CallKey),
    /// Another leg was correlated with the call, which became its group's A-leg
    /// (`Call::group`); B-legs are grouped before their `CallNew`.
    Grouped(CallKey),
    /// A completed offer/answer put the answered call on hold (`Call::held_by` says who).
    Hold(CallKey),
    /// A completed offer/answer took it off hold.
    Resume(CallKey),
    /// A 2xx answered a re-INVITE; `codec` is the answer's first audio codec when it differs
    /// from the previous answer's.
    Reinvite {
        call: CallKey,
        codec: Option<String>,
    },
    /// A party's stream changed its audio payload type (`Call::codec_name` names it).
    CodecChange {
        call: CallKey,
        party: Party,
        payload_type: u8,
    },
}

/// One RTP packet of a call, borrowed from the frame being processed.
#[derive(Debug)]
pub struct RtpPacket<'a> {
    pub call: CallKey,
    pub party: Party,
    pub ts: Timestamp,
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    pub marker: bool,
    /// The RTP payload: clear, or (SRTP, see `encrypted`) ciphertext; empty for an SRTP
    /// packet that authenticated but was not decrypted because the sink said it would not
    /// read this call's payloads ([`Sink::wants_payload`]).
    pub payload: &'a [u8],
    pub format: Option<&'a PayloadFormat>,
    /// Where `format` is in the call's formats (`Call::formats`, which only grows while the
    /// call lives, so the position stays valid): a consumer that keeps a copy of the call's
    /// formats can name the format by one byte instead of copying or comparing it.
    pub format_index: Option<u8>,
    pub event: bool,
    /// SRTP (see [`crate::Stream::is_encrypted`]): the payload is ciphertext; a sink must not
    /// decode it as audio.
    pub encrypted: bool,
}

/// Receives what the engine sees, synchronously and without back-pressure: an implementation
/// must not block (a live sensor copies into bounded queues and drops on overflow).
pub trait Sink {
    fn event(&mut self, _event: &Event, _call: &Call) {}
    fn rtp(&mut self, _packet: &RtpPacket<'_>) {}
    /// Whether the sink will read the payloads of `call`'s RTP now. The engine asks for each
    /// SRTP packet with a key: every one is authenticated (its tag checked, refused ones
    /// counted and kept from the sink), but its payload is decrypted only when the sink
    /// answers true or the packet is a telephone-event (DTMF is read from it). When false, the
    /// sink gets the authenticated packet with an empty payload. True by default: a sink that
    /// decodes audio gets it clear without saying anything.
    fn wants_payload(&self, _call: CallKey) -> bool {
        true
    }
}

/// A sink that ignores everything, for pure analysis: it reads no payload, so SRTP is
/// authenticated but not decrypted for it (see [`Sink::wants_payload`]).
pub struct NullSink;
impl Sink for NullSink {
    fn wants_payload(&self, _call: CallKey) -> bool {
        false
    }
}

/// Whole-capture counters.
#[derive(Clone, Debug, Default)]
pub struct CaptureCounters {
    pub frames: u64,
    pub sip_messages: u64,
    pub rtp_packets: u64,
    pub rtcp_packets: u64,
    /// RTCP report blocks matched to a call's stream (the far end's view of it).
    pub rtcp_reports: u64,
    /// Transport payload bytes of the SIP messages, RTP and RTCP packets counted above.
    pub sip_bytes: u64,
    pub rtp_bytes: u64,
    pub rtcp_bytes: u64,
    /// Frames or messages that could not be decoded (decapsulation and SIP).
    pub malformed: u64,
    pub calls: u64,
    pub calls_dropped: u64,
    pub streams: u64,
    /// In-dialog SIP whose INVITE was never seen.
    pub orphan_sip: u64,
    /// Media addresses from such orphan SIP's SDP not remembered because the table was full.
    pub orphan_sdp_dropped: u64,
    /// SIP messages of calls not kept in their call's log (`Config::sip_log_*` limits); 0
    /// when the log is off.
    pub sip_log_skipped: u64,
    /// Calls put in another call's group as a B-leg (see `Call::group`).
    pub legs_grouped: u64,
    /// Correlation keys not indexed because the index was full (`Correlation::max_keys`).
    pub correlation_dropped: u64,
    /// SIP outside INVITE dialogs, by method (requests only).
    pub other_sip: BTreeMap<String, u64>,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// HEP packets whose envelope time was replaced by the time of receipt (too far off).
    pub hep_time_replaced: u64,
    /// HEP packets not passed on, by reason (compressed payloads that do not inflate...).
    pub hep_skipped: earshot_wire::HepSkipped,
    /// RTP/RTCP framed on TCP (RFC 4571, TURN ChannelData), skipped STUN, broken framings.
    pub tcp_media: crate::TcpMediaStats,
    /// SRTP packets of calls: decrypted with their SDES key, refused by its tag, or without a
    /// key (never decoded either way but the first).
    pub srtp: SrtpTotals,
    /// SRTCP packets of calls whose media is SRTP (RFC 3711 §3.4): `decrypted`, authenticated
    /// with the sender's SRTCP keys and read as RTCP; `auth_failures`, refused by the tag;
    /// `no_key`, no key known, not read (ciphertext is never taken for report blocks).
    pub srtcp: SrtpTotals,
    /// SIP over TLS: connections seen, decrypted with the key log, waiting for a key;
    /// records failing authentication; bytes dropped while waiting.
    pub tls: crate::TlsStats,
    /// What became of the key log lines fed so far (`Engine::key_log_mut`).
    pub key_log: earshot_keylog::KeyLogStats,
    /// DTLS-SRTP handshakes on calls' media addresses and whether a key log keyed them.
    pub dtls: DtlsTotals,
}

/// What the engine made of DTLS on calls' media addresses (see [`CaptureCounters::dtls`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DtlsTotals {
    /// DTLS datagrams (RFC 7983: first byte 20–63) to or from a call's media address.
    pub datagrams: u64,
    /// DTLS 1.2 handshakes whose ClientHello and ServerHello were read.
    pub handshakes: u64,
    /// Handshakes whose master secret a key log gave: their SRTP keys are known.
    pub keyed: u64,
    /// Handshakes no key log line keys (yet): `handshakes - keyed`.
    pub without_key: u64,
    /// Keyed handshakes whose SRTP profile earshot does not decrypt yet: the keys are kept,
    /// the media stays encrypted.
    pub unsupported_profile: u64,
    /// Datagrams of a call already holding `MAX_DTLS` associations, not observed.
    pub dropped: u64,
    /// ServerHellos of another version than DTLS 1.2 (DTLS 1.0, DTLS 1.3): not keyed.
    pub unsupported_version: u64,
}

/// What became of the SRTP packets the engine saw (see [`CaptureCounters::srtp`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SrtpTotals {
    /// Authenticated with the sender's key, so usable: decrypted, or only authenticated when
    /// nothing read the payload (see [`Sink::wants_payload`]).
    pub decrypted: u64,
    pub auth_failures: u64,
    pub no_key: u64,
}

impl CaptureCounters {
    pub(crate) fn count_method(&mut self, method: &str, request: bool) {
        if request && self.other_sip.len() < 64 {
            *self
                .other_sip
                .entry(method.to_ascii_uppercase())
                .or_default() += 1;
        }
    }
    pub fn duration_s(&self) -> f64 {
        match (self.first_ts, self.last_ts) {
            (Some(a), Some(b)) => (b.nanos() - a.nanos()) as f64 / 1e9,
            _ => 0.0,
        }
    }
}

/// Sizes of the engine's tables; see [`Engine::table_sizes`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableSizes {
    pub calls: usize,
    /// Distinct SIP Call-IDs indexed.
    pub by_call_id: usize,
    /// Media addresses bound to a call (announced in SDP or learned from NATed senders).
    pub bindings: usize,
    /// Known RTP flows (address pair and SSRC) and where their stream lives.
    pub flows: usize,
    /// Media addresses announced by more than one call still in the table.
    pub sharers: usize,
    /// Flows still proving they are RTP.
    pub candidates: usize,
    pub unassociated: usize,
    /// Bytes of SIP text kept in calls' logs (see `Config::sip_log_total_bytes`).
    pub sip_log_bytes: usize,
}

pub struct Engine {
    pub(crate) cfg: Config,
    /// `None` only while [`Engine::handle_frame`] has it out to decode a frame; boxed so that
    /// lending it out moves a pointer (taking a `Decapsulator` by `mem::take` built a fresh
    /// default one, with its allocations, for every frame).
    pub(crate) decap: Option<Box<Decapsulator>>,
    streams_in: TcpSip,
    pub(crate) calls: FxHashMap<CallKey, Call>,
    pub(crate) by_call_id: FxHashMap<String, Vec<CallKey>>,
    pub(crate) next_call_id: CallKey,
    pub(crate) bindings: FxHashMap<SocketAddr, Binding>,
    /// Addresses announced by more than one live call, with those calls oldest first (see
    /// `media.rs`, rule 1); only shared addresses have an entry.
    pub(crate) sharers: FxHashMap<SocketAddr, Vec<CallKey>>,
    pub(crate) binding_epoch: u64,
    pub(crate) flows: FlowTable,
    pub(crate) unassociated: Vec<Stream>,
    pub(crate) candidates: FxHashMap<StreamKey, Candidate>,
    /// Formats from SDP of dialogs whose INVITE was not seen, for streams outside calls.
    pub(crate) orphan_sdp: crate::orphan_sdp::OrphanSdp,
    pub(crate) counters: CaptureCounters,
    /// Calls made of RTP alone by their two addresses, and the addresses they use (see
    /// `rtp_only.rs`); empty unless `Config::rtp_only_calls`.
    pub(crate) rtp_only: FxHashMap<(SocketAddr, SocketAddr), CallKey>,
    pub(crate) rtp_only_addrs: FxHashMap<SocketAddr, CallKey>,
    /// What every call's SIP log holds together, against `Config::sip_log_total_bytes`.
    pub(crate) sip_log_used: usize,
    /// Correlation keys (X-CID values, Session-ID UUIDs, icids...) → the call that indexed
    /// them first; bounded by `Config::correlation.max_keys`.
    pub(crate) correlation: FxHashMap<crate::correlation::IndexKey, CallKey>,
    /// Where an SRTP packet is decrypted before the sink sees it: reused, so decrypting
    /// allocates nothing per packet.
    pub(crate) srtp_clear: Vec<u8>,
    /// Seconds the sensor said it dropped packets in (`Engine::note_capture_gap`).
    pub(crate) capture_gaps: crate::quality::CaptureGaps,
    /// Secrets for TLS and DTLS sessions the capture carries (SIP over TLS, DTLS-SRTP), from
    /// key logs the edge feeds in as they grow.
    pub(crate) keylog: earshot_keylog::KeyLog,
}

pub(crate) use crate::tcp_sip::{Carried, TcpSip};

impl Default for Engine {
    fn default() -> Self {
        Engine::new(Config::default())
    }
}

impl Engine {
    pub fn new(cfg: Config) -> Self {
        let decap = Decapsulator::with_config(DecapConfig {
            hep_max_skew_ns: cfg.hep_max_skew_ns,
            ..DecapConfig::default()
        });
        Engine {
            cfg,
            decap: Some(Box::new(decap)),
            streams_in: TcpSip::default(),
            calls: FxHashMap::default(),
            by_call_id: FxHashMap::default(),
            next_call_id: 1,
            bindings: FxHashMap::default(),
            sharers: FxHashMap::default(),
            binding_epoch: 0,
            flows: FlowTable::default(),
            unassociated: Vec::new(),
            candidates: FxHashMap::default(),
            orphan_sdp: Default::default(),
            counters: CaptureCounters::default(),
            rtp_only: FxHashMap::default(),
            rtp_only_addrs: FxHashMap::default(),
            sip_log_used: 0,
            correlation: FxHashMap::default(),
            srtp_clear: Vec::with_capacity(2048),
            capture_gaps: Default::default(),
            keylog: earshot_keylog::KeyLog::default(),
        }
    }

    /// The key log the engine reads TLS and DTLS sessions with: feed it the bytes of a key
    /// log file (or socket) as they arrive, before or while the traffic they open is fed.
    pub fn key_log_mut(&mut self) -> &mut earshot_keylog::KeyLog {
        &mut self.keylog
    }

    pub fn key_log(&self) -> &earshot_keylog::KeyLog {
        &self.keylog
    }

    /// Feeds one captured link-layer frame.
    pub fn handle_frame(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &[u8],
        sink: &mut dyn Sink,
    ) {
        self.count_frame(ts);
        if let Some(u) = self.decap.as_mut().and_then(|d| d.decode_udp4(link, frame)) {
            self.on_udp4(ts, &u, None, sink);
            return;
        }
        self.decode_layered(ts, link, frame, sink);
    }

    pub(crate) fn count_frame(&mut self, ts: Timestamp) {
        self.counters.frames += 1;
        self.counters.first_ts.get_or_insert(ts);
        self.counters.last_ts = Some(self.counters.last_ts.map_or(ts, |l| l.max(ts)));
    }

    pub(crate) fn decode_layered(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &[u8],
        sink: &mut dyn Sink,
    ) {
        // The decapsulator borrows itself while calling back, so packets are handled through
        // a split borrow of the rest of the engine.
        let Some(mut decap) = self.decap.take() else {
            return;
        };
        decap.decode(ts, link, frame, &mut |p: &Packet<'_>| {
            self.handle_packet(p, sink)
        });
        self.decap = Some(decap);
    }

    /// A plain IPv4 UDP datagram, the bulk of any capture. A first byte of 0x80 or more
    /// (RTP and RTCP version 2) can never start SIP, whose first line begins with an ASCII
    /// letter, so such datagrams go straight to media without building the SIP context or
    /// asking `looks_like_sip`: the same outcome as `handle_packet`, for less work.
    ///
    /// `key` is the datagram's flow if a look ahead already worked it out.
    #[inline]
    pub(crate) fn on_udp4(
        &mut self,
        ts: Timestamp,
        u: &Udp4<'_>,
        key: Option<Key4>,
        sink: &mut dyn Sink,
    ) {
        if u.payload.first().is_some_and(|&b| b >= 0x80) {
            self.on_media4(ts, u, key, sink);
        } else {
            self.handle_packet(&u.packet(ts), sink);
        }
    }

    /// Feeds one transport payload (for sources that decapsulate themselves, such as HEP).
    pub fn handle_packet(&mut self, p: &Packet<'_>, sink: &mut dyn Sink) {
        let meta = SipMeta {
            ts: p.ts,
            src: p.src,
            dst: p.dst,
            vlan: p.vlan,
        };
        match p.transport {
            Transport::Udp => {
                if earshot_sip::looks_like_sip(p.payload) {
                    self.on_sip_bytes(meta, p.payload, sink);
                } else {
                    self.on_media(p.ts, p.src, p.dst, p.payload, sink);
                }
            }
            Transport::Sctp { .. } => {
                if earshot_sip::looks_like_sip(p.payload) {
                    self.on_sip_bytes(meta, p.payload, sink);
                }
            }
            Transport::Tcp { .. } => {
                // Taken out for the call so that media framed on TCP goes straight to the
                // same path as UDP RTP, from the reassembler's bytes; an empty `TcpSip`
                // allocates nothing.
                let mut tcp = std::mem::take(&mut self.streams_in);
                let mut msgs = Vec::new();
                tcp.push(
                    p,
                    &mut |what: Carried, m: SipMeta, bytes: &[u8]| match what {
                        Carried::Sip => msgs.push((m, bytes.to_vec())),
                        Carried::Media => {
                            self.on_media(m.ts, m.src, m.dst, bytes, sink);
                        }
                    },
                );
                self.streams_in = tcp;
                for (m, bytes) in msgs {
                    self.on_sip_bytes(m, &bytes, sink);
                }
                self.read_waiting_tls(sink);
            }
        }
    }

    /// Reads the SIP-over-TLS records that waited for keys, if the key log has grown since
    /// they were last looked at (cheap otherwise). The engine does so after each TCP packet
    /// and in [`Engine::expire`]; a live caller that fed the key log
    /// ([`Engine::key_log_mut`]) may call it at once.
    pub fn read_waiting_tls(&mut self, sink: &mut dyn Sink) {
        if !self.streams_in.tls_wants_keys(self.keylog.generation()) {
            return;
        }
        let mut found = Vec::new();
        self.streams_in.poll_tls(
            &self.keylog,
            &mut |what: Carried, m: SipMeta, bytes: &[u8]| found.push((what, m, bytes.to_vec())),
        );
        for (what, m, bytes) in found {
            match what {
                Carried::Sip => self.on_sip_bytes(m, &bytes, sink),
                Carried::Media => {
                    self.on_media(m.ts, m.src, m.dst, &bytes, sink);
                }
            }
        }
    }

    /// Ends calls idle for longer than the configured timeout and, unless ended calls are
    /// retained, removes those that ended more than the linger time ago. Call it now and then
    /// with the current capture time.
    pub fn expire(&mut self, now: Timestamp, sink: &mut dyn Sink) {
        let (sip_idle, rtp_idle) = (self.cfg.idle_timeout_ns, self.cfg.rtp_only_idle_ns);
        let mut changed = Vec::new();
        for call in self.calls.values_mut() {
            clamp_to_now(call, now);
            let silent = now.nanos().saturating_sub(call.last_packet.nanos());
            let idle = if crate::rtp_only::is_rtp_only(call) {
                rtp_idle
            } else {
                sip_idle
            };
            if call.end.is_none() && silent > idle {
                call.end = Some(call.last_packet);
                call.timed_out = true;
                changed.push(call.id);
            } else if call.end.is_none() && unanswered(call, now, self.cfg.unanswered_timeout_ns) {
                call.state = CallState::Unanswered;
                call.end = Some(call.last_sip);
                call.timed_out = true;
                changed.push(call.id);
            }
        }
        for id in changed {
            if let Some(call) = self.calls.get(&id) {
                sink.event(&Event::CallState(id, call.state), call);
            }
        }
        if !self.cfg.retain_ended {
            let linger = self.cfg.linger_ns;
            let old: Vec<CallKey> = self
                .calls
                .values()
                .filter(|c| {
                    c.end
                        .is_some_and(|e| now.nanos().saturating_sub(e.nanos()) > linger)
                })
                .map(|c| c.id)
                .collect();
            for id in old {
                self.remove_call(id, sink);
            }
        }
        self.read_waiting_tls(sink);
        self.streams_in.expire(now);
        self.orphan_sdp
            .expire(now.nanos(), self.cfg.idle_timeout_ns);
        self.shrink_tables();
    }

    /// Gives back what the tables grew to at a peak once most of it is empty: a hash table
    /// never shrinks by itself, so 100,000 calls that came and went would keep their buckets
    /// (~90 MB for the call table alone) for the life of the process.
    fn shrink_tables(&mut self) {
        shrink_map(&mut self.calls);
        shrink_map(&mut self.by_call_id);
        shrink_map(&mut self.correlation);
        shrink_map(&mut self.bindings);
        shrink_map(&mut self.sharers);
        shrink_map(&mut self.candidates);
        shrink_map(&mut self.rtp_only);
        shrink_map(&mut self.rtp_only_addrs);
        self.flows.shrink();
    }

    /// Slots the engine's tables have room for (entries they can hold without growing), to
    /// check that memory comes back after a peak; see [`Engine::table_sizes`] for what they hold.
    pub fn table_capacities(&self) -> TableSizes {
        TableSizes {
            calls: self.calls.capacity(),
            by_call_id: self.by_call_id.capacity(),
            bindings: self.bindings.capacity(),
            flows: self.flows.capacity(),
            sharers: self.sharers.capacity(),
            candidates: self.candidates.capacity(),
            unassociated: self.unassociated.capacity(),
            sip_log_bytes: self.cfg.sip_log_total_bytes,
        }
    }

    fn remove_call(&mut self, id: CallKey, sink: &mut dyn Sink) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        sink.event(&Event::CallRemoved(id), call);
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.forget_rtp_only(&call);
        self.forget_correlation(&call);
        self.sip_log_used = self.sip_log_used.saturating_sub(call.sip_log_bytes());
        if let Some(ids) = self.by_call_id.get_mut(&call.sip_call_id) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_call_id.remove(&call.sip_call_id);
            }
        }
        // Only what still points at this call goes: with ports reused (SIPp, NAT), a flow key
        // or an address may since have moved to a newer call that must keep it. Walking the
        // call's own lists rather than whole tables keeps removing many calls linear.
        for s in &call.streams {
            if self.flows.peek(&s.key).is_some_and(|l| l.call == Some(id)) {
                self.flows.remove(&s.key);
            }
        }
        for addr in &call.bound {
            if self.bindings.get(addr).is_some_and(|b| b.call == id) {
                self.bindings.remove(addr);
            }
            crate::media::forget_sharer(&mut self.sharers, *addr, id);
        }
    }

    pub(crate) fn emit(&mut self, sink: &mut dyn Sink, event: Event, id: CallKey) {
        if let Some(call) = self.calls.get(&id) {
            sink.event(&event, call);
        }
    }

    pub fn call(&self, id: CallKey) -> Option<&Call> {
        self.calls.get(&id)
    }

    /// Calls in the order they started.
    pub fn calls(&self) -> Vec<&Call> {
        let mut v: Vec<&Call> = self.calls.values().collect();
        v.sort_by_key(|c| (c.start, c.id));
        v
    }

    pub fn active_calls(&self) -> usize {
        self.calls.values().filter(|c| c.end.is_none()).count()
    }

    pub fn unassociated_streams(&self) -> &[Stream] {
        &self.unassociated
    }

    /// Entry counts of the engine's internal tables, to check from outside that memory stays
    /// bounded (a live sensor exports them; tests assert they drain when calls expire).
    pub fn table_sizes(&self) -> TableSizes {
        TableSizes {
            calls: self.calls.len(),
            by_call_id: self.by_call_id.len(),
            bindings: self.bindings.len(),
            flows: self.flows.len(),
            sharers: self.sharers.len(),
            candidates: self.candidates.len(),
            unassociated: self.unassociated.len(),
            sip_log_bytes: self.sip_log_used,
        }
    }

    pub fn counters(&self) -> CaptureCounters {
        let mut c = self.counters.clone();
        if let Some(decap) = &self.decap {
            c.malformed += decap.stats().malformed;
            c.hep_time_replaced = decap.stats().hep_time_replaced;
            c.hep_skipped = decap.stats().hep_skipped.clone();
        }
        c.tcp_media = self.streams_in.media.clone();
        c.tls = self.streams_in.tls_stats();
        c.key_log = self.keylog.stats();
        c.dtls.without_key = c.dtls.handshakes.saturating_sub(c.dtls.keyed);
        c
    }
}

/// Tables this small are left alone: shrinking them saves nothing worth a rehash.
const SHRINK_MIN_CAPACITY: usize = 1024;

/// Halves a table's slack when it is less than a quarter full (and not small): capacity goes
/// to twice the entries, so a table that refills does not rehash again at once. Called once a
/// second, it costs a rehash of the remaining entries only after most of them left.
pub(crate) fn shrink_map<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(
    map: &mut std::collections::HashMap<K, V, S>,
) {
    if map.capacity() > SHRINK_MIN_CAPACITY && map.len() < map.capacity() / 4 {
        map.shrink_to((map.len() * 2).max(SHRINK_MIN_CAPACITY / 2));
    }
}

/// Still trying (nothing but 100 Trying came back) `timeout` after the INVITE.
fn unanswered(call: &Call, now: Timestamp, timeout: Option<i64>) -> bool {
    timeout.is_some_and(|t| {
        call.state == CallState::Trying
            && call.answer.is_none()
            && now.nanos().saturating_sub(call.start.nanos()) > t
    })
}

/// A call's times are packet times, which a packet can put anywhere (a capture file's record, a
/// HEP envelope). Idleness is measured on the caller's clock: a time beyond it is taken as
/// `now`, so a call stamped in the future still ages from the moment it was seen, and always
/// expires once it falls silent.
fn clamp_to_now(call: &mut Call, now: Timestamp) {
    call.last_packet = call.last_packet.min(now);
    call.start = call.start.min(now);
    call.last_sip = call.last_sip.min(now);
    for t in [&mut call.ring, &mut call.answer, &mut call.end]
        .into_iter()
        .flatten()
    {
        *t = (*t).min(now);
    }
}
