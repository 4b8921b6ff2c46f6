//! A tiny builder for scenario tests: SIP messages as text, RTP/RTCP as bytes, and a harness
//! that feeds them to an [`Engine`] as already decapsulated packets and records what the
//! [`Sink`] hears.
#![allow(dead_code)]

use earshot_core::{Call, CallKey, Config, Engine, Event, Party, RtpPacket, Sink};
use earshot_wire::{Packet, Timestamp, Transport};
use std::fmt::Write as _;
use std::net::SocketAddr;

pub const CALLER_SIP: &str = "10.0.0.1:5060";
pub const CALLED_SIP: &str = "10.0.0.2:5060";
pub const CALLER_IP: &str = "10.0.0.1";
pub const CALLED_IP: &str = "10.0.0.2";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

pub fn ms(t: i64) -> Timestamp {
    Timestamp::from_nanos(t * 1_000_000)
}

/// Encoding name and clock of the payload types the tests use.
fn rtpmap(pt: u8) -> Option<&'static str> {
    Some(match pt {
        0 => "PCMU/8000",
        8 => "PCMA/8000",
        9 => "G722/8000",
        13 => "CN/8000",
        18 => "G729/8000",
        101 => "telephone-event/8000",
        _ => return None,
    })
}

pub fn sdp(ip: &str, port: u16, codecs: &[u8]) -> String {
    sdp_with(ip, port, codecs, "")
}

/// An SDP offer/answer with one audio line; `extra` is appended to the media section.
pub fn sdp_with(ip: &str, port: u16, codecs: &[u8], extra: &str) -> String {
    let pts: Vec<String> = codecs.iter().map(u8::to_string).collect();
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n",
        pts.join(" ")
    );
    for &pt in codecs {
        if let Some(m) = rtpmap(pt) {
            let _ = write!(s, "a=rtpmap:{pt} {m}\r\n");
        }
    }
    s.push_str(extra);
    s
}

/// One dialog's identity: who calls whom, under which Call-ID and tags.
#[derive(Clone, Debug)]
pub struct Dialog {
    pub call_id: String,
    pub from_tag: String,
    pub from: String,
    pub to: String,
    pub caller_sip: &'static str,
    pub called_sip: &'static str,
}

pub fn dialog(call_id: &str, from_tag: &str) -> Dialog {
    Dialog {
        call_id: call_id.into(),
        from_tag: from_tag.into(),
        from: "\"Alice Smith\" <sip:1001@example.com>".into(),
        to: "\"Bob\" <sip:2002@example.com>".into(),
        caller_sip: CALLER_SIP,
        called_sip: CALLED_SIP,
    }
}

fn finish(mut head: String, body: Option<(&str, &str)>) -> Vec<u8> {
    match body {
        Some((ct, b)) => {
            let _ = write!(
                head,
                "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            );
        }
        None => head.push_str("Content-Length: 0\r\n\r\n"),
    }
    head.into_bytes()
}

/// A request of the dialog. `from_called` swaps From and To, as RFC 3261 requires for
/// requests the called party sends (BYE, re-INVITE).
pub fn request(
    method: &str,
    d: &Dialog,
    cseq: u32,
    to_tag: Option<&str>,
    from_called: bool,
    ua: Option<&str>,
    body: Option<(&str, &str)>,
) -> Vec<u8> {
    let (from, from_tag, to, to_tag, via) = if from_called {
        (
            &d.to,
            to_tag.unwrap_or("missing"),
            &d.from,
            Some(d.from_tag.as_str()),
            d.called_sip,
        )
    } else {
        (&d.from, d.from_tag.as_str(), &d.to, to_tag, d.caller_sip)
    };
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let mut h = format!(
        "{method} sip:2002@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {via};branch=z9hG4bK{cseq}{method}\r\n\
         Max-Forwards: 70\r\n\
         From: {from};tag={from_tag}\r\n\
         To: {to}{to_tag}\r\n\
         Call-ID: {}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:x@{via}>\r\n",
        d.call_id
    );
    if let Some(ua) = ua {
        let _ = write!(h, "User-Agent: {ua}\r\n");
    }
    finish(h, body)
}

/// The INVITE the builder asks for: caller's first offer.
pub fn invite(
    call_id: &str,
    from_tag: &str,
    cseq: u32,
    sdp_addr: &str,
    sdp_port: u16,
    codecs: &[u8],
) -> Vec<u8> {
    let body = sdp(sdp_addr, sdp_port, codecs);
    request(
        "INVITE",
        &dialog(call_id, from_tag),
        cseq,
        None,
        false,
        Some("CallerPhone/1.0"),
        Some(("application/sdp", &body)),
    )
}

/// A response to a request the caller sent (CSeq method `method`).
pub fn response(
    code: u16,
    reason: &str,
    d: &Dialog,
    cseq: u32,
    method: &str,
    to_tag: Option<&str>,
    sdp: Option<&str>,
) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let h = format!(
        "SIP/2.0 {code} {reason}\r\n\
         Via: SIP/2.0/UDP {};branch=z9hG4bK{cseq}{method}\r\n\
         From: {};tag={}\r\n\
         To: {}{to_tag}\r\n\
         Call-ID: {}\r\n\
         CSeq: {cseq} {method}\r\n\
         Server: CalledPhone/2.0\r\n",
        d.caller_sip, d.from, d.from_tag, d.to, d.call_id
    );
    finish(h, sdp.map(|s| ("application/sdp", s)))
}

/// An out-of-dialog request (REGISTER, OPTIONS, SUBSCRIBE...).
pub fn simple_request(method: &str, call_id: &str) -> Vec<u8> {
    request(method, &dialog(call_id, "r1"), 1, None, false, None, None)
}

pub fn rtp(ssrc: u32, seq: u16, ts: u32, pt: u8, payload: &[u8]) -> Vec<u8> {
    rtp_m(ssrc, seq, ts, pt, false, payload)
}

pub fn rtp_m(ssrc: u32, seq: u16, ts: u32, pt: u8, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, (u8::from(marker) << 7) | (pt & 0x7f)];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An RFC 4733 telephone-event payload.
pub fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [code, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
}

/// A minimal RTCP sender report.
pub fn rtcp_sr(ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80, 200, 0, 6];
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(&[0u8; 20]);
    v
}

/// What the sink heard.
#[derive(Default, Debug)]
pub struct Recorder {
    pub events: Vec<Event>,
    /// (call, party, payload type, ssrc, seq, payload)
    pub rtp: Vec<(CallKey, Party, u8, u32, u16, Vec<u8>)>,
}

impl Sink for Recorder {
    fn event(&mut self, event: &Event, _call: &Call) {
        self.events.push(event.clone());
    }
    fn rtp(&mut self, p: &RtpPacket<'_>) {
        self.rtp.push((
            p.call,
            p.party,
            p.payload_type,
            p.ssrc,
            p.seq,
            p.payload.to_vec(),
        ));
    }
}

pub struct Harness {
    pub engine: Engine,
    pub sink: Recorder,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new(Config::default())
    }
}

impl Harness {
    pub fn new(cfg: Config) -> Self {
        Harness {
            engine: Engine::new(cfg),
            sink: Recorder::default(),
        }
    }

    pub fn udp(&mut self, t_ms: i64, src: &str, dst: &str, payload: &[u8]) {
        self.udp_at(ms(t_ms), src, dst, payload);
    }

    pub fn udp_at(&mut self, ts: Timestamp, src: &str, dst: &str, payload: &[u8]) {
        let p = Packet {
            ts,
            src: addr(src),
            dst: addr(dst),
            vlan: None,
            transport: Transport::Udp,
            payload,
            from_hep: false,
        };
        self.engine.handle_packet(&p, &mut self.sink);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn tcp(&mut self, t_ms: i64, src: &str, dst: &str, seq: u32, syn: bool, payload: &[u8]) {
        let p = Packet {
            ts: ms(t_ms),
            src: addr(src),
            dst: addr(dst),
            vlan: None,
            transport: Transport::Tcp {
                seq,
                syn,
                fin: false,
                rst: false,
            },
            payload,
            from_hep: false,
        };
        self.engine.handle_packet(&p, &mut self.sink);
    }

    /// Caller → called SIP.
    pub fn c2s(&mut self, t_ms: i64, msg: &[u8]) {
        self.udp(t_ms, CALLER_SIP, CALLED_SIP, msg);
    }
    /// Called → caller SIP.
    pub fn s2c(&mut self, t_ms: i64, msg: &[u8]) {
        self.udp(t_ms, CALLED_SIP, CALLER_SIP, msg);
    }

    /// INVITE (caller SDP 10.0.0.1:`caller_port`), 100, 180, 200 (called SDP
    /// 10.0.0.2:`called_port`), ACK, starting at `t0` ms.
    pub fn answered_call(&mut self, d: &Dialog, t0: i64, caller_port: u16, called_port: u16) {
        let offer = sdp(CALLER_IP, caller_port, &[0, 8, 101]);
        let answer = sdp(CALLED_IP, called_port, &[0, 101]);
        let inv = request(
            "INVITE",
            d,
            1,
            None,
            false,
            Some("CallerPhone/1.0"),
            Some(("application/sdp", &offer)),
        );
        self.udp(t0, d.caller_sip, d.called_sip, &inv);
        self.udp(
            t0 + 10,
            d.called_sip,
            d.caller_sip,
            &response(100, "Trying", d, 1, "INVITE", None, None),
        );
        self.udp(
            t0 + 20,
            d.called_sip,
            d.caller_sip,
            &response(180, "Ringing", d, 1, "INVITE", Some("tt"), None),
        );
        self.udp(
            t0 + 1000,
            d.called_sip,
            d.caller_sip,
            &response(200, "OK", d, 1, "INVITE", Some("tt"), Some(&answer)),
        );
        self.udp(
            t0 + 1010,
            d.caller_sip,
            d.called_sip,
            &request("ACK", d, 1, Some("tt"), false, None, None),
        );
    }

    /// `n` PCMU packets of 20 ms, perfectly timed, starting at `t0` ms.
    #[allow(clippy::too_many_arguments)]
    pub fn stream(&mut self, t0: i64, src: &str, dst: &str, ssrc: u32, seq0: u16, n: u16, pt: u8) {
        for i in 0..n {
            let pkt = rtp(
                ssrc,
                seq0.wrapping_add(i),
                u32::from(i) * 160,
                pt,
                &[0xff; 160],
            );
            self.udp(t0 + i64::from(i) * 20, src, dst, &pkt);
        }
    }

    pub fn only_call(&self) -> &Call {
        let calls = self.engine.calls();
        assert_eq!(calls.len(), 1, "expected one call, got {calls:#?}");
        calls[0]
    }
}
