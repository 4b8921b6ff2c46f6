#![no_main]
//! SRTP and SRTCP from the network and `a=crypto` values from any SDP, in every suite, with
//! and without MKI. Three kinds of input, by the first byte:
//!
//! * any bytes as `a=crypto` values;
//! * any bytes as a run of SRTP and SRTCP packets to the receivers of a key ring the input
//!   builds (suite, one to three keys, MKI length): nothing panics or reads past a packet, a
//!   refused packet leaves nothing to read, an opened one is the packet less its MKI, tag (and
//!   SRTCP index), and no packet costs more than the bounded ROC and MKI searches;
//! * libsrtp2's packets of tests/captures/srtp/ (AES-CM, AES-256-CM, AES-GCM, MKI, SRTCP) in
//!   any order, each changed or not as the input says (bits flipped anywhere, cut, lengthened):
//!   an unchanged one always opens, to the same clear packet; a changed one never does.
//!
//! In the last two, every SRTP packet is also only authenticated (`SrtpStream::authenticate`,
//! what the engine does when nothing reads the payload) by a second receiver, which must agree
//! with the decrypting one on every packet, its ROC and its counts.

use earshot_srtp::{MasterKey, SdesKeys, SrtcpStream, SrtpError, SrtpStream, Suite};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// libsrtp2-protected calls whose tags are 80 bits or more: a changed packet that still
/// verifies would be a 2^-80 accident, not a finding.
const CAPTURES: [&[u8]; 5] = [
    include_bytes!("../../tests/captures/srtp/sdes_aes_256_cm_80.pcap"),
    include_bytes!("../../tests/captures/srtp/sdes_aead_aes_128_gcm.pcap"),
    include_bytes!("../../tests/captures/srtp/sdes_aead_aes_256_gcm.pcap"),
    include_bytes!("../../tests/captures/srtp/sdes_mki.pcap"),
    include_bytes!("../../tests/captures/srtp/sdes_mki_gcm.pcap"),
];

/// One capture's caller: its keys, SRTP packets and SRTCP packets.
struct Call {
    keys: SdesKeys,
    rtp: Vec<Vec<u8>>,
    rtcp: Vec<Vec<u8>>,
}

fn calls() -> &'static [Call] {
    static CALLS: OnceLock<Vec<Call>> = OnceLock::new();
    CALLS.get_or_init(|| CAPTURES.iter().map(|c| read_call(c)).collect())
}

/// make.py's classic pcap: Ethernet, IPv4, UDP; the caller sends from 38010 (RTP) and 38011.
fn read_call(pcap: &[u8]) -> Call {
    let (mut rtp, mut rtcp, mut at) = (Vec::new(), Vec::new(), 24);
    while at + 16 <= pcap.len() {
        let len = u32::from_le_bytes([pcap[at + 8], pcap[at + 9], pcap[at + 10], pcap[at + 11]]);
        let frame = &pcap[at + 16..at + 16 + len as usize];
        match u16::from_be_bytes([frame[34], frame[35]]) {
            38010 => rtp.push(frame[42..].to_vec()),
            38011 => rtcp.push(frame[42..].to_vec()),
            _ => {}
        }
        at += 16 + len as usize;
    }
    let text = String::from_utf8_lossy(pcap);
    let line = text
        .split("a=crypto:")
        .nth(1)
        .and_then(|t| t.split("\r\n").next());
    let keys = SdesKeys::parse(line.unwrap_or_default()).expect("the caller's a=crypto");
    Call { keys, rtp, rtcp }
}

/// What an SRTP packet of `keys` opens to at most: less its MKI and tag.
fn srtp_overhead(keys: &SdesKeys) -> usize {
    keys.mki_len() + keys.suite.tag_len()
}

fn srtcp_overhead(keys: &SdesKeys) -> usize {
    keys.mki_len() + keys.suite.srtcp_tag_len() + 4
}

/// One sender's receivers: SRTP decrypted, SRTP only authenticated (what `analyze` does for
/// payloads nobody reads), SRTCP.
struct Receivers {
    rtp: SrtpStream,
    lazy: SrtpStream,
    rtcp: SrtcpStream,
    scratch: Vec<u8>,
}

impl Receivers {
    fn new(keys: &SdesKeys) -> Receivers {
        Receivers {
            rtp: SrtpStream::new(keys),
            lazy: SrtpStream::new(keys),
            rtcp: SrtcpStream::new(keys),
            scratch: Vec::new(),
        }
    }
}

/// Opens `packet` as SRTP or SRTCP and checks what a receiver promises about `out`; SRTP is
/// also only authenticated by a second receiver, which must accept and refuse the same
/// packets and follow the same ROC.
fn open(
    r: &mut Receivers,
    keys: &SdesKeys,
    as_rtcp: bool,
    packet: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    out.extend_from_slice(b"stale");
    let (opened, overhead) = if as_rtcp {
        (
            r.rtcp.unprotect_rtcp(packet, out).map(|_| ()),
            srtcp_overhead(keys),
        )
    } else {
        let opened = r.rtp.unprotect(packet, out);
        assert_eq!(r.lazy.authenticate(packet, &mut r.scratch), opened);
        assert_eq!(r.lazy.roc(), r.rtp.roc());
        assert_eq!(r.lazy.counters, r.rtp.counters);
        (opened, srtp_overhead(keys))
    };
    match opened {
        Ok(()) => assert_eq!(out.len() + overhead, packet.len()),
        Err(SrtpError::TooShort | SrtpError::Authentication | SrtpError::UnknownMki) => {
            assert!(out.is_empty(), "a refused packet left something to read")
        }
    }
    opened.is_ok()
}

/// A key ring from the input: suite, 1–3 keys, MKI length 0–4 (0 with one key only).
fn key_ring(data: &[u8]) -> Option<SdesKeys> {
    let (&[s, n, m], _) = data.split_first_chunk::<3>()?;
    let suite = Suite::ALL[usize::from(s) % Suite::ALL.len()];
    let n = 1 + usize::from(n % 3);
    let mki_len = if n > 1 {
        1 + usize::from(m % 4)
    } else {
        usize::from(m % 2)
    };
    let keys = (0..n)
        .map(|i| {
            let k = MasterKey::new(
                suite,
                &vec![i as u8; suite.key_len()],
                &vec![9; suite.salt_len()],
            );
            let mki: Vec<u8> = (0..mki_len).map(|j| (i + j) as u8).collect();
            k.and_then(|k| {
                if mki.is_empty() {
                    Ok(k)
                } else {
                    k.with_mki(&mki)
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    SdesKeys::new(1, keys).ok()
}

fn any_bytes(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines().take(16) {
            let _ = SdesKeys::parse(line);
        }
    }
}

fn any_packets(data: &[u8]) {
    let Some(keys) = key_ring(data) else {
        return;
    };
    let mut r = Receivers::new(&keys);
    let mut out = Vec::new();
    for packet in data[3..].split(|&b| b == 0xff).take(64) {
        let as_rtcp = packet.first().is_some_and(|b| b & 1 == 1);
        open(&mut r, &keys, as_rtcp, packet, &mut out);
    }
}

/// Runs of (packet choice, change) over one capture's caller.
fn captured_packets(data: &[u8]) {
    let Some((&which, mut ops)) = data.split_first() else {
        return;
    };
    let call = &calls()[usize::from(which) % CAPTURES.len()];
    let mut r = Receivers::new(&call.keys);
    let (mut out, mut clear) = (Vec::new(), Vec::new());
    let mut steps = 0;
    while let Some((&[pick, how, at_hi, at_lo, bits], rest)) = ops.split_first_chunk::<5>() {
        ops = rest;
        steps += 1;
        if steps > 64 {
            break;
        }
        let as_rtcp = pick & 0x80 != 0;
        let pool = if as_rtcp { &call.rtcp } else { &call.rtp };
        let original = &pool[usize::from(pick & 0x7f) % pool.len()];
        let mut packet = original.clone();
        let at = usize::from(u16::from_be_bytes([at_hi, at_lo])) % packet.len();
        let changed = match how % 4 {
            0 => false,
            1 if bits != 0 => {
                packet[at] ^= bits;
                true
            }
            2 => {
                packet.truncate(at);
                true
            }
            3 => {
                packet.resize(packet.len() + 1 + usize::from(bits % 16), bits);
                true
            }
            _ => false,
        };
        let opened = open(&mut r, &call.keys, as_rtcp, &packet, &mut out);
        assert_eq!(opened, !changed, "libsrtp2's packet, changed: {changed}");
        if opened {
            // The same packet always opens to the same clear packet.
            let mut fresh = Receivers::new(&call.keys);
            assert!(open(&mut fresh, &call.keys, as_rtcp, original, &mut clear));
            assert_eq!(out, clear);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => any_bytes(rest),
        1 => any_packets(rest),
        _ => captured_packets(rest),
    }
});
