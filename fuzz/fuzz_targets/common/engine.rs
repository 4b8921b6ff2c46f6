//! The call engine fed whole frame sequences. The input is read as a script (with
//! `arbitrary`): each step is a raw frame of some link type, or a SIP message, RTP or RTCP
//! packet built from a few hosts, ports and Call-IDs (so that dialogs, SDP bindings and
//! streams actually meet), over UDP, TCP or HEP, or an `expire`; the time step before it is
//! small, zero, backwards or a jump. Or (an even first byte) the input is plain records cut
//! from real captures, see `recorded`. The same script runs twice, frame by frame and in runs
//! through `handle_frames`, which must agree; the tables must stay within their limits.
//!
//! Shared by two targets that differ only in the capture times they use: `engine` keeps them
//! within what a classic pcap or a HEP source can produce (0 to 2^62 ns, past 2106), `engine_time` uses
//! all of i64 (see FUZZING.md: it fails until the engine's time arithmetic saturates).

use earshot_core::{Call, CallKey, Config, Engine, Event, RtpPacket, Sink};
use earshot_wire::{Frame, LinkType, Timestamp};
use libfuzzer_sys::arbitrary::{Result, Unstructured};

const LINKS: [u32; 10] = [0, 1, 101, 108, 113, 228, 229, 276, 147, 0xFFFF_0001];
const HOSTS: [[u8; 4]; 4] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [192, 168, 1, 10],
    [172, 16, 0, 5],
];
const SIP_PORTS: [u16; 3] = [5060, 5080, 6060];
const MEDIA_PORTS: [u16; 4] = [10000, 10002, 20000, 30000];
const CALL_IDS: [&str; 4] = ["a84b4c76e66710", "call-2@10.0.0.2", "3", "x@y"];
const METHODS: [&str; 10] = [
    "INVITE", "ACK", "BYE", "CANCEL", "UPDATE", "PRACK", "INFO", "REGISTER", "OPTIONS", "REFER",
];
const STATUSES: [u16; 10] = [100, 180, 183, 200, 401, 408, 486, 487, 503, 603];
const RTPMAPS: [&str; 6] = [
    "0 PCMU/8000",
    "8 PCMA/8000",
    "9 G722/8000",
    "18 G729/8000",
    "101 telephone-event/8000",
    "111 opus/48000/2",
];
/// Steps per input: enough for a call with media, few enough to run fast.
const MAX_STEPS: usize = 256;
const CFG: Config = Config {
    idle_timeout_ns: 30_000_000_000,
    linger_ns: 5_000_000_000,
    max_calls: 8,
    max_unassociated: 8,
    max_candidates: 16,
    retain_ended: false,
    sip_log_messages: 4,
    sip_log_bytes: 512,
    sip_log_call_bytes: 1024,
    sip_log_total_bytes: 4096,
    sip_log_call_id: None,
    // As the live sensor runs it, so HEP envelope times are checked against the carrying frame's.
    hep_max_skew_ns: Some(10_000_000_000),
    unanswered_timeout_ns: Some(32_000_000_000),
    rtp_only_calls: false,
    rtp_only_idle_ns: 10_000_000_000,
    rtp_only_formats: Vec::new(),
    // Legs grouped by their headers as the sensor does by default, with a small index so a
    // run can fill it (a full index counts the keys it drops).
    correlation: earshot_core::Correlation {
        enabled: true,
        headers: Vec::new(),
        secret: None,
        regex: None,
        max_keys: 16,
    },
    // A short ring, so runs wrap it (hostile clocks move it forwards and back).
    timeline: earshot_core::TimelineMode::Ring(8),
};

/// One step of the script, its time already applied.
enum Step {
    Frame(i64, LinkType, Vec<u8>),
    Expire(i64),
}

/// The capture times a run may use.
#[derive(Clone, Copy)]
pub struct Times {
    pub min: i64,
    pub max: i64,
}

/// Every time a classic pcap (u32 seconds) or HEP envelope can carry; pcapng's `if_tsoffset`
/// can reach further.
#[allow(dead_code)] // each target uses one of the two
pub const CAPTURE_TIMES: Times = Times {
    min: 0,
    max: 1 << 62,
};
/// Anything an `i64` holds.
#[allow(dead_code)]
pub const ANY_TIMES: Times = Times {
    min: i64::MIN,
    max: i64::MAX,
};

struct Script {
    times: Times,
    now: i64,
    tcp_seq: [u32; 4],
}

impl Script {
    fn time(&mut self, u: &mut Unstructured<'_>) -> Result<i64> {
        let now = match u.int_in_range(0..=15u8)? {
            0 => self.now,
            1 => self
                .now
                .saturating_sub(i64::from(u.int_in_range(1..=10_000u32)?) * 1_000_000),
            2 => self.now.saturating_add(3_600_000_000_000),
            3 => *u.choose(&[0, i64::MIN, i64::MAX, -1, 1 << 62])?,
            _ => self
                .now
                .saturating_add(i64::from(u.int_in_range(0..=100_000u32)?) * 1000),
        };
        self.now = now.clamp(self.times.min, self.times.max);
        Ok(self.now)
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> Result<Step> {
        let ts = self.time(u)?;
        let link = LinkType(LinkType::ETHERNET.0);
        Ok(match u.int_in_range(0..=11u8)? {
            0 => {
                let link = LinkType(*u.choose(&LINKS)?);
                let len = u.int_in_range(0..=1600usize)?;
                Step::Frame(ts, link, u.bytes(len)?.to_vec())
            }
            1..=3 => {
                let (src, dst) = sip_ends(u)?;
                let sip = sip_message(u)?;
                Step::Frame(ts, link, udp_frame(src, dst, &sip))
            }
            4..=7 => {
                let (src, dst) = media_ends(u)?;
                let rtp = rtp_packet(u)?;
                Step::Frame(ts, link, udp_frame(src, dst, &rtp))
            }
            8 => {
                let (src, dst) = media_ends(u)?;
                let src = (src.0, src.1 + 1);
                let dst = (dst.0, dst.1 + 1);
                Step::Frame(ts, link, udp_frame(src, dst, &rtcp_packet(u)?))
            }
            9 => {
                let (src, dst) = sip_ends(u)?;
                let conn = usize::from(src.0 as u8 % 4);
                let sip = sip_message(u)?;
                let flags = *u.choose(&[0x18u8, 0x18, 0x18, 0x02, 0x11, 0x04])?;
                let seq = match u.int_in_range(0..=7u8)? {
                    0 => u.arbitrary()?,
                    1 => self.tcp_seq[conn].wrapping_sub(u.int_in_range(0..=100)?),
                    _ => self.tcp_seq[conn],
                };
                let cut = u.int_in_range(0..=sip.len())?;
                self.tcp_seq[conn] = seq.wrapping_add(cut as u32);
                Step::Frame(ts, link, tcp_frame(src, dst, seq, flags, &sip[..cut]))
            }
            10 => {
                let (src, dst) = if u.arbitrary()? {
                    sip_ends(u)?
                } else {
                    media_ends(u)?
                };
                let payload = if u.arbitrary()? {
                    sip_message(u)?
                } else {
                    rtp_packet(u)?
                };
                let secs: u32 = u.arbitrary()?;
                Step::Frame(ts, LinkType::HEP, hep3(src, dst, secs, &payload))
            }
            _ => Step::Expire(ts),
        })
    }
}

type End = (usize, u16);

fn sip_ends(u: &mut Unstructured<'_>) -> Result<(End, End)> {
    Ok((
        (u.choose_index(HOSTS.len())?, *u.choose(&SIP_PORTS)?),
        (u.choose_index(HOSTS.len())?, *u.choose(&SIP_PORTS)?),
    ))
}

fn media_ends(u: &mut Unstructured<'_>) -> Result<(End, End)> {
    Ok((
        (u.choose_index(HOSTS.len())?, *u.choose(&MEDIA_PORTS)?),
        (u.choose_index(HOSTS.len())?, *u.choose(&MEDIA_PORTS)?),
    ))
}

fn host(i: usize) -> String {
    let h = HOSTS[i % HOSTS.len()];
    format!("{}.{}.{}.{}", h[0], h[1], h[2], h[3])
}

fn sdp(u: &mut Unstructured<'_>) -> Result<String> {
    let mut s = format!(
        "v=0\r\no=- 1 {} IN IP4 {h}\r\ns=-\r\nc=IN IP4 {h}\r\nt=0 0\r\n",
        u.int_in_range(1..=3u8)?,
        h = host(u.choose_index(HOSTS.len())?)
    );
    let port = match u.int_in_range(0..=5u8)? {
        0 => 0,
        _ => *u.choose(&MEDIA_PORTS)?,
    };
    let maps: Vec<&str> = (0..u.int_in_range(1..=3usize)?)
        .map(|_| u.choose(&RTPMAPS).copied())
        .collect::<Result<_>>()?;
    let pts: Vec<&str> = maps.iter().filter_map(|m| m.split(' ').next()).collect();
    // A third of the calls are SRTP with an SDES key (one fixed key, so packets of either
    // party meet keyed streams): the engine authenticates their RTP (decrypting it only when
    // the sink wants payloads) and their RTCP as SRTCP, and forged packets meet the tag checks.
    let srtp = u.int_in_range(0..=2u8)? == 0;
    let proto = if srtp { "RTP/SAVP" } else { "RTP/AVP" };
    s += &format!("m=audio {port} {proto} {}\r\n", pts.join(" "));
    for m in maps {
        s += &format!("a=rtpmap:{m}\r\n");
    }
    if srtp {
        s += "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e\r\n";
    }
    s += u.choose(&["", "", "a=sendonly\r\n", "a=inactive\r\n", "a=recvonly\r\n"])?;
    if u.arbitrary()? {
        s += &format!("m=video {} RTP/AVP 96\r\n", u.choose(&MEDIA_PORTS)?);
    }
    Ok(s)
}

fn sip_message(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let call_id = u.choose(&CALL_IDS)?;
    let method = u.choose(&METHODS)?;
    let cseq = u.int_in_range(1..=4u8)?;
    let request = u.int_in_range(0..=2u8)? != 0;
    let start = if request {
        format!("{method} sip:bob@{} SIP/2.0", host(1))
    } else {
        let status = if u.int_in_range(0..=9u8)? == 0 {
            u.int_in_range(100..=699u16)?
        } else {
            *u.choose(&STATUSES)?
        };
        format!("SIP/2.0 {status} Whatever")
    };
    let to_tag = if u.arbitrary()? { ";tag=b2" } else { "" };
    let body = if u.int_in_range(0..=2u8)? == 0 {
        String::new()
    } else {
        sdp(u)?
    };
    let extra: &str = u.arbitrary()?;
    let content_length = match u.int_in_range(0..=9u8)? {
        0 => u.int_in_range(0..=100_000usize)?,
        _ => body.len(),
    };
    let mut m = format!(
        "{start}\r\nVia: SIP/2.0/UDP {h}:5060;branch=z9hG4bK{cseq}\r\nFrom: <sip:alice@{h}>;tag=a1\r\n\
         To: <sip:bob@{h2}>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@{h}:5060>\r\n",
        h = host(0),
        h2 = host(1)
    );
    if !extra.contains('\n') && !extra.is_empty() {
        m += &format!("X-Fuzz: {extra}\r\n");
    }
    if !body.is_empty() {
        m += "Content-Type: application/sdp\r\n";
    }
    m += &format!("Content-Length: {content_length}\r\n\r\n{body}");
    Ok(m.into_bytes())
}

fn rtp_packet(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let pt = *u.choose(&[0u8, 8, 9, 18, 101, 111, 13, 3, 127])?;
    let marker = if u.int_in_range(0..=15u8)? == 0 {
        0x80
    } else {
        0
    };
    let mut p = vec![0x80, marker | pt];
    p.extend_from_slice(&u.arbitrary::<u16>()?.to_be_bytes());
    p.extend_from_slice(&u.arbitrary::<u32>()?.to_be_bytes());
    p.extend_from_slice(&u32::from(u.int_in_range(1..=3u8)?).to_be_bytes());
    let len = u.int_in_range(0..=320usize)?;
    p.extend_from_slice(u.bytes(len)?);
    Ok(p)
}

fn rtcp_packet(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let pt = *u.choose(&[200u8, 201, 202, 203, 204])?;
    let words = u.int_in_range(0..=16u16)?;
    let mut p = vec![0x80 | u.int_in_range(0..=3u8)?, pt];
    p.extend_from_slice(&words.to_be_bytes());
    let len = u.int_in_range(0..=80usize)?;
    p.extend_from_slice(u.bytes(len)?);
    Ok(p)
}

fn ipv4(src: End, dst: End, proto: u8, transport: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
    let total = (20 + transport.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&HOSTS[src.0]);
    f.extend_from_slice(&HOSTS[dst.0]);
    f.extend_from_slice(transport);
    f
}

fn udp_frame(src: End, dst: End, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(8 + payload.len());
    t.extend_from_slice(&src.1.to_be_bytes());
    t.extend_from_slice(&dst.1.to_be_bytes());
    t.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(payload);
    ipv4(src, dst, 17, &t)
}

fn tcp_frame(src: End, dst: End, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(20 + payload.len());
    t.extend_from_slice(&src.1.to_be_bytes());
    t.extend_from_slice(&dst.1.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    ipv4(src, dst, 6, &t)
}

fn hep3(src: End, dst: End, secs: u32, payload: &[u8]) -> Vec<u8> {
    let chunk = |out: &mut Vec<u8>, ctype: u16, val: &[u8]| {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&ctype.to_be_bytes());
        out.extend_from_slice(&((6 + val.len()) as u16).to_be_bytes());
        out.extend_from_slice(val);
    };
    let mut body = Vec::new();
    chunk(&mut body, 1, &[2]);
    chunk(&mut body, 2, &[17]);
    chunk(&mut body, 3, &HOSTS[src.0]);
    chunk(&mut body, 4, &HOSTS[dst.0]);
    chunk(&mut body, 7, &src.1.to_be_bytes());
    chunk(&mut body, 8, &dst.1.to_be_bytes());
    chunk(&mut body, 9, &secs.to_be_bytes());
    chunk(&mut body, 15, payload);
    let mut h = b"HEP3".to_vec();
    h.extend_from_slice(&((6 + body.len()) as u16).to_be_bytes());
    h.extend(body);
    h
}

/// Counts what the engine tells, and checks each RTP packet is one it could have seen.
#[derive(Default)]
struct Counting {
    events: u64,
    rtp: u64,
}

impl Sink for Counting {
    fn event(&mut self, _event: &Event, _call: &Call) {
        self.events += 1;
    }
    fn rtp(&mut self, p: &RtpPacket<'_>) {
        assert!(p.payload.len() <= 65_535);
        self.rtp += 1;
    }
    /// Payloads of odd calls only: SRTP of even calls is authenticated, not decrypted.
    fn wants_payload(&self, call: CallKey) -> bool {
        call % 2 == 1
    }
}

fn check_limits(engine: &Engine) {
    let t = engine.table_sizes();
    assert!(t.calls <= CFG.max_calls, "{t:?}");
    assert!(t.unassociated <= CFG.max_unassociated, "{t:?}");
    assert!(t.candidates <= CFG.max_candidates, "{t:?}");
}

/// `rtp_only`: streams without SIP become calls (the sensor's `--rtp-without-sip`).
fn run(steps: &[Step], batched: bool, rtp_only: bool) -> (Engine, Counting) {
    let mut engine = Engine::new(Config {
        rtp_only_calls: rtp_only,
        ..CFG
    });
    let mut sink = Counting::default();
    let mut run: Vec<Frame<'_>> = Vec::new();
    for step in steps {
        match step {
            Step::Frame(ts, link, bytes) if batched => run.push(Frame {
                ts: Timestamp(*ts),
                link: *link,
                data: bytes,
                orig_len: bytes.len() as u32,
            }),
            Step::Frame(ts, link, bytes) => {
                engine.handle_frame(Timestamp(*ts), *link, bytes, &mut sink);
                check_limits(&engine);
            }
            Step::Expire(ts) => {
                engine.handle_frames(&run, &mut sink);
                run.clear();
                engine.expire(Timestamp(*ts), &mut sink);
                check_limits(&engine);
            }
        }
    }
    engine.handle_frames(&run, &mut sink);
    check_limits(&engine);
    (engine, sink)
}

/// Steps built by `arbitrary` from the input: crafted SIP, RTP, RTCP, TCP and HEP, raw frames.
fn scripted(data: &[u8], times: Times) -> Vec<Step> {
    let mut u = Unstructured::new(data);
    let mut script = Script {
        times,
        now: 1_700_000_000_000_000_000,
        tcp_seq: [1000; 4],
    };
    let mut steps = Vec::new();
    while !u.is_empty() && steps.len() < MAX_STEPS {
        match script.step(&mut u) {
            Ok(s) => steps.push(s),
            Err(_) => break,
        }
    }
    steps
}

/// Steps read as plain records, the layout `scripts/fuzz-seeds.py` cuts real captures into:
/// time step (i32 LE, µs; negative goes back), link type (an index into `LINKS`; 0xff is an
/// `expire`), frame length (u16 LE), frame.
fn recorded(mut data: &[u8], times: Times) -> Vec<Step> {
    let mut now = 1_700_000_000_000_000_000i64;
    let mut steps = Vec::new();
    while data.len() >= 7 && steps.len() < MAX_STEPS {
        let step = i32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        now = now
            .saturating_add(i64::from(step) * 1000)
            .clamp(times.min, times.max);
        let link = data[4];
        let len = usize::from(u16::from_le_bytes([data[5], data[6]])).min(data.len() - 7);
        let (frame, rest) = data[7..].split_at(len);
        data = rest;
        steps.push(if link == 0xff {
            Step::Expire(now)
        } else {
            Step::Frame(
                now,
                LinkType(LINKS[usize::from(link) % LINKS.len()]),
                frame.to_vec(),
            )
        });
    }
    steps
}

/// One input: its steps run frame by frame and in runs, which must agree.
pub fn run_input(data: &[u8], times: Times) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let steps = if mode & 1 == 0 {
        recorded(rest, times)
    } else {
        scripted(rest, times)
    };
    // Bit 1 of the mode byte turns streams without SIP into calls, so both paths are fuzzed.
    let rtp_only = mode & 2 != 0;
    let (one, one_sink) = run(&steps, false, rtp_only);
    let (many, many_sink) = run(&steps, true, rtp_only);
    assert_eq!(
        format!("{:?}", one.counters()),
        format!("{:?}", many.counters())
    );
    assert_eq!(one.table_sizes(), many.table_sizes());
    assert_eq!(
        (one_sink.events, one_sink.rtp),
        (many_sink.events, many_sink.rtp)
    );
}
