//! A call's SIP messages as a ladder diagram (sngrep's "call flow", Homer's "call flow"): one
//! column per signalling address, one arrow per message, sans-IO.
//!
//! The input is what a sensor keeps of a call for `active_call_info` ([`SipPacket`]s, in
//! capture order); `earshot ladder` builds the same from a capture file, and the player from a
//! sensor's `active_call_info` reply ([`packets_from_info`]). Everything is bounded: at most
//! `max_arrows` arrows (the rest counted in [`Ladder::left_out`]), labels of at most
//! [`MAX_LABEL`] bytes, texts of at most `max_text` bytes.

use crate::listcalls::SipPacket;
use earshot_sip::{SipMessage, StartLine};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

/// Longest arrow label, in bytes: a method or status with its reason and " (SDP)".
pub const MAX_LABEL: usize = 64;

/// A ladder: its columns (addresses, in order of first appearance) and its arrows (messages,
/// in capture order).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ladder {
    /// `ip:port` of each column, in the order the messages first name them (a message's
    /// source before its destination, so the caller is usually the first column).
    pub columns: Vec<String>,
    pub arrows: Vec<Arrow>,
    /// Messages of the input not drawn (beyond `max_arrows`).
    pub left_out: usize,
}

/// One message: from which column to which, what it says, when.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Arrow {
    /// Column indices into [`Ladder::columns`]; equal when a message went to its own address.
    pub from: usize,
    pub to: usize,
    /// `INVITE (SDP)`, `180 Ringing`, `200 OK (SDP)`, `BYE`; the first line, cut, for text
    /// that does not parse as SIP.
    pub label: String,
    /// The request's method, or `None` for a response.
    pub method: Option<String>,
    /// The response's status code, or `None` for a request.
    pub status: Option<u16>,
    /// The CSeq header (`1 INVITE`): which request a response answers.
    pub cseq: Option<String>,
    /// Whether the message carries SDP.
    pub sdp: bool,
    /// The transport its top Via names (`UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP`).
    pub transport: Option<String>,
    /// True when an earlier arrow carried the same text between the same addresses: a
    /// retransmission (sngrep marks them so).
    pub retransmission: bool,
    /// Capture time, ns since the Unix epoch.
    pub time_ns: i64,
    /// Time since the first message, in ms (the ladder's time axis).
    pub offset_ms: f64,
    /// The message text as kept (cut to `max_text` bytes).
    pub text: String,
    /// True when the sensor kept less than the whole message, or `max_text` cut it.
    pub truncated: bool,
}

/// The ladder of `msgs` (capture order): at most `max_arrows` arrows, texts cut to `max_text`
/// bytes. Work and memory are proportional to what is drawn, never to a number the messages
/// carry.
pub fn build(msgs: &[SipPacket], max_arrows: usize, max_text: usize) -> Ladder {
    let shown = &msgs[..msgs.len().min(max_arrows)];
    let first = shown.first().map_or(0, |m| m.ts_ns);
    let mut columns: Vec<SocketAddr> = Vec::new();
    // Each message's fingerprint (addresses and a hash of its text): a set of them finds
    // retransmissions in one pass, without comparing texts pairwise.
    let mut seen: HashSet<(SocketAddr, SocketAddr, u64)> = HashSet::with_capacity(shown.len());
    let arrows = shown
        .iter()
        .map(|m| {
            let from = column(&mut columns, m.src);
            let to = column(&mut columns, m.dst);
            let mut a = arrow(m, from, to, first, max_text);
            a.retransmission = !seen.insert((m.src, m.dst, text_hash(&m.text)));
            a
        })
        .collect();
    Ladder {
        columns: columns.iter().map(SocketAddr::to_string).collect(),
        arrows,
        left_out: msgs.len() - shown.len(),
    }
}

fn text_hash(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The transport of a Via value (`SIP/2.0/UDP host;branch=…`).
fn via_transport(via: &str) -> Option<String> {
    let proto = via.split_ascii_whitespace().next()?;
    let t = proto.rsplit('/').next()?.trim();
    let plausible = !t.is_empty() && t.len() <= 8 && t.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then(|| t.to_ascii_uppercase())
}

/// The column of `addr`, added at the right when it is new. A linear search: a call's
/// messages name a handful of addresses.
fn column(columns: &mut Vec<SocketAddr>, addr: SocketAddr) -> usize {
    if let Some(i) = columns.iter().position(|c| *c == addr) {
        return i;
    }
    columns.push(addr);
    columns.len() - 1
}

fn arrow(m: &SipPacket, from: usize, to: usize, first_ns: i64, max_text: usize) -> Arrow {
    let (text, cut) = cut_str(&m.text, max_text);
    let mut a = Arrow {
        from,
        to,
        label: String::new(),
        method: None,
        status: None,
        cseq: None,
        sdp: false,
        transport: None,
        retransmission: false,
        time_ns: m.ts_ns,
        offset_ms: m.ts_ns.saturating_sub(first_ns) as f64 / 1e6,
        text: text.to_string(),
        truncated: m.truncated || cut,
    };
    match SipMessage::parse(m.text.as_bytes()) {
        Ok(msg) => {
            a.sdp = msg.sdp().is_some();
            a.transport = msg.header("Via").and_then(via_transport);
            a.cseq = msg
                .header("CSeq")
                .map(|c| cut_str(c.trim(), MAX_LABEL).0.to_string());
            let base = match msg.start {
                StartLine::Request { method, .. } => {
                    a.method = Some(cut_str(method, MAX_LABEL).0.to_string());
                    method.to_string()
                }
                StartLine::Response { code, reason } => {
                    a.status = Some(code);
                    format!("{code} {}", reason.trim())
                }
            };
            let suffix = if a.sdp { " (SDP)" } else { "" };
            let (base, _) = cut_str(base.trim(), MAX_LABEL - suffix.len());
            a.label = format!("{base}{suffix}");
        }
        Err(_) => {
            let line = m.text.lines().next().unwrap_or("").trim();
            let line = if line.is_empty() { "(not SIP)" } else { line };
            a.label = cut_str(line, MAX_LABEL).0.to_string();
        }
    }
    a
}

/// `s` cut to at most `max` bytes at a character boundary, and whether it was cut.
fn cut_str(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// The SIP messages of an `active_call_info` reply (`sip_packets`: `time` in µs, `src`, `dst`,
/// `data`, `truncated`), at most `max` of them, and how many more the reply held. A reply
/// whose `sip_packets` is not a list (VoIPmonitor says so in a string when it keeps none)
/// gives none; entries that are not messages are skipped.
pub fn packets_from_info(info: &Value, max: usize) -> (Vec<SipPacket>, usize) {
    let Some(list) = info.get("sip_packets").and_then(Value::as_array) else {
        return (Vec::new(), 0);
    };
    let parsed = list.iter().filter_map(packet_from_json);
    let packets: Vec<SipPacket> = parsed.clone().take(max).collect();
    let more = parsed.skip(max).count();
    (packets, more)
}

fn packet_from_json(v: &Value) -> Option<SipPacket> {
    let addr = |k: &str| v.get(k)?.as_str()?.parse::<SocketAddr>().ok();
    Some(SipPacket {
        ts_ns: v.get("time")?.as_i64()?.saturating_mul(1000),
        src: addr("src")?,
        dst: addr("dst")?,
        text: v.get("data")?.as_str()?.to_string(),
        truncated: v.get("truncated").and_then(Value::as_bool).unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "10.0.0.1:5060";
    const B: &str = "10.0.0.2:5060";
    const P: &str = "10.0.0.9:5080";

    fn sip(ms: i64, src: &str, dst: &str, text: &str) -> SipPacket {
        SipPacket {
            ts_ns: 1_700_000_000_000_000_000 + ms * 1_000_000,
            src: src.parse().expect("address"),
            dst: dst.parse().expect("address"),
            text: text.replace('\n', "\r\n"),
            truncated: false,
        }
    }

    const SDP: &str =
        "Content-Type: application/sdp\nContent-Length: 23\n\nv=0\no=- 1 1 IN IP4 x\n";

    fn invite() -> String {
        format!("INVITE sip:b@x SIP/2.0\nCall-ID: c1\nCSeq: 1 INVITE\n{SDP}")
    }

    fn dialog() -> Vec<SipPacket> {
        vec![
            sip(0, A, P, &invite()),
            sip(2, P, A, "SIP/2.0 100 Trying\nCSeq: 1 INVITE\n\n"),
            sip(3, P, B, &invite()),
            sip(50, B, P, "SIP/2.0 180 Ringing\nCSeq: 1 INVITE\n\n"),
            sip(51, P, A, "SIP/2.0 180 Ringing\nCSeq: 1 INVITE\n\n"),
            sip(900, B, P, &format!("SIP/2.0 200 OK\nCSeq: 1 INVITE\n{SDP}")),
            sip(1500, A, P, "BYE sip:b@x SIP/2.0\nCSeq: 2 BYE\n\n"),
        ]
    }

    #[test]
    fn columns_in_order_of_first_appearance_and_labels_like_sngrep() {
        let l = build(&dialog(), 100, 4096);
        assert_eq!(l.columns, [A, P, B]);
        let labels: Vec<&str> = l.arrows.iter().map(|a| a.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "INVITE (SDP)",
                "100 Trying",
                "INVITE (SDP)",
                "180 Ringing",
                "180 Ringing",
                "200 OK (SDP)",
                "BYE"
            ]
        );
        let ends: Vec<(usize, usize)> = l.arrows.iter().map(|a| (a.from, a.to)).collect();
        assert_eq!(
            ends,
            [(0, 1), (1, 0), (1, 2), (2, 1), (1, 0), (2, 1), (0, 1)]
        );
        assert_eq!(l.arrows[1].status, Some(100));
        assert_eq!(l.arrows[6].method.as_deref(), Some("BYE"));
        assert_eq!(l.arrows[6].cseq.as_deref(), Some("2 BYE"));
        assert_eq!(l.arrows[5].offset_ms, 900.0);
        assert!(l.arrows[0].text.starts_with("INVITE sip:b@x"));
        assert_eq!(l.left_out, 0);
    }

    #[test]
    fn retransmissions_and_transports_are_named() {
        let invite = "INVITE sip:b@x SIP/2.0\nVia: SIP/2.0/tcp a;branch=z1\nCSeq: 1 INVITE\n\n";
        let msgs = [
            sip(0, A, B, invite),
            sip(500, A, B, invite),
            sip(600, B, A, invite),
            sip(700, A, B, "OPTIONS sip:b@x SIP/2.0\nVia: nonsense/!!\n\n"),
        ];
        let l = build(&msgs, 10, 4096);
        let again: Vec<bool> = l.arrows.iter().map(|a| a.retransmission).collect();
        assert_eq!(again, [false, true, false, false]);
        assert_eq!(l.arrows[0].transport.as_deref(), Some("TCP"));
        assert_eq!(l.arrows[3].transport, None);
    }

    #[test]
    fn a_long_call_is_cut_and_says_how_much() {
        let many: Vec<SipPacket> = (0..1000)
            .map(|i| sip(i, A, B, "OPTIONS sip:x SIP/2.0\n\n"))
            .collect();
        let l = build(&many, 10, 4096);
        assert_eq!(l.arrows.len(), 10);
        assert_eq!(l.left_out, 990);
        assert_eq!(build(&[], 10, 10), Ladder::default());
    }

    #[test]
    fn hostile_text_gives_bounded_labels_and_texts() {
        let long_reason = format!("SIP/2.0 486 {}\n\n", "é".repeat(200));
        let msgs = [
            sip(0, A, B, &long_reason),
            sip(1, A, B, "\u{1}garbage line\nmore"),
            sip(2, A, B, ""),
            sip(3, A, A, &format!("{} sip:x SIP/2.0\n\n", "X".repeat(300))),
        ];
        let l = build(&msgs, 10, 20);
        for a in &l.arrows {
            assert!(a.label.len() <= MAX_LABEL, "{:?}", a.label);
            assert!(a.text.len() <= 20);
        }
        assert!(l.arrows[0].label.starts_with("486 é"));
        assert!(l.arrows[0].truncated);
        assert_eq!(l.arrows[2].label, "(not SIP)");
        assert_eq!((l.arrows[3].from, l.arrows[3].to), (0, 0));
    }

    #[test]
    fn active_call_info_replies_give_their_messages() {
        let info = json!({"sip_packets": [
            {"time": 1_000_000, "src": A, "dst": B, "data": "INVITE sip:b SIP/2.0\r\n\r\n", "truncated": false},
            {"time": 1_000_500, "src": "bad", "dst": B, "data": "x"},
            {"time": 1_002_000, "src": B, "dst": A, "data": "SIP/2.0 200 OK\r\n\r\n", "truncated": true},
            {"time": 1_003_000, "src": A, "dst": B, "data": "ACK sip:b SIP/2.0\r\n\r\n"},
        ]});
        let (p, more) = packets_from_info(&info, 2);
        assert_eq!((p.len(), more), (2, 1));
        assert_eq!(p[1].ts_ns, 1_002_000_000);
        assert!(p[1].truncated);
        let voipmonitor = json!({"sip_packets": "disabled"});
        assert_eq!(packets_from_info(&voipmonitor, 10).0.len(), 0);
    }
}
