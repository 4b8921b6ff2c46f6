//! Real messages extracted from the shared captures (see fixtures/README.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use earshot_sip::sdp::{self, Direction};
use earshot_sip::websocket::WsDecoder;
use earshot_sip::{frame_message, looks_like_sip, Framing, SipMessage};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

#[test]
fn sctp_multipart_sdp_and_isup() {
    let buf = fixture("sctp_multipart_invite.sip");
    assert!(looks_like_sip(&buf));
    let m = SipMessage::parse(&buf).unwrap();
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(m.call_id(), Some("717B2539AD2002C9152DC497@0870ffffffff"));
    assert_eq!(m.body.len(), 657);
    let from = m.from().unwrap();
    assert_eq!(from.user, Some("9171969136"));
    assert_eq!(from.host, Some("astrakhan.megafonvolga.ru"));
    assert_eq!(from.tag, Some("9Ub.i1YV7Yag2._5"));
    let pai: Vec<_> = m.header_list("P-Asserted-Identity").collect();
    assert_eq!(
        pai,
        [
            "<sip:9171969136@astrakhan.megafonvolga.ru;user=phone>",
            "<tel:9171969136;phone-context=+7>"
        ]
    );
    assert_eq!(m.header("d"), Some("no-fork"));

    let body = m.sdp().unwrap();
    assert!(body.starts_with(b"v=0\r\no=- 0 0 IN IP4 10.249.30.2"));
    assert!(body.ends_with(b"a=3gOoBTC\r\n"));
    let sdp = sdp::parse(body).unwrap();
    assert_eq!(sdp.origin_addr, v4(10, 249, 30, 2));
    let a = &sdp.media[0];
    assert_eq!((a.kind, a.port, a.proto), ("audio", 38060, "RTP/AVP"));
    assert_eq!(a.connection, v4(10, 249, 30, 145));
    assert_eq!(a.formats, [8, 13, 96]);
    assert_eq!(a.codec(96), Some(("telephone-event", 8000, 1)));
    assert_eq!(a.ptime, Some(20));
    assert_eq!(frame_message(&buf), Framing::Complete(buf.len()));
}

#[test]
fn ipv6_bare_lf_invite() {
    let buf = fixture("ipv6_invite.sip");
    let m = SipMessage::parse(&buf).unwrap();
    assert_eq!(m.cseq(), Some((1, "INVITE")));
    assert_eq!(
        m.from().unwrap().host,
        Some("fe80:0:0:0:21a:a0ff:fe07:32e0")
    );
    assert_eq!(m.from().unwrap().tag, Some("a3bhg"));
    assert_eq!(m.to().unwrap().user, Some("4321"));
    assert_eq!(m.body.len(), 181);
    let sdp = sdp::parse(m.sdp().unwrap()).unwrap();
    let addr: Ipv6Addr = "fe80::21a:a0ff:fe07:32e0".parse().unwrap();
    assert_eq!(sdp.origin_addr, Some(IpAddr::V6(addr)));
    assert_eq!(sdp.connection, Some(IpAddr::V6(addr)));
    let a = sdp.audio().unwrap();
    assert_eq!(a.port, 5008);
    assert_eq!(a.connection, Some(IpAddr::V6(addr)));
    assert_eq!(a.codec(0), Some(("pcmu", 8000, 1)));
    assert_eq!(frame_message(&buf), Framing::Complete(buf.len()));
}

#[test]
fn freeswitch_opus_offer_answer() {
    let buf = fixture("freeswitch_opus_invite.sip");
    let inv = SipMessage::parse(&buf).unwrap();
    assert_eq!(inv.content_length(), Some(128));
    assert_eq!(inv.from().unwrap().display.as_deref(), Some("opus/48000/2"));
    let offer = sdp::parse(inv.sdp().unwrap()).unwrap();
    assert_eq!(offer.media[0].direction, Direction::RecvOnly);
    assert!(!offer.is_hold());
    assert_eq!(offer.media[0].codec(99), Some(("opus", 48000, 2)));

    let buf = fixture("freeswitch_opus_200.sip");
    let ok = SipMessage::parse(&buf).unwrap();
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.cseq(), Some((1, "INVITE")));
    assert_eq!(
        ok.user_agent(),
        Some("FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit")
    );
    assert_eq!(ok.to().unwrap().tag, Some("gm5D9rB47ggme"));
    assert_eq!(ok.body.len(), 283);
    let answer = sdp::parse(ok.sdp().unwrap()).unwrap();
    assert_eq!(answer.origin_version, Some(1480231473));
    let a = &answer.media[0];
    assert_eq!((a.port, a.connection), (24196, v4(10, 0, 2, 15)));
    assert_eq!(a.formats, [99, 101]);
    assert_eq!(a.ptime, Some(20));
    assert_eq!(a.direction, Direction::SendOnly);
    assert!(answer.is_hold());
}

#[test]
fn webrtc_rtcp_and_mux() {
    let buf = fixture("webrtc_rtcp_invite.sip");
    let m = SipMessage::parse(&buf).unwrap();
    assert_eq!(m.user_agent(), Some("SIP.js/0.11.5"));
    assert_eq!(m.header_list("Record-Route").count(), 2);
    assert_eq!(m.body.len(), 1699);
    let sdp = sdp::parse(m.sdp().unwrap()).unwrap();
    let a = &sdp.media[0];
    assert_eq!(a.proto, "UDP/TLS/RTP/SAVPF");
    assert_eq!(a.formats.len(), 13);
    assert_eq!(a.rtcp, Some((9, v4(0, 0, 0, 0))));
    assert!(a.rtcp_mux);
    assert_eq!(a.codec(111), Some(("opus", 48000, 2)));
    assert_eq!(a.codec(126), Some(("telephone-event", 8000, 1)));
    assert_eq!(a.direction, Direction::SendRecv);
    assert!(!sdp.is_hold());
}

fn decode_stream(name: &str, chunk: usize) -> Vec<Vec<u8>> {
    let buf = fixture(name);
    let mut d = WsDecoder::new();
    let mut msgs = Vec::new();
    for c in buf.chunks(chunk) {
        d.push(c, &mut |m| msgs.push(m.to_vec()));
    }
    assert!(!d.is_dead());
    msgs
}

fn summary(msgs: &[Vec<u8>]) -> Vec<String> {
    msgs.iter()
        .map(|raw| {
            assert_eq!(frame_message(raw), Framing::Complete(raw.len()));
            let m = SipMessage::parse(raw).unwrap();
            assert_eq!(m.call_id(), Some("kovfhoptshgn59q712sr"));
            m.start.to_string().split(' ').next().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn websocket_capture_client_direction() {
    for chunk in [1, 7, 1448, usize::MAX] {
        let msgs = decode_stream("ws_client_stream.bin", chunk.min(1 << 20));
        assert_eq!(summary(&msgs), ["INVITE", "ACK", "INVITE", "ACK", "BYE"]);
    }
}

#[test]
fn websocket_capture_server_direction() {
    let msgs = decode_stream("ws_server_stream.bin", 100);
    assert_eq!(summary(&msgs), ["407", "100", "180", "183", "200", "200"]);
}
