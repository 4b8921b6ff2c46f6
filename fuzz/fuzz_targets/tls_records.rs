#![no_main]
//! A TLS connection from outside: any bytes on its two sides, in any chunks, interleaved, with
//! a key log that may or may not hold secrets for it (some bytes of the input are key log
//! lines, so a hello's random can match them). Nothing panics; a connection never keeps more
//! than its limits waiting; no plaintext handed on is longer than a record allows; the shared
//! budget comes back to zero when the connection is closed.

use earshot_keylog::KeyLog;
use earshot_tlsread::{Budget, Connection, Dir, Output, MAX_BODY, MAX_WAITING_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // [key log length (1 byte)] [key log] then pieces: [flags] [len] [bytes...]
    let Some((&keylog_len, rest)) = data.split_first() else {
        return;
    };
    let (keylog, mut rest) = rest.split_at(usize::from(keylog_len).min(rest.len()));
    let mut log = KeyLog::with_capacity(4);
    let mut conn = Connection::new();
    let mut budget = Budget::new(64 << 10);
    let mut check = |o: Output<'_>| {
        if let Output::Data { bytes, .. } = o {
            assert!(bytes.len() <= MAX_BODY);
        }
    };
    let mut fed_keys = false;
    while let [flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (piece, after) = tail.split_at(n);
        let dir = if flags & 1 == 0 {
            Dir::Client
        } else {
            Dir::Server
        };
        conn.feed(dir, i64::from(*flags), piece, &mut budget, &mut check);
        if flags & 2 != 0 && !fed_keys {
            // The key log arrives late, once, mid-connection.
            log.feed(keylog);
            log.finish();
            fed_keys = true;
        }
        conn.poll_keys(&log, &mut budget, &mut check);
        assert!(budget.used <= budget.max);
        assert!(budget.used <= MAX_WAITING_BYTES);
        rest = after;
    }
    conn.close(&mut budget);
    assert_eq!(budget.used, 0);
});
