#![no_main]
//! The DTLS-SRTP observer: any datagrams on one 5-tuple, both ways, in pieces a 2-byte length
//! cuts (its top bit: which way). Nothing panics; whenever the hellos gave a client random, a key log holding a secret
//! for it keys the handshake (the exporter runs on whatever suite and profile came in), and
//! keys exist only for a handshake that was read.

use earshot_dtls::{DtlsObserver, Lookup};
use earshot_keylog::{KeyLog, Label};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

fuzz_target!(|data: &[u8]| {
    let a = SocketAddr::from(([10, 0, 0, 1], 5000));
    let b = SocketAddr::from(([10, 0, 0, 2], 6000));
    let mut o = DtlsObserver::new();
    let mut rest = data;
    let mut sent = 0u64;
    while let [hi, lo, tail @ ..] = rest {
        let n = u16::from_be_bytes([*hi, *lo]);
        let take = usize::from(n & 0x7fff).min(tail.len());
        let (datagram, after) = tail.split_at(take);
        // The top bit of the length says who sent it.
        let (src, dst) = if n & 0x8000 == 0 { (a, b) } else { (b, a) };
        o.on_datagram(src, dst, datagram);
        sent += 1;
        rest = after;
    }
    let stats = o.stats();
    assert_eq!(stats.datagrams, sent);
    let mut log = KeyLog::default();
    if let Some(random) = o.client_random().copied() {
        log.insert(random, Label::ClientRandom, vec![0x42; 48].into());
    }
    let found = o.look_up(&log);
    if found != Lookup::Unchanged {
        assert!(stats.handshakes > 0);
        let keys = o.keys().expect("keyed");
        let _ = keys.master_key(keys.client);
        let _ = keys.master_key(keys.server);
    }
    assert_eq!(o.look_up(&log), Lookup::Unchanged, "the same key log is not searched twice");
});
