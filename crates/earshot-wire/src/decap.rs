//! From a link-layer frame down to UDP/TCP/SCTP payloads.
//!
//! A hand-written, zero-copy parser: every layer borrows the caller's frame, and only IP
//! fragment reassembly copies bytes. Layers return `Err(Skip)` to stop; the top level counts
//! at most one `malformed` or `unsupported` per frame.

use crate::frag::{FragKey, FragTable, Fragment};
use crate::{LinkType, Timestamp};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

/// The transport a [`Packet`]'s payload came over, with what of its header later layers use.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram's payload (reassembled, if it was fragmented).
    Udp,
    /// For packets out of HEP (`from_hep`), `seq` is 0 and meaningless: HEP agents send whole
    /// messages, so such payloads must not go through [`crate::tcp::TcpReassembler`].
    Tcp {
        /// The segment's sequence number: where its first payload byte sits in the stream.
        seq: u32,
        /// The SYN flag: the stream starts after this segment's sequence number.
        syn: bool,
        /// The FIN flag: the sender's side of the stream ends after this payload.
        fin: bool,
        /// The RST flag: the connection is torn down.
        rst: bool,
    },
    /// One SCTP DATA chunk; `ppid` is its payload protocol identifier.
    Sctp {
        /// The payload protocol identifier (IANA registry; 0 when unspecified).
        ppid: u32,
    },
}

/// A transport-layer payload with its addresses.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture time of the frame (or the HEP envelope's, see [`DecapConfig::hep_max_skew_ns`]).
    pub ts: Timestamp,
    /// Source address and port of the innermost IP and transport headers.
    pub src: SocketAddr,
    /// Destination address and port of the innermost IP and transport headers.
    pub dst: SocketAddr,
    /// Innermost 802.1Q VLAN id, if any.
    pub vlan: Option<u16>,
    /// Which transport, and its TCP flags or SCTP PPID.
    pub transport: Transport,
    /// The transport payload, borrowed from the frame (or from the reassembly or inflate
    /// buffer, until `out` returns).
    pub payload: &'a [u8],
    /// True when the packet came out of a HEP envelope.
    pub from_hep: bool,
}

/// An unfragmented IPv4 UDP datagram from [`Decapsulator::decode_udp4`].
#[derive(Debug, Clone, Copy)]
pub struct Udp4<'a> {
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// Innermost 802.1Q VLAN id, if any.
    pub vlan: Option<u16>,
    /// The UDP payload, borrowed from the frame.
    pub payload: &'a [u8],
}

impl<'a> Udp4<'a> {
    /// The packet [`Decapsulator::decode`] emits for this datagram.
    pub fn packet(&self, ts: Timestamp) -> Packet<'a> {
        Packet {
            ts,
            src: SocketAddr::V4(self.src),
            dst: SocketAddr::V4(self.dst),
            vlan: self.vlan,
            transport: Transport::Udp,
            payload: self.payload,
            from_hep: false,
        }
    }
}

/// What a [`Decapsulator`] has decoded so far; every count only grows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecapStats {
    /// Frames given to [`Decapsulator::decode`] (or its HEP and UDP shortcuts).
    pub frames: u64,
    /// Frames dropped because a header was cut short or inconsistent (at most one per frame).
    pub malformed: u64,
    /// Frames dropped because a link type, EtherType, tunnel or protocol is not one decoded
    /// here (at most one per frame).
    pub unsupported: u64,
    /// IP fragments taken into reassembly.
    pub fragments: u64,
    /// Fragmented datagrams completed and decoded.
    pub reassembled: u64,
    /// Incomplete fragmented datagrams dropped after [`DecapConfig::frag_timeout_ns`].
    pub fragment_timeouts: u64,
    /// Packets passed on out of a HEP envelope.
    pub hep: u64,
    /// HEP packets whose envelope time was too far from the frame's and was replaced by it.
    pub hep_time_replaced: u64,
    /// HEP packets not passed on, by reason (also counted in `malformed`/`unsupported`).
    pub hep_skipped: HepSkipped,
}

/// Why HEP packets were not passed on. Each skipped HEP packet is counted once, under the
/// first reason met.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HepSkipped {
    /// The envelope is cut short, a chunk overruns it, or addresses are missing.
    pub malformed: u64,
    /// No payload chunk (15 or 16), or a transport protocol other than UDP, TCP or SCTP.
    pub unsupported: u64,
    /// A compressed payload (chunk 16) that is not a valid zlib or deflate stream.
    pub inflate_failed: u64,
    /// A compressed payload that inflates to more than [`MAX_HEP_INFLATED`] bytes.
    pub too_big: u64,
}

impl HepSkipped {
    /// HEP packets skipped for any reason.
    pub fn total(&self) -> u64 {
        self.malformed + self.unsupported + self.inflate_failed + self.too_big
    }
}

/// The most a compressed HEP payload may inflate to: a UDP datagram's largest payload, so no
/// SIP message that could have been captured is refused, and a zip bomb costs at most this.
pub const MAX_HEP_INFLATED: usize = 65_535;

/// Tunables. Defaults suit a sensor: HEP on 9060, VXLAN on 4789, 30 s fragment timeout.
#[derive(Debug, Clone)]
pub struct DecapConfig {
    /// UDP ports where HEP v1/v2 is expected (HEP3 is recognised on any port by its magic).
    pub hep_ports: Vec<u16>,
    /// UDP destination ports carrying VXLAN.
    pub vxlan_ports: Vec<u16>,
    /// Capture-time age after which an incomplete fragmented datagram is dropped.
    pub frag_timeout_ns: i64,
    /// Datagrams under reassembly at once; the oldest is dropped to make room.
    pub max_frag_datagrams: usize,
    /// Largest reassembled datagram payload.
    pub max_frag_bytes: usize,
    /// Encapsulation layers (tunnels, HEP, reassembly) followed before giving up.
    pub max_depth: u8,
    /// A HEP envelope's capture time is the agent's word. When it is further than this from
    /// the time of the frame that carried it (for a HEP listener, the time of receipt), the
    /// frame's time is used instead and the packet counted in `hep_time_replaced`: one forged
    /// datagram must not put a call or a listener's clock in 2106. `None` trusts every
    /// envelope (offline analysis of a capture, where the envelopes are the record).
    pub hep_max_skew_ns: Option<i64>,
}

impl Default for DecapConfig {
    fn default() -> Self {
        Self {
            hep_ports: vec![9060],
            vxlan_ports: vec![4789],
            frag_timeout_ns: 30_000_000_000,
            max_frag_datagrams: 1024,
            max_frag_bytes: 65_535,
            max_depth: 8,
            hep_max_skew_ns: None,
        }
    }
}

/// The decoder: one per capture source, holding its fragment reassembly state, its statistics
/// and its configuration.
#[derive(Debug)]
pub struct Decapsulator {
    cfg: DecapConfig,
    stats: DecapStats,
    frags: FragTable,
    /// Made on the first compressed HEP payload, then reused: no allocation per packet.
    inflater: Option<Box<Inflater>>,
}

/// The state and the output buffer for inflating HEP3 compressed payloads (chunk 16).
struct Inflater {
    state: flate2::Decompress,
    out: Box<[u8]>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Inflater {
    fn new() -> Box<Self> {
        Box::new(Inflater {
            state: flate2::Decompress::new(true),
            out: vec![0; MAX_HEP_INFLATED].into_boxed_slice(),
        })
    }

    /// Inflates `input` (zlib, as Kamailio and OpenSIPS write it, or raw deflate) into the
    /// buffer and returns its length. One call on a bounded input and output: the work is
    /// bounded whatever the stream claims.
    fn inflate(&mut self, input: &[u8]) -> Result<usize, Skip> {
        self.state.reset(is_zlib(input));
        let status = self
            .state
            .decompress(input, &mut self.out, flate2::FlushDecompress::Finish)
            .map_err(|_| Skip::InflateFailed)?;
        let n = usize::try_from(self.state.total_out()).map_err(|_| Skip::TooBig)?;
        match status {
            flate2::Status::StreamEnd => Ok(n),
            _ if n >= self.out.len() => Err(Skip::TooBig),
            // The input ended before the stream did.
            _ => Err(Skip::InflateFailed),
        }
    }
}

/// A zlib header (RFC 1950): deflate method, and the check bits that make the first two bytes
/// a multiple of 31.
fn is_zlib(d: &[u8]) -> bool {
    match d {
        [cmf, flg, ..] => cmf & 0x0f == 8 && u16::from_be_bytes([*cmf, *flg]) % 31 == 0,
        _ => false,
    }
}

impl Default for Decapsulator {
    fn default() -> Self {
        Self::with_config(DecapConfig::default())
    }
}

/// Why a layer stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Malformed,
    Unsupported,
    /// A HEP compressed payload that does not inflate (counted as malformed).
    InflateFailed,
    /// A HEP compressed payload that inflates beyond the cap (counted as unsupported).
    TooBig,
}

type Res = Result<(), Skip>;
type Out<'o> = dyn FnMut(&Packet<'_>) + 'o;

/// State carried down through the layers of one frame.
#[derive(Clone, Copy)]
struct Ctx {
    ts: Timestamp,
    vlan: Option<u16>,
    depth: u8,
}

fn be16(d: &[u8], at: usize) -> Result<u16, Skip> {
    match d.get(at..at + 2) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(Skip::Malformed),
    }
}

fn be32(d: &[u8], at: usize) -> Result<u32, Skip> {
    match d.get(at..at + 4) {
        Some(&[a, b, c, e]) => Ok(u32::from_be_bytes([a, b, c, e])),
        _ => Err(Skip::Malformed),
    }
}

/// `ports.contains(&port)` for the tiny port lists of [`DecapConfig`]: on every UDP datagram,
/// `<[u16]>::contains` (vectorised for long slices) measured ~25 instructions a call on a
/// one-element list, this loop a few.
#[allow(clippy::manual_contains)]
fn has_port(ports: &[u16], port: u16) -> bool {
    ports.iter().any(|&p| p == port)
}

fn byte(d: &[u8], at: usize) -> Result<u8, Skip> {
    d.get(at).copied().ok_or(Skip::Malformed)
}

fn tail(d: &[u8], at: usize) -> Result<&[u8], Skip> {
    d.get(at..).ok_or(Skip::Malformed)
}

fn v4(d: &[u8], at: usize) -> Result<IpAddr, Skip> {
    let b: [u8; 4] = d
        .get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .ok_or(Skip::Malformed)?;
    Ok(IpAddr::V4(Ipv4Addr::from(b)))
}

fn v6(d: &[u8], at: usize) -> Result<IpAddr, Skip> {
    let b: [u8; 16] = d
        .get(at..at + 16)
        .and_then(|s| s.try_into().ok())
        .ok_or(Skip::Malformed)?;
    Ok(IpAddr::V6(Ipv6Addr::from(b)))
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE: u16 = 0x8864;
const ETH_TEB: u16 = 0x6558;
const ETH_ERSPAN2: u16 = 0x88be;
const ETH_ERSPAN3: u16 = 0x22eb;

const IP_HOPOPT: u8 = 0;
const IP_IPIP: u8 = 4;
const IP_TCP: u8 = 6;
const IP_UDP: u8 = 17;
const IP_IPV6: u8 = 41;
const IP_ROUTING: u8 = 43;
const IP_FRAGMENT: u8 = 44;
const IP_GRE: u8 = 47;
const IP_AH: u8 = 51;
const IP_NONE: u8 = 59;
const IP_DSTOPTS: u8 = 60;
const IP_SCTP: u8 = 132;

impl Decapsulator {
    /// A decoder with the default [`DecapConfig`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with `cfg`.
    pub fn with_config(cfg: DecapConfig) -> Self {
        let frags = FragTable::new(cfg.max_frag_datagrams, cfg.max_frag_bytes);
        Self {
            cfg,
            stats: DecapStats::default(),
            frags,
            inflater: None,
        }
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &DecapConfig {
        &self.cfg
    }

    /// Decodes one frame; calls `out` for every transport payload found in it (zero, one, or
    /// several: SCTP bundles chunks). Never panics on any input.
    pub fn decode(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        frame: &[u8],
        out: &mut dyn FnMut(&Packet<'_>),
    ) {
        self.stats.frames += 1;
        if !self.frags.is_empty() {
            self.expire_fragments(ts);
        }
        if let Some(u) = self.udp4_fast(link, frame) {
            out(&u.packet(ts));
            return;
        }
        let ctx = Ctx {
            ts,
            vlan: None,
            depth: 0,
        };
        if let Err(skip) = self.link(ctx, link, frame, out) {
            match skip {
                Skip::Malformed | Skip::InflateFailed => self.stats.malformed += 1,
                Skip::Unsupported | Skip::TooBig => self.stats.unsupported += 1,
            }
        }
    }

    /// [`Self::decode`]'s fast path, for callers that handle the common case themselves:
    /// when `decode` would emit exactly one packet through that path (see below), counts the
    /// frame as `decode` would and returns the datagram; otherwise returns `None` having
    /// changed nothing, and the frame goes to `decode`. While fragments are pending it always
    /// returns `None`, because `decode` first ages them.
    pub fn decode_udp4<'f>(&mut self, link: LinkType, frame: &'f [u8]) -> Option<Udp4<'f>> {
        let u = self.peek_udp4(link, frame)?;
        self.accept_peeked().then_some(u)
    }

    /// The datagram [`Self::decode_udp4`] would return for this frame, changing nothing: for
    /// looking at frames ahead of the one being decoded (to prefetch what they will need).
    #[inline]
    pub fn peek_udp4<'f>(&self, link: LinkType, frame: &'f [u8]) -> Option<Udp4<'f>> {
        self.udp4_fast(link, frame)
    }

    /// Takes a frame whose [`Self::peek_udp4`] gave a datagram as [`Self::decode_udp4`] would
    /// (so it is decoded once, not twice); `false` when it must go to `decode` after all,
    /// because fragments are pending.
    pub fn accept_peeked(&mut self) -> bool {
        if !self.frags.is_empty() {
            return false;
        }
        self.stats.frames += 1;
        true
    }

    /// The common case in one straight pass: Ethernet (at most one VLAN tag) or raw IP, an
    /// unfragmented IPv4 datagram, and UDP that is neither a tunnel nor HEP. Returns exactly the
    /// packet the layered path would emit; returns `None` for anything else (including every
    /// malformed frame), which then takes the layered path.
    /// The layered path costs ~250 instructions per frame in calls and `Result`s of its own;
    /// this one a few dozen.
    // Inlined: returned through memory, its narrow fields were re-read wider by the caller,
    // and the failed store-to-load forwarding cost more than the whole decode.
    #[inline]
    fn udp4_fast<'f>(&self, link: LinkType, frame: &'f [u8]) -> Option<Udp4<'f>> {
        let (vlan, ip) = match link.0 {
            1 => match frame {
                [_, _, _, _, _, _, _, _, _, _, _, _, 0x08, 0x00, ip @ ..] => (None, ip),
                [_, _, _, _, _, _, _, _, _, _, _, _, t0, t1, v0, v1, 0x08, 0x00, ip @ ..]
                    if matches!(
                        u16::from_be_bytes([*t0, *t1]),
                        ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD
                    ) =>
                {
                    (Some(u16::from_be_bytes([*v0, *v1]) & 0x0fff), ip)
                }
                _ => return None,
            },
            101 | 12 | 14 | 228 => (None, frame),
            _ => return None,
        };
        let Some(&[vihl, _, t0, t1, _, _, f0, f1, _, proto, _, _, s0, s1, s2, s3, d0, d1, d2, d3]) =
            ip.get(..20)
        else {
            return None;
        };
        let ihl = usize::from(vihl & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([t0, t1]));
        let unfragmented = u16::from_be_bytes([f0, f1]) & 0x3fff == 0;
        if vihl >> 4 != 4 || ihl < 20 || total < ihl || !unfragmented || proto != IP_UDP {
            return None;
        }
        let udp = ip.get(ihl..total)?;
        let Some(&[p0, p1, q0, q1, l0, l1, _, _]) = udp.get(..8) else {
            return None;
        };
        let (sport, dport) = (u16::from_be_bytes([p0, p1]), u16::from_be_bytes([q0, q1]));
        let payload = match usize::from(u16::from_be_bytes([l0, l1])) {
            0 => &udp[8..],
            len @ 8.. => udp.get(8..len)?,
            _ => return None,
        };
        if has_port(&self.cfg.vxlan_ports, dport)
            || payload.starts_with(b"HEP3")
            || (matches!(payload.first(), Some(1 | 2))
                && self.cfg.hep_ports.iter().any(|&p| p == dport || p == sport))
        {
            return None;
        }
        let (src, dst) = (Ipv4Addr::new(s0, s1, s2, s3), Ipv4Addr::new(d0, d1, d2, d3));
        Some(Udp4 {
            src: SocketAddrV4::new(src, sport),
            dst: SocketAddrV4::new(dst, dport),
            vlan,
            payload,
        })
    }

    /// Decodes a bare HEP datagram (v1/v2/v3, as a HEP listener receives it from heplify,
    /// Kamailio, OpenSIPS or FreeSWITCH); the packet inside comes out with `from_hep` set and
    /// the HEP capture time when the envelope carries one (`ts` otherwise). The same as
    /// [`Self::decode`] with [`LinkType::HEP`], counted in the same statistics.
    pub fn decode_hep(&mut self, ts: Timestamp, payload: &[u8], out: &mut dyn FnMut(&Packet<'_>)) {
        self.decode(ts, LinkType::HEP, payload, out);
    }

    /// The counts so far.
    pub fn stats(&self) -> &DecapStats {
        &self.stats
    }

    /// Drops datagrams whose reassembly started more than the timeout before `now`.
    /// `decode` calls this itself; call it directly only when frames stop arriving.
    pub fn expire_fragments(&mut self, now: Timestamp) {
        let dropped = self.frags.expire(now, self.cfg.frag_timeout_ns);
        self.stats.fragment_timeouts += dropped;
    }

    /// Datagrams currently under reassembly.
    pub fn fragments_pending(&self) -> usize {
        self.frags.len()
    }

    fn link(&mut self, ctx: Ctx, link: LinkType, d: &[u8], out: &mut Out<'_>) -> Res {
        match link.0 {
            1 => self.ethernet(ctx, d, out),
            113 => self.ethertype(ctx, be16(d, 14)?, tail(d, 16)?, out),
            276 => self.ethertype(ctx, be16(d, 0)?, tail(d, 20)?, out),
            101 | 12 | 14 => self.raw_ip(ctx, d, out),
            228 => self.ipv4(ctx, d, out),
            229 => self.ipv6(ctx, d, out),
            0 | 108 => self.null(ctx, d, out),
            9 => self.ppp(ctx, d, out),
            x if x == LinkType::HEP.0 => self.nested(ctx, |s, c| s.hep(c, d, out)),
            _ => Err(Skip::Unsupported),
        }
    }

    /// A bare HEP datagram: HEP3 announces itself; v1/v2 are recognised by their version byte,
    /// which is all a listener that was told "this is HEP" needs.
    fn hep(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        if d.starts_with(b"HEP3") {
            self.hep3(ctx, d, out)
        } else if matches!(d.first(), Some(1 | 2)) {
            self.hep2(ctx, d, out)
        } else {
            Err(Skip::Malformed)
        }
    }

    fn ethernet(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        self.ethertype(ctx, be16(d, 12)?, tail(d, 14)?, out)
    }

    fn ethertype(&mut self, mut ctx: Ctx, etype: u16, d: &[u8], out: &mut Out<'_>) -> Res {
        let (mut etype, mut d) = (etype, d);
        while matches!(etype, ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD) {
            ctx.vlan = Some(be16(d, 0)? & 0x0fff);
            etype = be16(d, 2)?;
            d = tail(d, 4)?;
        }
        match etype {
            ETH_IPV4 => self.ipv4(ctx, d, out),
            ETH_IPV6 => self.ipv6(ctx, d, out),
            ETH_MPLS | ETH_MPLS_MC => self.mpls(ctx, d, out),
            ETH_PPPOE => self.pppoe(ctx, d, out),
            ETH_TEB => self.nested(ctx, |s, c| s.ethernet(c, d, out)),
            _ => Err(Skip::Unsupported),
        }
    }

    /// Runs an encapsulated layer one level deeper, refusing past the configured depth.
    fn nested(&mut self, mut ctx: Ctx, f: impl FnOnce(&mut Self, Ctx) -> Res) -> Res {
        ctx.depth += 1;
        if ctx.depth > self.cfg.max_depth {
            return Err(Skip::Malformed);
        }
        f(self, ctx)
    }

    fn raw_ip(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        match byte(d, 0)? >> 4 {
            4 => self.ipv4(ctx, d, out),
            6 => self.ipv6(ctx, d, out),
            _ => Err(Skip::Unsupported),
        }
    }

    /// BSD loopback: a 4-byte address family in the writer's byte order, which the values
    /// themselves reveal (they are all below 2^16).
    fn null(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        let be = be32(d, 0)?;
        let family = if be > 0xffff { be.swap_bytes() } else { be };
        let d = tail(d, 4)?;
        match family {
            2 => self.ipv4(ctx, d, out),
            24 | 28 | 30 => self.ipv6(ctx, d, out),
            _ => Err(Skip::Unsupported),
        }
    }

    fn ppp(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        let d = match d {
            [0xff, 0x03, rest @ ..] => rest,
            _ => d,
        };
        // Protocol-field compression: an odd first byte is a one-byte protocol number.
        let (proto, rest) = if byte(d, 0)? & 1 == 1 {
            (u16::from(byte(d, 0)?), tail(d, 1)?)
        } else {
            (be16(d, 0)?, tail(d, 2)?)
        };
        self.ppp_proto(ctx, proto, rest, out)
    }

    fn ppp_proto(&mut self, ctx: Ctx, proto: u16, d: &[u8], out: &mut Out<'_>) -> Res {
        match proto {
            0x0021 => self.ipv4(ctx, d, out),
            0x0057 => self.ipv6(ctx, d, out),
            _ => Err(Skip::Unsupported),
        }
    }

    fn pppoe(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        if byte(d, 0)? != 0x11 || byte(d, 1)? != 0 {
            return Err(Skip::Unsupported);
        }
        let len = usize::from(be16(d, 4)?);
        let body = d.get(6..6 + len).ok_or(Skip::Malformed)?;
        self.ppp_proto(ctx, be16(body, 0)?, tail(body, 2)?, out)
    }

    fn mpls(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        let mut at = 0;
        loop {
            let entry = be32(d, at)?;
            at += 4;
            if entry & 0x100 != 0 {
                break;
            }
        }
        let d = tail(d, at)?;
        match byte(d, 0)? >> 4 {
            4 => self.ipv4(ctx, d, out),
            6 => self.ipv6(ctx, d, out),
            // A zero nibble is the pseudowire control word before an Ethernet frame.
            0 => self.nested(ctx, |s, c| s.ethernet(c, tail(d, 4)?, out)),
            _ => Err(Skip::Unsupported),
        }
    }

    fn ipv4(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        let vihl = byte(d, 0)?;
        let ihl = usize::from(vihl & 0x0f) * 4;
        let total = usize::from(be16(d, 2)?);
        if vihl >> 4 != 4 || ihl < 20 || total < ihl {
            return Err(Skip::Malformed);
        }
        // Trimming to the IP length drops Ethernet padding and trailers.
        let d = d.get(..total).ok_or(Skip::Malformed)?;
        let proto = byte(d, 9)?;
        let (src, dst) = (v4(d, 12)?, v4(d, 16)?);
        let payload = tail(d, ihl)?;
        let frag = be16(d, 6)?;
        let more = frag & 0x2000 != 0;
        let offset = usize::from(frag & 0x1fff) * 8;
        if !more && offset == 0 {
            return self.ip_payload(ctx, src, dst, proto, payload, out);
        }
        let key = FragKey {
            src,
            dst,
            id: u32::from(be16(d, 4)?),
            proto,
        };
        let whole = self.fragment(ctx, key, offset, more, proto, payload)?;
        match whole {
            Some((_, data)) => {
                self.nested(ctx, |s, c| s.ip_payload(c, src, dst, proto, &data, out))
            }
            None => Ok(()),
        }
    }

    fn ipv6(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        if byte(d, 0)? >> 4 != 6 {
            return Err(Skip::Malformed);
        }
        let plen = usize::from(be16(d, 4)?);
        if plen == 0 {
            // Jumbograms (RFC 2675) never carry VoIP; don't guess their length.
            return Err(Skip::Unsupported);
        }
        let body = d.get(40..40 + plen).ok_or(Skip::Malformed)?;
        let (src, dst) = (v6(d, 8)?, v6(d, 24)?);
        self.ipv6_chain(ctx, src, dst, byte(d, 6)?, body, out)
    }

    /// Walks IPv6 extension headers, reassembling at a fragment header.
    fn ipv6_chain(
        &mut self,
        ctx: Ctx,
        src: IpAddr,
        dst: IpAddr,
        mut next: u8,
        mut d: &[u8],
        out: &mut Out<'_>,
    ) -> Res {
        loop {
            let hlen = match next {
                IP_HOPOPT | IP_ROUTING | IP_DSTOPTS => (usize::from(byte(d, 1)?) + 1) * 8,
                IP_AH => (usize::from(byte(d, 1)?) + 2) * 4,
                IP_FRAGMENT => return self.ipv6_fragment(ctx, src, dst, d, out),
                IP_NONE => return Ok(()),
                _ => return self.ip_payload(ctx, src, dst, next, d, out),
            };
            next = byte(d, 0)?;
            d = d.get(hlen..).ok_or(Skip::Malformed)?;
        }
    }

    fn ipv6_fragment(
        &mut self,
        ctx: Ctx,
        src: IpAddr,
        dst: IpAddr,
        d: &[u8],
        out: &mut Out<'_>,
    ) -> Res {
        let next = byte(d, 0)?;
        let off_flags = be16(d, 2)?;
        let offset = usize::from(off_flags & 0xfff8);
        let more = off_flags & 1 != 0;
        let key = FragKey {
            src,
            dst,
            id: be32(d, 4)?,
            proto: 0,
        };
        let whole = self.fragment(ctx, key, offset, more, next, tail(d, 8)?)?;
        match whole {
            Some((first_next, data)) => self.nested(ctx, |s, c| {
                s.ipv6_chain(c, src, dst, first_next, &data, out)
            }),
            None => Ok(()),
        }
    }

    /// Feeds one fragment; returns the whole datagram (and the first fragment's next-header
    /// value) once complete.
    fn fragment(
        &mut self,
        ctx: Ctx,
        key: FragKey,
        offset: usize,
        more: bool,
        next: u8,
        data: &[u8],
    ) -> Result<Option<(u8, Vec<u8>)>, Skip> {
        self.stats.fragments += 1;
        let frag = Fragment {
            offset,
            more,
            next,
            data,
        };
        match self.frags.insert(ctx.ts, key, frag) {
            Ok(Some(done)) => {
                self.stats.reassembled += 1;
                Ok(Some(done))
            }
            Ok(None) => Ok(None),
            Err(()) => Err(Skip::Malformed),
        }
    }

    fn ip_payload(
        &mut self,
        ctx: Ctx,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        d: &[u8],
        out: &mut Out<'_>,
    ) -> Res {
        match proto {
            IP_UDP => self.udp(ctx, src, dst, d, out),
            IP_TCP => self.tcp(ctx, src, dst, d, out),
            IP_SCTP => self.sctp(ctx, src, dst, d, out),
            IP_GRE => self.nested(ctx, |s, c| s.gre(c, d, out)),
            IP_IPIP => self.nested(ctx, |s, c| s.ipv4(c, d, out)),
            IP_IPV6 => self.nested(ctx, |s, c| s.ipv6(c, d, out)),
            _ => Err(Skip::Unsupported),
        }
    }

    fn udp(&mut self, ctx: Ctx, src: IpAddr, dst: IpAddr, d: &[u8], out: &mut Out<'_>) -> Res {
        let sport = be16(d, 0)?;
        let dport = be16(d, 2)?;
        let len = usize::from(be16(d, 4)?);
        let payload = match len {
            // Zero length appears with IPv6 jumbograms and sloppy stacks: trust the IP length.
            0 => tail(d, 8)?,
            8.. => d.get(8..len).ok_or(Skip::Malformed)?,
            _ => return Err(Skip::Malformed),
        };
        // The HEP v1/v2 version byte, never 1 or 2 for RTP (0x80..) or SIP (ASCII), is tested
        // before the port list.
        if has_port(&self.cfg.vxlan_ports, dport) {
            return self.nested(ctx, |s, c| s.vxlan(c, payload, out));
        }
        if payload.starts_with(b"HEP3") {
            return self.nested(ctx, |s, c| s.hep3(c, payload, out));
        }
        if matches!(payload.first(), Some(1 | 2))
            && self.cfg.hep_ports.iter().any(|&p| p == dport || p == sport)
        {
            return self.nested(ctx, |s, c| s.hep2(c, payload, out));
        }
        out(&Packet {
            ts: ctx.ts,
            src: SocketAddr::new(src, sport),
            dst: SocketAddr::new(dst, dport),
            vlan: ctx.vlan,
            transport: Transport::Udp,
            payload,
            from_hep: false,
        });
        Ok(())
    }

    fn tcp(&mut self, ctx: Ctx, src: IpAddr, dst: IpAddr, d: &[u8], out: &mut Out<'_>) -> Res {
        let doff = usize::from(byte(d, 12)? >> 4) * 4;
        if doff < 20 {
            return Err(Skip::Malformed);
        }
        let payload = d.get(doff..).ok_or(Skip::Malformed)?;
        if payload.starts_with(b"HEP3") {
            return self.nested(ctx, |s, c| s.hep3(c, payload, out));
        }
        let flags = byte(d, 13)?;
        out(&Packet {
            ts: ctx.ts,
            src: SocketAddr::new(src, be16(d, 0)?),
            dst: SocketAddr::new(dst, be16(d, 2)?),
            vlan: ctx.vlan,
            transport: Transport::Tcp {
                seq: be32(d, 4)?,
                syn: flags & 0x02 != 0,
                fin: flags & 0x01 != 0,
                rst: flags & 0x04 != 0,
            },
            payload,
            from_hep: false,
        });
        Ok(())
    }

    fn sctp(&mut self, ctx: Ctx, src: IpAddr, dst: IpAddr, d: &[u8], out: &mut Out<'_>) -> Res {
        let src = SocketAddr::new(src, be16(d, 0)?);
        let dst = SocketAddr::new(dst, be16(d, 2)?);
        let mut at = 12;
        while at < d.len() {
            let ctype = byte(d, at)?;
            let clen = usize::from(be16(d, at + 2)?);
            let chunk = d.get(at..at + clen).ok_or(Skip::Malformed)?;
            if clen < 4 {
                return Err(Skip::Malformed);
            }
            // DATA has a 16-byte header; I-DATA (RFC 8260) a 20-byte one whose PPID is only
            // meaningful on the first fragment.
            let (hdr, ppid) = match ctype {
                0 => (16, be32(chunk, 12)?),
                64 => (20, be32(chunk, 16)?),
                _ => (0, 0),
            };
            if hdr > 0 {
                out(&Packet {
                    ts: ctx.ts,
                    src,
                    dst,
                    vlan: ctx.vlan,
                    transport: Transport::Sctp { ppid },
                    payload: chunk.get(hdr..).ok_or(Skip::Malformed)?,
                    from_hep: false,
                });
            }
            at += clen.div_ceil(4) * 4;
        }
        Ok(())
    }

    fn gre(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        let flags = be16(d, 0)?;
        let proto = be16(d, 2)?;
        if flags & 0x0007 != 0 || flags & 0x4000 != 0 {
            // GRE version 1 (PPTP) and source routing are not seen on SIP mirror ports.
            return Err(Skip::Unsupported);
        }
        let mut at = 4;
        for bit in [0x8000, 0x2000, 0x1000] {
            if flags & bit != 0 {
                at += 4;
            }
        }
        let body = tail(d, at)?;
        let has_seq = flags & 0x1000 != 0;
        match proto {
            ETH_ERSPAN2 if !has_seq => self.ethernet(ctx, body, out), // type I: no header
            ETH_ERSPAN2 => self.ethernet(ctx, tail(body, 8)?, out),
            ETH_ERSPAN3 => self.erspan3(ctx, body, out),
            _ => self.ethertype(ctx, proto, body, out),
        }
    }

    fn erspan3(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        let last = byte(d, 11)?;
        let frame_type = (byte(d, 10)? >> 2) & 0x1f;
        let hdr = if last & 1 != 0 { 20 } else { 12 };
        let body = tail(d, hdr)?;
        match frame_type {
            0 => self.ethernet(ctx, body, out),
            _ => Err(Skip::Unsupported),
        }
    }

    fn vxlan(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        if byte(d, 0)? & 0x08 == 0 {
            return Err(Skip::Malformed);
        }
        self.ethernet(ctx, tail(d, 8)?, out)
    }

    /// Counts a HEP packet that was not passed on, by reason, and passes the reason up.
    fn count_hep(&mut self, r: Res) -> Res {
        if let Err(skip) = r {
            let k = &mut self.stats.hep_skipped;
            match skip {
                Skip::Malformed => k.malformed += 1,
                Skip::Unsupported => k.unsupported += 1,
                Skip::InflateFailed => k.inflate_failed += 1,
                Skip::TooBig => k.too_big += 1,
            }
        }
        r
    }

    fn hep3(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        let r = self.hep3_envelope(ctx, d, out);
        self.count_hep(r)
    }

    fn hep2(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        let r = self.hep2_envelope(ctx, d, out);
        self.count_hep(r)
    }

    fn hep3_envelope(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        let total = usize::from(be16(d, 4)?);
        let d = d.get(..total).ok_or(Skip::Malformed)?;
        let mut h = Hep::default();
        let mut at = 6;
        while at < d.len() {
            let vendor = be16(d, at)?;
            let ctype = be16(d, at + 2)?;
            let clen = usize::from(be16(d, at + 4)?);
            if clen < 6 {
                return Err(Skip::Malformed);
            }
            let val = d.get(at + 6..at + clen).ok_or(Skip::Malformed)?;
            if vendor == 0 {
                h.chunk(ctype, val)?;
            }
            at += clen;
        }
        self.emit_hep(ctx, &h, out)
    }

    /// HEP v1/v2: a fixed header in network order, then (v2 only) a time header that agents
    /// write in host order, which is little-endian on every platform that runs them.
    fn hep2_envelope(&mut self, ctx: Ctx, d: &[u8], out: &mut Out<'_>) -> Res {
        let version = byte(d, 0)?;
        let family = byte(d, 2)?;
        let mut h = Hep {
            proto: Some(byte(d, 3)?),
            sport: Some(be16(d, 4)?),
            dport: Some(be16(d, 6)?),
            ..Hep::default()
        };
        let mut at = match family {
            2 => {
                (h.src, h.dst) = (Some(v4(d, 8)?), Some(v4(d, 12)?));
                16
            }
            10 => {
                (h.src, h.dst) = (Some(v6(d, 8)?), Some(v6(d, 24)?));
                40
            }
            _ => return Err(Skip::Malformed),
        };
        if version == 2 {
            let t = d.get(at..at + 8).ok_or(Skip::Malformed)?;
            h.secs = Some(u32::from_le_bytes([t[0], t[1], t[2], t[3]]));
            h.usecs = Some(u32::from_le_bytes([t[4], t[5], t[6], t[7]]));
            at += 12;
        }
        h.payload = Some(tail(d, at)?);
        self.emit_hep(ctx, &h, out)
    }

    fn emit_hep(&mut self, ctx: Ctx, h: &Hep<'_>, out: &mut Out<'_>) -> Res {
        let (Some(src), Some(dst)) = (h.src, h.dst) else {
            return Err(Skip::Malformed);
        };
        if let Some(payload) = h.payload {
            return self.emit_hep_payload(ctx, h, src, dst, payload, out);
        }
        let Some(compressed) = h.compressed else {
            return Err(Skip::Unsupported);
        };
        // The buffer is lent out of `self` while the packet borrows it (moving a Box).
        let mut inflater = self.inflater.take().unwrap_or_else(Inflater::new);
        let r = inflater.inflate(compressed).and_then(|n| {
            let payload = inflater.out.get(..n).ok_or(Skip::TooBig)?;
            self.emit_hep_payload(ctx, h, src, dst, payload, out)
        });
        self.inflater = Some(inflater);
        r
    }

    fn emit_hep_payload(
        &mut self,
        ctx: Ctx,
        h: &Hep<'_>,
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
        out: &mut Out<'_>,
    ) -> Res {
        let transport = match h.proto {
            Some(IP_UDP) | None => Transport::Udp,
            Some(IP_TCP) => Transport::Tcp {
                seq: 0,
                syn: false,
                fin: false,
                rst: false,
            },
            Some(IP_SCTP) => Transport::Sctp { ppid: 0 },
            Some(_) => return Err(Skip::Unsupported),
        };
        let ts = match h.secs {
            Some(s) => {
                let us = i64::from(h.usecs.unwrap_or(0));
                self.envelope_time(
                    Timestamp(i64::from(s) * 1_000_000_000 + us.min(999_999) * 1_000),
                    ctx.ts,
                )
            }
            None => ctx.ts,
        };
        self.stats.hep += 1;
        out(&Packet {
            ts,
            src: SocketAddr::new(src, h.sport.unwrap_or(0)),
            dst: SocketAddr::new(dst, h.dport.unwrap_or(0)),
            vlan: ctx.vlan,
            transport,
            payload,
            from_hep: true,
        });
        Ok(())
    }
}

impl Decapsulator {
    /// The HEP envelope's time, or the carrying frame's when the two are further apart than
    /// `hep_max_skew_ns` (counted).
    fn envelope_time(&mut self, envelope: Timestamp, frame: Timestamp) -> Timestamp {
        let Some(max) = self.cfg.hep_max_skew_ns else {
            return envelope;
        };
        if envelope.nanos().abs_diff(frame.nanos()) > max.unsigned_abs() {
            self.stats.hep_time_replaced += 1;
            return frame;
        }
        envelope
    }
}

/// Fields gathered from a HEP envelope.
#[derive(Default)]
struct Hep<'a> {
    proto: Option<u8>,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    secs: Option<u32>,
    usecs: Option<u32>,
    payload: Option<&'a [u8]>,
    /// Chunk 16: the payload, zlib-compressed (used when there is no plain chunk 15).
    compressed: Option<&'a [u8]>,
}

impl<'a> Hep<'a> {
    fn chunk(&mut self, ctype: u16, v: &'a [u8]) -> Res {
        match ctype {
            2 => self.proto = Some(byte(v, 0)?),
            3 => self.src = Some(v4(v, 0)?),
            4 => self.dst = Some(v4(v, 0)?),
            5 => self.src = Some(v6(v, 0)?),
            6 => self.dst = Some(v6(v, 0)?),
            7 => self.sport = Some(be16(v, 0)?),
            8 => self.dport = Some(be16(v, 0)?),
            9 => self.secs = Some(be32(v, 0)?),
            10 => self.usecs = Some(be32(v, 0)?),
            15 => self.payload = Some(v),
            16 => self.compressed = Some(v),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(ctype: u16, val: &[u8]) -> Vec<u8> {
        let mut c = vec![0, 0];
        c.extend_from_slice(&ctype.to_be_bytes());
        c.extend_from_slice(&((6 + val.len()) as u16).to_be_bytes());
        c.extend_from_slice(val);
        c
    }

    fn hep3(payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(chunk(1, &[2]));
        body.extend(chunk(2, &[17]));
        body.extend(chunk(3, &[10, 0, 0, 1]));
        body.extend(chunk(4, &[10, 0, 0, 2]));
        body.extend(chunk(7, &5060u16.to_be_bytes()));
        body.extend(chunk(8, &5070u16.to_be_bytes()));
        body.extend(chunk(9, &1_700_000_000u32.to_be_bytes()));
        body.extend(chunk(10, &42u32.to_be_bytes()));
        body.extend(chunk(15, payload));
        let mut h = b"HEP3".to_vec();
        h.extend_from_slice(&((6 + body.len()) as u16).to_be_bytes());
        h.extend(body);
        h
    }

    fn hep2(payload: &[u8]) -> Vec<u8> {
        let mut h = vec![2, 28, 2, 17];
        h.extend_from_slice(&5060u16.to_be_bytes());
        h.extend_from_slice(&5070u16.to_be_bytes());
        h.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        h.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        h.extend_from_slice(&42u32.to_le_bytes());
        h.extend_from_slice(&[1, 0, 0, 0]); // capture id
        h.extend_from_slice(payload);
        h
    }

    fn collect(
        d: &mut Decapsulator,
        link: LinkType,
        data: &[u8],
    ) -> Vec<(Packet<'static>, Vec<u8>)> {
        let mut got = Vec::new();
        d.decode(Timestamp(7), link, data, &mut |p| {
            let owned = p.payload.to_vec();
            got.push((Packet { payload: &[], ..*p }, owned));
        });
        got
    }

    fn hep3_compressed(z: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(chunk(2, &[17]));
        body.extend(chunk(3, &[10, 0, 0, 1]));
        body.extend(chunk(4, &[10, 0, 0, 2]));
        body.extend(chunk(16, z));
        let mut h = b"HEP3".to_vec();
        h.extend_from_slice(&((6 + body.len()) as u16).to_be_bytes());
        h.extend(body);
        h
    }

    fn compress(zlib: bool, data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let level = flate2::Compression::best();
        if zlib {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
    }

    #[test]
    fn hep3_compressed_payload_zlib_or_raw_deflate_is_inflated() {
        let sip = b"INVITE sip:b@x SIP/2.0\r\nCall-ID: z\r\n\r\n";
        let mut d = Decapsulator::new();
        // The same decapsulator twice each: its inflater is reset between packets.
        for zlib in [true, false, true, false] {
            let got = collect(
                &mut d,
                LinkType::HEP,
                &hep3_compressed(&compress(zlib, sip)),
            );
            assert_eq!(got.len(), 1, "zlib header: {zlib}");
            assert_eq!(got[0].1.as_slice(), sip);
            assert!(got[0].0.from_hep);
        }
        assert_eq!(d.stats().hep, 4);
        assert_eq!(d.stats().hep_skipped, HepSkipped::default());
    }

    #[test]
    fn hep3_compressed_payload_is_capped() {
        let mut d = Decapsulator::new();
        let exactly = vec![b'x'; MAX_HEP_INFLATED];
        let got = collect(
            &mut d,
            LinkType::HEP,
            &hep3_compressed(&compress(true, &exactly)),
        );
        assert_eq!(got.len(), 1, "the largest allowed payload passes");
        assert_eq!(got[0].1.len(), MAX_HEP_INFLATED);
        for bomb in [MAX_HEP_INFLATED + 1, 16 << 20] {
            let z = compress(true, &vec![b'x'; bomb]);
            assert!(z.len() < 20_000);
            assert!(collect(&mut d, LinkType::HEP, &hep3_compressed(&z)).is_empty());
        }
        assert!(collect(
            &mut d,
            LinkType::HEP,
            &hep3_compressed(b"\x78\x9cnot deflate")
        )
        .is_empty());
        let s = d.stats();
        assert_eq!(
            (s.hep_skipped.too_big, s.hep_skipped.inflate_failed),
            (2, 1)
        );
        assert_eq!((s.unsupported, s.malformed), (2, 1));
    }

    #[test]
    fn hep_pseudo_link_decodes_bare_datagrams() {
        let sip = b"INVITE sip:b@x SIP/2.0\r\n\r\n";
        for datagram in [hep3(sip), hep2(sip)] {
            let mut d = Decapsulator::new();
            let got = collect(&mut d, LinkType::HEP, &datagram);
            assert_eq!(got.len(), 1);
            let (p, payload) = &got[0];
            assert_eq!(p.src, "10.0.0.1:5060".parse().unwrap());
            assert_eq!(p.dst, "10.0.0.2:5070".parse().unwrap());
            assert_eq!(p.ts, Timestamp(1_700_000_000_000_042_000));
            assert_eq!(p.transport, Transport::Udp);
            assert!(p.from_hep);
            assert_eq!(payload.as_slice(), sip);
            assert_eq!(d.stats().hep, 1);
            assert_eq!(d.stats().frames, 1);
        }
    }

    #[test]
    fn decode_hep_matches_the_pseudo_link() {
        let mut d = Decapsulator::new();
        let mut n = 0;
        d.decode_hep(Timestamp(7), &hep3(b"x"), &mut |p| {
            assert!(p.from_hep);
            assert_eq!(p.payload, b"x");
            n += 1;
        });
        assert_eq!(n, 1);
    }

    #[test]
    fn hep_pseudo_link_rejects_other_bytes() {
        let mut d = Decapsulator::new();
        for junk in [&b""[..], b"GET / HTTP/1.1", b"HEP3\x00", &[2, 16, 2]] {
            assert!(collect(&mut d, LinkType::HEP, junk).is_empty());
        }
        assert_eq!(d.stats().malformed, 4);
        assert_eq!(d.stats().hep, 0);
    }
}
