//! `earshot synth`: a capture of synthetic concurrent SIP/RTP calls, for tests and benchmarks.
//!
//! The generator is a discrete-event simulation: a min-heap holds the next packet time of every
//! call (and of each of its two RTP streams), so memory is O(calls) whatever `--seconds` is and
//! packets come out merged in time order. `--jitter` delays RTP capture times, which would break
//! that order, so delayed packets wait in a second heap (a reorder buffer holding at most
//! `jitter` worth of traffic) until no packet still to be generated can be earlier.

use anyhow::{bail, Context, Result};
use earshot_audio::{linear_to_alaw, linear_to_ulaw};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

/// Write a pcap of synthetic concurrent SIP/RTP calls, for tests and benchmarks.
///
/// Each call is a complete G.711 dialog between its own pair of addresses (callers in
/// 10.64.0.0/10, callees in 10.128.0.0/10): INVITE with SDP, 100 Trying, 180 Ringing,
/// 200 OK with SDP, ACK, then RTP both ways every PTIME ms (a 400 Hz tone from the caller,
/// 1 kHz from the callee) for SECONDS, then BYE and 200 OK. Calls start spread over the first
/// second so they all overlap. The output is a classic pcap (Ethernet/IPv4/UDP, microsecond
/// timestamps) in time order; the same --seed gives the same file. A summary with the exact
/// packet counts goes to stderr.
///
/// Examples:
///   earshot synth --calls 5 --seconds 3 --codec pcmu --out five.pcap
///   earshot analyze five.pcap
///   earshot synth --calls 1000 --seconds 60 --codec pcma --loss 1 --jitter 15 --out big.pcap
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Number of concurrent calls.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_CALLS))]
    calls: u32,
    /// Seconds of RTP in each call (fractions allowed).
    #[arg(long, value_name = "S")]
    seconds: f64,
    /// Audio codec of every call.
    #[arg(long, value_enum)]
    codec: Codec,
    /// Capture file to write (classic pcap).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Drop this percentage of RTP packets at random (sequence numbers still advance, so the
    /// loss is visible to analysers).
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    loss: f64,
    /// Delay each RTP packet's capture time by a random 0..=MS milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    jitter: f64,
    /// Seed of the random choices (addresses' ports, SSRCs, loss, jitter...).
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Packetisation time in milliseconds (SDP a=ptime); 20 ms is 160 bytes of G.711.
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(5..=200))]
    ptime: u32,
}

/// Caller and callee addresses are index-derived inside a /10 each, which bounds the count.
const MAX_CALLS: i64 = (1 << 22) - 1;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
    fn encode(self, pcm: i16) -> u8 {
        match self {
            Codec::Pcmu => linear_to_ulaw(pcm),
            Codec::Pcma => linear_to_alaw(pcm),
        }
    }
}

/// One period of a sine tone at 8 kHz, encoded; the frequencies divide 8000 exactly so a
/// packet's payload is just the table read from the stream's sample offset.
fn tone(codec: Codec, period: usize) -> Vec<u8> {
    (0..period)
        .map(|n| {
            let phase = 2.0 * std::f64::consts::PI * n as f64 / period as f64;
            // About -12 dBFS: loud enough to hear, far from clipping.
            codec.encode((8000.0 * phase.sin()).round() as i16)
        })
        .collect()
}

/// splitmix64: tiny, fast, and good enough for test traffic; keeps the crate dependency-free.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0), by multiply-shift rather than modulo to avoid bias.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

type Ip = [u8; 4];

/// What stays in memory per call: the few numbers its packets are rendered from.
struct CallSpec {
    index: u32,
    caller_ip: Ip,
    callee_ip: Ip,
    /// RTP ports, caller's then callee's (even, as RFC 3550 recommends).
    rtp_port: [u16; 2],
    ssrc: [u32; 2],
    seq0: [u16; 2],
    ts0: [u32; 2],
    /// Random material for Call-ID, tags and branches.
    tag: u64,
    start_us: i64,
    /// Offset of the callee's stream against the caller's, so the two do not tick together.
    offset_us: i64,
}

impl CallSpec {
    fn ip_str(ip: Ip) -> String {
        format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
    }
}

// Steps of a call, in order; also the tie-breaker between simultaneous events.
const INVITE: u8 = 0;
const TRYING: u8 = 1;
const RINGING: u8 = 2;
const OK: u8 = 3;
const ACK: u8 = 4;
const RTP_CALLER: u8 = 5;
const RTP_CALLEE: u8 = 6;
const BYE: u8 = 7;
const BYE_OK: u8 = 8;

// Call timeline, relative to the INVITE, in µs.
const T_TRYING: i64 = 2_000;
const T_RINGING: i64 = 40_000;
const T_OK: i64 = 300_000;
const T_ACK: i64 = 305_000;
const T_RTP: i64 = 320_000;
const SIP_PORT: u16 = 5060;
/// 2026-01-01T00:00:00Z: a fixed start keeps the output reproducible.
const EPOCH_US: i64 = 1_767_225_600_000_000;

/// An event: (time µs, call index, step, packet number within the step). Reverse makes the
/// std max-heap a min-heap; the tuple order makes ties deterministic.
type Ev = Reverse<(i64, u32, u8, u32)>;

/// Ethernet + IPv4 + UDP headers.
const HDR: usize = 14 + 20 + 8;

/// Classic pcap writer: 24-byte file header, then 16-byte record header + frame per packet.
struct PcapWriter<W: Write> {
    out: W,
    frame: Vec<u8>,
    ip_id: u16,
    frames: u64,
}

impl<W: Write> PcapWriter<W> {
    fn new(mut out: W) -> std::io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // µs resolution, little-endian
        h.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
        h.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            frame: Vec::with_capacity(2048),
            ip_id: 0,
            frames: 0,
        })
    }

    /// Starts a frame; the caller appends the UDP payload to the returned buffer.
    fn begin(&mut self) -> &mut Vec<u8> {
        self.frame.clear();
        self.frame.resize(HDR, 0);
        &mut self.frame
    }

    /// Fills in the headers (with real IPv4 and UDP checksums, so checksum-validating tools
    /// accept the capture) and writes the record.
    fn finish(&mut self, ts_us: i64, src: (Ip, u16), dst: (Ip, u16)) -> std::io::Result<()> {
        let f = &mut self.frame;
        let udp_len = f.len() - 34;
        let ip_len = f.len() - 14;
        // Locally administered MACs derived from the IPs: stable per host.
        f[0..2].copy_from_slice(&[0x02, 0x00]);
        f[2..6].copy_from_slice(&dst.0);
        f[6..8].copy_from_slice(&[0x02, 0x00]);
        f[8..12].copy_from_slice(&src.0);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        self.ip_id = self.ip_id.wrapping_add(1);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[1] = 0xb8; // DSCP EF, as phones mark voice (harmless on SIP too)
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
        ip[6..8].copy_from_slice(&[0x40, 0x00]); // don't fragment
        ip[8] = 64;
        ip[9] = 17;
        ip[10..12].copy_from_slice(&[0, 0]);
        ip[12..16].copy_from_slice(&src.0);
        ip[16..20].copy_from_slice(&dst.0);
        let c = !fold(sum16(ip, 0));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let udp = &mut f[34..];
        udp[0..2].copy_from_slice(&src.1.to_be_bytes());
        udp[2..4].copy_from_slice(&dst.1.to_be_bytes());
        udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        udp[6..8].copy_from_slice(&[0, 0]);
        let pseudo = sum16(&src.0, 0) + sum16(&dst.0, 0) + 17 + udp_len as u32;
        let mut c = !fold(sum16(udp, pseudo));
        if c == 0 {
            c = 0xFFFF; // 0 means "no checksum" in UDP over IPv4
        }
        udp[6..8].copy_from_slice(&c.to_be_bytes());

        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(f.len() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(f.len() as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(f)?;
        self.frames += 1;
        Ok(())
    }
}

/// One's-complement sum of big-endian 16-bit words (odd tail padded with zero), unfolded.
fn sum16(data: &[u8], init: u32) -> u32 {
    let mut s = init;
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u32::from(*last) << 8;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    s as u16
}

/// Immutable per-run parameters the packets are rendered from.
struct Media {
    codec: Codec,
    ptime_ms: u32,
    samples_per_packet: u32,
    /// Encoded tone periods: caller's (400 Hz, 20 samples) and callee's (1 kHz, 8 samples).
    tones: [Vec<u8>; 2],
}

/// Renders one packet of `c` into the writer.
fn emit<W: Write>(
    w: &mut PcapWriter<W>,
    sdp: &mut Vec<u8>,
    m: &Media,
    c: &CallSpec,
    t: i64,
    step: u8,
    k: u32,
) -> std::io::Result<()> {
    let caller = (c.caller_ip, SIP_PORT);
    let callee = (c.callee_ip, SIP_PORT);
    if let RTP_CALLER | RTP_CALLEE = step {
        let d = usize::from(step - RTP_CALLER);
        let (src, dst) = if d == 0 {
            ((c.caller_ip, c.rtp_port[0]), (c.callee_ip, c.rtp_port[1]))
        } else {
            ((c.callee_ip, c.rtp_port[1]), (c.caller_ip, c.rtp_port[0]))
        };
        let samples = k.wrapping_mul(m.samples_per_packet);
        let buf = w.begin();
        let marker = if k == 0 { 0x80 } else { 0 };
        buf.push(0x80); // version 2, no padding, extension or CSRCs
        buf.push(marker | m.codec.payload_type());
        // Truncation to 16 bits is the point: sequence numbers wrap.
        buf.extend_from_slice(&c.seq0[d].wrapping_add(k as u16).to_be_bytes());
        buf.extend_from_slice(&c.ts0[d].wrapping_add(samples).to_be_bytes());
        buf.extend_from_slice(&c.ssrc[d].to_be_bytes());
        let table = &m.tones[d];
        let mut phase = samples as usize % table.len();
        for _ in 0..m.samples_per_packet {
            buf.push(table[phase]);
            phase += 1;
            if phase == table.len() {
                phase = 0;
            }
        }
        return w.finish(t, src, dst);
    }

    let caller_ip = CallSpec::ip_str(c.caller_ip);
    let callee_ip = CallSpec::ip_str(c.callee_ip);
    let caller_num = format!("+1555{:07}", c.index);
    let callee_num = format!("+1666{:07}", c.index);
    let call_id = format!("{:016x}-{}@{caller_ip}", c.tag, c.index);
    let from_tag = format!("{:08x}", c.tag as u32);
    let to_tag = format!("{:08x}", (c.tag >> 32) as u32);
    // Each transaction gets its own branch: INVITE (and its responses), ACK, BYE.
    let branch = |n: u32| format!("z9hG4bK{:012x}{n}", c.tag >> 16);
    let from = format!(
        "\"Caller {}\" <sip:{caller_num}@{caller_ip}>;tag={from_tag}",
        c.index
    );
    let to = format!("<sip:{callee_num}@{callee_ip}>");
    let ruri = format!("sip:{callee_num}@{callee_ip}:{SIP_PORT}");

    // The SDP of the offer (caller) or answer (callee).
    sdp.clear();
    if let INVITE | OK = step {
        let (ip, port, sess) = if step == INVITE {
            (&caller_ip, c.rtp_port[0], c.tag & 0xFFFF_FFFF)
        } else {
            (&callee_ip, c.rtp_port[1], c.tag >> 32)
        };
        let pt = m.codec.payload_type();
        write!(
            sdp,
            "v=0\r\no=- {sess} {sess} IN IP4 {ip}\r\ns=earshot synth\r\nc=IN IP4 {ip}\r\n\
             t=0 0\r\nm=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {}/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:{}\r\n\
             a=sendrecv\r\n",
            m.codec.name(),
            m.ptime_ms
        )?;
    }

    let buf = w.begin();
    let via = |b: u32| format!("SIP/2.0/UDP {caller_ip}:{SIP_PORT};branch={}", branch(b));
    match step {
        INVITE | ACK | BYE => {
            let (method, cseq, to_hdr, b) = match step {
                INVITE => ("INVITE", 1, to.clone(), 0),
                ACK => ("ACK", 1, format!("{to};tag={to_tag}"), 1),
                _ => ("BYE", 2, format!("{to};tag={to_tag}"), 2),
            };
            write!(
                buf,
                "{method} {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {from}\r\n\
                 To: {to_hdr}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
                 Contact: <sip:{caller_num}@{caller_ip}:{SIP_PORT}>\r\n\
                 User-Agent: earshot-synth\r\n",
                via(b)
            )?;
        }
        _ => {
            let (status, cseq, b) = match step {
                TRYING => ("100 Trying", "1 INVITE", 0),
                RINGING => ("180 Ringing", "1 INVITE", 0),
                OK => ("200 OK", "1 INVITE", 0),
                _ => ("200 OK", "2 BYE", 2),
            };
            // 100 Trying is hop-by-hop and carries no To tag; the rest belong to the dialog.
            let to_hdr = if step == TRYING {
                to.clone()
            } else {
                format!("{to};tag={to_tag}")
            };
            write!(
                buf,
                "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {from}\r\nTo: {to_hdr}\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq}\r\n",
                via(b)
            )?;
            if step != TRYING {
                write!(
                    buf,
                    "Contact: <sip:{callee_num}@{callee_ip}:{SIP_PORT}>\r\n\
                     Server: earshot-synth\r\n"
                )?;
            }
        }
    }
    if !sdp.is_empty() {
        buf.extend_from_slice(b"Content-Type: application/sdp\r\n");
    }
    write!(buf, "Content-Length: {}\r\n\r\n", sdp.len())?;
    buf.extend_from_slice(sdp);
    let (src, dst) = if let INVITE | ACK | BYE = step {
        (caller, callee)
    } else {
        (callee, caller)
    };
    w.finish(t, src, dst)
}

pub fn run(args: Args) -> Result<()> {
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 86_400.0) {
        bail!("--seconds must be more than 0 and at most 86400");
    }
    if !(0.0..=100.0).contains(&args.loss) {
        bail!("--loss is a percentage: 0 to 100");
    }
    if !(0.0..=10_000.0).contains(&args.jitter) {
        bail!("--jitter must be 0 to 10000 ms");
    }
    let started = Instant::now();
    let ptime_us = i64::from(args.ptime) * 1000;
    let packets_per_stream = (args.seconds * 1000.0 / f64::from(args.ptime))
        .round()
        .max(1.0) as u32;
    let jitter_us = (args.jitter * 1000.0).round() as u64;
    let m = Media {
        codec: args.codec,
        ptime_ms: args.ptime,
        samples_per_packet: args.ptime * 8,
        tones: [tone(args.codec, 20), tone(args.codec, 8)],
    };

    let mut rng = Rng(args.seed);
    let n = args.calls;
    // Starts spread evenly over the first second, each nudged randomly within its slot.
    let slot_us = (1_000_000 / i64::from(n)).max(1);
    let calls: Vec<CallSpec> = (0..n)
        .map(|i| {
            let host = i + 1;
            let ip = |base: u8| [10, base | (host >> 16) as u8, (host >> 8) as u8, host as u8];
            CallSpec {
                index: i,
                caller_ip: ip(64),
                callee_ip: ip(128),
                rtp_port: [
                    16_384 + 2 * rng.below(8_000) as u16,
                    16_384 + 2 * rng.below(8_000) as u16,
                ],
                ssrc: [rng.next_u64() as u32, rng.next_u64() as u32],
                seq0: [rng.next_u64() as u16, rng.next_u64() as u16],
                ts0: [rng.next_u64() as u32, rng.next_u64() as u32],
                tag: rng.next_u64(),
                start_us: EPOCH_US + i64::from(i) * slot_us + rng.below(slot_us as u64) as i64,
                offset_us: rng.below(ptime_us as u64) as i64,
            }
        })
        .collect();

    let file = File::create(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, file))?;
    let mut sdp = Vec::with_capacity(512);

    let mut events: BinaryHeap<Ev> = calls
        .iter()
        .map(|c| Reverse((c.start_us, c.index, INVITE, 0)))
        .collect();
    // Reorder buffer for jittered RTP, same tuple shape with the capture time first.
    let mut delayed: BinaryHeap<Ev> = BinaryHeap::new();
    let (mut sip, mut rtp, mut dropped) = (0u64, 0u64, 0u64);
    let rtp_span = i64::from(packets_per_stream) * ptime_us;

    while let Some(Reverse((t, i, step, k))) = events.pop() {
        // Nothing generated from now on can be captured before t, so everything delayed up to
        // t is final.
        while let Some(&Reverse((dt, di, dstep, dk))) = delayed.peek() {
            if dt > t {
                break;
            }
            delayed.pop();
            emit(&mut w, &mut sdp, &m, &calls[di as usize], dt, dstep, dk)?;
        }
        let c = &calls[i as usize];
        let next = |step: u8, at: i64| Reverse((c.start_us + at, i, step, 0));
        match step {
            RTP_CALLER | RTP_CALLEE => {
                if k + 1 < packets_per_stream {
                    events.push(Reverse((t + ptime_us, i, step, k + 1)));
                }
                if args.loss > 0.0 && rng.unit() * 100.0 < args.loss {
                    dropped += 1;
                    continue;
                }
                rtp += 1;
                if jitter_us > 0 {
                    let delay = rng.below(jitter_us + 1) as i64;
                    delayed.push(Reverse((t + delay, i, step, k)));
                    continue;
                }
            }
            _ => {
                sip += 1;
                match step {
                    INVITE => events.push(next(TRYING, T_TRYING)),
                    TRYING => events.push(next(RINGING, T_RINGING)),
                    RINGING => events.push(next(OK, T_OK)),
                    OK => events.push(next(ACK, T_ACK)),
                    ACK => {
                        events.push(next(RTP_CALLER, T_RTP));
                        events.push(next(RTP_CALLEE, T_RTP + c.offset_us));
                        // BYE one packet time after the callee's last packet.
                        events.push(next(BYE, T_RTP + c.offset_us + rtp_span));
                    }
                    BYE => events.push(next(BYE_OK, T_RTP + c.offset_us + rtp_span + 3_000)),
                    _ => {}
                }
            }
        }
        emit(&mut w, &mut sdp, &m, c, t, step, k)?;
    }
    while let Some(Reverse((dt, di, dstep, dk))) = delayed.pop() {
        emit(&mut w, &mut sdp, &m, &calls[di as usize], dt, dstep, dk)?;
    }
    let frames = w.frames;
    // into_inner flushes, and unlike Drop it reports a failed final write.
    w.out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("write {}", args.out.display()))?;
    eprintln!(
        "earshot synth: wrote {frames} packets ({sip} SIP, {rtp} RTP; {dropped} RTP dropped) \
         of {n} calls, {packets_per_stream} RTP packets per stream before loss, to {} in {:.2} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_known_ipv4_header() {
        // Example header from RFC 1071 discussions (checksum 0xb861).
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(!fold(sum16(&h, 0)), 0xb861);
    }
}
