#![no_main]
//! The playout target with the settings a live listener gets (PlayoutConfig::live(): adaptive
//! depth 20-300 ms), in mono at 8 kHz as `readaudio` asks: no panic, the
//! jitter buffer never over its bound.

use earshot_audio::{CallAudio, MixConfig, MixMode, PlayoutConfig};
use libfuzzer_sys::fuzz_target;

#[path = "common/rtp_records.rs"]
mod rtp_records;

const MAX_PACKETS: usize = 32;

fuzz_target!(|data: &[u8]| {
    let mut playout = PlayoutConfig::live();
    playout.max_packets = MAX_PACKETS;
    let Ok(cfg) = MixConfig::new(8000, MixMode::Mono, playout) else {
        return;
    };
    let mut audio = CallAudio::new(cfg);
    let mut out = Vec::new();
    let mut now = 0i64;
    rtp_records::for_each(
        data,
        |head| {
            // Steps of 10 µs; the largest step is a jump of an hour instead, as when a capture
            // clock is set or a sender pauses a long call.
            let step = u16::from_le_bytes([head[0], head[1]]);
            now += if step == u16::MAX {
                3_600_000_000_000
            } else {
                i64::from(step) * 10_000
            };
            now
        },
        |leg, rtp| {
            audio.push(leg, rtp, &mut out);
            out.clear();
        },
    );
    audio.finish(&mut out);
});
