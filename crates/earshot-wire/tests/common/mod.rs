//! Test-only frame builders and capture-file writers.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// A file under the project's shared test data, or `None` (with a notice) when that folder is
/// absent. Under CI the data must be there, so a missing folder fails the test instead.
pub fn shared(path: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if !root.is_dir() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but {} is missing", root.display());
        }
        eprintln!("skipping: ../shared missing");
        return None;
    }
    Some(root.join(path))
}

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&MAC_B);
    v.extend_from_slice(&MAC_A);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Ethernet with a stack of VLAN tags (outermost first), each `(tpid, vid)`.
pub fn eth_vlans(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&MAC_B);
    v.extend_from_slice(&MAC_A);
    for (tpid, vid) in tags {
        v.extend_from_slice(&tpid.to_be_bytes());
        v.extend_from_slice(&(0x2000 | vid).to_be_bytes());
    }
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// IPv4 header with id and fragment field (`flags_off` = MF bit | offset/8), no options.
pub fn ipv4_frag(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    flags_off: u16,
    payload: &[u8],
) -> Vec<u8> {
    ipv4_opts(src, dst, proto, id, flags_off, &[], payload)
}

pub fn ipv4_opts(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    flags_off: u16,
    opts: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let hlen = 20 + opts.len();
    let mut v = vec![0x40 | (hlen / 4) as u8, 0];
    v.extend_from_slice(&((hlen + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&flags_off.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(opts);
    v.extend_from_slice(payload);
    v
}

pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_frag(src, dst, proto, 1, 0, payload)
}

pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 64]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(payload);
    v
}

/// IPv6 fragment header + fragment data. `offset` in bytes (multiple of 8).
pub fn ipv6_frag_hdr(next: u8, offset: u16, more: bool, id: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![next, 0];
    v.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(data);
    v
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

/// TCP header; `flags` raw (0x02 SYN, 0x01 FIN, 0x04 RST, 0x10 ACK).
pub fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    // 24-byte header with 4 bytes of NOP options, to check the data offset is honoured.
    v.extend_from_slice(&[0x60, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v.extend_from_slice(&[1, 1, 1, 1]);
    v.extend_from_slice(payload);
    v
}

/// Ethernet/IPv4/UDP in one go.
pub fn eth_udp4(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    eth(
        0x0800,
        &ipv4(ip4(src), ip4(dst), 17, &udp(sport, dport, payload)),
    )
}

pub fn sock(ip: &str, port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::new(ip.parse::<IpAddr>().unwrap(), port)
}

/// A classic pcap file. `nanos` picks the nanosecond magic; `big` writes big-endian.
pub fn pcap_file(link: u32, nanos: bool, big: bool, frames: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let w16 = |v: &mut Vec<u8>, x: u16| {
        v.extend_from_slice(&if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let mut v = Vec::new();
    w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut v, 2);
    w16(&mut v, 4);
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, 65535);
    w32(&mut v, link);
    for (sec, frac, data) in frames {
        w32(&mut v, *sec);
        w32(&mut v, *frac);
        w32(&mut v, data.len() as u32);
        w32(&mut v, data.len() as u32 + 4);
        v.extend_from_slice(data);
    }
    v
}

/// Little-endian pcapng builder.
#[derive(Default)]
pub struct PcapNg {
    pub bytes: Vec<u8>,
}

impl PcapNg {
    pub fn new() -> Self {
        let mut s = Self::default();
        let mut body = Vec::new();
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        s.block(0x0a0d_0d0a, &body);
        s
    }

    pub fn block(&mut self, btype: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        self.bytes.extend_from_slice(&btype.to_le_bytes());
        self.bytes.extend_from_slice(&total.to_le_bytes());
        self.bytes.extend_from_slice(body);
        self.bytes.resize(self.bytes.len() + padded - body.len(), 0);
        self.bytes.extend_from_slice(&total.to_le_bytes());
    }

    /// Interface with an optional if_tsresol byte.
    pub fn idb(&mut self, link: u16, tsresol: Option<u8>) {
        let mut body = Vec::new();
        body.extend_from_slice(&link.to_le_bytes());
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&262_144u32.to_le_bytes());
        if let Some(r) = tsresol {
            body.extend_from_slice(&9u16.to_le_bytes());
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&[r, 0, 0, 0]);
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        self.block(1, &body);
    }

    pub fn epb(&mut self, iface: u32, ts: u64, data: &[u8]) {
        let mut body = Vec::new();
        body.extend_from_slice(&iface.to_le_bytes());
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        self.block(6, &body);
    }

    pub fn pb(&mut self, iface: u16, ts: u64, data: &[u8]) {
        let mut body = Vec::new();
        body.extend_from_slice(&iface.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        self.block(2, &body);
    }

    pub fn spb(&mut self, data: &[u8]) {
        let mut body = Vec::new();
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        self.block(3, &body);
    }
}

/// Decodes one frame and collects owned copies of what comes out.
pub fn decode_all(
    d: &mut earshot_wire::Decapsulator,
    ts: i64,
    link: earshot_wire::LinkType,
    frame: &[u8],
) -> Vec<Owned> {
    let mut v = Vec::new();
    d.decode(earshot_wire::Timestamp(ts), link, frame, &mut |p| {
        v.push(Owned {
            ts: p.ts.0,
            src: p.src,
            dst: p.dst,
            vlan: p.vlan,
            transport: p.transport,
            payload: p.payload.to_vec(),
            from_hep: p.from_hep,
        })
    });
    v
}

#[derive(Debug, Clone, PartialEq)]
pub struct Owned {
    pub ts: i64,
    pub src: std::net::SocketAddr,
    pub dst: std::net::SocketAddr,
    pub vlan: Option<u16>,
    pub transport: earshot_wire::Transport,
    pub payload: Vec<u8>,
    pub from_hep: bool,
}
