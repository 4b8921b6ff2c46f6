//! Throughput check: `cargo run --release -p earshot-wire --example wire_bench [FILE]`.
//! Without FILE it writes a synthetic pcap of 2 million small Ethernet/IPv4/UDP frames to the
//! temp directory. Reports frames/s for bare iteration and for iteration plus decapsulation.

use earshot_wire::{CaptureReader, Decapsulator};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

fn synthetic() -> std::io::Result<PathBuf> {
    let path = std::env::temp_dir().join("earshot-wire-bench.pcap");
    let mut frame = vec![0u8; 14 + 20 + 8 + 172];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut frame[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&200u16.to_be_bytes());
    ip[9] = 17;
    ip[12..20].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    ip[20..24].copy_from_slice(&[0x13, 0xc4, 0x27, 0x10]);
    ip[24..26].copy_from_slice(&180u16.to_be_bytes());
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    out.write_all(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0])?;
    out.write_all(&[0xff, 0xff, 0, 0, 1, 0, 0, 0])?;
    for i in 0..2_000_000u32 {
        for x in [
            i / 50,
            (i % 50) * 20_000,
            frame.len() as u32,
            frame.len() as u32,
        ] {
            out.write_all(&x.to_le_bytes())?;
        }
        out.write_all(&frame)?;
    }
    out.flush()?;
    Ok(path)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => synthetic()?,
    };
    for decode in [false, true] {
        let start = Instant::now();
        let mut r = CaptureReader::open(&path)?;
        let mut d = Decapsulator::new();
        let (mut frames, mut packets, mut bytes) = (0u64, 0u64, 0u64);
        while let Some(f) = r.next_frame() {
            let f = f?;
            frames += 1;
            bytes += f.data.len() as u64;
            if decode {
                d.decode(f.ts, f.link, f.data, &mut |_| packets += 1);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{}: {frames} frames, {packets} packets, {:.1} MB in {secs:.3} s = {:.2} M frames/s",
            if decode { "read+decode" } else { "read only  " },
            bytes as f64 / 1e6,
            frames as f64 / secs / 1e6
        );
    }
    Ok(())
}
