//! Capture-file reading on synthetic files: every container variant and every failure mode.

mod common;

use common::*;
use earshot_wire::{CaptureError, CaptureFormat, CaptureReader, LinkType, Timestamp};
use std::io::{Cursor, Write};

fn reader(bytes: Vec<u8>) -> Result<CaptureReader, CaptureError> {
    CaptureReader::new(Box::new(Cursor::new(bytes)))
}

/// (ts ns, link, data, orig_len) of every frame, plus the error that ended the file, if any.
type Got = (Vec<(i64, u32, Vec<u8>, u32)>, Option<String>);

fn collect(mut r: CaptureReader) -> Got {
    let mut frames = Vec::new();
    let mut err = None;
    while let Some(f) = r.next_frame() {
        match f {
            Ok(f) => frames.push((f.ts.0, f.link.0, f.data.to_vec(), f.orig_len)),
            Err(e) => {
                assert!(err.is_none(), "a second error after {err:?}");
                err = Some(e.to_string());
            }
        }
    }
    assert!(r.next_frame().is_none(), "None must stay None");
    (frames, err)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn pcap_micro_little_endian() {
    let file = pcap_file(1, false, false, &[(10, 250_000, b"abc"), (11, 1, b"defg")]);
    let r = reader(file).unwrap();
    assert_eq!(r.format(), CaptureFormat::Pcap);
    let (frames, err) = collect(r);
    assert_eq!(err, None);
    assert_eq!(
        frames,
        vec![
            (10_250_000_000, 1, b"abc".to_vec(), 7),
            (11_000_001_000, 1, b"defg".to_vec(), 8)
        ]
    );
}

#[test]
fn pcap_nanosecond_big_endian() {
    let file = pcap_file(101, true, true, &[(5, 123_456_789, b"xyz")]);
    let (frames, err) = collect(reader(file).unwrap());
    assert_eq!(err, None);
    assert_eq!(frames, vec![(5_123_456_789, 101, b"xyz".to_vec(), 7)]);
}

#[test]
fn pcap_nanosecond_little_and_micro_big() {
    let (f, _) = collect(reader(pcap_file(1, true, false, &[(1, 7, b"a")])).unwrap());
    assert_eq!(f[0].0, 1_000_000_007);
    let (f, _) = collect(reader(pcap_file(228, false, true, &[(1, 7, b"a")])).unwrap());
    assert_eq!((f[0].0, f[0].1), (1_000_007_000, 228));
}

#[test]
fn gzip_pcap_and_pcapng() {
    let file = pcap_file(1, false, false, &[(1, 2, b"hello")]);
    let (frames, err) = collect(reader(gzip(&file)).unwrap());
    assert_eq!(err, None);
    assert_eq!(frames, vec![(1_000_002_000, 1, b"hello".to_vec(), 9)]);

    let mut ng = PcapNg::new();
    ng.idb(1, None);
    ng.epb(0, 3_000_000, b"ng");
    let r = reader(gzip(&ng.bytes)).unwrap();
    assert_eq!(r.format(), CaptureFormat::PcapNg);
    let (frames, err) = collect(r);
    assert_eq!(err, None);
    assert_eq!(frames, vec![(3_000_000_000, 1, b"ng".to_vec(), 2)]);
}

#[test]
fn truncated_gzip_is_damaged() {
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = pcap_file(1, false, false, &[(1, 0, &big), (2, 0, &big)]);
    let mut z = gzip(&file);
    z.truncate(z.len() - 20);
    let (frames, err) = collect(reader(z).unwrap());
    assert!(frames.len() <= 2);
    assert!(err.unwrap().contains("damaged"));
}

#[test]
fn pcapng_two_interfaces_with_different_links_and_resolutions() {
    let mut ng = PcapNg::new();
    ng.idb(1, None); // microseconds
    ng.idb(101, Some(9)); // nanoseconds
    ng.idb(113, Some(0x80 | 10)); // 2^-10 s
    ng.block(0x0000_0005, &[1, 2, 3, 4, 5, 6, 7, 8]); // interface statistics: skipped
    ng.epb(0, 1_500_000, b"eth");
    ng.epb(1, 2_000_000_007, b"raw");
    ng.epb(2, 3 * 1024 + 512, b"sll");
    ng.pb(1, 4_000_000_000, b"old");
    ng.spb(b"simple");
    let (frames, err) = collect(reader(ng.bytes).unwrap());
    assert_eq!(err, None);
    let got: Vec<(i64, u32, &[u8])> = frames
        .iter()
        .map(|(t, l, d, _)| (*t, *l, d.as_slice()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1_500_000_000, 1, &b"eth"[..]),
            (2_000_000_007, 101, &b"raw"[..]),
            (3_500_000_000, 113, &b"sll"[..]),
            (4_000_000_000, 101, &b"old"[..]),
            // An SPB has no timestamp: it inherits the previous packet's; interface 0.
            (4_000_000_000, 1, &b"simple"[..]),
        ]
    );
}

#[test]
fn pcapng_second_section_resets_interfaces() {
    let mut ng = PcapNg::new();
    ng.idb(1, None);
    ng.epb(0, 1, b"a");
    let second = PcapNg::new();
    ng.bytes.extend_from_slice(&second.bytes);
    ng.idb(229, None);
    ng.epb(0, 2, b"b");
    let (frames, err) = collect(reader(ng.bytes).unwrap());
    assert_eq!(err, None);
    assert_eq!(frames.iter().map(|f| f.1).collect::<Vec<_>>(), vec![1, 229]);
}

#[test]
fn pcapng_undeclared_interface_is_damaged() {
    let mut ng = PcapNg::new();
    ng.idb(1, None);
    ng.epb(0, 1, b"a");
    ng.epb(3, 1, b"b");
    let (frames, err) = collect(reader(ng.bytes).unwrap());
    assert_eq!(frames.len(), 1);
    assert!(err.unwrap().contains("interface 3"));
}

#[test]
fn truncated_pcap_gives_frames_then_one_error() {
    let mut file = pcap_file(1, false, false, &[(1, 0, b"first"), (2, 0, b"second")]);
    file.truncate(file.len() - 3);
    let (frames, err) = collect(reader(file).unwrap());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].2, b"first");
    assert!(err.unwrap().starts_with("damaged capture"));
}

#[test]
fn truncated_record_header_is_damaged() {
    let mut file = pcap_file(1, false, false, &[(1, 0, b"first")]);
    file.extend_from_slice(&[1, 2, 3]);
    let (frames, err) = collect(reader(file).unwrap());
    assert_eq!(frames.len(), 1);
    assert!(err.is_some());
}

#[test]
fn truncated_pcapng_is_damaged() {
    let mut ng = PcapNg::new();
    ng.idb(1, None);
    ng.epb(0, 1, b"one");
    ng.epb(0, 2, b"two");
    ng.bytes.truncate(ng.bytes.len() - 5);
    let (frames, err) = collect(reader(ng.bytes).unwrap());
    assert_eq!(frames.len(), 1);
    assert!(err.unwrap().contains("truncated"));
}

#[test]
fn oversized_record_is_damaged_without_allocating() {
    let mut file = pcap_file(1, false, false, &[]);
    for x in [1u32, 0, 0x7fff_ffff, 0x7fff_ffff] {
        file.extend_from_slice(&x.to_le_bytes());
    }
    let (frames, err) = collect(reader(file).unwrap());
    assert!(frames.is_empty());
    assert!(err.unwrap().contains("exceeds limit"));
}

#[test]
fn bad_magic_and_empty() {
    match reader(b"GIF89a not a capture".to_vec()) {
        Err(CaptureError::BadMagic(m)) => assert_eq!(&m, b"GIF8"),
        other => panic!("expected BadMagic, got {other:?}"),
    }
    assert!(matches!(reader(Vec::new()), Err(CaptureError::Empty)));
    assert!(matches!(reader(gzip(&[])), Err(CaptureError::Empty)));
    assert!(matches!(
        reader(vec![0xd4, 0xc3]),
        Err(CaptureError::Damaged(_))
    ));
    // Good magic, header cut short.
    let file = pcap_file(1, false, false, &[]);
    assert!(matches!(
        reader(file[..10].to_vec()),
        Err(CaptureError::Damaged(_))
    ));
}

#[test]
fn open_missing_file_names_it() {
    let err = CaptureReader::open(std::path::Path::new("/nonexistent/x.pcap")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.pcap"));
}

/// A reader that hands out one byte per call: refills must cope with short reads.
struct Trickle(Cursor<Vec<u8>>);
impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

#[test]
fn many_frames_through_short_reads_and_buffer_wraps() {
    // Enough data to wrap the 1 MiB buffer several times, with records of varied size.
    let payloads: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| vec![(i % 256) as u8; (i as usize * 37) % 3000])
        .collect();
    let frames: Vec<(u32, u32, &[u8])> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u32, 0, p.as_slice()))
        .collect();
    let file = pcap_file(1, false, false, &frames);
    for r in [
        CaptureReader::new(Box::new(Trickle(Cursor::new(file.clone())))).unwrap(),
        reader(file).unwrap(),
    ] {
        let (got, err) = collect(r);
        assert_eq!(err, None);
        assert_eq!(got.len(), 3000);
        for (i, (ts, _, data, _)) in got.iter().enumerate() {
            assert_eq!(*ts, i as i64 * 1_000_000_000);
            assert_eq!(data, &payloads[i]);
        }
    }
}

#[test]
fn frame_link_type_is_typed() {
    let file = pcap_file(276, false, false, &[(0, 0, b"x")]);
    let mut r = reader(file).unwrap();
    let f = r.next_frame().unwrap().unwrap();
    assert_eq!(f.link, LinkType::LINUX_SLL2);
    assert_eq!(f.ts, Timestamp(0));
}
