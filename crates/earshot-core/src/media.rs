//! RTP meets calls: which call and which party a media packet belongs to.
//!
//! Association rule, in order:
//! 1. A packet whose (source, destination, SSRC) already belongs to a stream stays with it
//!    while its call is up, still has one of those addresses bound and the packet continues
//!    the stream's sequence numbers: an SSRC, once bound to a call, stays with it, even when a
//!    newer call announces the same addresses (a media server, SBC or SIPp `-rtp_echo`
//!    answering every call on one port, or calls told apart only by SSRC). Otherwise (the call
//!    ended, or a sender started over: SIPp and PBXes reuse ports and even SSRCs call after
//!    call) a newer SDP that handed its address to another call makes it start a new stream in
//!    that call. A new SSRC between addresses several live calls announced goes to the oldest
//!    of them that has no stream between those addresses yet (calls start sending in order).
//! 2. Source = an address call A announced, destination = an address A announced for the
//!    other party but that a newer call B announced too: A's party sent it. Both ends of the
//!    5-tuple are weighed against both parties' SDPs, so caller X → shared 26000 goes to the
//!    call whose caller announced X, not to the newest call that announced 26000.
//! 3. Destination = an address a party announced in SDP (`c=`/`m=`): the *other* party sent it.
//!    This works whatever the source address is, so media from behind a NAT is still found.
//! 4. Source = an address a party announced: that party sent it (symmetric RTP).
//! 5. The source of a packet associated by rule 3 is learned as the sender's address, so the
//!    reply sent to a NATed public address (never in any SDP) is associated by rule 3 too.
//!    A learned address is weaker evidence than an announced one: it is re-learned by a later
//!    call whose media comes from it (NATs and SIPp reuse the same public port call after
//!    call), and when a packet's destination is only learned but its source is announced by
//!    another call, the announced source wins.
//!
//! `bindings` holds one call per address (the newest to announce it); rules 1 and 2 look at
//! the owning calls' own SDPs only when a flow is first seen or the bindings changed, never on
//! the per-packet fast path.
//!
//! Packets matching none of these are kept as unassociated streams once three of them carry
//! consecutive sequence numbers, which rules out most non-RTP UDP; duplicates and slightly late
//! packets in between neither count nor break the run.

use crate::call::{CallKey, Party, PayloadFormat};
use crate::engine::{Engine, Event, RtpPacket, Sink};
use crate::flows::Key4;
use crate::quality::CaptureGaps;
use crate::stream::{is_video_format, KeySource, PtInfo, Stream, StreamKey};
use earshot_rtp::{is_rtcp, report_blocks, Rtp, TelephoneEvent, TimelineMode};
use earshot_wire::{Timestamp, Udp4};
use rustc_hash::FxHashMap;
use std::net::SocketAddr;

#[derive(Copy, Clone, Debug)]
pub(crate) struct Binding {
    pub call: CallKey,
    pub party: Party,
    /// Learned from where media came from (rule 5) rather than announced in an SDP.
    pub learned: bool,
}

/// Where a stream lives: in a call, or in the unassociated list.
#[derive(Copy, Clone, Debug)]
pub(crate) struct StreamLoc {
    pub call: Option<CallKey>,
    pub idx: u32,
    /// The binding epoch at which this location was last known to be right.
    pub epoch: u64,
}

/// A candidate for an unassociated stream, until its sequence numbers prove it is RTP.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub stream: Stream,
    pub last_seq: u16,
    pub consecutive: u8,
}

const CANDIDATE_PROOF: u8 = 3;
/// A candidate's packet at most this many sequence numbers behind its last one (0: the same
/// number again) is a duplicate or a late packet, not a break in the proof.
const CANDIDATE_BEHIND: u16 = 8;

/// Media addresses one call may hold bound (see [`remember_bound`]): far more than any real
/// call uses (two parties, RTP and RTCP, a few re-INVITEs), few enough to keep a hostile one
/// cheap.
pub(crate) const MAX_BOUND: usize = 64;
/// Streams one call may hold; RTP of further flows is treated as not belonging to it.
pub(crate) const MAX_STREAMS: usize = 64;
/// Codec-change events one stream may emit.
const MAX_CODEC_EVENTS: u32 = 64;

impl Engine {
    /// Installs a call's SDP addresses as bindings; a binding taken from another call makes
    /// every stream location re-check itself (see `StreamLoc::epoch`).
    pub(crate) fn rebind_media(&mut self, id: CallKey, _ts: Timestamp) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        for ep in &call.media {
            for (addr, is_rtcp_addr) in [(ep.addr, false), (ep.rtcp, true)] {
                if is_rtcp_addr && addr == ep.addr {
                    continue;
                }
                let new = Binding {
                    call: id,
                    party: ep.party,
                    learned: false,
                };
                if self.rtp_only_addrs.contains_key(&addr) {
                    // A call made of RTP alone holds this address's flows: they must look
                    // again, and find this SDP's call (see `rtp_only.rs`).
                    self.binding_epoch += 1;
                }
                if let Some(old) = self.bindings.insert(addr, new) {
                    if old.call != id {
                        self.binding_epoch += 1;
                        if !old.learned {
                            note_sharer(&mut self.sharers, addr, old.call, id);
                        }
                    }
                }
                remember_bound(
                    &mut self.bindings,
                    &mut self.sharers,
                    id,
                    &mut call.bound,
                    addr,
                );
            }
        }
    }

    /// [`Engine::on_media`] for plain IPv4, where nearly every packet belongs to a flow
    /// already placed in a call: that case is answered from the flow table's front, without
    /// building socket addresses or a full stream key; anything else goes to `on_media`.
    /// `key`, when given, is the flow key a look ahead made from the same bytes.
    pub(crate) fn on_media4(
        &mut self,
        ts: Timestamp,
        u: &Udp4<'_>,
        key: Option<Key4>,
        sink: &mut dyn Sink,
    ) {
        if !is_rtcp(u.payload) {
            if let Some(rtp) = Rtp::parse(u.payload) {
                let k4 = key.unwrap_or_else(|| Key4::new(u.src, u.dst, rtp.ssrc()));
                let loc = self.flows.front(k4);
                if let Some(loc) = loc.filter(|l| l.epoch == self.binding_epoch) {
                    if let Some(call_id) = loc.call {
                        self.counters.rtp_packets += 1;
                        self.counters.rtp_bytes += u.payload.len() as u64;
                        self.account_call_rtp(call_id, Some(k4), loc.idx, ts, &rtp, sink);
                        return;
                    }
                }
            }
        }
        let (src, dst) = (SocketAddr::V4(u.src), SocketAddr::V4(u.dst));
        self.on_media(ts, src, dst, u.payload, sink);
    }

    pub(crate) fn on_media(
        &mut self,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        sink: &mut dyn Sink,
    ) -> bool {
        if earshot_dtls::is_dtls(payload) {
            return self.on_dtls(src, dst, payload);
        }
        if is_rtcp(payload) {
            self.counters.rtcp_bytes += payload.len() as u64;
            return self.on_rtcp(src, dst, payload);
        }
        let Some(rtp) = Rtp::parse(payload) else {
            return false;
        };
        let key = StreamKey {
            src,
            dst,
            ssrc: rtp.ssrc(),
        };
        let loc = match self.locate(key, rtp.sequence()) {
            Some(loc) => loc,
            None => return self.on_unassociated(ts, key, &rtp, sink),
        };
        self.counters.rtp_packets += 1;
        self.counters.rtp_bytes += payload.len() as u64;
        match loc.call {
            Some(call_id) => {
                let k4 = Key4::of(&key);
                self.account_call_rtp(call_id, k4, loc.idx, ts, &rtp, sink)
            }
            None => {
                let ttl = self.cfg.idle_timeout_ns;
                let formats = self.orphan_sdp.formats(src, dst, ts.nanos(), ttl);
                if let Some(s) = self.unassociated.get_mut(loc.idx as usize) {
                    let timing = (self.cfg.timeline, &self.capture_gaps);
                    account_unassociated(s, ts, &rtp, formats, timing);
                }
            }
        }
        true
    }

    /// A DTLS datagram (RFC 7983) to or from a call's media address: the call's observer of
    /// that address pair reads its handshake. A handshake that completes is looked up in the
    /// key log at once, and the pair's streams keyed by an earlier handshake start over.
    fn on_dtls(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> bool {
        let key = StreamKey { src, dst, ssrc: 0 };
        let Some((binding, _)) = self.binding_for(key, true) else {
            return false;
        };
        let Some(call) = self.calls.get_mut(&binding.call) else {
            return false;
        };
        let totals = &mut self.counters.dtls;
        totals.datagrams += 1;
        let Some(leg) = dtls_leg(&mut call.dtls, src, dst) else {
            totals.dropped += 1;
            return true;
        };
        let refused = leg.observer.stats().unsupported_version;
        let seen = leg.observer.on_datagram(src, dst, payload);
        totals.unsupported_version += leg.observer.stats().unsupported_version - refused;
        if seen.handshake {
            totals.handshakes += 1;
            let found = leg.observer.look_up(&self.keylog);
            note_lookup(totals, found, leg.observer.keys());
            forget_dtls_keys(&mut call.streams, leg);
        }
        true
    }

    fn locate(&mut self, key: StreamKey, seq: u16) -> Option<StreamLoc> {
        if let Some(loc) = self.flows.find(&key) {
            // An unassociated flow looks for a binding on every packet: an SDP seen after its
            // media began binds a fresh address without bumping the epoch. Such flows are
            // rare, so the two extra lookups cost little.
            if loc.epoch == self.binding_epoch && loc.call.is_some() {
                return Some(loc);
            }
            let current = self.binding_for(key, false).map(|(b, _)| b.call);
            // Rule 1: a call keeps its flows (each an SSRC) while it lives, still holds one
            // of their addresses and the packet continues the stream, so a newer call
            // announcing the same ones (a media server answering every call on one port)
            // takes only the SSRCs it brings.
            let sticky = loc
                .call
                .is_some_and(|c| self.still_holds(c, loc.idx, key, seq));
            if current.is_none() || current == loc.call || sticky {
                let fresh = StreamLoc {
                    epoch: self.binding_epoch,
                    ..loc
                };
                if loc.epoch != fresh.epoch {
                    self.flows.insert(key, fresh);
                }
                return Some(fresh);
            }
        }
        let (binding, sender) = self.binding_for(key, false)?;
        let binding = self.first_free_sharer(key, binding, sender);
        let call = self.calls.get_mut(&binding.call)?;
        if call.streams.len() >= MAX_STREAMS {
            return None;
        }
        // Rule 5: remember where this party really sends from. An address learned for an
        // earlier call is taken over: the NAT (or SIPp) reused the port for this call, and
        // leaving it would send this call's replies to the old one.
        let learn = match self.bindings.get(&key.src) {
            None => true,
            Some(b) => b.learned && b.call != binding.call,
        };
        if learn {
            let new = Binding {
                call: binding.call,
                party: sender,
                learned: true,
            };
            if self.bindings.insert(key.src, new).is_some() {
                // Flows already located through the old owner must look again.
                self.binding_epoch += 1;
            }
            remember_bound(
                &mut self.bindings,
                &mut self.sharers,
                binding.call,
                &mut call.bound,
                key.src,
            );
        }
        let idx = call.streams.len() as u32;
        // Calls have two streams, rarely more: grow one at a time instead of doubling to four,
        // which would leave two unused ~300-byte slots in every call.
        call.streams.reserve_exact(1);
        call.streams.push(Stream::new(key, Some(sender)));
        self.counters.streams += 1;
        let loc = StreamLoc {
            call: Some(binding.call),
            idx,
            epoch: self.binding_epoch,
        };
        self.flows.insert(key, loc);
        Some(loc)
    }

    /// True while call `id` is up, still has the source or destination of `key` bound, and
    /// `seq` continues its stream `idx`. A sequence number far from the stream's is a sender
    /// that started over: SIPp replaying the same RTP, SSRC and all, for the next call on the
    /// same ports while the old call's BYE is not seen (or not sent yet).
    fn still_holds(&self, id: CallKey, idx: u32, key: StreamKey, seq: u16) -> bool {
        let Some(c) = self.calls.get(&id) else {
            return false;
        };
        let continues = c
            .streams
            .get(idx as usize)
            .and_then(|s| s.stats.highest_seq())
            .is_some_and(|max| {
                let ahead = seq.wrapping_sub(max);
                ahead <= SEQ_CONTINUES_AHEAD || max.wrapping_sub(seq) <= SEQ_CONTINUES_BEHIND
            });
        continues && c.end.is_none() && c.bound.iter().any(|&a| a == key.src || a == key.dst)
    }

    /// True when live call `id` announced `addr` in an SDP as where `party` receives media.
    ///
    /// `rtcp` says which of the endpoint's addresses count: an RTP packet is only ever sent to
    /// an RTP address. Counting the RTCP one too would give call A (RTP on port P, RTCP on
    /// P+1) the RTP of call B announced on P+1 (a PBX handing out consecutive ports).
    fn announced(&self, id: CallKey, party: Party, addr: SocketAddr, rtcp: bool) -> bool {
        self.calls.get(&id).is_some_and(|c| {
            c.end.is_none()
                && c.media
                    .iter()
                    .any(|ep| ep.party == party && (ep.addr == addr || (rtcp && ep.rtcp == addr)))
        })
    }

    /// Rule 1 for a new SSRC between addresses several live calls announced: `bindings` names
    /// the newest, but the SSRC is the first media of the oldest such call that has no stream
    /// of this address pair yet (calls start, and start sending, in order). A call with a
    /// stream there already gets a further SSRC only if no call is without one.
    fn first_free_sharer(&self, key: StreamKey, found: Binding, sender: Party) -> Binding {
        let Some(ids) = self.sharers.get(&key.dst) else {
            return found;
        };
        let src_owner = self.bindings.get(&key.src).filter(|b| !b.learned);
        let free = ids.iter().copied().find(|&id| {
            self.announced(id, sender.other(), key.dst, false)
                && src_owner.is_none_or(|_| self.announced(id, sender, key.src, false))
                && self.calls.get(&id).is_some_and(|c| {
                    !c.streams
                        .iter()
                        .any(|s| s.key.src == key.src && s.key.dst == key.dst)
                })
        });
        match free {
            Some(call) => Binding {
                call,
                party: sender.other(),
                learned: false,
            },
            None => found,
        }
    }

    /// The binding that claims a packet, and the party that sent it.
    fn binding_for(&self, key: StreamKey, rtcp: bool) -> Option<(Binding, Party)> {
        match (self.bindings.get(&key.dst), self.bindings.get(&key.src)) {
            // The source is announced by one call and the destination bound to another: the
            // source's call wins if the destination is only learned (maybe a stale NAT
            // mapping of an earlier call whose new owner has not sent yet), or if the source's
            // call announced the destination too (a media server or SBC answering many calls
            // on one address, which the newest of them holds in `bindings`).
            (Some(d), Some(s))
                if !s.learned
                    && d.call != s.call
                    && (d.learned || self.announced(s.call, s.party.other(), key.dst, rtcp)) =>
            {
                Some((*s, s.party))
            }
            (Some(d), _) => Some((*d, d.party.other())),
            (None, Some(s)) => Some((*s, s.party)),
            (None, None) => None,
        }
    }

    fn on_rtcp(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> bool {
        self.counters.rtcp_packets += 1;
        let key = StreamKey { src, dst, ssrc: 0 };
        let owner = self.binding_for(key, true);
        if let Some((call, sender)) =
            owner.and_then(|(b, p)| Some((self.calls.get_mut(&b.call)?, p)))
        {
            call.rtcp_packets += 1;
            // A call whose media is SRTP sends SRTCP: its reports are encrypted (and always
            // followed by its index and tag), and only what the sender's key authenticates is
            // read. Without a key nothing is: ciphertext must never pass for report blocks.
            let payload = if call.formats.iter().any(|f| f.encrypted) {
                let mut keys = Keys {
                    log: &self.keylog,
                    dtls: &mut self.counters.dtls,
                };
                let outcome =
                    open_srtcp(call, sender, key, payload, &mut keys, &mut self.srtp_clear);
                let totals = &mut self.counters.srtcp;
                match outcome {
                    Decrypted::Clear | Decrypted::Authenticated => totals.decrypted += 1,
                    Decrypted::Refused => totals.auth_failures += 1,
                    Decrypted::NoKey => totals.no_key += 1,
                }
                if outcome != Decrypted::Clear {
                    return true;
                }
                self.srtp_clear.as_slice()
            } else {
                payload
            };
            // The far end's report on each of the call's streams it names: a report block is
            // about a stream the reporter receives, so it is matched by SSRC among the streams
            // sent to the report's source (the receiver). At most 31 blocks a packet, each a
            // scan of the call's few streams.
            // An SSRC alone decides when no stream of it went to the reporter's address (a
            // NAT or an SBC between the sensor and the reporter).
            for b in report_blocks(payload) {
                let to_reporter = call
                    .streams
                    .iter()
                    .position(|s| s.key.ssrc == b.ssrc && s.key.dst.ip() == src.ip());
                let i =
                    to_reporter.or_else(|| call.streams.iter().position(|s| s.key.ssrc == b.ssrc));
                if let Some(s) = i.and_then(|i| call.streams.get_mut(i)) {
                    s.far_end_report(self.cfg.timeline, &b);
                    self.counters.rtcp_reports += 1;
                }
            }
        }
        true
    }

    fn account_call_rtp(
        &mut self,
        call_id: CallKey,
        k4: Option<Key4>,
        idx: u32,
        ts: Timestamp,
        rtp: &Rtp<'_>,
        sink: &mut dyn Sink,
    ) {
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        call.last_packet = call.last_packet.max(ts);
        let pt = rtp.payload_type();
        let formats = &call.formats;
        let Some(stream) = call.streams.get_mut(idx as usize) else {
            return;
        };
        if let Some(k4) = k4 {
            self.flows.remember_place(k4, &call.id, stream);
        }
        // Resolving the payload type scans the call's formats and compares encoding names;
        // a stream's packets nearly always repeat the previous one's type, so reuse that.
        let info = match stream.pt_cache {
            Some(c) if c.pt == pt && c.formats_len as usize == formats.len() => c,
            _ => {
                let c = resolve_pt(formats, pt);
                stream.pt_cache = Some(c);
                c
            }
        };
        // Clear RTP's events are read here; SRTP's once decrypted (below), never ciphertext.
        if info.is_event && !info.encrypted {
            record_dtmf(
                &mut call.dtmf,
                &mut stream.last_event,
                rtp.timestamp(),
                rtp.payload(),
            );
        }
        let switched = update_stream(
            stream,
            ts,
            rtp,
            || payload_format(formats, pt).0,
            info.clock,
            info.is_event,
            info.is_cn,
            (self.cfg.timeline, &self.capture_gaps),
        );
        // Video is measured above, but no sink may get it: sinks decode audio.
        if info.is_video {
            return;
        }
        let party = stream.party.unwrap_or(Party::Caller);
        // A stream flipping its payload type on every packet (broken or hostile) is reported
        // a bounded number of times; `Stream::codec_changes` still counts every change.
        if switched && stream.codec_changes <= MAX_CODEC_EVENTS {
            let event = Event::CodecChange {
                call: call_id,
                party,
                payload_type: pt,
            };
            sink.event(&event, call);
        }
        // SRTP with the sender's key: the sink gets the clear payload; without a key, or when
        // no packet of the stream has authenticated yet, the ciphertext marked as such (never
        // decoded). The key is the sender's SDES key, or its DTLS-SRTP handshake's. Every
        // packet is authenticated; its payload is decrypted only when something reads it: a
        // telephone-event (the DTMF digit), or a sink that wants this call's audio. `analyze`
        // reads neither for most packets, and the keystream is most of what decryption adds.
        let outcome = info.encrypted.then(|| {
            let want = if info.is_event || sink.wants_payload(call_id) {
                Want::Clear
            } else {
                Want::Proof
            };
            let mut keys = Keys {
                log: &self.keylog,
                dtls: &mut self.counters.dtls,
            };
            decrypt(call, idx, party, rtp, &mut keys, want, &mut self.srtp_clear)
        });
        if let Some(outcome) = outcome {
            let totals = &mut self.counters.srtp;
            match outcome {
                Decrypted::Clear | Decrypted::Authenticated => totals.decrypted += 1,
                Decrypted::Refused => totals.auth_failures += 1,
                Decrypted::NoKey => totals.no_key += 1,
            }
        }
        // A packet refused by a stream whose key opened others is corrupted or forged: the
        // sinks never see it, as if lost (handed on as ciphertext it would switch the party
        // to silence and back, and the audio after it would be re-anchored).
        let proven = || {
            call.streams
                .get(idx as usize)
                .is_some_and(Stream::is_decrypted)
        };
        if outcome == Some(Decrypted::Refused) && proven() {
            return;
        }
        let clear = matches!(outcome, Some(Decrypted::Clear | Decrypted::Authenticated));
        let payload = match outcome {
            Some(Decrypted::Clear) => Rtp::parse(&self.srtp_clear).map_or(&[][..], |c| c.payload()),
            // Proven the sender's, not decrypted: the sink said it reads no payload.
            Some(Decrypted::Authenticated) => &[],
            _ => rtp.payload(),
        };
        if info.is_event && outcome == Some(Decrypted::Clear) {
            if let Some(stream) = call.streams.get_mut(idx as usize) {
                record_dtmf(
                    &mut call.dtmf,
                    &mut stream.last_event,
                    rtp.timestamp(),
                    payload,
                );
            }
        }
        let formats = &call.formats;
        // The same entry `Call::format` finds: the last one with this payload type.
        let format = info.fmt.and_then(|i| formats.get(i as usize));
        let format_index = format.and(info.fmt).and_then(|i| u8::try_from(i).ok());
        sink.rtp(&RtpPacket {
            call: call_id,
            party,
            ts,
            ssrc: rtp.ssrc(),
            seq: rtp.sequence(),
            timestamp: rtp.timestamp(),
            payload_type: pt,
            marker: rtp.marker(),
            payload,
            format,
            format_index,
            event: info.is_event,
            encrypted: info.encrypted && !clear,
        });
    }

    fn on_unassociated(
        &mut self,
        ts: Timestamp,
        key: StreamKey,
        rtp: &Rtp<'_>,
        sink: &mut dyn Sink,
    ) -> bool {
        if !plausible_unannounced(key, rtp) {
            return false;
        }
        if self.candidates.len() >= self.cfg.max_candidates {
            self.candidates.clear();
        }
        let cand = self.candidates.entry(key).or_insert_with(|| Candidate {
            stream: Stream::new(key, None),
            last_seq: rtp.sequence().wrapping_sub(1),
            consecutive: 0,
        });
        // The proof is three packets in sequence. A packet seen again (RFC 3550: a duplicate,
        // as a mirror capturing each packet at two points gives) or a little late neither
        // advances nor breaks it; the stream's statistics count it.
        let seq = rtp.sequence();
        if seq == cand.last_seq.wrapping_add(1) {
            cand.consecutive += 1;
            cand.last_seq = seq;
        } else if cand.last_seq.wrapping_sub(seq) >= CANDIDATE_BEHIND {
            cand.consecutive = 0;
            cand.last_seq = seq;
        }
        let ttl = self.cfg.idle_timeout_ns;
        let formats = self.orphan_sdp.formats(key.src, key.dst, ts.nanos(), ttl);
        let timing = (self.cfg.timeline, &self.capture_gaps);
        account_unassociated(&mut cand.stream, ts, rtp, formats, timing);
        if cand.consecutive < CANDIDATE_PROOF {
            return false;
        }
        let Some(cand) = self.candidates.remove(&key) else {
            return false;
        };
        if self.cfg.rtp_only_calls {
            return self.place_rtp_only(cand.stream, sink);
        }
        if self.unassociated.len() >= self.cfg.max_unassociated {
            return false;
        }
        self.counters.rtp_packets += cand.stream.stats.packets;
        self.counters.rtp_bytes += cand.stream.stats.bytes;
        self.counters.streams += 1;
        let idx = self.unassociated.len() as u32;
        self.unassociated.push(cand.stream);
        self.flows.insert(
            key,
            StreamLoc {
                call: None,
                idx,
                epoch: self.binding_epoch,
            },
        );
        true
    }
}

/// Records an address bound to a call, so removing the call frees exactly its bindings.
///
/// A call keeps at most [`MAX_BOUND`], most recently bound last: endless re-INVITEs to new
/// ports (a broken endpoint, or an attack) then drop the oldest address and its binding,
/// instead of growing the tables, and the work of every SDP, without limit.
fn remember_bound(
    bindings: &mut FxHashMap<SocketAddr, Binding>,
    sharers: &mut FxHashMap<SocketAddr, Vec<CallKey>>,
    id: CallKey,
    bound: &mut Vec<SocketAddr>,
    addr: SocketAddr,
) {
    if let Some(i) = bound.iter().position(|&a| a == addr) {
        bound.remove(i);
    } else if bound.len() >= MAX_BOUND {
        let oldest = bound.remove(0);
        if bindings.get(&oldest).is_some_and(|b| b.call == id) {
            bindings.remove(&oldest);
        }
        forget_sharer(sharers, oldest, id);
    }
    crate::call::push_exact(bound, addr);
}

/// How far ahead of (about 5 s at 20 ms packets) or behind a stream's highest sequence
/// number a packet still continues it (see [`Engine::still_holds`]).
const SEQ_CONTINUES_AHEAD: u16 = 256;
const SEQ_CONTINUES_BEHIND: u16 = 64;

/// Calls one shared address remembers (see [`Engine::first_free_sharer`]); the oldest go first.
const MAX_SHARERS: usize = 32;

/// Records that call `new` announced `addr`, which live call `old` announced before it.
fn note_sharer(
    sharers: &mut FxHashMap<SocketAddr, Vec<CallKey>>,
    addr: SocketAddr,
    old: CallKey,
    new: CallKey,
) {
    let ids = sharers.entry(addr).or_default();
    for id in [old, new] {
        if !ids.contains(&id) {
            if ids.len() >= MAX_SHARERS {
                ids.remove(0);
            }
            ids.push(id);
        }
    }
}

/// Takes call `id` off the calls sharing `addr`; an address left to one call is not shared.
pub(crate) fn forget_sharer(
    sharers: &mut FxHashMap<SocketAddr, Vec<CallKey>>,
    addr: SocketAddr,
    id: CallKey,
) {
    if let Some(ids) = sharers.get_mut(&addr) {
        ids.retain(|&i| i != id);
        if ids.len() < 2 {
            sharers.remove(&addr);
        }
    }
}

/// Cheap filters against UDP that merely parses as RTP: well-known service ports and payload
/// types RFC 3551 leaves unassigned or reserves for RTCP conflict avoidance.
fn plausible_unannounced(key: StreamKey, rtp: &Rtp<'_>) -> bool {
    let pt = rtp.payload_type();
    let pt_ok = pt <= 34 || pt >= 96;
    pt_ok && key.src.port() >= 1024 && key.dst.port() >= 1024 && !rtp.payload().is_empty()
}

/// `formats`: what an SDP of a dialog whose INVITE was not seen announced for the stream's
/// addresses (see `orphan_sdp`), usually nothing.
fn account_unassociated(
    stream: &mut Stream,
    ts: Timestamp,
    rtp: &Rtp<'_>,
    formats: &[PayloadFormat],
    timing: (TimelineMode, &CaptureGaps),
) {
    let pt = rtp.payload_type();
    let info = resolve_pt(formats, pt);
    let (encoding, _) = payload_format(formats, pt);
    update_stream(
        stream,
        ts,
        rtp,
        || encoding,
        info.clock,
        info.is_event,
        info.is_cn,
        timing,
    );
}

/// `encoding` is asked for only when the stream's main or current payload type changes.
/// True when the packet changed the stream's audio payload type (a codec change).
#[inline]
#[allow(clippy::too_many_arguments)]
fn update_stream<'f>(
    stream: &mut Stream,
    ts: Timestamp,
    rtp: &Rtp<'_>,
    encoding: impl FnOnce() -> Option<&'f str>,
    clock: u32,
    is_event: bool,
    is_cn: bool,
    timing: (TimelineMode, &CaptureGaps),
) -> bool {
    let pt = rtp.payload_type();
    let audio = !is_event && !is_cn;
    if is_event {
        stream.events += 1;
    }
    if is_cn {
        stream.comfort_noise += 1;
    }
    let switched = audio && stream.current_pt != Some(pt);
    let main = stream.count_pt(pt, audio);
    let mut changed = false;
    if main || switched {
        let e = encoding();
        if let (true, Some(e)) = (main, e) {
            stream.codec = Some(e.to_owned());
            stream.clock_rate = clock;
        }
        if switched {
            changed = stream.current_pt.is_some();
            stream.current_pt = Some(pt);
            // In place: the buffer grows to the longest name once, then never again.
            stream.current_name.clear();
            stream.current_name.push_str(e.unwrap_or(""));
            if changed {
                stream.codec_changes = stream.codec_changes.saturating_add(1);
            }
        }
    }
    let clock = (!is_event && clock > 0).then_some(clock);
    stream.time_packet(timing.0, ts, timing.1);
    stream.stats.on_packet(
        ts.nanos(),
        rtp.sequence(),
        rtp.timestamp(),
        pt,
        rtp.marker(),
        rtp.len(),
        clock,
    );
    changed
}

/// One digit per event: an event is identified by its RTP timestamp, repeated in every packet
/// of it (including the three redundant end packets). The last one is remembered per stream,
/// because both directions may carry events at once and their packets interleave.
fn record_dtmf(dtmf: &mut String, last_event: &mut Option<u32>, id: u32, payload: &[u8]) {
    let Some(ev) = TelephoneEvent::parse(payload) else {
        return;
    };
    if *last_event == Some(id) {
        return;
    }
    *last_event = Some(id);
    if let Some(d) = ev.digit() {
        if dtmf.len() < 1024 {
            dtmf.push(d);
        }
    }
}

/// What [`decrypt`] made of an SRTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decrypted {
    /// Authenticated and decrypted: `out` holds the clear packet.
    Clear,
    /// Authenticated, not decrypted ([`Want::Proof`]): the sender's, but `out` holds nothing
    /// to read.
    Authenticated,
    /// The sender's key did not authenticate it.
    Refused,
    /// No key for the sender.
    NoKey,
}

/// What [`decrypt`] is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// The clear packet: its payload will be read.
    Clear,
    /// Only whether the packet is the sender's (its tag), and the ROC kept: no payload read.
    Proof,
}

/// Where [`decrypt`] finds DTLS-SRTP keys: the engine's key log, and the totals that count
/// handshakes it keys.
struct Keys<'a> {
    log: &'a earshot_keylog::KeyLog,
    dtls: &'a mut crate::DtlsTotals,
}

/// Authenticates one SRTP packet of stream `idx` with its sender's key (its SDES key, else
/// the DTLS-SRTP handshake's on the stream's addresses) and, when `want` asks for it,
/// decrypts it into `out`. The stream's SRTP state is made on the first packet a key is known
/// for (the stream's SRTP counters count the outcome).
fn decrypt(
    call: &mut crate::Call,
    idx: u32,
    party: Party,
    rtp: &Rtp<'_>,
    keys: &mut Keys<'_>,
    want: Want,
    out: &mut Vec<u8>,
) -> Decrypted {
    // Every packet so far refused by DTLS-SRTP keys: the key log may have corrected the
    // secret since (the look up is one comparison while it has not grown). If it did, every
    // stream of the pair starts over with the new keys.
    if let Some(s) = call.streams.get(idx as usize) {
        if s.srtp_source == Some(KeySource::Dtls) && never_authenticated(s) {
            if let Some(leg) = dtls_rekeyed(&mut call.dtls, s.key, keys) {
                forget_dtls_keys(&mut call.streams, leg);
            }
        }
    }
    let fresh = match call.streams.get(idx as usize) {
        Some(s) if s.srtp.is_none() => match call.srtp_key(party) {
            Some(k) => Some((earshot_srtp::SrtpStream::new(k), KeySource::Sdes)),
            None => dtls_key(&mut call.dtls, s.key, keys),
        },
        _ => None,
    };
    let Some(stream) = call.streams.get_mut(idx as usize) else {
        return Decrypted::NoKey;
    };
    if let Some((f, source)) = fresh {
        stream.srtp = Some(Box::new(f));
        stream.srtp_source = Some(source);
    }
    let Some(srtp) = stream.srtp.as_mut() else {
        return Decrypted::NoKey;
    };
    let (result, opened) = match want {
        Want::Clear => (srtp.unprotect(rtp.bytes(), out), Decrypted::Clear),
        Want::Proof => (
            srtp.authenticate(rtp.bytes(), out),
            Decrypted::Authenticated,
        ),
    };
    match result {
        Ok(()) => opened,
        Err(_) => Decrypted::Refused,
    }
}

/// Authenticates one SRTCP packet `sender` sent on `flow` and decrypts it into `out` with the
/// SRTCP session keys of the master key its SRTP uses (RFC 3711 §4.3.2: labels 3–5 of the
/// same master key and salt): its SDES key, else the DTLS-SRTP handshake's on the packet's
/// addresses. The receiving state lives on the sender's stream of the packet's SSRC (else
/// its first stream), made on its first SRTCP packet; a sender with no stream (it only
/// receives) gets a fresh one per packet when its line has one key.
fn open_srtcp(
    call: &mut crate::Call,
    sender: Party,
    flow: StreamKey,
    packet: &[u8],
    keys: &mut Keys<'_>,
    out: &mut Vec<u8>,
) -> Decrypted {
    let ssrc = packet
        .get(4..8)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let of_sender = |s: &Stream| s.party == Some(sender);
    let idx = call
        .streams
        .iter()
        .position(|s| of_sender(s) && s.key.ssrc == ssrc)
        .or_else(|| call.streams.iter().position(of_sender));
    let known = idx
        .and_then(|i| call.streams.get(i))
        .is_some_and(|s| s.srtcp.is_some());
    let fresh = if known {
        None
    } else {
        let source = idx
            .and_then(|i| call.streams.get(i))
            .and_then(|s| s.srtp_source);
        let sdes = call
            .srtp_key(sender)
            .filter(|_| source != Some(KeySource::Dtls));
        // No stream to keep it on: a receiver for this packet alone, which costs the key
        // derivation (about half a microsecond) and allocates nothing with one key. A line of
        // many keys (MKI) would cost that many derivations per packet: its RTCP is not read
        // then (counted as without a key).
        let per_packet = idx.is_none();
        match sdes.filter(|k| !per_packet || k.keys().len() == 1) {
            Some(k) => Some(earshot_srtp::SrtcpStream::new(k)),
            None => {
                dtls_master(&mut call.dtls, flow, keys).map(|k| earshot_srtp::SrtcpStream::new(&k))
            }
        }
    };
    let result = match (idx.and_then(|i| call.streams.get_mut(i)), fresh) {
        (Some(s), Some(f)) => s.srtcp.insert(Box::new(f)).unprotect_rtcp(packet, out),
        (Some(s), None) => match s.srtcp.as_mut() {
            Some(r) => r.unprotect_rtcp(packet, out),
            None => return Decrypted::NoKey,
        },
        (None, Some(mut f)) => f.unprotect_rtcp(packet, out),
        (None, None) => return Decrypted::NoKey,
    };
    match result {
        Ok(_) => Decrypted::Clear,
        Err(_) => Decrypted::Refused,
    }
}

/// DTLS associations one call may observe (RFC 5764 §4.1: one per RTP and RTCP component of
/// each media line, one in all with BUNDLE and rtcp-mux): a call flooded with DTLS from many
/// ports costs at most this many observers.
pub(crate) const MAX_DTLS: usize = 4;

/// The call's DTLS association between `src` and `dst`, made on its first datagram while the
/// call has room for one.
fn dtls_leg(
    legs: &mut Vec<crate::call::DtlsLeg>,
    src: SocketAddr,
    dst: SocketAddr,
) -> Option<&mut crate::call::DtlsLeg> {
    let i = match legs.iter().position(|l| l.carries(src, dst)) {
        Some(i) => i,
        None if legs.len() < MAX_DTLS => {
            crate::call::push_exact(
                legs,
                crate::call::DtlsLeg {
                    ends: [src, dst],
                    observer: earshot_dtls::DtlsObserver::new(),
                },
            );
            legs.len() - 1
        }
        None => return None,
    };
    legs.get_mut(i)
}

/// Counts a key log look up that keyed a handshake.
fn note_lookup(
    totals: &mut crate::DtlsTotals,
    found: earshot_dtls::Lookup,
    keys: Option<&earshot_dtls::SrtpKeys>,
) {
    if found == (earshot_dtls::Lookup::Keyed { first: true }) {
        totals.keyed += 1;
        if keys.is_some_and(|k| k.profile.suite().is_none()) {
            totals.unsupported_profile += 1;
        }
    }
}

/// The SRTP state for a stream from the DTLS-SRTP keys of its address pair, if a key log gave
/// them.
fn dtls_key(
    legs: &mut [crate::call::DtlsLeg],
    stream: StreamKey,
    keys: &mut Keys<'_>,
) -> Option<(earshot_srtp::SrtpStream, KeySource)> {
    let keys = dtls_master(legs, stream, keys)?;
    Some((earshot_srtp::SrtpStream::new(&keys), KeySource::Dtls))
}

/// The master key the sender of `flow` protects its SRTP and SRTCP with, from the DTLS-SRTP
/// handshake of the flow's address pair, if a key log gave its secret.
fn dtls_master(
    legs: &mut [crate::call::DtlsLeg],
    flow: StreamKey,
    keys: &mut Keys<'_>,
) -> Option<earshot_srtp::SdesKeys> {
    let leg = legs.iter_mut().find(|l| l.carries(flow.src, flow.dst))?;
    let found = leg.observer.look_up(keys.log);
    note_lookup(keys.dtls, found, leg.observer.keys());
    let master = leg.observer.keys()?.master_key(flow.src).ok()?;
    // Once per stream, when it is keyed: one key, no MKI (use_srtp's MKI is not used).
    earshot_srtp::SdesKeys::new(0, vec![master]).ok()
}

/// The association of a stream's address pair, if the key log gave it other keys since the
/// last look.
fn dtls_rekeyed<'l>(
    legs: &'l mut [crate::call::DtlsLeg],
    stream: StreamKey,
    keys: &mut Keys<'_>,
) -> Option<&'l crate::call::DtlsLeg> {
    let leg = legs
        .iter_mut()
        .find(|l| l.carries(stream.src, stream.dst))?;
    let found = leg.observer.look_up(keys.log);
    note_lookup(keys.dtls, found, leg.observer.keys());
    (found != earshot_dtls::Lookup::Unchanged).then_some(&*leg)
}

/// The streams of a DTLS association that were keyed by it start over: it has other keys.
fn forget_dtls_keys(streams: &mut [Stream], leg: &crate::call::DtlsLeg) {
    for s in streams.iter_mut() {
        if s.srtp_source == Some(KeySource::Dtls) && leg.carries(s.key.src, s.key.dst) {
            s.srtp = None;
            s.srtcp = None;
        }
    }
}

/// No packet of the stream authenticated with its SRTP key, and some were refused.
fn never_authenticated(s: &Stream) -> bool {
    s.srtp
        .as_ref()
        .is_some_and(|r| r.counters.decrypted == 0 && r.counters.auth_failures > 0)
}

/// What the hot path needs to know about a payload type in a call with these formats.
fn resolve_pt(formats: &[PayloadFormat], pt: u8) -> PtInfo {
    let (encoding, clock) = payload_format(formats, pt);
    let fmt = formats.iter().rposition(|f| f.pt == pt);
    PtInfo {
        pt,
        is_event: encoding.is_some_and(|e| e.eq_ignore_ascii_case("telephone-event")),
        is_cn: pt == 13 || encoding.is_some_and(|e| e.eq_ignore_ascii_case("CN")),
        is_video: encoding.is_some_and(|e| is_video_format(e, clock)),
        formats_len: formats.len() as u32,
        fmt: fmt.map(|i| i as u32),
        clock,
        encrypted: match fmt.and_then(|i| formats.get(i)) {
            Some(f) => f.encrypted,
            // A type no SDP named, in a call with SRTP media: ciphertext too, as far as anyone
            // can tell; never noise.
            None => formats.iter().any(|f| f.encrypted),
        },
    }
}

/// Encoding name and clock rate of a payload type: the call's SDP first, then RFC 3551.
fn payload_format(formats: &[PayloadFormat], pt: u8) -> (Option<&str>, u32) {
    match formats.iter().rev().find(|f| f.pt == pt) {
        Some(f) => (Some(f.encoding.as_str()), f.clock_rate),
        None => match earshot_sip::sdp::static_payload(pt) {
            Some((e, r, _)) => (Some(e), r),
            None => (None, 0),
        },
    }
}
