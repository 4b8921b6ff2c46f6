//! SRTP decryption cost per packet, for BENCHMARKS.md ("SRTP"): the libsrtp2-protected packets
//! of tests/captures/srtp/sdes_aes_cm_80.pcap (172-byte G.711 packets, 80-bit tags), each
//! authenticated and decrypted again and again by a stream that knows its ROC, as a live
//! sensor's does after the first packet. Prints ns per packet.
//!
//! ```text
//! cargo run --release -p earshot-srtp --example srtp_bench
//! ```

use earshot_srtp::{MasterKey, SrtpStream, Suite};
use std::time::Instant;

fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/srtp/sdes_aes_cm_80.pcap");
    let mut reader = earshot_wire::CaptureReader::open(&path).expect("the capture");
    let mut packets = Vec::new();
    while let Some(frame) = reader.next_frame() {
        let data = frame.expect("a frame").data;
        if data.len() > 42 && data[23] == 17 && u16::from_be_bytes([data[34], data[35]]) == 38010 {
            packets.push(data[42..].to_vec());
        }
    }
    let key: Vec<u8> = (1..=16).collect();
    let salt: Vec<u8> = (17..=30).collect();
    let master = MasterKey::new(Suite::AesCm128HmacSha1_80, &key, &salt).expect("key");
    let mut out = Vec::with_capacity(2048);
    let rounds = 5_000;
    let mut stream = SrtpStream::new(&master);
    let start = Instant::now();
    for _ in 0..rounds {
        for p in &packets {
            // A replayed packet is still its own (no replay list): the work of a fresh one.
            stream.unprotect(p, &mut out).expect("authenticates");
        }
    }
    let n = rounds * packets.len();
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{n} packets of {} bytes: {ns:.0} ns per packet (authenticate + decrypt)",
        packets[0].len()
    );
}
