//! Link layers, tunnels, fragments and HEP on synthetic frames, checked field by field.

mod common;

use common::*;
use earshot_wire::{DecapConfig, Decapsulator, LinkType, Transport};

const SIP: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\r\n";

fn one(link: LinkType, frame: &[u8]) -> Owned {
    let mut d = Decapsulator::new();
    let got = decode_all(&mut d, 7, link, frame);
    assert_eq!(got.len(), 1, "stats {:?}", d.stats());
    assert_eq!(d.stats().malformed, 0);
    got.into_iter().next().unwrap()
}

fn udp4_ip() -> Vec<u8> {
    ipv4(ip4("10.0.0.1"), ip4("10.0.0.2"), 17, &udp(5060, 5070, SIP))
}

fn assert_udp4(p: &Owned) {
    assert_eq!(p.src, sock("10.0.0.1", 5060));
    assert_eq!(p.dst, sock("10.0.0.2", 5070));
    assert_eq!(p.transport, Transport::Udp);
    assert_eq!(p.payload, SIP);
    assert!(!p.from_hep);
}

#[test]
fn ethernet_ipv4_udp_with_padding_trimmed() {
    let mut frame = eth_udp4("10.0.0.1", 5060, "10.0.0.2", 5070, SIP);
    frame.extend_from_slice(&[0xee; 6]); // Ethernet trailer/FCS must not reach the payload
    let p = one(LinkType::ETHERNET, &frame);
    assert_udp4(&p);
    assert_eq!(p.vlan, None);
    assert_eq!(p.ts, 7);
}

#[test]
fn ipv4_options_are_skipped() {
    let ip = ipv4_opts(
        ip4("10.0.0.1"),
        ip4("10.0.0.2"),
        17,
        1,
        0,
        &[1, 1, 1, 0, 7, 3, 4, 0],
        &udp(5060, 5070, SIP),
    );
    assert_udp4(&one(LinkType::ETHERNET, &eth(0x0800, &ip)));
}

#[test]
fn vlan_and_qinq_record_innermost_id() {
    let p = one(
        LinkType::ETHERNET,
        &eth_vlans(&[(0x8100, 100)], 0x0800, &udp4_ip()),
    );
    assert_udp4(&p);
    assert_eq!(p.vlan, Some(100));
    let qinq = eth_vlans(&[(0x88a8, 10), (0x8100, 20)], 0x0800, &udp4_ip());
    assert_eq!(one(LinkType::ETHERNET, &qinq).vlan, Some(20));
    let old = eth_vlans(&[(0x9100, 3000), (0x8100, 4095)], 0x0800, &udp4_ip());
    assert_eq!(one(LinkType::ETHERNET, &old).vlan, Some(4095));
}

fn mpls_label(label: u32, bottom: bool) -> [u8; 4] {
    ((label << 12) | (u32::from(bottom) << 8) | 64).to_be_bytes()
}

#[test]
fn mpls_stack_to_ip() {
    let mut body = Vec::new();
    body.extend_from_slice(&mpls_label(1000, false));
    body.extend_from_slice(&mpls_label(2000, true));
    body.extend_from_slice(&udp4_ip());
    assert_udp4(&one(LinkType::ETHERNET, &eth(0x8847, &body)));

    let v6 = ipv6(ip6("2001:db8::1"), ip6("2001:db8::2"), 17, &udp(1, 2, b"x"));
    let mut body = mpls_label(16, true).to_vec();
    body.extend_from_slice(&v6);
    assert_eq!(
        one(LinkType::ETHERNET, &eth(0x8847, &body)).dst,
        sock("2001:db8::2", 2)
    );
}

#[test]
fn mpls_pseudowire_with_control_word() {
    let inner = eth_vlans(&[(0x8100, 42)], 0x0800, &udp4_ip());
    let mut body = mpls_label(77, true).to_vec();
    body.extend_from_slice(&[0, 0, 0, 0]);
    body.extend_from_slice(&inner);
    let p = one(LinkType::ETHERNET, &eth(0x8847, &body));
    assert_udp4(&p);
    assert_eq!(p.vlan, Some(42));
}

#[test]
fn linux_cooked_v1_and_v2() {
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&udp4_ip());
    assert_udp4(&one(LinkType::LINUX_SLL, &sll));

    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    sll2.extend_from_slice(&udp4_ip());
    assert_udp4(&one(LinkType::LINUX_SLL2, &sll2));
}

#[test]
fn null_loopback_both_byte_orders() {
    let mut le = 2u32.to_le_bytes().to_vec();
    le.extend_from_slice(&udp4_ip());
    assert_udp4(&one(LinkType::NULL, &le));
    let mut be = 2u32.to_be_bytes().to_vec();
    be.extend_from_slice(&udp4_ip());
    assert_udp4(&one(LinkType::LOOP, &be));
    let v6 = ipv6(ip6("::1"), ip6("::1"), 17, &udp(5060, 5061, SIP));
    for fam in [24u32, 28, 30] {
        for bytes in [fam.to_le_bytes(), fam.to_be_bytes()] {
            let mut f = bytes.to_vec();
            f.extend_from_slice(&v6);
            assert_eq!(one(LinkType::NULL, &f).dst, sock("::1", 5061));
        }
    }
}

#[test]
fn raw_ip_link_types() {
    let v6 = ipv6(ip6("fe80::1"), ip6("fe80::2"), 17, &udp(5060, 5070, SIP));
    for link in [101, 12, 14] {
        assert_udp4(&one(LinkType(link), &udp4_ip()));
        assert_eq!(one(LinkType(link), &v6).src, sock("fe80::1", 5060));
    }
    assert_udp4(&one(LinkType::IPV4, &udp4_ip()));
    assert_eq!(one(LinkType::IPV6, &v6).payload, SIP);
}

#[test]
fn ppp_link_and_pppoe() {
    let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(&udp4_ip());
    assert_udp4(&one(LinkType::PPP, &ppp));
    let mut compressed = vec![0x21];
    compressed.extend_from_slice(&udp4_ip());
    assert_udp4(&one(LinkType::PPP, &compressed));

    let v6 = ipv6(
        ip6("2001:db8::1"),
        ip6("2001:db8::2"),
        17,
        &udp(5060, 5070, SIP),
    );
    let mut pppoe = vec![0x11, 0x00, 0x12, 0x34];
    pppoe.extend_from_slice(&((v6.len() + 2) as u16).to_be_bytes());
    pppoe.extend_from_slice(&[0x00, 0x57]);
    pppoe.extend_from_slice(&v6);
    let p = one(LinkType::ETHERNET, &eth(0x8864, &pppoe));
    assert_eq!(p.src, sock("2001:db8::1", 5060));
    assert_eq!(p.payload, SIP);
}

#[test]
fn ipv6_extension_headers() {
    let u = udp(5060, 5070, SIP);
    // hop-by-hop (8) -> routing (8+8) -> destination options (8) -> AH (12+4 ... 16) -> UDP
    let mut ext = vec![43, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop, next = routing
    ext.extend_from_slice(&[60, 1, 0, 0, 0, 0, 0, 0]); // routing, len 1 => 16 bytes
    ext.extend_from_slice(&[0; 8]);
    ext.extend_from_slice(&[51, 0, 1, 4, 0, 0, 0, 0]); // dest opts, next = AH
    ext.extend_from_slice(&[17, 2, 0, 0]); // AH, len 2 => (2+2)*4 = 16 bytes
    ext.extend_from_slice(&[0; 12]);
    ext.extend_from_slice(&u);
    let v6 = ipv6(ip6("2001:db8::a"), ip6("2001:db8::b"), 0, &ext);
    let p = one(LinkType::ETHERNET, &eth(0x86dd, &v6));
    assert_eq!(p.src, sock("2001:db8::a", 5060));
    assert_eq!(p.dst, sock("2001:db8::b", 5070));
    assert_eq!(p.payload, SIP);
}

#[test]
fn tcp_segment_fields() {
    let seg = tcp(40000, 5060, 0xfffffff0, 0x02 | 0x10, SIP);
    let ip = ipv4(ip4("192.0.2.1"), ip4("192.0.2.2"), 6, &seg);
    let p = one(LinkType::ETHERNET, &eth(0x0800, &ip));
    assert_eq!(
        p.transport,
        Transport::Tcp {
            seq: 0xfffffff0,
            syn: true,
            fin: false,
            rst: false
        }
    );
    assert_eq!(p.payload, SIP);
    assert_eq!(p.src, sock("192.0.2.1", 40000));
    let fin_rst = tcp(1, 2, 5, 0x01 | 0x04, b"");
    let ip = ipv4(ip4("192.0.2.1"), ip4("192.0.2.2"), 6, &fin_rst);
    let p = one(LinkType::IPV4, &ip);
    assert_eq!(
        p.transport,
        Transport::Tcp {
            seq: 5,
            syn: false,
            fin: true,
            rst: true
        }
    );
    assert!(p.payload.is_empty());
}

fn sctp_chunk(ctype: u8, body: &[u8]) -> Vec<u8> {
    let mut c = vec![ctype, 0x03];
    c.extend_from_slice(&((4 + body.len()) as u16).to_be_bytes());
    c.extend_from_slice(body);
    c.resize(c.len().div_ceil(4) * 4, 0);
    c
}

fn sctp_data(ppid: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 1, 0, 0, 0, 0];
    b.extend_from_slice(&ppid.to_be_bytes());
    b.extend_from_slice(payload);
    sctp_chunk(0, &b)
}

#[test]
fn sctp_bundled_data_chunks() {
    let mut s = vec![0x13, 0xc4, 0x13, 0xc5, 1, 2, 3, 4, 0, 0, 0, 0];
    s.extend_from_slice(&sctp_chunk(3, &[0; 12])); // SACK: skipped
    s.extend_from_slice(&sctp_data(0, b"first!")); // padded to 4
    s.extend_from_slice(&sctp_data(46, SIP));
    let mut idata = vec![0, 0, 0, 9, 0, 1, 0, 0, 0, 0, 0, 0];
    idata.extend_from_slice(&99u32.to_be_bytes());
    idata.extend_from_slice(b"idata");
    s.extend_from_slice(&sctp_chunk(64, &idata));
    let ip = ipv4(ip4("10.1.1.1"), ip4("10.1.1.2"), 132, &s);
    let mut d = Decapsulator::new();
    let got = decode_all(&mut d, 1, LinkType::IPV4, &ip);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].transport, Transport::Sctp { ppid: 0 });
    assert_eq!(got[0].payload, b"first!");
    assert_eq!(got[1].transport, Transport::Sctp { ppid: 46 });
    assert_eq!(got[1].payload, SIP);
    assert_eq!(got[1].src, sock("10.1.1.1", 5060));
    assert_eq!(got[1].dst, sock("10.1.1.2", 5061));
    assert_eq!(got[2].transport, Transport::Sctp { ppid: 99 });
    assert_eq!(got[2].payload, b"idata");
}

fn gre(flags: u16, proto: u16, extra: &[u8], body: &[u8]) -> Vec<u8> {
    let mut g = flags.to_be_bytes().to_vec();
    g.extend_from_slice(&proto.to_be_bytes());
    g.extend_from_slice(extra);
    g.extend_from_slice(body);
    g
}

fn outer(proto: u8, body: &[u8]) -> Vec<u8> {
    eth(
        0x0800,
        &ipv4(ip4("172.16.0.1"), ip4("172.16.0.2"), proto, body),
    )
}

#[test]
fn gre_ip_with_key_and_sequence() {
    let g = gre(
        0x2000 | 0x1000,
        0x0800,
        &[0, 0, 0, 5, 0, 0, 0, 9],
        &udp4_ip(),
    );
    assert_udp4(&one(LinkType::ETHERNET, &outer(47, &g)));
    let v6 = ipv6(
        ip6("2001:db8::1"),
        ip6("2001:db8::2"),
        17,
        &udp(5060, 5070, SIP),
    );
    let g = gre(0x8000, 0x86dd, &[0, 0, 0, 0], &v6);
    assert_eq!(
        one(LinkType::ETHERNET, &outer(47, &g)).dst,
        sock("2001:db8::2", 5070)
    );
    let g = gre(0, 0x6558, &[], &eth(0x0800, &udp4_ip()));
    assert_udp4(&one(LinkType::ETHERNET, &outer(47, &g)));
}

#[test]
fn erspan_type_2_and_3() {
    let inner = eth_vlans(&[(0x8100, 7)], 0x0800, &udp4_ip());
    let mut e2 = vec![0x10, 0x07, 0x00, 0x64, 0, 0, 0, 0]; // ver 1, vlan 7, session 100
    e2.extend_from_slice(&inner);
    let g = gre(0x1000, 0x88be, &[0, 0, 0, 1], &e2);
    let p = one(LinkType::ETHERNET, &outer(47, &g));
    assert_udp4(&p);
    assert_eq!(p.vlan, Some(7));

    let mut e3 = vec![0x20, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0];
    e3.extend_from_slice(&inner);
    let g = gre(0x1000, 0x22eb, &[0, 0, 0, 1], &e3);
    assert_udp4(&one(LinkType::ETHERNET, &outer(47, &g)));

    // With the O bit: an 8-byte platform-specific subheader follows.
    let mut e3o = vec![0x20, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 1];
    e3o.extend_from_slice(&[0xff; 8]);
    e3o.extend_from_slice(&inner);
    let g = gre(0x1000, 0x22eb, &[0, 0, 0, 1], &e3o);
    assert_udp4(&one(LinkType::ETHERNET, &outer(47, &g)));
}

#[test]
fn vxlan_inner_ethernet() {
    let inner = eth_vlans(&[(0x8100, 300)], 0x0800, &udp4_ip());
    let mut vx = vec![0x08, 0, 0, 0, 0, 0x12, 0x34, 0];
    vx.extend_from_slice(&inner);
    let frame = eth_udp4("172.16.0.1", 55555, "172.16.0.2", 4789, &vx);
    let p = one(
        LinkType::ETHERNET,
        &eth_vlans(&[(0x8100, 5)], 0x0800, &frame[14..]),
    );
    assert_udp4(&p);
    assert_eq!(p.vlan, Some(300));
}

#[test]
fn ip_in_ip_4_and_41() {
    assert_udp4(&one(LinkType::ETHERNET, &outer(4, &udp4_ip())));
    let v6 = ipv6(
        ip6("2001:db8::1"),
        ip6("2001:db8::2"),
        17,
        &udp(5060, 5070, SIP),
    );
    assert_eq!(one(LinkType::ETHERNET, &outer(41, &v6)).payload, SIP);
}

#[test]
fn tunnel_nesting_is_bounded() {
    let mut ip = udp4_ip();
    for _ in 0..20 {
        ip = ipv4(ip4("1.1.1.1"), ip4("2.2.2.2"), 4, &ip);
    }
    let mut d = Decapsulator::new();
    assert!(decode_all(&mut d, 0, LinkType::IPV4, &ip).is_empty());
    assert_eq!(d.stats().malformed, 1);
    // Within the bound it works.
    let mut ip = udp4_ip();
    for _ in 0..8 {
        ip = ipv4(ip4("1.1.1.1"), ip4("2.2.2.2"), 4, &ip);
    }
    assert_udp4(&one(LinkType::IPV4, &ip));
}

fn hep3_chunk(ctype: u16, val: &[u8]) -> Vec<u8> {
    let mut c = vec![0, 0];
    c.extend_from_slice(&ctype.to_be_bytes());
    c.extend_from_slice(&((6 + val.len()) as u16).to_be_bytes());
    c.extend_from_slice(val);
    c
}

fn hep3(proto: u8, v6: bool, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(hep3_chunk(1, &[if v6 { 10 } else { 2 }]));
    body.extend(hep3_chunk(2, &[proto]));
    if v6 {
        body.extend(hep3_chunk(5, &ip6("2001:db8::10").octets()));
        body.extend(hep3_chunk(6, &ip6("2001:db8::20").octets()));
    } else {
        body.extend(hep3_chunk(3, &[10, 9, 8, 7]));
        body.extend(hep3_chunk(4, &[10, 9, 8, 6]));
    }
    body.extend(hep3_chunk(7, &5062u16.to_be_bytes()));
    body.extend(hep3_chunk(8, &5063u16.to_be_bytes()));
    body.extend(hep3_chunk(9, &1_700_000_000u32.to_be_bytes()));
    body.extend(hep3_chunk(10, &123_456u32.to_be_bytes()));
    body.extend(hep3_chunk(11, &[1]));
    body.extend(hep3_chunk(12, &2001u32.to_be_bytes()));
    let mut vendor = vec![0x00, 0x21, 0x00, 0x0f, 0x00, 0x08, 0xde, 0xad]; // vendor chunk 15
    body.append(&mut vendor);
    body.extend(hep3_chunk(15, payload));
    let mut h = b"HEP3".to_vec();
    h.extend_from_slice(&((6 + body.len()) as u16).to_be_bytes());
    h.extend(body);
    h
}

const HEP_TS: i64 = 1_700_000_000_123_456_000;

#[test]
fn hep3_over_udp_any_port() {
    for port in [9060, 9999] {
        let frame = eth_udp4(
            "192.168.1.1",
            40000,
            "192.168.1.2",
            port,
            &hep3(17, false, SIP),
        );
        let mut d = Decapsulator::new();
        let got = decode_all(&mut d, 5, LinkType::ETHERNET, &frame);
        assert_eq!(got.len(), 1);
        let p = &got[0];
        assert_eq!(p.src, sock("10.9.8.7", 5062));
        assert_eq!(p.dst, sock("10.9.8.6", 5063));
        assert_eq!(p.ts, HEP_TS);
        assert_eq!(p.transport, Transport::Udp);
        assert_eq!(p.payload, SIP);
        assert!(p.from_hep);
        assert_eq!(d.stats().hep, 1);
    }
}

#[test]
fn hep3_over_tcp_carrying_tcp_ipv6() {
    let seg = tcp(50000, 9061, 1, 0x18, &hep3(6, true, SIP));
    let frame = eth(
        0x0800,
        &ipv4(ip4("192.168.1.1"), ip4("192.168.1.2"), 6, &seg),
    );
    let p = one(LinkType::ETHERNET, &frame);
    assert_eq!(p.src, sock("2001:db8::10", 5062));
    assert_eq!(p.dst, sock("2001:db8::20", 5063));
    assert!(matches!(p.transport, Transport::Tcp { .. }));
    assert_eq!(p.payload, SIP);
    assert!(p.from_hep);
}

#[test]
fn hep3_truncated_is_malformed() {
    let mut h = hep3(17, false, SIP);
    h.truncate(h.len() - 5);
    let frame = eth_udp4("192.168.1.1", 40000, "192.168.1.2", 9060, &h);
    let mut d = Decapsulator::new();
    assert!(decode_all(&mut d, 0, LinkType::ETHERNET, &frame).is_empty());
    assert_eq!(d.stats().malformed, 1);
}

fn hep2(payload: &[u8]) -> Vec<u8> {
    let mut h = vec![2, 16, 2, 17];
    h.extend_from_slice(&5060u16.to_be_bytes());
    h.extend_from_slice(&5080u16.to_be_bytes());
    h.extend_from_slice(&[10, 0, 0, 5, 10, 0, 0, 6]);
    h.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    h.extend_from_slice(&123_456u32.to_le_bytes());
    h.extend_from_slice(&[7, 0, 0, 0]); // capture id + padding
    h.extend_from_slice(payload);
    h
}

#[test]
fn hep2_on_configured_port() {
    let frame = eth_udp4("192.168.1.1", 40000, "192.168.1.2", 9060, &hep2(SIP));
    let p = one(LinkType::ETHERNET, &frame);
    assert_eq!(p.src, sock("10.0.0.5", 5060));
    assert_eq!(p.dst, sock("10.0.0.6", 5080));
    assert_eq!(p.ts, HEP_TS);
    assert_eq!(p.payload, SIP);
    assert!(p.from_hep);

    // Not a HEP port: plain UDP.
    let frame = eth_udp4("192.168.1.1", 40000, "192.168.1.2", 9000, &hep2(SIP));
    assert!(!one(LinkType::ETHERNET, &frame).from_hep);
    // A configured extra port.
    let cfg = DecapConfig {
        hep_ports: vec![9000],
        ..DecapConfig::default()
    };
    let mut d = Decapsulator::with_config(cfg);
    let got = decode_all(&mut d, 0, LinkType::ETHERNET, &frame);
    assert!(got[0].from_hep);
    assert_eq!(got[0].dst, sock("10.0.0.6", 5080));
}

#[test]
fn malformed_and_unsupported_are_counted() {
    let mut d = Decapsulator::new();
    let good = eth_udp4("10.0.0.1", 1, "10.0.0.2", 2, SIP);
    decode_all(&mut d, 0, LinkType::ETHERNET, &good[..good.len() - 3]); // IP length > data
    decode_all(&mut d, 0, LinkType::ETHERNET, &good[..20]);
    decode_all(&mut d, 0, LinkType::ETHERNET, &eth(0x0806, &[0; 28])); // ARP
    decode_all(&mut d, 0, LinkType(147), &good); // unknown link type
    let mut bad_udp = udp(1, 2, SIP);
    bad_udp[4..6].copy_from_slice(&4u16.to_be_bytes());
    decode_all(
        &mut d,
        0,
        LinkType::IPV4,
        &ipv4(ip4("1.1.1.1"), ip4("2.2.2.2"), 17, &bad_udp),
    );
    let s = d.stats();
    assert_eq!((s.frames, s.malformed, s.unsupported), (5, 3, 2));
}

// ---------- fragments ----------

fn v4_frags(id: u16, payload: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(payload.len());
    bounds
        .windows(2)
        .map(|w| {
            let more = if w[1] < payload.len() { 0x2000 } else { 0 };
            let fo = more | (w[0] / 8) as u16;
            ipv4_frag(
                ip4("10.0.0.1"),
                ip4("10.0.0.2"),
                17,
                id,
                fo,
                &payload[w[0]..w[1]],
            )
        })
        .collect()
}

fn big_sip() -> Vec<u8> {
    (0..3000)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26])
        .collect()
}

#[test]
fn ipv4_fragments_in_order_and_out_of_order() {
    let body = big_sip();
    let dgram = udp(5060, 5070, &body);
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let frags = v4_frags(77, &dgram, &[1480, 2960]);
        let mut d = Decapsulator::new();
        let mut got = Vec::new();
        for &i in &order {
            got.extend(decode_all(&mut d, 1, LinkType::IPV4, &frags[i]));
        }
        assert_eq!(got.len(), 1, "order {order:?}");
        assert!(got[0].payload == body);
        assert_eq!(got[0].src, sock("10.0.0.1", 5060));
        let s = d.stats();
        assert_eq!((s.fragments, s.reassembled, s.malformed), (3, 1, 0));
        assert_eq!(d.fragments_pending(), 0);
    }
}

#[test]
fn ipv4_duplicate_fragments_are_harmless() {
    let body = big_sip();
    let dgram = udp(5060, 5070, &body);
    let frags = v4_frags(5, &dgram, &[1480]);
    // The first fragment again, and a consistent fragment overlapping both halves.
    let overlap = ipv4_frag(
        ip4("10.0.0.1"),
        ip4("10.0.0.2"),
        17,
        5,
        0x2000 | (1400 / 8),
        &dgram[1400..1560],
    );
    let mut d = Decapsulator::new();
    let mut got = Vec::new();
    for f in [&frags[0], &frags[0], &overlap, &frags[1]] {
        got.extend(decode_all(&mut d, 1, LinkType::IPV4, f));
    }
    assert_eq!(got.len(), 1);
    assert!(got[0].payload == body);
    assert_eq!(d.stats().malformed, 0);
}

#[test]
fn ipv4_conflicting_overlap_drops_the_datagram() {
    let dgram = udp(5060, 5070, &big_sip());
    let frags = v4_frags(5, &dgram, &[1480]);
    // A forged fragment overlapping the first with different bytes.
    let forged = ipv4_frag(
        ip4("10.0.0.1"),
        ip4("10.0.0.2"),
        17,
        5,
        0x2000 | (1400 / 8),
        &[b'X'; 160],
    );
    let mut d = Decapsulator::new();
    let mut got = Vec::new();
    for f in [&frags[0], &forged, &frags[1]] {
        got.extend(decode_all(&mut d, 1, LinkType::IPV4, f));
    }
    assert!(got.is_empty());
    assert_eq!(d.stats().malformed, 1);
    assert_eq!(d.stats().reassembled, 0);
    // The second half started a new, incomplete datagram.
    assert_eq!(d.fragments_pending(), 1);
}

#[test]
fn ipv4_fragment_contradictions_are_malformed() {
    let dgram = udp(5060, 5070, &big_sip());
    let frags = v4_frags(6, &dgram, &[1480]);
    let mut d = Decapsulator::new();
    decode_all(&mut d, 1, LinkType::IPV4, &frags[1]); // last: total = len
                                                      // A fragment claiming data beyond the end.
    let beyond = ipv4_frag(
        ip4("10.0.0.1"),
        ip4("10.0.0.2"),
        17,
        6,
        0x2000 | 500,
        &[0; 16],
    );
    assert!(decode_all(&mut d, 1, LinkType::IPV4, &beyond).is_empty());
    assert_eq!(d.stats().malformed, 1);
    assert_eq!(d.fragments_pending(), 0);
    // Offset + length beyond 64 KiB.
    let huge = ipv4_frag(ip4("10.0.0.1"), ip4("10.0.0.2"), 17, 8, 0x1fff, &[0; 64]);
    decode_all(&mut d, 1, LinkType::IPV4, &huge);
    assert_eq!(d.stats().malformed, 2);
}

#[test]
fn ipv4_fragment_timeout() {
    let dgram = udp(5060, 5070, &big_sip());
    let frags = v4_frags(9, &dgram, &[1480]);
    let mut d = Decapsulator::new();
    decode_all(&mut d, 0, LinkType::IPV4, &frags[0]);
    assert_eq!(d.fragments_pending(), 1);
    // Unrelated traffic 31 s later expires it; the late second half then cannot complete it.
    let later = 31_000_000_000;
    decode_all(&mut d, later, LinkType::IPV4, &udp4_ip());
    assert_eq!(d.stats().fragment_timeouts, 1);
    assert!(decode_all(&mut d, later, LinkType::IPV4, &frags[1]).is_empty());
    assert_eq!(d.stats().reassembled, 0);
}

#[test]
fn fragment_table_is_bounded() {
    let cfg = DecapConfig {
        max_frag_datagrams: 4,
        ..DecapConfig::default()
    };
    let mut d = Decapsulator::with_config(cfg);
    let dgram = udp(5060, 5070, &big_sip());
    for id in 0..100 {
        let f = &v4_frags(id, &dgram, &[1480])[0];
        decode_all(&mut d, i64::from(id), LinkType::IPV4, f);
        assert!(d.fragments_pending() <= 4);
    }
    // The newest survive: completing id 99 works, id 0 was evicted.
    let f = &v4_frags(99, &dgram, &[1480])[1];
    assert_eq!(decode_all(&mut d, 100, LinkType::IPV4, f).len(), 1);
    let f = &v4_frags(0, &dgram, &[1480])[1];
    assert!(decode_all(&mut d, 100, LinkType::IPV4, f).is_empty());
}

#[test]
fn ipv6_fragments_out_of_order_with_dest_options_after() {
    let body = big_sip();
    // The fragmentable part starts with a destination-options header.
    let mut fragmentable = vec![17, 0, 1, 4, 0, 0, 0, 0];
    fragmentable.extend(udp(5060, 5070, &body));
    let (a, b) = fragmentable.split_at(1448);
    let src = ip6("2001:db8::1");
    let dst = ip6("2001:db8::2");
    let f1 = ipv6(src, dst, 44, &ipv6_frag_hdr(60, 0, true, 0xabcd, a));
    let f2 = ipv6(src, dst, 44, &ipv6_frag_hdr(60, 1448, false, 0xabcd, b));
    let mut d = Decapsulator::new();
    assert!(decode_all(&mut d, 1, LinkType::IPV6, &f2).is_empty());
    let got = decode_all(&mut d, 2, LinkType::IPV6, &f1);
    assert_eq!(got.len(), 1);
    assert!(got[0].payload == body);
    assert_eq!(got[0].dst, sock("2001:db8::2", 5070));
    assert_eq!(d.stats().reassembled, 1);
}

#[test]
fn ipv6_fragments_in_a_vlan_keep_the_vlan() {
    let dgram = udp(5060, 5070, &big_sip());
    let (a, b) = dgram.split_at(1232);
    let src = ip6("2001:db8::1");
    let dst = ip6("2001:db8::2");
    let f1 = ipv6(src, dst, 44, &ipv6_frag_hdr(17, 0, true, 1, a));
    let f2 = ipv6(src, dst, 44, &ipv6_frag_hdr(17, 1232, false, 1, b));
    let mut d = Decapsulator::new();
    decode_all(
        &mut d,
        1,
        LinkType::ETHERNET,
        &eth_vlans(&[(0x8100, 9)], 0x86dd, &f1),
    );
    let got = decode_all(
        &mut d,
        1,
        LinkType::ETHERNET,
        &eth_vlans(&[(0x8100, 9)], 0x86dd, &f2),
    );
    assert_eq!(got[0].vlan, Some(9));
    assert!(got[0].payload == big_sip());
}
