#![no_main]
//! SRTP from the network (any bytes, any claimed header length, any tag) and `a=crypto`
//! values from any SDP: nothing panics or reads past the packet, a packet that does not
//! authenticate writes nothing, and no packet costs more than the bounded ROC search.

use earshot_srtp::{MasterKey, SdesKeys, SrtpError, SrtpStream, Suite};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SdesKeys::parse(text);
    }
    let Ok(key) = MasterKey::new(Suite::AesCm128HmacSha1_32, &[7; 16], &[9; 14]) else {
        return;
    };
    let mut s = SrtpStream::new(&key.into());
    let mut out = b"before".to_vec();
    for packet in data.split(|&b| b == 0xff).take(64) {
        match s.unprotect(packet, &mut out) {
            Ok(()) => assert!(out.len() + 4 == packet.len()),
            Err(SrtpError::TooShort | SrtpError::Authentication) => {}
        }
    }
});
