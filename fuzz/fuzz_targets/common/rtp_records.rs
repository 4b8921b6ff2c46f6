//! The packet records the playout targets read: 12 header bytes, then a length-prefixed
//! payload. One reader for both targets, so an input found by one means the same to the other.

use earshot_audio::{Codec, Party, RtpIn};

/// Calls `each(head, leg, rtp)` for every whole record in `data`; `arrival(head)` gives the
/// record's capture time (each target moves its clock its own way).
pub fn for_each(
    data: &[u8],
    mut arrival: impl FnMut(&[u8]) -> i64,
    mut each: impl FnMut(Party, &RtpIn<'_>),
) {
    let mut rest = data;
    while rest.len() >= 13 {
        let (head, tail) = rest.split_at(12);
        let len = usize::from(tail[0]).min(tail.len() - 1);
        let (payload, tail) = tail[1..].split_at(len);
        rest = tail;
        let arrival_ns = arrival(head);
        let pt = head[2] % 20;
        let codec = Codec::from_static_pt(pt);
        let leg = if head[3] & 1 == 0 {
            Party::Caller
        } else {
            Party::Called
        };
        let rtp = RtpIn {
            arrival_ns,
            ssrc: u32::from(head[3] >> 6),
            seq: u16::from_le_bytes([head[4], head[5]]),
            timestamp: u32::from_le_bytes([head[6], head[7], head[8], head[9]]),
            payload_type: pt,
            marker: head[10] & 1 == 1,
            payload,
            codec: codec.as_ref(),
            event: head[11] & 1 == 1,
        };
        each(leg, &rtp);
    }
}
