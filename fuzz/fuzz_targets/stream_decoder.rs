#![no_main]
//! What a `stream` client (the player's relay, `earshot listen`) reads from a sensor, which it
//! must not trust: bytes fed in chunks whose sizes come from the input, items taken after each
//! chunk. An error is final; an audio frame survives re-encoding unchanged.

use earshot_manager::stream_proto::{
    encode_frame, Frame, StreamDecoder, StreamItem, MAX_FRAME_PAYLOAD, MAX_HEADER_LINE,
};
use libfuzzer_sys::fuzz_target;

fn reencode_audio(frame: &Frame) {
    let Frame::Audio(_) = frame else {
        return;
    };
    let mut bytes = Vec::new();
    encode_frame(frame, &mut bytes).expect("a decoded audio frame encodes");
    let mut again = StreamDecoder::new();
    again.push(b"{\"version\":1,\"callreference\":\"1\",\"callid\":\"c\",\"caller\":\"a\",\"called\":\"b\",\"format\":\"s16le\",\"rate\":8000,\"channels\":1,\"from\":\"now\"}\n");
    again.push(&bytes);
    assert!(matches!(again.next_item(), Ok(Some(StreamItem::Header(_)))));
    match again.next_item() {
        Ok(Some(StreamItem::Frame(f))) => assert_eq!(&f, frame),
        other => panic!("re-encoded audio did not decode: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = StreamDecoder::new();
    let mut failed = false;
    let mut rest = data;
    while let Some((&size, tail)) = rest.split_first() {
        let (chunk, tail) = tail.split_at((usize::from(size) * 4 + 1).min(tail.len()));
        rest = tail;
        decoder.push(chunk);
        loop {
            match decoder.next_item() {
                Ok(Some(StreamItem::Frame(f))) => {
                    assert!(!failed);
                    if let Frame::Unknown { payload, .. } = &f {
                        assert!(payload.len() <= MAX_FRAME_PAYLOAD);
                    }
                    reencode_audio(&f);
                }
                Ok(Some(StreamItem::Header(h))) => {
                    assert!(!failed);
                    assert!(h.callid.len() <= MAX_HEADER_LINE);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    failed = true;
                }
            }
        }
    }
    let _ = decoder.finish();
});
