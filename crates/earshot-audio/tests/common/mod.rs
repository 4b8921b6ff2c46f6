//! Test-only helpers: a minimal classic-pcap reader (Ethernet/IPv4/UDP) that
//! pulls one RTP stream out of a capture, WAV loading, and signal metrics.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// `/work/shared`-style data lives beside the repository. In CI its absence
/// is a failure; on a developer machine the test is skipped with a notice.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("shared test data missing at {}", dir.display());
    }
    eprintln!("SKIPPED: shared test data not found at {}", dir.display());
    None
}

/// Identifies one RTP stream as in the reference file names:
/// `SRCIP_SRCPORT_DSTIP_DSTPORT_0xSSRC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId {
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: Ipv4Addr,
    pub dport: u16,
    pub ssrc: u32,
}

impl StreamId {
    pub fn parse(name: &str) -> StreamId {
        // Drop the ".<decoder>.wav" suffix; the IPs contain dots too.
        let stem = name.rsplitn(3, '.').last().expect("stream name");
        let parts: Vec<&str> = stem.split('_').collect();
        assert_eq!(parts.len(), 5, "bad stream name {name}");
        StreamId {
            src: parts[0].parse().expect("src ip"),
            sport: parts[1].parse().expect("src port"),
            dst: parts[2].parse().expect("dst ip"),
            dport: parts[3].parse().expect("dst port"),
            ssrc: u32::from_str_radix(parts[4].trim_start_matches("0x"), 16).expect("ssrc"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RtpPacket {
    pub seq: u16,
    pub ts: u32,
    pub pt: u8,
    pub payload: Vec<u8>,
}

/// RTP packets of `id` in sequence-number order (unwrapped across 16-bit
/// wrap-around), duplicates dropped.
pub fn rtp_stream(pcap: &Path, id: &StreamId) -> Vec<RtpPacket> {
    let data = std::fs::read(pcap).unwrap_or_else(|e| panic!("{}: {e}", pcap.display()));
    let (le, link) = match data.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1]) | Some([0x4d, 0x3c, 0xb2, 0xa1]) => (true, 20),
        Some([0xa1, 0xb2, 0xc3, 0xd4]) | Some([0xa1, 0xb2, 0x3c, 0x4d]) => (false, 20),
        _ => panic!("{} is not a classic pcap", pcap.display()),
    };
    let u32_at = |off: usize| {
        let b: [u8; 4] = data[off..off + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    assert_eq!(u32_at(link), 1, "only Ethernet captures are supported");
    let mut packets: Vec<(i64, RtpPacket)> = Vec::new();
    let mut off = 24;
    let mut last_ext: Option<i64> = None;
    while off + 16 <= data.len() {
        let caplen = u32_at(off + 8) as usize;
        let frame = &data[off + 16..(off + 16 + caplen).min(data.len())];
        off += 16 + caplen;
        let Some(pkt) = udp_rtp(frame, id) else {
            continue;
        };
        // Unwrap the sequence number relative to the previous packet.
        let ext = match last_ext {
            None => i64::from(pkt.seq),
            Some(prev) => {
                let delta = i64::from(pkt.seq.wrapping_sub(prev as u16) as i16);
                prev + delta
            }
        };
        last_ext = Some(ext);
        packets.push((ext, pkt));
    }
    packets.sort_by_key(|(ext, _)| *ext);
    packets.dedup_by_key(|(ext, _)| *ext);
    packets.into_iter().map(|(_, p)| p).collect()
}

fn udp_rtp(frame: &[u8], id: &StreamId) -> Option<RtpPacket> {
    let mut eth_type = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut ip_off = 14;
    if eth_type == 0x8100 {
        eth_type = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        ip_off = 18;
    }
    if eth_type != 0x0800 {
        return None;
    }
    let ip = frame.get(ip_off..)?;
    let ihl = usize::from(ip.first()? & 0x0F) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    if *ip.get(9)? != 17 || frag & 0x3FFF != 0 {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = ip.get(ihl..total.min(ip.len()))?;
    let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    if (src, sport, dst, dport) != (id.src, id.sport, id.dst, id.dport) {
        return None;
    }
    let rtp = udp.get(8..)?;
    if rtp.first()? >> 6 != 2 {
        return None;
    }
    let ssrc = u32::from_be_bytes(rtp.get(8..12)?.try_into().ok()?);
    if ssrc != id.ssrc {
        return None;
    }
    let pt = rtp[1] & 0x7F;
    if (72..=79).contains(&pt) {
        return None; // RTCP on the same port
    }
    let cc = usize::from(rtp[0] & 0x0F);
    let mut start = 12 + 4 * cc;
    if rtp[0] & 0x10 != 0 {
        let words = usize::from(u16::from_be_bytes([
            *rtp.get(start + 2)?,
            *rtp.get(start + 3)?,
        ]));
        start += 4 + 4 * words;
    }
    let mut end = rtp.len();
    if rtp[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*rtp.last()?))?;
    }
    Some(RtpPacket {
        seq: u16::from_be_bytes([rtp[2], rtp[3]]),
        ts: u32::from_be_bytes(rtp.get(4..8)?.try_into().ok()?),
        pt,
        payload: rtp.get(start..end)?.to_vec(),
    })
}

pub struct Wav {
    pub channels: u16,
    pub rate: u32,
    pub samples: Vec<i16>,
}

pub fn read_wav(path: &Path) -> Wav {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(spec.bits_per_sample, 16, "{}", path.display());
    Wav {
        channels: spec.channels,
        rate: spec.sample_rate,
        samples: r.samples::<i16>().map(|s| s.expect("wav sample")).collect(),
    }
}

/// Signal-to-noise ratio of `test` against `reference` in dB over their
/// common length.
pub fn snr_db(reference: &[i16], test: &[i16]) -> f64 {
    let (mut sig, mut noise) = (0f64, 0f64);
    for (r, t) in reference.iter().zip(test) {
        let (r, t) = (f64::from(*r), f64::from(*t));
        sig += r * r;
        noise += (r - t) * (r - t);
    }
    if noise == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (sig / noise).log10()
}

/// Finds the lag (in samples of `reference`, `-max..=max`) that best aligns
/// `test` with `reference`, returning (lag, snr). A positive lag means
/// `test` starts `lag` samples later than `reference`.
pub fn best_alignment(reference: &[i16], test: &[i16], max: usize) -> (isize, f64) {
    let mut best = (0isize, f64::NEG_INFINITY);
    for lag in -(max as isize)..=(max as isize) {
        let snr = if lag >= 0 {
            snr_db(reference, test.get(lag as usize..).unwrap_or_default())
        } else {
            snr_db(reference.get((-lag) as usize..).unwrap_or_default(), test)
        };
        if snr > best.1 {
            best = (lag, snr);
        }
    }
    best
}

pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// Locates a capture by its reference-directory name.
pub fn capture_path(shared: &Path, capture: &str) -> PathBuf {
    for dir in ["wireshark", "heplify", "sipp"] {
        for ext in ["pcap", "cap", "pcapng"] {
            let p = shared
                .join("pcaps")
                .join(dir)
                .join(format!("{capture}.{ext}"));
            if p.exists() {
                return p;
            }
        }
    }
    panic!("capture {capture} not found");
}

/// Every reference WAV of `capture` with its stream id and decoder tag.
pub fn references(shared: &Path, capture: &str) -> Vec<(PathBuf, StreamId)> {
    let dir = shared.join("pcaps/reference").join(capture);
    let mut out: Vec<(PathBuf, StreamId)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let id = StreamId::parse(&name);
            (p, id)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every (stream, payload type) pair of RTP-looking UDP traffic in a capture:
/// UDP between even ports >= 1024, version 2, non-RTCP payload type.
pub fn stream_ids(pcap: &Path) -> Vec<(StreamId, u8)> {
    let data = std::fs::read(pcap).unwrap_or_else(|e| panic!("{}: {e}", pcap.display()));
    let le = data.get(..4) == Some(&[0xd4, 0xc3, 0xb2, 0xa1]);
    let u32_at = |off: usize| {
        let b: [u8; 4] = data[off..off + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut ids: Vec<(StreamId, u8)> = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let caplen = u32_at(off + 8) as usize;
        let frame = &data[off + 16..(off + 16 + caplen).min(data.len())];
        off += 16 + caplen;
        if let Some(found) = any_rtp(frame) {
            if !ids.contains(&found) {
                ids.push(found);
            }
        }
    }
    ids
}

fn any_rtp(frame: &[u8]) -> Option<(StreamId, u8)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    if *ip.get(9)? != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0F) * 4;
    let udp = ip.get(ihl..)?;
    let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    if sport % 2 != 0
        || dport % 2 != 0
        || sport < 1024
        || dport < 1024
        || sport == 5060
        || dport == 5060
    {
        return None;
    }
    let rtp = udp.get(8..)?;
    if rtp.first()? >> 6 != 2 || rtp.len() < 12 {
        return None;
    }
    let pt = rtp[1] & 0x7F;
    if (72..=79).contains(&pt) {
        return None;
    }
    let id = StreamId {
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        sport,
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        dport,
        ssrc: u32::from_be_bytes(rtp.get(8..12)?.try_into().ok()?),
    };
    Some((id, pt))
}
