//! Property tests: no input makes the parsers panic.

use earshot_sip::websocket::WsDecoder;
use earshot_sip::{frame_message, looks_like_sip, parse_name_addr, sdp, Framing, SipMessage};
use proptest::prelude::*;

const VALID: &[u8] = b"INVITE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
f: \"A \\\"x\\\"\" <sip:alice@a.example>;tag=1\r\n\
To: <sip:bob@[2001:db8::1]:5060>\r\n\
i: abc@a\r\n\
CSeq: 1 INVITE\r\n\
Reason: SIP;cause=200\r\n\
Content-Type: multipart/mixed;boundary=\"zz\"\r\n\
\x20; x=y\r\n\
l: 187\r\n\
\r\n\
--zz\r\n\
Content-Type: application/sdp\r\n\
\r\n\
v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0 96\r\n\
a=rtpmap:96 opus/48000/2\r\na=rtcp:4001 IN IP4 1.2.3.4\r\na=ptime:20\r\n\
--zz--\r\n";

/// Exercise every accessor so that lazily-parsed paths run too.
fn exercise(buf: &[u8]) {
    let _ = looks_like_sip(buf);
    let _ = frame_message(buf);
    if let Ok(m) = SipMessage::parse(buf) {
        let _ = (m.call_id(), m.cseq(), m.from(), m.to(), m.user_agent());
        let _ = (m.content_type(), m.reason(), m.method(), m.status());
        let _ = m.header_list("via").count();
        let _ = m.to_string();
        if let Some(v) = m.header("Contact") {
            let _ = parse_name_addr(v);
        }
        if let Some(body) = m.sdp() {
            exercise_sdp(body);
        }
    }
    exercise_sdp(buf);
}

fn exercise_sdp(buf: &[u8]) {
    if let Ok(s) = sdp::parse(buf) {
        let _ = s.is_hold();
        for m in &s.media {
            for &pt in &m.formats {
                let _ = m.codec(pt);
            }
        }
    }
}

fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(pos, byte, op) in edits {
        if v.is_empty() {
            v.push(byte);
            continue;
        }
        let i = pos % v.len();
        match op % 4 {
            0 => v[i] = byte,
            1 => v.insert(i, byte),
            2 => {
                v.remove(i);
            }
            _ => v.truncate(i),
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise(&buf);
        let mut d = WsDecoder::new();
        d.push(&buf, &mut |m| exercise(m));
    }

    #[test]
    fn mutated_message_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..12)
    ) {
        let buf = mutate(VALID, &edits);
        exercise(&buf);
    }

    #[test]
    fn frame_lengths_are_in_bounds(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut buf = mutate(VALID, &edits);
        buf.extend_from_slice(&tail);
        if let Framing::Complete(n) | Framing::KeepAlive(n) = frame_message(&buf) {
            prop_assert!(n > 0 && n <= buf.len());
        }
    }

    #[test]
    fn websocket_arbitrary_chunks(
        mut data in proptest::collection::vec(any::<u8>(), 0..400),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        handshake in any::<bool>(),
    ) {
        if handshake {
            let mut s = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".to_vec();
            s.append(&mut data);
            data = s;
        }
        let mut d = WsDecoder::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        for c in cuts.into_iter().chain([data.len()]) {
            d.push(&data[start..c], &mut |m| exercise(m));
            start = c;
        }
    }
}

#[test]
fn valid_base_message_parses() {
    // Guards the property tests: mutating a message that never parsed would
    // only exercise the error paths.
    let m = SipMessage::parse(VALID).unwrap();
    assert_eq!(
        m.content_type(),
        Some("multipart/mixed;boundary=\"zz\" ; x=y")
    );
    let s = sdp::parse(m.sdp().unwrap()).unwrap();
    assert_eq!(s.media[0].codec(96), Some(("opus", 48000, 2)));
    assert_eq!(frame_message(VALID), Framing::Complete(VALID.len()));
}
