#![no_main]
//! The first byte picks a link type, the rest is the frame. The same decapsulator sees the
//! input twice so fragment-reassembly state is exercised across frames.

use earshot_wire::{Decapsulator, LinkType, Timestamp};
use libfuzzer_sys::fuzz_target;

const LINKS: [u32; 12] = [0, 1, 9, 12, 14, 101, 108, 113, 228, 229, 276, 147];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let link = LinkType(LINKS[usize::from(selector) % LINKS.len()]);
    let mut decap = Decapsulator::new();
    for ts in [0, 1] {
        decap.decode(Timestamp(ts), link, frame, &mut |p| {
            assert!(p.payload.len() <= 65_535 + frame.len());
        });
    }
    assert_eq!(decap.stats().frames, 2);
});
