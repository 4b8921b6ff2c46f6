//! SIP messages → call table: dialog matching, state machine, SDP → media endpoints.

use crate::call::{
    push_exact, Call, CallKey, CallState, MediaEndpoint, Party, PayloadFormat, SipLogLimits,
    SipOrigin,
};
use crate::engine::{Engine, Event, Sink};
use earshot_sip::sdp;
use earshot_sip::{SipMessage, StartLine};
use earshot_wire::Timestamp;
use std::net::SocketAddr;

/// Where a SIP message was seen.
#[derive(Copy, Clone, Debug)]
pub(crate) struct SipMeta {
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub vlan: Option<u16>,
}

impl Engine {
    pub(crate) fn on_sip_bytes(&mut self, meta: SipMeta, bytes: &[u8], sink: &mut dyn Sink) {
        let msg = match SipMessage::parse(bytes) {
            Ok(m) => m,
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        };
        self.counters.sip_messages += 1;
        self.counters.sip_bytes += bytes.len() as u64;
        let Some(call_id) = msg.call_id() else {
            self.counters.malformed += 1;
            return;
        };
        let Some((cseq, cseq_method)) = msg.cseq() else {
            self.counters.malformed += 1;
            return;
        };
        if !is_dialog_method(cseq_method) {
            self.counters
                .count_method(cseq_method, matches!(msg.start, StartLine::Request { .. }));
            return;
        }
        let id = match self.find_call(call_id, &msg) {
            Some(id) => id,
            None => match &msg.start {
                StartLine::Request { method, .. } if method.eq_ignore_ascii_case("INVITE") => {
                    match self.new_call(meta, call_id, cseq, &msg) {
                        Some(id) => {
                            let a_leg = self.correlate(id, &msg);
                            self.emit(sink, Event::CallNew(id), id);
                            if let Some(a) = a_leg {
                                self.emit(sink, Event::Grouped(a), a);
                            }
                            id
                        }
                        None => return,
                    }
                }
                // A dialog whose INVITE was not captured: nothing to attach it to.
                // Its SDP still tells what the streams to and from its media carry.
                _ => {
                    self.counters.orphan_sip += 1;
                    self.learn_orphan_sdp(meta, &msg);
                    return;
                }
            },
        };
        self.update_call(id, meta, cseq, cseq_method, &msg, bytes, sink);
    }

    fn learn_orphan_sdp(&mut self, meta: SipMeta, msg: &SipMessage<'_>) {
        let Some(parsed) = msg.sdp().and_then(|b| sdp::parse(b).ok()) else {
            return;
        };
        let ttl = self.cfg.idle_timeout_ns;
        self.counters.orphan_sdp_dropped += self.orphan_sdp.learn(meta.ts.nanos(), ttl, &parsed);
    }

    fn find_call(&self, call_id: &str, msg: &SipMessage<'_>) -> Option<CallKey> {
        let ids = self.by_call_id.get(call_id)?;
        let from_tag = msg.from().and_then(|f| f.tag);
        let to_tag = msg.to().and_then(|t| t.tag);
        let (cseq, _) = msg.cseq()?;
        let initial_invite = to_tag.is_none()
            && msg
                .method()
                .is_some_and(|m| m.eq_ignore_ascii_case("INVITE"));
        // Newest first: a reused Call-ID belongs to the latest call that matches its tags.
        let found = ids.iter().rev().copied().find(|id| {
            let Some(call) = self.calls.get(id) else {
                return false;
            };
            tags_match(call, from_tag, to_tag)
        })?;
        let call = self.calls.get(&found)?;
        if initial_invite && starts_over(call, cseq) {
            return None;
        }
        Some(found)
    }

    fn new_call(
        &mut self,
        meta: SipMeta,
        call_id: &str,
        cseq: u32,
        msg: &SipMessage<'_>,
    ) -> Option<CallKey> {
        if self.calls.len() >= self.cfg.max_calls {
            self.counters.calls_dropped += 1;
            return None;
        }
        let from = msg.from();
        let to = msg.to();
        let id = self.next_call_id;
        self.next_call_id += 1;
        let call = Call {
            sdes: Default::default(),
            id,
            sip_call_id: call_id.to_owned(),
            from_tag: from.as_ref().and_then(|f| f.tag.map(str::to_owned)),
            to_tag: None,
            caller: from
                .as_ref()
                .and_then(|f| f.user)
                .unwrap_or_default()
                .to_owned(),
            called: to
                .as_ref()
                .and_then(|t| t.user)
                .unwrap_or_default()
                .to_owned(),
            caller_name: from
                .as_ref()
                .and_then(|f| f.display.as_ref().map(|d| d.to_string())),
            called_name: to
                .as_ref()
                .and_then(|t| t.display.as_ref().map(|d| d.to_string())),
            caller_domain: from.as_ref().and_then(|f| f.host.map(str::to_owned)),
            called_domain: to.as_ref().and_then(|t| t.host.map(str::to_owned)),
            from_uri: from.as_ref().map(|f| f.uri.to_owned()).unwrap_or_default(),
            to_uri: to.as_ref().map(|t| t.uri.to_owned()).unwrap_or_default(),
            caller_agent: msg.user_agent().map(str::to_owned),
            called_agent: None,
            caller_sip: meta.src,
            called_sip: meta.dst,
            vlan: meta.vlan,
            state: CallState::Trying,
            sip_code: None,
            last_sip_code: None,
            reason: None,
            start: meta.ts,
            ring: None,
            answer: None,
            end: None,
            last_packet: meta.ts,
            last_sip: meta.ts,
            timed_out: false,
            cancel_seen: false,
            on_hold: false,
            held_by: None,
            reinvites: 0,
            dtmf: String::new(),
            media: Vec::new(),
            formats: Vec::new(),
            streams: Vec::new(),
            sip_messages: 0,
            sip_log: Vec::new(),
            rtcp_packets: 0,
            invite_cseq: cseq,
            holding: [false; 2],
            answer_codec: None,
            reinvite_cseq: [None; 2],
            bound: Vec::new(),
            dtls: Vec::new(),
            group: None,
            corr_keys: Vec::new(),
        };
        self.calls.insert(id, call);
        push_exact(self.by_call_id.entry(call_id.to_owned()).or_default(), id);
        self.counters.calls += 1;
        Some(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn update_call(
        &mut self,
        id: CallKey,
        meta: SipMeta,
        cseq: u32,
        cseq_method: &str,
        msg: &SipMessage<'_>,
        raw: &[u8],
        sink: &mut dyn Sink,
    ) {
        let limits = SipLogLimits::from_config(&self.cfg);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.sip_messages += 1;
        let logged = self.cfg.sip_log_call_id.as_deref();
        if limits.messages > 0 && logged.is_none_or(|id| id == call.sip_call_id) {
            let origin = SipOrigin {
                ts: meta.ts,
                src: meta.src,
                dst: meta.dst,
            };
            match call.log_sip(&limits, self.sip_log_used, origin, raw) {
                Some(bytes) => self.sip_log_used += bytes,
                None => self.counters.sip_log_skipped += 1,
            }
        }
        call.last_packet = call.last_packet.max(meta.ts);
        call.last_sip = meta.ts;
        let before = call.state;
        let mut media_changed = false;
        match &msg.start {
            StartLine::Request { method, .. } => {
                on_request(call, meta, method, cseq, msg);
                if method.eq_ignore_ascii_case("INFO") {
                    if let Some(d) = info_dtmf(msg) {
                        call.dtmf.push(d);
                    }
                }
            }
            StartLine::Response { code, reason } => {
                on_response(call, meta, *code, reason, cseq, cseq_method, msg)
            }
        }
        let mut hold = None;
        let sdp = msg.sdp().and_then(|body| sdp::parse(body).ok());
        if let Some(sdp) = &sdp {
            let party = sender(call, msg, meta);
            media_changed = apply_sdp(call, party, sdp);
            hold = note_hold(call, party, sdp, msg);
        }
        let responder = sender(call, msg, meta);
        let reinvite = answered_reinvite(
            call,
            responder.other(),
            cseq,
            cseq_method,
            msg,
            sdp.as_ref(),
        );
        let after = call.state;
        let answered = call.answer.is_some();
        if media_changed {
            self.rebind_media(id, meta.ts);
            self.emit(sink, Event::MediaChanged(id), id);
        }
        if after != before {
            self.emit(sink, Event::CallState(id, after), id);
        }
        if let Some(codec) = reinvite {
            self.emit(sink, Event::Reinvite { call: id, codec }, id);
        }
        // Hold before the answer (an announcement's `sendonly` early media) is state, not news.
        match hold {
            Some(true) if answered => self.emit(sink, Event::Hold(id), id),
            Some(false) if answered => self.emit(sink, Event::Resume(id), id),
            _ => {}
        }
    }
}

/// Methods that belong to an INVITE dialog. Everything else (REGISTER, OPTIONS, SUBSCRIBE,
/// NOTIFY, MESSAGE, PUBLISH...) is counted but never makes or changes a call.
fn is_dialog_method(m: &str) -> bool {
    [
        "INVITE", "ACK", "BYE", "CANCEL", "PRACK", "UPDATE", "INFO", "REFER",
    ]
    .iter()
    .any(|d| m.eq_ignore_ascii_case(d))
}

/// An out-of-dialog INVITE that reuses an old call's Call-ID and From tag but cannot belong to it:
/// the call was hung up, or it failed and this is no authenticated retry (same or lower CSeq).
/// A looped capture or a phone with a poor Call-ID generator produces these; each is a new call.
fn starts_over(call: &Call, cseq: u32) -> bool {
    match call.state {
        CallState::Ended | CallState::Cancelled | CallState::Unanswered => true,
        CallState::Failed => cseq <= call.invite_cseq,
        _ => false,
    }
}

fn tags_match(call: &Call, from_tag: Option<&str>, to_tag: Option<&str>) -> bool {
    let same = |a: Option<&str>, b: Option<&str>| matches!((a, b), (Some(x), Some(y)) if x == y);
    let ours = call.from_tag.as_deref();
    // Requests from the called party swap From and To.
    let forward = ours.is_none() || from_tag.is_none() || same(ours, from_tag);
    let backward = same(ours, to_tag);
    forward || backward
}

fn on_request(call: &mut Call, meta: SipMeta, method: &str, cseq: u32, msg: &SipMessage<'_>) {
    let from_caller = sender(call, msg, meta) == Party::Caller;
    if method.eq_ignore_ascii_case("INVITE") {
        let initial = msg.to().and_then(|t| t.tag).is_none();
        if initial && cseq > call.invite_cseq && !call.state.is_final()
            || initial && call.state == CallState::Failed
        {
            // An authenticated retry (after 401/407) of the same call: start over.
            call.invite_cseq = cseq;
            call.state = CallState::Trying;
            call.sip_code = None;
            call.end = None;
            // The challenge's reason ("Proxy Authentication Required") is not this attempt's.
            call.reason = None;
        }
        if from_caller && call.caller_agent.is_none() {
            call.caller_agent = msg.user_agent().map(str::to_owned);
        }
    } else if method.eq_ignore_ascii_case("CANCEL") {
        call.cancel_seen = true;
    } else if method.eq_ignore_ascii_case("BYE") {
        if call.state == CallState::Answered || call.answer.is_some() {
            call.state = CallState::Ended;
        } else if !call.state.is_final() {
            call.state = CallState::Cancelled;
        }
        if call.end.is_none() {
            call.end = Some(meta.ts);
        }
        if let Some(r) = msg.reason() {
            call.reason = Some(r.to_owned());
        }
    }
}

fn on_response(
    call: &mut Call,
    meta: SipMeta,
    code: u16,
    reason: &str,
    cseq: u32,
    cseq_method: &str,
    msg: &SipMessage<'_>,
) {
    if !cseq_method.eq_ignore_ascii_case("INVITE") {
        return;
    }
    call.last_sip_code = Some(code);
    let initial = cseq == call.invite_cseq && call.answer.is_none();
    // A proxy answers 100 Trying itself: the called party's agent is in its 18x or 2xx, and
    // the 2xx (from the phone that took the call, when several rang) wins.
    let from_called = sender(call, msg, meta) == Party::Called;
    if code > 100 && from_called {
        let answer = initial && (200..300).contains(&code);
        if let Some(ua) = msg.user_agent() {
            if call.called_agent.is_none() || answer {
                call.called_agent = Some(ua.to_owned());
            }
        }
    }
    if !initial || call.state.is_final() {
        return;
    }
    match code {
        100..=199 => {
            if code > 100 {
                call.ring.get_or_insert(meta.ts);
                let early = msg.sdp().is_some();
                call.state = if early || call.state == CallState::Early {
                    CallState::Early
                } else {
                    CallState::Ringing
                };
            }
        }
        200..=299 => {
            call.state = CallState::Answered;
            call.answer = Some(meta.ts);
            call.sip_code = Some(code);
            call.to_tag = msg.to().and_then(|t| t.tag.map(str::to_owned));
        }
        _ => {
            call.sip_code = Some(code);
            call.state = if code == 487 || call.cancel_seen {
                CallState::Cancelled
            } else {
                CallState::Failed
            };
            call.end = Some(meta.ts);
            call.reason = Some(msg.reason().unwrap_or(reason).to_owned());
        }
    }
}

/// Which party sent a message, from its From tag rather than its addresses, so that proxies,
/// B2BUAs and several phones on one host are told apart: requests carry the sender's tag in
/// From, responses echo the From of the request they answer.
fn sender(call: &Call, msg: &SipMessage<'_>, meta: SipMeta) -> Party {
    let from_tag = msg.from().and_then(|f| f.tag);
    let from_caller = match (from_tag, call.from_tag.as_deref()) {
        (Some(t), Some(ours)) => t == ours,
        _ => meta.src == call.caller_sip || meta.dst == call.called_sip,
    };
    let request = matches!(msg.start, StartLine::Request { .. });
    if from_caller == request {
        Party::Caller
    } else {
        Party::Called
    }
}

/// Media endpoints a call keeps (the oldest goes first) and payload formats it records (later
/// ones are ignored): SDP after SDP must not grow a call without limit.
const MAX_MEDIA: usize = 16;
const MAX_FORMATS: usize = 64;

/// Records the media endpoints and payload formats of an SDP's audio and video m-lines; true
/// if an endpoint is new (formats alone never move media). Video is recorded so that its RTP is
/// tied to its call and measured (a 90 kHz clock, see [`crate::stream::is_video_format`])
/// instead of listed as unassociated; it is never decoded: the engine hands video packets to no
/// sink. Hold is judged from audio alone, apart (see `note_hold`).
fn apply_sdp(call: &mut Call, party: Party, sdp: &sdp::Sdp<'_>) -> bool {
    let mut changed = false;
    for m in sdp
        .media
        .iter()
        .filter(|m| m.kind.eq_ignore_ascii_case("audio") || m.kind.eq_ignore_ascii_case("video"))
    {
        record_formats(call, m);
        if m.kind.eq_ignore_ascii_case("audio") && m.is_secure() {
            record_keys(call, party, m);
        }
        if let Some(ep) = endpoint(party, sdp, m) {
            changed |= add_endpoint(call, ep);
        }
    }
    changed
}

/// The SDES keys `party` sends its SRTP with (its `a=crypto` lines of a supported suite). New
/// keys replace the old (a re-INVITE may rekey); the streams of that party then start their
/// SRTP state again with them.
fn record_keys(call: &mut Call, party: Party, m: &sdp::Media<'_>) {
    let keys: Vec<earshot_srtp::SdesKeys> = m
        .crypto
        .iter()
        .filter_map(|v| earshot_srtp::SdesKeys::parse(v).ok())
        .collect();
    let slot = usize::from(party == Party::Called);
    if keys.is_empty() || call.sdes[slot] == keys {
        return;
    }
    call.sdes[slot] = keys;
    for s in call.streams.iter_mut().filter(|s| s.party == Some(party)) {
        s.srtp = None;
        s.srtcp = None;
    }
}

/// The payload formats of one m-line: its rtpmaps, and the static types it lists without one.
fn record_formats(call: &mut Call, m: &sdp::Media<'_>) {
    for r in &m.rtpmap {
        let fmt = PayloadFormat {
            pt: r.pt,
            encoding: r.encoding.to_owned(),
            clock_rate: r.clock_rate,
            channels: r.channels,
            encrypted: m.is_secure(),
            fmtp: crate::call::kept_fmtp(m, r.pt),
        };
        if call.format(r.pt) != Some(&fmt) && call.formats.len() < MAX_FORMATS {
            push_exact(&mut call.formats, fmt);
        }
    }
    for &pt in &m.formats {
        // A static type is recorded again when the m-line's security differs (an SRTP
        // re-INVITE of a clear call, or back): the latest entry is the one in force.
        let known = call.format(pt).map(|f| f.encrypted);
        if known != Some(m.is_secure()) && call.formats.len() < MAX_FORMATS {
            if m.rtpmap.iter().any(|r| r.pt == pt) {
                continue;
            }
            if let Some(mut fmt) = PayloadFormat::from_static(pt) {
                fmt.encrypted = m.is_secure();
                push_exact(&mut call.formats, fmt);
            }
        }
    }
}

/// Where `party` receives the m-line's RTP and RTCP; none for a refused (port 0) or held
/// (0.0.0.0) stream, or one without a connection address.
fn endpoint(party: Party, sdp: &sdp::Sdp<'_>, m: &sdp::Media<'_>) -> Option<MediaEndpoint> {
    let ip = m.connection.or(sdp.connection)?;
    if m.port == 0 || ip.is_unspecified() {
        return None;
    }
    let addr = SocketAddr::new(ip, m.port);
    let rtcp = match m.rtcp {
        // RFC 4571: RTCP travels on the same TCP connection as the RTP.
        _ if m.rtcp_mux || m.is_tcp() => addr,
        Some((port, rip)) => SocketAddr::new(rip.unwrap_or(ip), port),
        None => SocketAddr::new(ip, m.port.wrapping_add(1)),
    };
    Some(MediaEndpoint { party, addr, rtcp })
}

/// Adds an endpoint (replacing the party's old one on the same address, dropping the oldest
/// beyond `MAX_MEDIA`); true if it is new.
fn add_endpoint(call: &mut Call, ep: MediaEndpoint) -> bool {
    if call.media.contains(&ep) {
        return false;
    }
    call.media
        .retain(|e| !(e.party == ep.party && e.addr == ep.addr));
    if call.media.len() >= MAX_MEDIA {
        call.media.remove(0);
    }
    push_exact(&mut call.media, ep);
    true
}

/// Records whether `party`'s SDP holds the call, and when the message completes an offer/answer
/// (a response, ACK or PRACK: the offer alone may still be refused) works out the call's hold
/// state. `Some(on_hold)` when that state changed.
///
/// Each party's latest word counts, so baresip's hold (`sendonly` offer, `recvonly` answer, RFC
/// 3264 §8.4) holds, and the call resumes only once neither side holds any more.
fn note_hold(
    call: &mut Call,
    party: Party,
    sdp: &sdp::Sdp<'_>,
    msg: &SipMessage<'_>,
) -> Option<bool> {
    call.holding[party_index(party)] = sdp_holds(sdp);
    let completes = match &msg.start {
        StartLine::Response { .. } => true,
        StartLine::Request { method, .. } => {
            method.eq_ignore_ascii_case("ACK") || method.eq_ignore_ascii_case("PRACK")
        }
    };
    if !completes {
        return None;
    }
    let held_by = [Party::Caller, Party::Called]
        .into_iter()
        .find(|p| call.holding[party_index(*p)]);
    call.held_by = held_by;
    let on_hold = held_by.is_some();
    if on_hold == call.on_hold {
        return None;
    }
    call.on_hold = on_hold;
    Some(on_hold)
}

fn party_index(p: Party) -> usize {
    match p {
        Party::Caller => 0,
        Party::Called => 1,
    }
}

/// Every active audio stream of the SDP is `sendonly`, `inactive` or sent to 0.0.0.0.
fn sdp_holds(sdp: &sdp::Sdp<'_>) -> bool {
    let session_unspecified = sdp.connection.is_some_and(|ip| ip.is_unspecified());
    let mut active = sdp
        .media
        .iter()
        .filter(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)
        .peekable();
    active.peek().is_some()
        && active.all(|m| m.is_hold() || (m.connection.is_none() && session_unspecified))
}

/// For a 2xx to an INVITE: remembers the answer's codec and, for a re-INVITE not reported
/// before, says so — `Some(Some(codec))` when the codec differs from the previous answer's.
fn answered_reinvite(
    call: &mut Call,
    offerer: Party,
    cseq: u32,
    cseq_method: &str,
    msg: &SipMessage<'_>,
    sdp: Option<&sdp::Sdp<'_>>,
) -> Option<Option<String>> {
    let StartLine::Response { code, .. } = msg.start else {
        return None;
    };
    if !(200..300).contains(&code) || !cseq_method.eq_ignore_ascii_case("INVITE") {
        return None;
    }
    let codec = sdp.and_then(first_audio_codec);
    if offerer == Party::Caller && cseq <= call.invite_cseq {
        if call.answer_codec.is_none() {
            call.answer_codec = codec.map(str::to_owned);
        }
        return None;
    }
    // Each party numbers its own requests: their CSeqs are compared separately.
    let last = &mut call.reinvite_cseq[party_index(offerer)];
    if last.is_some_and(|l| cseq <= l) || call.answer.is_none() {
        return None;
    }
    *last = Some(cseq);
    call.reinvites = call.reinvites.saturating_add(1);
    let changed = codec.filter(|c| {
        !call
            .answer_codec
            .as_deref()
            .is_some_and(|old| old.eq_ignore_ascii_case(c))
    });
    if let Some(c) = changed {
        call.answer_codec = Some(c.to_owned());
    }
    Some(changed.map(str::to_owned))
}

/// The first audio codec of an SDP's first active audio stream: the one an answer chose.
fn first_audio_codec<'a>(sdp: &'a sdp::Sdp<'a>) -> Option<&'a str> {
    let m = sdp
        .media
        .iter()
        .find(|m| m.kind.eq_ignore_ascii_case("audio") && m.port != 0)?;
    m.formats.iter().find_map(|&pt| {
        let name = m
            .rtpmap
            .iter()
            .find(|r| r.pt == pt)
            .map(|r| r.encoding)
            .or_else(|| sdp::static_payload(pt).map(|(e, _, _)| e))?;
        let aux = name.eq_ignore_ascii_case("telephone-event") || name.eq_ignore_ascii_case("CN");
        (!aux).then_some(name)
    })
}

/// A digit from SIP INFO: `application/dtmf-relay` (`Signal=5`) or `application/dtmf` (`5`).
fn info_dtmf(msg: &SipMessage<'_>) -> Option<char> {
    let ct = msg.content_type()?.to_ascii_lowercase();
    let body = std::str::from_utf8(msg.body).ok()?;
    let value = if ct.starts_with("application/dtmf-relay") {
        body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if ct.starts_with("application/dtmf") {
        body.trim()
    } else {
        return None;
    };
    let c = value.chars().next()?;
    (c.is_ascii_digit() || "*#ABCDabcd".contains(c)).then(|| c.to_ascii_uppercase())
}
