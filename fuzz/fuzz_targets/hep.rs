#![no_main]
//! Bare HEP datagrams as a HEP listener receives them (v1, v2, v3). The first byte chooses
//! how the input is cut into datagrams, so one decapsulator sees several, including a HEP3
//! envelope that nests a captured frame. Nothing inside a datagram may be bigger than it,
//! except an inflated compressed payload (chunk 16), which is at most `MAX_HEP_INFLATED`.
//! A first byte of 1 wraps the rest, zlib-compressed, in a HEP3 chunk 16, so the inflater
//! sees valid streams of any content, not only the few the fuzzer could build by chance.

use earshot_wire::{Decapsulator, Timestamp, MAX_HEP_INFLATED};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fn chunk(ctype: u16, v: &[u8]) -> Vec<u8> {
    let mut c = vec![0, 0];
    c.extend_from_slice(&ctype.to_be_bytes());
    c.extend_from_slice(&((6 + v.len()).min(0xffff) as u16).to_be_bytes());
    c.extend_from_slice(v);
    c
}

/// A HEP3 envelope (IPv4, UDP) whose payload is `sip`, zlib-compressed.
fn compressed_hep3(sip: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = z.write_all(sip);
    let z = z.finish().unwrap_or_default();
    let mut body = chunk(2, &[17]);
    body.extend(chunk(3, &[10, 0, 0, 1]));
    body.extend(chunk(4, &[10, 0, 0, 2]));
    body.extend(chunk(16, &z));
    let mut h = b"HEP3".to_vec();
    h.extend_from_slice(&((6 + body.len()).min(0xffff) as u16).to_be_bytes());
    h.extend(body);
    h
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let mut decap = Decapsulator::new();
    let mut datagrams = 0u64;
    // A cut of 0 sends everything as one datagram; otherwise records are length-prefixed
    // (u16 BE), so a seed can hold a short run of real datagrams.
    let mut feed = |decap: &mut Decapsulator, dgram: &[u8], ts: i64| {
        datagrams += 1;
        decap.decode_hep(Timestamp(ts), dgram, &mut |p| {
            assert!(p.payload.len() <= dgram.len().max(MAX_HEP_INFLATED));
            assert!(p.from_hep);
        });
    };
    if cut == 0 {
        feed(&mut decap, rest, 0);
    } else if cut == 1 {
        feed(&mut decap, &compressed_hep3(rest), 0);
    } else {
        let mut rest = rest;
        let mut ts = 0;
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
            let (dgram, tail) = rest[2..].split_at(len);
            rest = tail;
            feed(&mut decap, dgram, ts);
            ts += 20_000_000;
        }
    }
    assert_eq!(decap.stats().frames, datagrams);
    decap.expire_fragments(Timestamp(i64::MAX));
});
