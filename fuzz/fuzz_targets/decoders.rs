#![no_main]
//! Every decoder must survive arbitrary payload sequences: no panic, no
//! output on error, and concealment that always yields the requested length.

use earshot_audio::{decoder_for, Codec};
use libfuzzer_sys::fuzz_target;

fn codec(selector: u8) -> Codec {
    match selector % 30 {
        0 => Codec::Pcmu,
        1 => Codec::Pcma,
        2 => Codec::G722,
        3 => Codec::G729,
        4 => Codec::Gsm,
        5 => Codec::Opus { channels: 1 },
        6 => Codec::Opus { channels: 2 },
        7 => Codec::L16 {
            rate: 44100,
            channels: 2,
        },
        8 => Codec::L16 {
            rate: 8000,
            channels: 1,
        },
        9 => Codec::Dvi4 { rate: 8000 },
        10 => Codec::Dvi4 { rate: 16000 },
        11 => Codec::Cn { rate: 8000 },
        20 => Codec::Speex { rate: 8000 },
        21 => Codec::Speex { rate: 16000 },
        22 => Codec::Speex { rate: 32000 },
        23..=26 => Codec::Amr {
            wideband: selector % 2 == 0,
            octet_aligned: selector % 4 >= 2,
        },
        // Decoded with the feature `libavcodec` only (else unsupported, skipped).
        27 => Codec::G723,
        28 => Codec::Ilbc { mode: 20 },
        29 => Codec::Ilbc { mode: 30 },
        n => Codec::G726 {
            bits: 2 + (n - 12) % 4,
            aal2: n >= 16,
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(mut dec) = decoder_for(&codec(selector)) else {
        return;
    };
    let channels = usize::from(dec.channels());
    let mut out = Vec::new();
    // Payloads are length-prefixed chunks so one input exercises state
    // carried across packets.
    let mut rest = rest;
    while let Some((&len, tail)) = rest.split_first() {
        let (payload, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        let before = out.len();
        match dec.decode(payload, &mut out) {
            Ok(n) => assert_eq!(out.len() - before, n * channels),
            Err(_) => assert_eq!(out.len(), before),
        }
        if len % 7 == 0 {
            let before = out.len();
            dec.conceal(usize::from(len), &mut out);
            assert_eq!(out.len() - before, usize::from(len) * channels);
        }
    }
});
