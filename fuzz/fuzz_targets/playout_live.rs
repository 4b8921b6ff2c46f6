#![no_main]
//! The playout target with the settings a live listener gets (PlayoutConfig::live(): adaptive
//! depth 20-300 ms), in mono at 8 kHz as `readaudio` asks: no panic, the
//! jitter buffer never over its bound.

use earshot_audio::{CallAudio, Codec, Leg, MixConfig, MixMode, PlayoutConfig, RtpIn};
use libfuzzer_sys::fuzz_target;

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
    // Each packet: 12 header bytes, then a length-prefixed payload.
    let mut rest = data;
    while rest.len() >= 13 {
        let (head, tail) = rest.split_at(12);
        let len = usize::from(tail[0]).min(tail.len() - 1);
        let (payload, tail) = tail[1..].split_at(len);
        rest = tail;
        // Steps of 10 µs; the largest step is a jump of an hour instead, as when a capture
        // clock is set or a sender pauses a long call.
        let step = u16::from_le_bytes([head[0], head[1]]);
        now += if step == u16::MAX {
            3_600_000_000_000
        } else {
            i64::from(step) * 10_000
        };
        let pt = head[2] % 20;
        let codec = Codec::from_static_pt(pt);
        let leg = if head[3] & 1 == 0 {
            Leg::Caller
        } else {
            Leg::Called
        };
        let rtp = RtpIn {
            arrival_ns: now,
            ssrc: u32::from(head[3] >> 6),
            seq: u16::from_le_bytes([head[4], head[5]]),
            timestamp: u32::from_le_bytes([head[6], head[7], head[8], head[9]]),
            payload_type: pt,
            marker: head[10] & 1 == 1,
            payload,
            codec: codec.as_ref(),
            event: head[11] & 1 == 1,
        };
        audio.push(leg, &rtp, &mut out);
        out.clear();
    }
    audio.finish(&mut out);
});
