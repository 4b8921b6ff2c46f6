//! Hand-written messages in the spirit of RFC 4475 (SIP torture tests).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use earshot_sip::{looks_like_sip, sdp, SipError, SipMessage, StartLine, MAX_HEADERS};

/// RFC 4475 §3.1.1.1 "wsinv"-style: odd case, whitespace around colons,
/// folding, compact forms, escaped display names.
const WSINV: &[u8] = b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n\
TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
MaX-fOrWaRdS: 0068\r\n\
Call-ID: wsinv.ndaksdj@192.0.2.1\r\n\
Content-Length   : 150\r\n\
cseq: 0009\r\n  INVITE\r\n\
Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n\
s :\r\n\
NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\
UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n\
Content-Type: application/sdp\r\n\
Route:\r\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n\
v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n\
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33\r\n\
\r\n\
v=0\r\n\
o=mhandley 29739 7272939 IN IP4 192.0.2.3\r\n\
s=-\r\n\
c=IN IP4 192.0.2.4\r\n\
t=0 0\r\n\
m=audio 49217 RTP/AVP 0 12\r\n\
m=video 3227 RTP/AVP 31\r\n\
a=rtpmap:31 LPC\r\n";

#[test]
fn wsinv_headers() {
    let m = SipMessage::parse(WSINV).unwrap();
    assert_eq!(
        m.start,
        StartLine::Request {
            method: "INVITE",
            uri: "sip:vivekg@chair-dnrc.example.com;unknownparam"
        }
    );
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(m.status(), None);
    assert_eq!(m.call_id(), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(m.cseq(), Some((9, "INVITE")));
    assert_eq!(m.header("max-forwards"), Some("0068"));
    assert_eq!(m.header("Subject"), Some(""));
    assert_eq!(
        m.header("newfangledheader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        m.header("Via"),
        Some("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw")
    );
    let vias: Vec<_> = m.header_list("via").collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        vias[2],
        "SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239"
    );
    assert_eq!(m.headers("V").count(), 2);
    assert_eq!(
        m.header("Route"),
        Some("<sip:services.example.com;lr;unknownwith=value;unknown-no-value>")
    );
    // Folded values are owned; plain ones borrow from the packet.
    let call_id = m.headers.iter().find(|h| h.name == "Call-ID").unwrap();
    assert!(matches!(call_id.value, Cow::Borrowed(_)));
}

#[test]
fn wsinv_name_addrs() {
    let m = SipMessage::parse(WSINV).unwrap();
    let to = m.to().unwrap();
    assert_eq!(to.uri, "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag, Some("1918181833n"));
    assert_eq!(to.user, Some("vivekg"));
    assert_eq!(to.display, None);
    let from = m.from().unwrap();
    assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.uri, "sip:jdrosen@example.com");
    assert_eq!(from.tag, Some("98asjd8"));
    let contact = earshot_sip::parse_name_addr(m.header("Contact").unwrap()).unwrap();
    assert_eq!(contact.display.as_deref(), Some("Quoted string \"\""));
}

#[test]
fn wsinv_body_respects_content_length() {
    let m = SipMessage::parse(WSINV).unwrap();
    assert_eq!(m.content_length(), Some(150));
    assert_eq!(m.body.len(), 150);
    assert!(m.body.starts_with(b"v=0\r\n"));
    let sdp = sdp::parse(m.sdp().unwrap()).unwrap();
    assert_eq!(
        sdp.connection,
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 4)))
    );
    assert_eq!(sdp.media.len(), 2);
    // The rtpmap without a clock rate is malformed and skipped; the static
    // table still knows PT 31.
    assert!(sdp.media[1].rtpmap.is_empty());
    assert_eq!(sdp.media[1].codec(31), Some(("H261", 90000, 1)));
}

const COMPACT: &[u8] = b"SIP/2.0 180 Ringing\n\
v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\n\
V: SIP/2.0/UDP b.example.com;branch=z9hG4bK2, SIP/2.0/TCP c.example.com\n\
f: <sip:alice@a.example.com>;tag=aa\n\
t: \"Bob\" <sip:bob@b.example.com>;tag=bb\n\
i: compact-1@a.example.com\n\
CSeq: 4711 INVITE\n\
m: <sip:bob@192.0.2.9>\n\
k: 100rel, timer\n\
Server: Acme-PBX/1.2\n\
x: 1800;refresher=uas\n\
c: application/sdp\n\
l: 41\n\
\n\
v=0\nc=IN IP4 0.0.0.0\nm=audio 9 RTP/AVP 8\nEXTRA BYTES BEYOND CONTENT-LENGTH";

#[test]
fn compact_forms_and_bare_lf() {
    let m = SipMessage::parse(COMPACT).unwrap();
    assert_eq!(
        m.start,
        StartLine::Response {
            code: 180,
            reason: "Ringing"
        }
    );
    assert_eq!(m.status(), Some(180));
    assert_eq!(m.method(), None);
    assert_eq!(m.call_id(), Some("compact-1@a.example.com"));
    assert_eq!(m.cseq(), Some((4711, "INVITE")));
    assert_eq!(m.from().unwrap().tag, Some("aa"));
    assert_eq!(m.to().unwrap().display.as_deref(), Some("Bob"));
    assert_eq!(m.header("Contact"), Some("<sip:bob@192.0.2.9>"));
    assert_eq!(
        m.header_list("Supported").collect::<Vec<_>>(),
        ["100rel", "timer"]
    );
    assert_eq!(m.header("Session-Expires"), Some("1800;refresher=uas"));
    assert_eq!(m.headers("via").count(), 2);
    assert_eq!(m.header_list("VIA").count(), 3);
    assert_eq!(m.user_agent(), Some("Acme-PBX/1.2"));
    assert_eq!(m.content_type(), Some("application/sdp"));
    assert_eq!(m.body, b"v=0\nc=IN IP4 0.0.0.0\nm=audio 9 RTP/AVP 8\n");
    let sdp = sdp::parse(m.sdp().unwrap()).unwrap();
    assert!(sdp.is_hold());
    assert_eq!(
        m.to_string(),
        "180 Ringing (Call-ID compact-1@a.example.com)"
    );
}

#[test]
fn body_shorter_than_content_length_keeps_datagram() {
    let msg =
        b"MESSAGE sip:x@y SIP/2.0\r\nContent-Length: 500\r\nContent-Type: text/plain\r\n\r\nshort";
    let m = SipMessage::parse(msg).unwrap();
    assert_eq!(m.body, b"short");
    assert_eq!(m.sdp(), None);
    // No Content-Length: the datagram end wins.
    let m = SipMessage::parse(b"ACK sip:x SIP/2.0\r\n\r\nabc").unwrap();
    assert_eq!(m.body, b"abc");
    // No blank line at all: headers run to the end, no body.
    let m = SipMessage::parse(b"BYE sip:x SIP/2.0\r\nCall-ID: q").unwrap();
    assert_eq!(m.call_id(), Some("q"));
    assert!(m.body.is_empty());
}

#[test]
fn multipart_quoted_boundary_with_preamble() {
    let msg = b"INVITE sip:x@y SIP/2.0\r\n\
Content-Type: multipart/mixed ; boundary=\"unique boundary 1\"\r\n\
\r\n\
This is a preamble.\r\n\
--unique boundary 1\r\n\
Content-Type: application/isup;version=itu-t92+\r\n\
\r\n\
\x01\x00\x49\x00\r\n\
--unique boundary 1\r\n\
Content-Type: application/sdp\r\n\
\r\n\
v=0\r\nm=audio 1234 RTP/AVP 0\r\n\
--unique boundary 1--\r\n";
    let m = SipMessage::parse(msg).unwrap();
    assert_eq!(m.sdp(), Some(&b"v=0\r\nm=audio 1234 RTP/AVP 0"[..]));
    let no_boundary = b"INVITE sip:x@y SIP/2.0\r\nc: multipart/mixed\r\n\r\n--a\r\n\r\nv=0";
    assert_eq!(SipMessage::parse(no_boundary).unwrap().sdp(), None);
    let sniffed = b"INVITE sip:x@y SIP/2.0\r\n\r\nv=0\r\n";
    assert_eq!(
        SipMessage::parse(sniffed).unwrap().sdp(),
        Some(&b"v=0\r\n"[..])
    );
}

#[test]
fn odd_whitespace_and_non_utf8() {
    let msg = b"\r\n\r\nINVITE\tsip:x@y  SIP/2.0 \r\nCall-ID :\t abc \t\r\nUser-Agent: caf\xe9\r\nno colon line\r\n: empty name\r\nReason: Q.850;cause=16;text=\"Normal call clearing\"\r\n\r\n";
    let m = SipMessage::parse(msg).unwrap();
    assert_eq!(
        m.start,
        StartLine::Request {
            method: "INVITE",
            uri: "sip:x@y"
        }
    );
    assert_eq!(m.call_id(), Some("abc"));
    assert_eq!(m.user_agent(), Some("caf\u{fffd}"));
    assert_eq!(m.headers.len(), 3);
    assert_eq!(
        m.reason(),
        Some("Q.850;cause=16;text=\"Normal call clearing\"")
    );
    assert_eq!(
        earshot_sip::header_param(m.reason().unwrap(), "cause"),
        Some("16")
    );
}

#[test]
fn start_line_errors() {
    assert_eq!(SipMessage::parse(b""), Err(SipError::Empty));
    assert_eq!(SipMessage::parse(b"\r\n\r\n"), Err(SipError::Empty));
    assert_eq!(
        SipMessage::parse(b"SIP/2.0 4294967301 better not break the receiver\r\n\r\n"),
        Err(SipError::BadStatusCode)
    );
    assert_eq!(
        SipMessage::parse(b"SIP/2.0 099 Low\r\n\r\n"),
        Err(SipError::BadStatusCode)
    );
    assert!(matches!(
        SipMessage::parse(b"INVITE sip:x HTTP/1.1\r\n\r\n"),
        Err(SipError::BadStartLine(_))
    ));
    assert!(matches!(
        SipMessage::parse(b"INV<ITE sip:x SIP/2.0\r\n\r\n"),
        Err(SipError::BadStartLine(_))
    ));
    assert!(matches!(
        SipMessage::parse(b"INVITE\r\n\r\n"),
        Err(SipError::BadStartLine(_))
    ));
    assert_eq!(
        SipMessage::parse(b"\xff\xfe sip:x SIP/2.0\r\n"),
        Err(SipError::StartLineNotUtf8)
    );
    let e = SipMessage::parse(b"SIP/2.0 1x0 OK\r\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "status code is not a number between 100 and 699"
    );
    let m = SipMessage::parse(b"SIP/2.0 200\r\n\r\n").unwrap();
    assert_eq!(
        m.start,
        StartLine::Response {
            code: 200,
            reason: ""
        }
    );
}

#[test]
fn bounds() {
    let mut msg = b"OPTIONS sip:x SIP/2.0\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        msg.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    assert!(SipMessage::parse(&msg).is_ok());
    msg.extend_from_slice(b"One-More: v\r\n");
    assert_eq!(
        SipMessage::parse(&msg),
        Err(SipError::TooManyHeaders { limit: MAX_HEADERS })
    );
    let mut long = b"OPTIONS sip:x SIP/2.0\r\nX: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', earshot_sip::MAX_LINE_BYTES));
    assert!(matches!(
        SipMessage::parse(&long),
        Err(SipError::LineTooLong { .. })
    ));
}

#[test]
fn cseq_edge_cases() {
    let parse = |v: &str| {
        let msg = format!("BYE sip:x SIP/2.0\r\nCSeq: {v}\r\n\r\n");
        let m = SipMessage::parse(msg.as_bytes()).unwrap();
        m.cseq().map(|(n, meth)| (n, meth.to_owned()))
    };
    assert_eq!(parse("1 BYE"), Some((1, "BYE".into())));
    assert_eq!(parse("4294967295 BYE"), Some((u32::MAX, "BYE".into())));
    assert_eq!(parse("4294967296 BYE"), None);
    assert_eq!(parse("12"), None);
    assert_eq!(parse("x BYE"), None);
}

#[test]
fn looks_like_sip_cases() {
    assert!(looks_like_sip(b"INVITE sip:bob@b.example SIP/2.0\r\n"));
    assert!(looks_like_sip(b"OPTIONS sips:x SIP/2.0\n"));
    assert!(looks_like_sip(b"MESSAGE tel:+15551234 sip/2.0\r\n"));
    assert!(looks_like_sip(b"SIP/2.0 200 OK\r\n"));
    assert!(looks_like_sip(b"SIP/2.0 100\r\n"));
    assert!(!looks_like_sip(b""));
    assert!(!looks_like_sip(b"\x80\x08\x12\x34\x00\x00\x00\xa0"));
    assert!(!looks_like_sip(b"\x16\x03\x01\x02\x00"));
    assert!(!looks_like_sip(b"GET / HTTP/1.1\r\n"));
    assert!(!looks_like_sip(b"HTTP/1.1 200 OK\r\n"));
    assert!(!looks_like_sip(b"SIP/2.0 20 OK\r\n"));
    assert!(!looks_like_sip(b"INVITE sip:truncated-no-line-end SIP/2.0"));
    assert!(!looks_like_sip(b"INVITE nocolon SIP/2.0\r\n"));
    assert!(!looks_like_sip(b"NOTIFY sip:x SIP/3.0\r\n"));
}
