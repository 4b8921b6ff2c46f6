//! Calls made of RTP alone, for a live sensor that must let a supervisor hear a stream whose
//! SIP it never sees: signalling on another interface or VLAN, SIP over TLS, a mirror that
//! only copies the media ports, a capture started after the INVITE.
//!
//! Off by default ([`Config::rtp_only_calls`]): offline analysis lists such streams as
//! unassociated, as tshark does. When on, a stream that proved itself RTP (three packets in
//! sequence, see `media.rs`) and that no SDP claims becomes a call of its own:
//!
//! * its sender is the caller, its receiver the called party, both named by address;
//! * the call announces both addresses as its media, so the stream going the other way (the
//!   other party, symmetric RTP) joins it as the called party through the normal bindings,
//!   and an SDP seen later for one of these addresses takes the media over (the SDP's call is
//!   the real one; this one then goes quiet and ends);
//! * its payload types are the static ones (RFC 3551), those an orphan 183/200 announced for
//!   the addresses, and, for types these leave out, those the operator configured ([`Config::rtp_only_formats`], for a
//!   dynamic type nothing on the wire names);
//! * it ends after [`Config::rtp_only_idle_ns`] without media: it has no BYE.
//!
//! Hostile input: such a call costs what any call costs and counts against
//! [`Config::max_calls`]; random UDP must first pass the three-packet proof and the payload
//! type and port filters of unannounced streams.

use crate::call::{Call, CallKey, CallState, MediaEndpoint, Party, PayloadFormat};
use crate::engine::{Engine, Event, Sink};
use crate::media::StreamLoc;
use crate::stream::Stream;
use earshot_wire::Timestamp;
use std::net::SocketAddr;

/// The `call_id` prefix of calls made of RTP alone, so listings and clients can tell them
/// from SIP calls (no SIP Call-ID ever contains a space).
pub const RTP_ONLY_PREFIX: &str = "rtp-only ";

impl Engine {
    /// Places `stream` (proved RTP, unclaimed by any SDP): the other direction of a call made
    /// of RTP between the same two addresses joins it, anything else starts a new call.
    /// False if the stream was refused (the call table is full, or the call has all the
    /// streams it may).
    pub(crate) fn place_rtp_only(&mut self, stream: Stream, sink: &mut dyn Sink) -> bool {
        let key = stream.key;
        let pair = address_pair(key.src, key.dst);
        let joined = self
            .rtp_only
            .get(&pair)
            .copied()
            .filter(|id| self.calls.get(id).is_some_and(|c| c.end.is_none()));
        let id = match joined {
            Some(id) => id,
            None => match self.start_rtp_only_call(&stream) {
                Some(id) => id,
                None => return false,
            },
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        if call.streams.len() >= MAX_STREAMS {
            return false;
        }
        let mut stream = stream;
        stream.party = Some(if key.src == call.caller_sip {
            Party::Caller
        } else {
            Party::Called
        });
        call.last_packet = call.last_packet.max(Timestamp(stream.stats.last_seen_ns));
        self.counters.rtp_packets += stream.stats.packets;
        self.counters.rtp_bytes += stream.stats.bytes;
        self.counters.streams += 1;
        let idx = call.streams.len() as u32;
        call.streams.push(stream);
        let loc = StreamLoc {
            call: Some(id),
            idx,
            epoch: self.binding_epoch,
        };
        self.flows.insert(key, loc);
        if joined.is_none() {
            self.emit(sink, Event::CallNew(id), id);
            self.emit(sink, Event::CallState(id, CallState::Answered), id);
        }
        true
    }

    fn start_rtp_only_call(&mut self, stream: &Stream) -> Option<CallKey> {
        if self.calls.len() >= self.cfg.max_calls {
            self.counters.calls_dropped += 1;
            return None;
        }
        let key = stream.key;
        let start = Timestamp(stream.stats.first_seen_ns);
        let id = self.next_call_id;
        self.next_call_id += 1;
        let call_id = format!(
            "{RTP_ONLY_PREFIX}{} > {} ssrc {:08x}",
            key.src, key.dst, key.ssrc
        );
        let mut call = rtp_only_call(id, call_id, key.src, key.dst, start);
        call.formats = self.rtp_only_formats(key.src, key.dst, start.nanos());
        self.counters.calls += 1;
        self.calls.insert(id, call);
        self.rtp_only.insert(address_pair(key.src, key.dst), id);
        // Not bindings: a call made of RTP owns exactly its flows, never an address (a
        // second caller sending to the same port is another call, not this one's). An SDP
        // that later announces one of the addresses must still take the flows over, so it
        // is told to (see `rebind_media`).
        for addr in [key.src, key.dst] {
            self.rtp_only_addrs.insert(addr, id);
        }
        Some(id)
    }

    /// Forgets what [`Engine::place_rtp_only`] indexed for a call leaving the table.
    pub(crate) fn forget_rtp_only(&mut self, call: &Call) {
        if !is_rtp_only(call) {
            return;
        }
        let (a, b) = (call.caller_sip, call.called_sip);
        if self.rtp_only.get(&address_pair(a, b)) == Some(&call.id) {
            self.rtp_only.remove(&address_pair(a, b));
        }
        for addr in [a, b] {
            if self.rtp_only_addrs.get(&addr) == Some(&call.id) {
                self.rtp_only_addrs.remove(&addr);
            }
        }
    }

    /// What the payload types of a call made of RTP alone carry: an orphan SDP's for its
    /// addresses (what the wire said about these very streams), then the operator's list for
    /// the types it leaves out; static types resolve without an entry.
    fn rtp_only_formats(&self, src: SocketAddr, dst: SocketAddr, now: i64) -> Vec<PayloadFormat> {
        let ttl = self.cfg.idle_timeout_ns;
        let mut formats = self.orphan_sdp.formats(src, dst, now, ttl).to_vec();
        for f in &self.cfg.rtp_only_formats {
            if !formats.iter().any(|k| k.pt == f.pt) {
                formats.push(f.clone());
            }
        }
        formats
    }
}

/// Streams one call made of RTP may gather (SSRC changes between the same two addresses).
const MAX_STREAMS: usize = 16;

/// The two addresses of a flow in a fixed order, so both directions find one call.
pub(crate) fn address_pair(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// True for a call [`Engine`] made of RTP alone.
pub fn is_rtp_only(call: &Call) -> bool {
    call.sip_call_id.starts_with(RTP_ONLY_PREFIX)
}

fn rtp_only_call(
    id: CallKey,
    call_id: String,
    src: SocketAddr,
    dst: SocketAddr,
    start: Timestamp,
) -> Call {
    // Both parties receive where the other sends to (symmetric RTP, RFC 4961), RTCP on the
    // next port as RFC 3550 has it when nothing says otherwise.
    let endpoint = |party, addr: SocketAddr| MediaEndpoint {
        party,
        addr,
        rtcp: SocketAddr::new(addr.ip(), addr.port().wrapping_add(1)),
    };
    Call {
        id,
        sdes: Default::default(),
        last_packet: start,
        streams: Vec::with_capacity(2),
        formats: Vec::new(),
        sip_call_id: call_id,
        from_tag: None,
        to_tag: None,
        caller: src.to_string(),
        called: dst.to_string(),
        caller_name: None,
        called_name: None,
        caller_domain: None,
        called_domain: None,
        from_uri: String::new(),
        to_uri: String::new(),
        caller_agent: None,
        called_agent: None,
        caller_sip: src,
        called_sip: dst,
        vlan: None,
        state: CallState::Answered,
        sip_code: None,
        last_sip_code: None,
        reason: None,
        start,
        ring: None,
        answer: Some(start),
        end: None,
        last_sip: start,
        timed_out: false,
        cancel_seen: false,
        on_hold: false,
        held_by: None,
        reinvites: 0,
        dtmf: String::new(),
        media: vec![endpoint(Party::Caller, src), endpoint(Party::Called, dst)],
        sip_messages: 0,
        sip_log: Vec::new(),
        rtcp_packets: 0,
        invite_cseq: 0,
        holding: [false; 2],
        answer_codec: None,
        reinvite_cseq: [None; 2],
        bound: Vec::new(),
        dtls: Vec::new(),
        group: None,
        corr_keys: Vec::new(),
    }
}
