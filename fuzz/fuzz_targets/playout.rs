#![no_main]
//! Random packet sequences through a call's playout and mixer: no panic, the
//! jitter buffer never over its bound, and stereo output stays interleaved.
//! The first byte picks the offline or the live (adaptive) settings; packets may
//! jump the capture clock by up to ±24 days, and output per packet stays within
//! the longest gap kept plus the packet's own audio (nothing in proportion to a
//! jump).

use earshot_audio::{CallAudio, MixConfig, MixMode, PlayoutConfig};
use libfuzzer_sys::fuzz_target;

#[path = "common/rtp_records.rs"]
mod rtp_records;

const MAX_PACKETS: usize = 32;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut playout = if mode & 1 == 0 {
        PlayoutConfig::offline()
    } else {
        PlayoutConfig::live()
    };
    playout.max_packets = MAX_PACKETS;
    // Output one step may produce: the gap kept, the hold, and what the buffer releases (a
    // packet's audio is at most 10 s of comfort noise or a 64 KiB payload decoded).
    let step_limit = 2 * 16 * (playout.max_gap_ms as usize + 1000 + MAX_PACKETS * 10_000);
    let Ok(cfg) = MixConfig::new(16000, MixMode::Stereo, playout) else {
        return;
    };
    let mut audio = CallAudio::new(cfg);
    let mut out = Vec::new();
    let mut now = 0i64;
    rtp_records::for_each(
        data,
        |head| {
            now = if head[11] & 2 == 2 {
                // A jump of the capture clock, either way.
                now.saturating_add(
                    i64::from(i32::from_le_bytes([head[6], head[7], head[8], head[9]])) * 1_000_000,
                )
            } else {
                now.saturating_add(i64::from(u16::from_le_bytes([head[0], head[1]])) * 10_000)
            };
            now
        },
        |leg, rtp| {
            audio.push(leg, rtp, &mut out);
            assert!(
                out.len() <= step_limit,
                "one packet emitted {} samples",
                out.len()
            );
            out.clear();
        },
    );
    audio.finish(&mut out);
    assert!(
        out.len() <= step_limit,
        "finish emitted {} samples",
        out.len()
    );
    assert_eq!(out.len() % 2, 0);
});
