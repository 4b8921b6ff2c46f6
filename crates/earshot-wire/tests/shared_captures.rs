//! The real captures in shared/pcaps: every one reads to the end, and the link layers and
//! transports the catalogue lists come out as it says.

mod common;

use common::{shared, sock};
use earshot_wire::{CaptureReader, DecapStats, Decapsulator, Transport};
use std::path::Path;

/// Packet counts from TSHARK-FACTS.txt (capinfos).
const COUNTS: &[(&str, usize)] = &[
    ("wireshark/Asterisk_ZFONE_XLITE.pcap", 1042),
    ("wireshark/DTMFsipinfo.pcap", 32),
    ("wireshark/FAX-Call-t38-CA-TDM-SIP-FB-1.pcap", 7217),
    ("wireshark/MagicJack-_short_call.pcap", 1381),
    ("wireshark/aaa.pcap", 691),
    ("wireshark/metasploit-sip-invite-spoof.pcap", 3),
    ("wireshark/rtp-opus-only.pcap", 425),
    ("wireshark/sip-rtp-dvi4.pcap", 866),
    ("wireshark/sip-rtp-g711.pcap", 852),
    ("wireshark/sip-rtp-g722.pcap", 433),
    ("wireshark/sip-rtp-g726.pcap", 3464),
    ("wireshark/sip-rtp-g729a.pcap", 433),
    ("wireshark/sip-rtp-gsm.pcap", 433),
    ("wireshark/sip-rtp-ilbc.pcap", 292),
    ("wireshark/sip-rtp-l16.pcap", 1673),
    ("wireshark/sip-rtp-lpc.pcap", 103),
    ("wireshark/sip-rtp-opus-hybrid.pcap", 7),
    ("wireshark/sip-rtp-opus.pcap", 433),
    ("wireshark/sip-rtp-speex.pcap", 1299),
    ("wireshark/SIP_DTMF2.cap", 1360),
    ("wireshark/RTP_L16_monaural_sample.pcapng", 2068),
    ("wireshark/sip-tls13-g722-rtcp.pcap", 4558),
    ("heplify/erspan_sip_ipv4_udp.pcapng", 140),
    ("heplify/rtp_rtcp_sip_ipv4_udp.pcap", 4269),
    ("heplify/sip_ipv4_tcp.pcap", 84),
    ("heplify/sip_ipv4_tcp_fragmented.pcap", 1542),
    ("heplify/sip_ipv4_tcp_retrans.pcap", 196),
    ("heplify/sip_ipv6_udp.pcap", 6),
    ("heplify/sip_sctp.pcap", 5),
    ("heplify/sip_tcp_websocket.pcap", 61),
    ("sipp/dtmf_2833_0.pcap", 10),
    ("sipp/dtmf_2833_1.pcap", 10),
    ("sipp/dtmf_2833_2.pcap", 10),
    ("sipp/dtmf_2833_3.pcap", 10),
    ("sipp/dtmf_2833_4.pcap", 10),
    ("sipp/dtmf_2833_5.pcap", 10),
    ("sipp/dtmf_2833_6.pcap", 10),
    ("sipp/dtmf_2833_7.pcap", 10),
    ("sipp/dtmf_2833_8.pcap", 10),
    ("sipp/dtmf_2833_9.pcap", 10),
    ("sipp/dtmf_2833_pound.pcap", 10),
    ("sipp/dtmf_2833_star.pcap", 10),
    ("sipp/g711a.pcap", 236),
];

/// What came out of one capture: owned packets plus the decapsulator's counters.
struct Decoded {
    frames: usize,
    packets: Vec<common::Owned>,
    stats: DecapStats,
}

fn decode_file(path: &Path) -> Decoded {
    let mut r = CaptureReader::open(path).unwrap();
    let mut d = Decapsulator::new();
    let mut packets = Vec::new();
    let mut frames = 0;
    while let Some(f) = r.next_frame() {
        let f = f.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        frames += 1;
        packets.extend(common::decode_all(&mut d, f.ts.0, f.link, f.data));
    }
    Decoded {
        frames,
        packets,
        stats: d.stats().clone(),
    }
}

fn is_sip(p: &[u8]) -> bool {
    let methods: [&[u8]; 13] = [
        b"SIP/2.0 ",
        b"INVITE ",
        b"ACK ",
        b"BYE ",
        b"CANCEL ",
        b"REGISTER ",
        b"INFO ",
        b"OPTIONS ",
        b"PRACK ",
        b"REFER ",
        b"NOTIFY ",
        b"SUBSCRIBE ",
        b"UPDATE ",
    ];
    methods.iter().any(|m| p.starts_with(m))
}

#[test]
fn every_capture_reads_to_the_end() {
    let Some(root) = shared("pcaps") else { return };
    let mut seen = 0;
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "pcap" | "pcapng" | "cap") {
                continue;
            }
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let got = decode_file(&path);
            let want = COUNTS.iter().find(|(p, _)| *p == rel).map(|(_, n)| *n);
            assert_eq!(Some(got.frames), want, "{rel}: frame count");
            assert_eq!(got.stats.frames as usize, got.frames);
            assert_eq!(got.stats.malformed, 0, "{rel}: {:?}", got.stats);
            assert!(!got.packets.is_empty(), "{rel}: no packets decoded");
            seen += 1;
        }
    }
    assert_eq!(seen, COUNTS.len());
}

#[test]
fn pppoe_link() {
    let Some(p) = shared("pcaps/wireshark/DTMFsipinfo.pcap") else {
        return;
    };
    let d = decode_file(&p);
    assert_eq!(d.packets.len(), 32);
    assert!(d
        .packets
        .iter()
        .all(|p| p.transport == Transport::Udp && is_sip(&p.payload)));
}

#[test]
fn linux_sll_with_sctp_carries_four_sip_messages() {
    let Some(p) = shared("pcaps/heplify/sip_sctp.pcap") else {
        return;
    };
    let d = decode_file(&p);
    let sip: Vec<_> = d
        .packets
        .iter()
        .filter(|p| matches!(p.transport, Transport::Sctp { .. }) && is_sip(&p.payload))
        .collect();
    assert_eq!(sip.len(), 4);
    assert!(sip[0].payload.starts_with(b"INVITE sip:"));
    assert!(sip
        .iter()
        .all(|p| p.src.port() == 5060 || p.dst.port() == 5060));
}

#[test]
fn linux_sll_with_tcp_and_udp() {
    let Some(p) = shared("pcaps/heplify/sip_ipv4_tcp_retrans.pcap") else {
        return;
    };
    let d = decode_file(&p);
    let tcp_sip = d
        .packets
        .iter()
        .filter(|p| matches!(p.transport, Transport::Tcp { .. }) && is_sip(&p.payload))
        .count();
    let udp_sip = d
        .packets
        .iter()
        .filter(|p| p.transport == Transport::Udp && is_sip(&p.payload))
        .count();
    // tshark counts 4 SIP over TCP after reassembly and 4 over UDP; retransmitted segments
    // come out here too, so TCP segments starting a SIP message are at least 4.
    assert!(tcp_sip >= 4, "tcp sip {tcp_sip}");
    assert_eq!(udp_sip, 4);
}

#[test]
fn pcapng_ethernet_rtp() {
    let Some(p) = shared("pcaps/wireshark/RTP_L16_monaural_sample.pcapng") else {
        return;
    };
    let d = decode_file(&p);
    assert_eq!(d.packets.len(), 2068);
    let first = &d.packets[0];
    assert_eq!(first.src, sock("127.0.0.1", 10424));
    assert_eq!(first.dst, sock("127.0.0.1", 1234));
    assert_eq!(first.payload[0] >> 6, 2, "RTP version 2");
    assert_eq!(first.payload[1] & 0x7f, 11, "PT 11");
    let span = d.packets.last().unwrap().ts - first.ts;
    assert!((29_990_000_000..30_000_000_000).contains(&span), "{span}");
}

#[test]
fn pcapng_gre_transparent_ethernet_bridging() {
    let Some(p) = shared("pcaps/heplify/erspan_sip_ipv4_udp.pcapng") else {
        return;
    };
    let d = decode_file(&p);
    assert_eq!(d.packets.len(), 140);
    assert!(d
        .packets
        .iter()
        .all(|p| p.transport == Transport::Udp && is_sip(&p.payload)));
}

#[test]
fn ipv6_udp() {
    let Some(p) = shared("pcaps/heplify/sip_ipv6_udp.pcap") else {
        return;
    };
    let d = decode_file(&p);
    assert_eq!(d.packets.len(), 6);
    assert!(d
        .packets
        .iter()
        .all(|p| p.src.is_ipv6() && is_sip(&p.payload)));
    assert!(d.packets[0].payload.starts_with(b"INVITE "));
}

#[test]
fn tcp_fragmented_sip_reassembles() {
    use earshot_wire::tcp::{StreamEvent, TcpReassembler};
    let Some(p) = shared("pcaps/heplify/sip_ipv4_tcp_fragmented.pcap") else {
        return;
    };
    let d = decode_file(&p);
    let mut r = TcpReassembler::default();
    let mut stream = Vec::new();
    let mut gaps = 0;
    for pkt in &d.packets {
        if let Transport::Tcp { seq, syn, fin, rst } = pkt.transport {
            let flow = earshot_wire::FlowKey {
                src: pkt.src,
                dst: pkt.dst,
            };
            let flags = earshot_wire::tcp::TcpFlags { syn, fin, rst };
            let ts = earshot_wire::Timestamp(pkt.ts);
            r.segment(ts, flow, seq, flags, &pkt.payload, &mut |e| match e {
                StreamEvent::Data { data, .. } => stream.extend_from_slice(data),
                StreamEvent::Gap { .. } => gaps += 1,
                StreamEvent::Closed { .. } => {}
            });
        }
    }
    let text = String::from_utf8_lossy(&stream);
    // 406 SIP messages in the file according to tshark (with -d tcp.port==6060,sip).
    let starts = text.matches("\r\nCSeq: ").count();
    assert_eq!(starts, 406, "gaps {gaps}");
}
