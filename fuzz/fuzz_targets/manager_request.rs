#![no_main]
//! A Manager API client's bytes, as the server sees them: segments, pauses and a half-close
//! through the request framing, then the command line through the command parser. The first
//! byte of each record picks what happens next, so one input is a whole conversation.

use earshot_manager::{authorize, parse_command, Request, RequestReader, MAX_REQUEST_BYTES};
use libfuzzer_sys::fuzz_target;

fn check(request: &Request) {
    assert!(request.command_line.len() <= 3 * MAX_REQUEST_BYTES);
    let _ = authorize(Some(b"s3cret"), request);
    let _ = authorize(None, request);
    command(&request.command_line);
}

fn command(line: &str) {
    match parse_command(line) {
        Ok(c) => drop(format!("{c:?}")),
        Err(e) => {
            let reply = e.reply();
            // Some replies are empty on purpose (VoIPmonitor's listen_stop), none is long.
            assert!(reply.len() < 4096);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // One mode byte: the whole rest straight into the command parser, or a conversation.
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        command(&String::from_utf8_lossy(rest));
        return;
    }
    let mut reader = RequestReader::new();
    let mut results = 0;
    while let Some((&op, tail)) = rest.split_first() {
        let result = match op % 8 {
            6 => reader.on_idle_timeout(),
            7 => reader.on_eof(),
            n => {
                // Segment lengths up to 64 KiB, so the size limit is reachable.
                let len = (usize::from(op >> 3) << (n * 2)).min(tail.len());
                let (segment, tail) = tail.split_at(len);
                rest = tail;
                let result = reader.push(segment);
                if let Some(r) = &result {
                    assert!(reader.is_done(), "a result but not done: {r:?}");
                }
                result
            }
        };
        if matches!(op % 8, 6 | 7) {
            rest = tail;
        }
        if let Some(r) = result {
            results += 1;
            match r {
                Ok(request) => check(&request),
                Err(e) => assert!(!e.reply().is_empty()),
            }
        }
    }
    assert!(results <= 1, "one connection, at most one request");
});
