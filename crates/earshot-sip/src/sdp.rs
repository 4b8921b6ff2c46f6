//! SDP (RFC 4566/8866) as far as locating and decoding RTP needs it:
//! addresses, ports, payload types, codecs, direction, RTCP.

use std::fmt;
use std::net::IpAddr;

/// More media sections than this is garbage; refusing bounds allocation.
pub const MAX_MEDIA: usize = 64;
/// Per-media cap on rtpmap entries (there are only 128 payload types).
const MAX_RTPMAP: usize = 128;

/// Why a body is not read as SDP at all (malformed lines inside one are skipped instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Nothing but whitespace.
    #[error("empty SDP body")]
    Empty,
    /// The first non-blank line is not `v=` (RFC 8866 §5.1).
    #[error("SDP does not start with a v= line")]
    NoVersion,
    /// More `m=` sections than [`MAX_MEDIA`].
    #[error("more than {limit} media sections")]
    TooManyMedia {
        /// The limit passed ([`MAX_MEDIA`]).
        limit: usize,
    },
}

/// Stream direction attribute; `SendRecv` when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Direction {
    /// `a=sendrecv`: both ways.
    #[default]
    SendRecv,
    /// `a=sendonly`: this side sends, does not receive (the usual hold, RFC 3264 §8.4).
    SendOnly,
    /// `a=recvonly`: this side receives, does not send.
    RecvOnly,
    /// `a=inactive`: neither way.
    Inactive,
}

impl Direction {
    fn from_attr(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The attribute name as SDP writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMap<'a> {
    /// The payload type, 0–127.
    pub pt: u8,
    /// As written (case preserved: `PCMU`, `pcmu`, `opus`).
    pub encoding: &'a str,
    /// RTP timestamp rate in Hz (8000 for G.711 and G.722, 48000 for Opus).
    pub clock_rate: u32,
    /// 1 when not given.
    pub channels: u8,
}

impl fmt::Display for RtpMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.pt, self.encoding, self.clock_rate)?;
        if self.channels != 1 {
            write!(f, "/{}", self.channels)?;
        }
        Ok(())
    }
}

/// One `m=` section with session-level defaults already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media<'a> {
    /// The media type as written: `audio`, `video`, `application`, `image`, …
    pub kind: &'a str,
    /// 0 means the stream is rejected/disabled.
    pub port: u16,
    /// The transport as written: `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, `TCP/RTP/AVP`, …
    pub proto: &'a str,
    /// Numeric payload types in offer order (non-numeric formats skipped).
    pub formats: Vec<u8>,
    /// Media-level c= if present, else the session-level one.
    pub connection: Option<IpAddr>,
    /// The section's `a=rtpmap` lines (at most 128; static payload types may have none).
    pub rtpmap: Vec<RtpMap<'a>>,
    /// Media-level a=ptime, else session-level.
    pub ptime: Option<u32>,
    /// `a=rtcp:` port and optional address (RFC 3605).
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    /// `a=rtcp-mux` (RFC 5761): RTCP shares the RTP port.
    pub rtcp_mux: bool,
    /// Media-level direction, else session-level, else sendrecv.
    pub direction: Direction,
    /// `a=setup:` (RFC 4145) of a TCP m-line: `active`, `passive`, `actpass` or `holdconn`.
    pub setup: Option<&'a str>,
    /// `a=connection:` (RFC 4145): `new` or `existing`.
    pub tcp_connection: Option<&'a str>,
    /// `a=crypto:` values (RFC 4568 SDES: `<tag> <suite> inline:<key>…`), at most
    /// [`MAX_CRYPTO`]: the keys the SDP's sender protects its SRTP with.
    pub crypto: Vec<&'a str>,
    /// `a=fmtp:<pt> <parameters>` (RFC 4566 §6), at most [`MAX_RTPMAP`]: how a format is
    /// carried (`octet-align=1` for AMR, `sprop-stereo=1` for Opus...).
    pub fmtp: Vec<(u8, &'a str)>,
}

/// `a=crypto` lines kept per m-line: offers list a few suites, never dozens.
pub const MAX_CRYPTO: usize = 8;

impl Media<'_> {
    /// Media sent on TCP (`TCP/RTP/AVP`, `TCP/RTP/AVPF`, `TCP/TLS/RTP/SAVP`...): framed as
    /// RFC 4571 says, RTCP on the same connection.
    pub fn is_tcp(&self) -> bool {
        self.proto
            .split('/')
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case("TCP"))
    }

    /// SRTP media (`RTP/SAVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVP[F]` of DTLS-SRTP,
    /// `TCP/TLS/RTP/SAVP`...): its payloads are ciphertext to whoever has no key.
    pub fn is_secure(&self) -> bool {
        self.proto
            .split('/')
            .any(|p| p.eq_ignore_ascii_case("SAVP") || p.eq_ignore_ascii_case("SAVPF"))
    }

    /// The `a=fmtp` parameters of a payload type.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtp.iter().find(|(p, _)| *p == pt).map(|(_, v)| *v)
    }

    /// Codec for a payload type: rtpmap first, then the RFC 3551 static
    /// table.
    pub fn codec(&self, pt: u8) -> Option<(&str, u32, u8)> {
        self.rtpmap
            .iter()
            .find(|m| m.pt == pt)
            .map(|m| (m.encoding, m.clock_rate, m.channels))
            .or_else(|| static_payload(pt))
    }

    /// Held (RFC 3264 §8.4 and the older RFC 2543 `c=0.0.0.0` style): the
    /// offerer will not receive media.
    pub fn is_hold(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::Inactive)
            || self.connection.is_some_and(|a| a.is_unspecified())
    }

    /// Port 0: the stream was rejected or removed.
    pub fn is_disabled(&self) -> bool {
        self.port == 0
    }
}

/// A parsed SDP session description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdp<'a> {
    /// Username of o= (often `-`).
    pub origin_user: Option<&'a str>,
    /// Session id of o=, as written; with the username and address it names the session.
    pub origin_session_id: Option<&'a str>,
    /// Incremented on each change; lets a tracker spot re-INVITEs that
    /// actually alter media.
    pub origin_version: Option<u64>,
    /// o= address when it is an IP literal.
    pub origin_addr: Option<IpAddr>,
    /// Session-level c=.
    pub connection: Option<IpAddr>,
    /// The `m=` sections in order (at most [`MAX_MEDIA`]).
    pub media: Vec<Media<'a>>,
    /// Session-level direction.
    pub direction: Direction,
}

impl Sdp<'_> {
    /// Every active (port ≠ 0) stream is on hold.
    pub fn is_hold(&self) -> bool {
        let mut active = self.media.iter().filter(|m| !m.is_disabled()).peekable();
        active.peek().is_some() && active.all(Media::is_hold)
    }

    /// First audio stream, the one a VoIP listener usually wants.
    pub fn audio(&self) -> Option<&Media<'_>> {
        self.media
            .iter()
            .find(|m| m.kind.eq_ignore_ascii_case("audio"))
    }
}

/// RFC 3551 static payload types: (encoding, clock rate, channels).
pub fn static_payload(pt: u8) -> Option<(&'static str, u32, u8)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        5 => ("DVI4", 8000, 1),
        6 => ("DVI4", 16000, 1),
        7 => ("LPC", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 1),
        13 => ("CN", 8000, 1),
        14 => ("MPA", 90000, 1),
        15 => ("G728", 8000, 1),
        16 => ("DVI4", 11025, 1),
        17 => ("DVI4", 22050, 1),
        18 => ("G729", 8000, 1),
        25 => ("CelB", 90000, 1),
        26 => ("JPEG", 90000, 1),
        28 => ("nv", 90000, 1),
        31 => ("H261", 90000, 1),
        32 => ("MPV", 90000, 1),
        33 => ("MP2T", 90000, 1),
        34 => ("H263", 90000, 1),
        _ => return None,
    })
}

/// Session-level values that media sections inherit.
#[derive(Default)]
struct SessionDefaults {
    direction: Option<Direction>,
    ptime: Option<u32>,
}

/// Per-media values that are only known to be absent at the end.
struct MediaBuild<'a> {
    media: Media<'a>,
    direction: Option<Direction>,
}

/// Parse an SDP body. Unknown lines and malformed attributes are skipped;
/// only a body that is not SDP at all is an error.
pub fn parse(body: &[u8]) -> Result<Sdp<'_>, SdpError> {
    let first = body
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty())
        .ok_or(SdpError::Empty)?;
    if !first.starts_with(b"v=") {
        return Err(SdpError::NoVersion);
    }
    let lines = sdp_lines(body);
    let mut sdp = Sdp::default();
    let mut session = SessionDefaults::default();
    let mut media: Vec<MediaBuild<'_>> = Vec::new();
    for (kind, value) in lines {
        match (kind, media.last_mut()) {
            (b'm', _) => {
                if media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooManyMedia { limit: MAX_MEDIA });
                }
                if let Some(m) = parse_m_line(value) {
                    media.push(MediaBuild {
                        media: m,
                        direction: None,
                    });
                }
            }
            (b'o', None) => parse_origin(value, &mut sdp),
            (b'c', None) => sdp.connection = parse_connection(value),
            (b'c', Some(m)) => m.media.connection = parse_connection(value),
            (b'a', None) => session_attr(value, &mut session),
            (b'a', Some(m)) => media_attr(value, m),
            _ => {}
        }
    }
    sdp.direction = session.direction.unwrap_or_default();
    sdp.media = media
        .into_iter()
        .map(|b| finish_media(b, &sdp, &session))
        .collect();
    Ok(sdp)
}

fn finish_media<'a>(b: MediaBuild<'a>, sdp: &Sdp<'a>, session: &SessionDefaults) -> Media<'a> {
    let mut m = b.media;
    m.connection = m.connection.or(sdp.connection);
    m.ptime = m.ptime.or(session.ptime);
    m.direction = b.direction.unwrap_or(sdp.direction);
    m
}

/// `(type letter, value)` for each `x=value` line; blank, non-UTF-8 and
/// malformed lines are dropped. Tolerates bare LF and trailing whitespace.
fn sdp_lines(body: &[u8]) -> impl Iterator<Item = (u8, &str)> {
    body.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.trim_ascii();
        let (&kind, rest) = line.split_first()?;
        let value = rest.strip_prefix(b"=")?;
        Some((kind, std::str::from_utf8(value).ok()?))
    })
}

/// `o=<user> <sess-id> <sess-version> <nettype> <addrtype> <address>`
fn parse_origin<'a>(value: &'a str, sdp: &mut Sdp<'a>) {
    let mut f = value.split_ascii_whitespace();
    sdp.origin_user = f.next();
    sdp.origin_session_id = f.next();
    sdp.origin_version = f.next().and_then(|v| v.parse().ok());
    sdp.origin_addr = f.nth(2).and_then(parse_ip);
}

/// `c=IN IP4 <addr>[/ttl[/n]]`; FQDNs yield `None`.
fn parse_connection(value: &str) -> Option<IpAddr> {
    value.split_ascii_whitespace().nth(2).and_then(parse_ip)
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.split('/').next()?.parse().ok()
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...`
fn parse_m_line(value: &str) -> Option<Media<'_>> {
    let mut f = value.split_ascii_whitespace();
    let kind = f.next()?;
    let port = f.next()?.split('/').next()?.parse().ok()?;
    let proto = f.next()?;
    let formats = f
        .filter_map(|p| p.parse::<u8>().ok())
        .filter(|&p| p < 128)
        .collect();
    Some(Media {
        kind,
        port,
        proto,
        formats,
        connection: None,
        rtpmap: Vec::new(),
        ptime: None,
        rtcp: None,
        rtcp_mux: false,
        direction: Direction::SendRecv,
        setup: None,
        tcp_connection: None,
        crypto: Vec::new(),
        fmtp: Vec::new(),
    })
}

fn split_attr(value: &str) -> (&str, &str) {
    match value.split_once(':') {
        Some((n, v)) => (n.trim(), v.trim()),
        None => (value.trim(), ""),
    }
}

fn session_attr(value: &str, session: &mut SessionDefaults) {
    let (name, v) = split_attr(value);
    if let Some(d) = Direction::from_attr(name) {
        session.direction = Some(d);
    } else if name == "ptime" {
        session.ptime = parse_ptime(v);
    }
}

fn media_attr<'a>(value: &'a str, b: &mut MediaBuild<'a>) {
    let (name, v) = split_attr(value);
    if let Some(d) = Direction::from_attr(name) {
        b.direction = Some(d);
        return;
    }
    let m = &mut b.media;
    match name {
        "rtpmap" if m.rtpmap.len() < MAX_RTPMAP => m.rtpmap.extend(parse_rtpmap(v)),
        "ptime" => m.ptime = parse_ptime(v),
        "rtcp" => m.rtcp = parse_rtcp(v),
        "rtcp-mux" => m.rtcp_mux = true,
        "setup" => m.setup = Some(v),
        "connection" => m.tcp_connection = Some(v),
        "crypto" if m.crypto.len() < MAX_CRYPTO => m.crypto.push(v),
        "fmtp" if m.fmtp.len() < MAX_RTPMAP => m.fmtp.extend(parse_fmtp(v)),
        _ => {}
    }
}

/// Milliseconds; fractional values (`20.0`, seen in the wild) are truncated.
fn parse_ptime(v: &str) -> Option<u32> {
    v.split('.').next()?.trim().parse().ok()
}

/// `<pt> <encoding>/<clock>[/<channels>]`
fn parse_rtpmap(v: &str) -> Option<RtpMap<'_>> {
    let (pt, rest) = v.split_once(|c: char| c.is_ascii_whitespace())?;
    let pt: u8 = pt.parse().ok().filter(|&p| p < 128)?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.trim();
    let clock_rate = parts.next()?.trim().parse().ok()?;
    let channels = match parts.next() {
        Some(c) => c.trim().parse().ok()?,
        None => 1,
    };
    if encoding.is_empty() {
        return None;
    }
    Some(RtpMap {
        pt,
        encoding,
        clock_rate,
        channels,
    })
}

/// `<pt> <parameters>`
fn parse_fmtp(v: &str) -> Option<(u8, &str)> {
    let (pt, rest) = v.split_once(|c: char| c.is_ascii_whitespace())?;
    let pt: u8 = pt.parse().ok().filter(|&p| p < 128)?;
    Some((pt, rest.trim()))
}

/// `<port> [IN IP4 <addr>]`
fn parse_rtcp(v: &str) -> Option<(u16, Option<IpAddr>)> {
    let mut f = v.split_ascii_whitespace();
    let port = f.next()?.parse().ok()?;
    Some((port, f.nth(2).and_then(parse_ip)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const OFFER: &[u8] = b"v=0\r\n\
o=alice 2890844526 2890844527 IN IP4 192.0.2.1\r\n\
s=-\r\n\
c=IN IP4 198.51.100.1/127\r\n\
t=0 0\r\n\
a=ptime:30\r\n\
m=audio 49170 RTP/AVP 0 8 97 101\r\n\
a=rtpmap:97 iLBC/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=rtcp:53020 IN IP6 2001:db8::1\r\n\
m=video 51372/2 RTP/AVP 31 96\r\n\
c=IN IP4 203.0.113.9\r\n\
a=rtpmap:96 H264/90000\r\n\
a=ptime:40\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
m=image 0 udptl t38\r\n";

    #[test]
    fn full_offer() {
        let sdp = parse(OFFER).unwrap();
        assert_eq!(sdp.origin_user, Some("alice"));
        assert_eq!(sdp.origin_session_id, Some("2890844526"));
        assert_eq!(sdp.origin_version, Some(2890844527));
        assert_eq!(
            sdp.origin_addr,
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(
            sdp.connection,
            Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)))
        );
        assert_eq!(sdp.media.len(), 3);
        let a = &sdp.media[0];
        assert_eq!((a.kind, a.port, a.proto), ("audio", 49170, "RTP/AVP"));
        assert_eq!(a.formats, vec![0, 8, 97, 101]);
        assert_eq!(a.connection, sdp.connection);
        assert_eq!(a.ptime, Some(30));
        assert_eq!(a.codec(0), Some(("PCMU", 8000, 1)));
        assert_eq!(a.codec(97), Some(("iLBC", 8000, 1)));
        assert_eq!(a.codec(101), Some(("telephone-event", 8000, 1)));
        assert_eq!(a.codec(100), None);
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(a.rtcp, Some((53020, Some(IpAddr::V6(v6)))));
        assert!(!a.rtcp_mux);
        assert_eq!(a.direction, Direction::SendRecv);
        let v = &sdp.media[1];
        assert_eq!(v.port, 51372);
        assert_eq!(
            v.connection,
            Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)))
        );
        assert_eq!(v.ptime, Some(40));
        assert_eq!(v.direction, Direction::RecvOnly);
        assert!(v.rtcp_mux);
        assert_eq!(v.codec(31), Some(("H261", 90000, 1)));
        let t = &sdp.media[2];
        assert_eq!((t.kind, t.port, t.proto), ("image", 0, "udptl"));
        assert!(!a.is_secure() && !t.is_secure());
        assert!(t.formats.is_empty());
        assert!(t.is_disabled());
        assert!(!sdp.is_hold());
        assert_eq!(sdp.audio().map(|m| m.port), Some(49170));
    }

    #[test]
    fn hold_variants() {
        let old_style = parse(b"v=0\nc=IN IP4 0.0.0.0\nm=audio 4000 RTP/AVP 0\n").unwrap();
        assert!(old_style.media[0].is_hold());
        assert!(old_style.is_hold());
        let session_sendonly =
            parse(b"v=0\nc=IN IP4 1.2.3.4\na=sendonly\nm=audio 4000 RTP/AVP 0\n").unwrap();
        assert_eq!(session_sendonly.direction, Direction::SendOnly);
        assert_eq!(session_sendonly.media[0].direction, Direction::SendOnly);
        assert!(session_sendonly.is_hold());
        let overridden = parse(b"v=0\na=inactive\nm=audio 4000 RTP/AVP 0\na=sendrecv\n").unwrap();
        assert!(!overridden.is_hold());
        let inactive = parse(b"v=0\nm=audio 4000 RTP/AVP 0\na=inactive\n").unwrap();
        assert!(inactive.is_hold());
        let none = parse(b"v=0\n").unwrap();
        assert!(!none.is_hold());
    }

    #[test]
    fn tolerant_lines() {
        let sdp = parse(b"v=0 \r\n\r\ngarbage\r\nm=audio  6000   RTP/AVP  0 abc 300 8\r\na=rtpmap:8 PCMA/8000/1 \r\na=rtpmap:x y/z\r\na=ptime:20.0\r\n\xff=\xfe\r\n").unwrap();
        let m = &sdp.media[0];
        assert_eq!(m.formats, vec![0, 8]);
        assert_eq!(m.rtpmap.len(), 1);
        assert_eq!(m.rtpmap[0].to_string(), "8 PCMA/8000");
        assert_eq!(m.ptime, Some(20));
        assert_eq!(m.connection, None);
    }

    #[test]
    fn errors() {
        assert_eq!(parse(b""), Err(SdpError::Empty));
        assert_eq!(parse(b"\r\n \n"), Err(SdpError::Empty));
        assert_eq!(parse(b"hello=world"), Err(SdpError::NoVersion));
        let mut many = b"v=0\n".to_vec();
        for _ in 0..=MAX_MEDIA {
            many.extend_from_slice(b"m=audio 1 RTP/AVP 0\n");
        }
        assert_eq!(
            parse(&many),
            Err(SdpError::TooManyMedia { limit: MAX_MEDIA })
        );
    }

    #[test]
    fn static_table() {
        assert_eq!(static_payload(0), Some(("PCMU", 8000, 1)));
        assert_eq!(static_payload(6), Some(("DVI4", 16000, 1)));
        assert_eq!(static_payload(9), Some(("G722", 8000, 1)));
        assert_eq!(static_payload(10), Some(("L16", 44100, 2)));
        assert_eq!(static_payload(18), Some(("G729", 8000, 1)));
        assert_eq!(static_payload(2), None);
        assert_eq!(static_payload(96), None);
    }

    #[test]
    fn tcp_media_lines_say_setup_and_connection() {
        let body = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 9 TCP/RTP/AVP 0\r\na=setup:active\r\na=connection:new\r\n\
m=audio 49170 RTP/AVP 0\r\n";
        let sdp = parse(body).unwrap();
        let (tcp, udp) = (&sdp.media[0], &sdp.media[1]);
        assert!(tcp.is_tcp());
        assert_eq!(
            (tcp.setup, tcp.tcp_connection),
            (Some("active"), Some("new"))
        );
        assert!(!udp.is_tcp());
        assert_eq!(udp.setup, None);
    }

    #[test]
    fn fmtp_parameters_are_kept_per_payload_type() {
        let sdp = parse(
            b"v=0\r\nm=audio 4000 RTP/AVP 96 97\r\na=rtpmap:96 AMR/8000\r\n\
              a=fmtp:96 octet-align=1; mode-set=7\r\na=fmtp:x bad\r\na=fmtp:97\r\n",
        )
        .unwrap();
        let m = &sdp.media[0];
        assert_eq!(m.fmtp(96), Some("octet-align=1; mode-set=7"));
        assert_eq!(m.fmtp(97), None, "no parameters");
        assert_eq!(m.fmtp.len(), 1);
    }

    #[test]
    fn srtp_profiles_are_secure() {
        let m = |proto: &'static str| Media {
            kind: "audio",
            port: 4000,
            proto,
            formats: vec![0],
            connection: None,
            rtpmap: Vec::new(),
            ptime: None,
            rtcp: None,
            rtcp_mux: false,
            direction: Direction::SendRecv,
            setup: None,
            tcp_connection: None,
            crypto: Vec::new(),
            fmtp: Vec::new(),
        };
        for p in [
            "RTP/SAVP",
            "RTP/SAVPF",
            "UDP/TLS/RTP/SAVPF",
            "TCP/TLS/RTP/SAVP",
            "rtp/savp",
        ] {
            assert!(m(p).is_secure(), "{p}");
        }
        for p in ["RTP/AVP", "RTP/AVPF", "TCP/RTP/AVP", "udptl", "RTP/SAVPX"] {
            assert!(!m(p).is_secure(), "{p}");
        }
    }
}
