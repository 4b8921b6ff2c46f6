//! SRTP decryption cost per packet, for BENCHMARKS.md ("SRTP decryption"): the libsrtp2-
//! protected caller packets of tests/captures/srtp/ (G.711, 160-byte payloads) in each suite,
//! each authenticated and decrypted again and again by a stream that knows its ROC, as a live
//! sensor's does after the first packet; then the worst case, a packet no key opens reaching a
//! fresh stream (every ROC candidate tried), and SRTCP. Each suite also only authenticated
//! (`SrtpStream::authenticate`: the tag checked, no keystream; AES-GCM decrypts all the same),
//! what `analyze` does with payloads it never reads. Prints ns per packet, the fastest of many
//! short batches.
//!
//! ```text
//! cargo run --release -p earshot-srtp --example srtp_bench
//! ```

use earshot_srtp::{SdesKeys, SrtcpStream, SrtpStream, ROC_CANDIDATES};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/srtp")
        .join(name)
}

/// The UDP payloads from `port` (make.py's Ethernet, IPv4, UDP).
fn udp_from(name: &str, port: u16) -> Vec<Vec<u8>> {
    let mut reader = earshot_wire::CaptureReader::open(&capture(name)).expect("the capture");
    let mut packets = Vec::new();
    while let Some(frame) = reader.next_frame() {
        let data = frame.expect("a frame").data;
        if data.len() > 42 && data[23] == 17 && u16::from_be_bytes([data[34], data[35]]) == port {
            packets.push(data[42..].to_vec());
        }
    }
    packets
}

/// The caller's keys: the capture's first `a=crypto` line.
fn caller_keys(name: &str) -> SdesKeys {
    let bytes = std::fs::read(capture(name)).expect("the capture");
    let text = String::from_utf8_lossy(&bytes);
    let at = text.find("a=crypto:").expect("a=crypto") + "a=crypto:".len();
    SdesKeys::parse(text[at..].split("\r\n").next().expect("a line")).expect("keys")
}

/// ns per call of `f` over `packets`: the fastest of `batches` runs of `rounds` passes each.
/// Batches of about a millisecond, and their minimum, keep what other processes on a shared
/// machine take of the core out of the figure.
fn per_packet(packets: &[Vec<u8>], batches: usize, rounds: usize, mut f: impl FnMut(&[u8])) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..rounds {
            for p in packets {
                f(p);
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / (rounds * packets.len()) as f64;
        best = best.min(ns);
    }
    best
}

fn main() {
    let mut out = Vec::with_capacity(2048);
    for name in [
        "sdes_aes_cm_80.pcap",
        "sdes_aes_cm_32.pcap",
        "sdes_aes_256_cm_80.pcap",
        "sdes_aead_aes_128_gcm.pcap",
        "sdes_aead_aes_256_gcm.pcap",
        "sdes_mki.pcap",
    ] {
        let keys = caller_keys(name);
        let packets = udp_from(name, 38010);
        let mut stream = SrtpStream::new(&keys);
        // A replayed packet is still its own (no replay list): the work of a fresh one.
        let ns = per_packet(&packets, 500, 10, |p| {
            stream.unprotect(p, &mut out).expect("authenticates")
        });
        let mut lazy = SrtpStream::new(&keys);
        let auth = per_packet(&packets, 500, 10, |p| {
            lazy.authenticate(p, &mut out).expect("authenticates")
        });
        println!(
            "{:<24} {} bytes{}: {ns:>4.0} ns per packet (authenticate + decrypt), \
             {auth:>4.0} ns (authenticate only)",
            keys.suite.name(),
            packets[0].len(),
            if keys.mki_len() > 0 { ", MKI" } else { "" },
        );
    }

    // The bounded worst case: a stream's first packet that no candidate opens.
    for name in ["sdes_aes_cm_80.pcap", "sdes_aead_aes_128_gcm.pcap"] {
        let keys = caller_keys(name);
        let mut forged = udp_from(name, 38010);
        for p in &mut forged {
            let last = p.len() - 1;
            p[last] ^= 1;
        }
        let ns = per_packet(&forged, 50, 1, |p| {
            let refused = SrtpStream::new(&keys).unprotect(p, &mut out).is_err();
            assert!(refused);
        });
        println!(
            "{:<24} forged first packet: {ns:>6.0} ns ({ROC_CANDIDATES} ROCs tried, stream set up)",
            keys.suite.name()
        );
    }

    for name in ["sdes_mki.pcap", "sdes_aead_aes_128_gcm.pcap"] {
        let keys = caller_keys(name);
        let reports = udp_from(name, 38011);
        let mut s = SrtcpStream::new(&keys);
        let ns = per_packet(&reports, 500, 500, |p| {
            s.unprotect_rtcp(p, &mut out).expect("authenticates");
        });
        println!(
            "{:<24} SRTCP {} bytes: {ns:>4.0} ns per packet",
            keys.suite.name(),
            reports[0].len()
        );
    }
}
