#![no_main]
//! SDP parsing plus the per-media lookups a call tracker performs.

use earshot_sip::sdp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = sdp::parse(data) else {
        return;
    };
    let _ = (s.is_hold(), s.audio().is_some(), format!("{s:?}"));
    for m in &s.media {
        let _ = (m.is_hold(), m.is_disabled());
        for &pt in &m.formats {
            let _ = m.codec(pt);
        }
        for r in &m.rtpmap {
            let _ = r.to_string();
        }
    }
});
