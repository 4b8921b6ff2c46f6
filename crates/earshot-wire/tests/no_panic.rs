//! Arbitrary bytes never panic the reader or the decapsulator.

mod common;

use earshot_wire::tcp::{TcpFlags, TcpReassembler};
use earshot_wire::{CaptureReader, Decapsulator, FlowKey, LinkType, Timestamp};
use proptest::prelude::*;
use std::io::Cursor;

const LINKS: &[u32] = &[0, 1, 9, 12, 14, 101, 108, 113, 228, 229, 276, 147];

fn read_all(bytes: Vec<u8>) -> usize {
    let Ok(mut r) = CaptureReader::new(Box::new(Cursor::new(bytes))) else {
        return 0;
    };
    let mut d = Decapsulator::new();
    let mut n = 0;
    while let Some(f) = r.next_frame() {
        let Ok(f) = f else { break };
        d.decode(f.ts, f.link, f.data, &mut |_| n += 1);
    }
    n
}

/// A valid frame with some bytes overwritten: reaches deeper layers than pure noise.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    let sip = b"INVITE sip:a@b SIP/2.0\r\n\r\n";
    let hep = {
        let mut h = b"HEP3".to_vec();
        h.extend_from_slice(&40u16.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 15, 0, 10]);
        h.extend_from_slice(b"abcd");
        h
    };
    let bases = vec![
        common::eth_udp4("10.0.0.1", 5060, "10.0.0.2", 5060, sip),
        common::eth_udp4("10.0.0.1", 5060, "10.0.0.2", 9060, &hep),
        common::eth_udp4("10.0.0.1", 5060, "10.0.0.2", 4789, sip),
        common::eth(
            0x0800,
            &common::ipv4_frag(
                common::ip4("1.1.1.1"),
                common::ip4("2.2.2.2"),
                17,
                9,
                0x2000,
                sip,
            ),
        ),
        common::eth(
            0x86dd,
            &common::ipv6(
                common::ip6("::1"),
                common::ip6("::2"),
                44,
                &[17, 0, 0, 1, 0, 0, 0, 7],
            ),
        ),
    ];
    (
        proptest::sample::select(bases),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut f, edits, cut)| {
            for (i, b) in edits {
                let at = i.index(f.len());
                f[at] = b;
            }
            f.truncate(cut.index(f.len() + 1));
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_random_bytes(link in proptest::sample::select(LINKS), frame in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut d = Decapsulator::new();
        d.decode(Timestamp(0), LinkType(link), &frame, &mut |_| {});
        prop_assert_eq!(d.stats().frames, 1);
    }

    #[test]
    fn decode_mutated_frames(frames in proptest::collection::vec(mutated_frame(), 1..8)) {
        let mut d = Decapsulator::new();
        for (i, f) in frames.iter().enumerate() {
            d.decode(Timestamp(i as i64), LinkType::ETHERNET, f, &mut |_| {});
        }
    }

    #[test]
    fn reader_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        read_all(bytes);
    }

    #[test]
    fn reader_valid_header_then_noise(pcapng in any::<bool>(), noise in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = if pcapng {
            let mut ng = common::PcapNg::new();
            ng.idb(1, None);
            ng.bytes
        } else {
            common::pcap_file(1, false, false, &[])
        };
        bytes.extend(noise);
        read_all(bytes);
    }

    #[test]
    fn tcp_random_segments(segs in proptest::collection::vec((0u32..64, any::<u8>(), 0usize..20), 0..60)) {
        let cfg = earshot_wire::tcp::TcpConfig { max_buffered_per_flow: 50, max_flows: 2, ..Default::default() };
        let mut r = TcpReassembler::new(cfg);
        let mut out = Vec::new();
        for (i, (seq, flags, len)) in segs.into_iter().enumerate() {
            let key = FlowKey { src: common::sock("1.1.1.1", u16::from(flags >> 6)), dst: common::sock("2.2.2.2", 1) };
            let f = TcpFlags { syn: flags & 1 != 0, fin: flags & 2 != 0, rst: flags & 4 != 0 && flags & 8 != 0 };
            let payload: Vec<u8> = (0..len).map(|k| (seq as usize + k) as u8).collect();
            r.segment(Timestamp(i as i64), key, seq.wrapping_add(u32::MAX - 30), f, &payload, &mut |e| {
                if let earshot_wire::StreamEvent::Data { data, .. } = e { out.push(data.len()) }
            });
            prop_assert!(r.buffered() <= 50 + 20);
        }
    }
}
