#![no_main]
//! SIP message parsing, every accessor, stream framing and the WebSocket
//! decoder (fed the same bytes in two chunks split at the first byte's value).

use earshot_sip::websocket::WsDecoder;
use earshot_sip::{frame_message, looks_like_sip, parse_name_addr, Framing, SipMessage};
use libfuzzer_sys::fuzz_target;

fn exercise(data: &[u8]) {
    let _ = looks_like_sip(data);
    if let Framing::Complete(n) | Framing::KeepAlive(n) = frame_message(data) {
        assert!(n > 0 && n <= data.len());
    }
    let Ok(m) = SipMessage::parse(data) else {
        return;
    };
    let _ = (m.call_id(), m.cseq(), m.from(), m.to(), m.user_agent());
    let _ = (m.content_type(), m.content_length(), m.reason());
    let _ = (m.method(), m.status(), m.to_string());
    let _ = m.header_list("Via").count();
    for v in m.headers("Contact") {
        let _ = parse_name_addr(v);
    }
    if let Some(body) = m.sdp() {
        assert!(body.len() <= data.len());
        if let Ok(s) = earshot_sip::sdp::parse(body) {
            let _ = s.is_hold();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    let split = data.first().map_or(0, |&b| usize::from(b).min(data.len()));
    let mut ws = WsDecoder::new();
    let mut out = |msg: &[u8]| exercise(msg);
    ws.push(&data[..split], &mut out);
    ws.push(&data[split..], &mut out);
});
