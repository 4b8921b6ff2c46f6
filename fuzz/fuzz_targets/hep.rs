#![no_main]
//! Bare HEP datagrams as a HEP listener receives them (v1, v2, v3). The first byte chooses
//! how the input is cut into datagrams, so one decapsulator sees several, including a HEP3
//! envelope that nests a captured frame. Nothing inside a datagram may be bigger than it.

use earshot_wire::{Decapsulator, Timestamp};
use libfuzzer_sys::fuzz_target;

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
            assert!(p.payload.len() <= dgram.len());
            assert!(p.from_hep);
        });
    };
    if cut == 0 {
        feed(&mut decap, rest, 0);
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
