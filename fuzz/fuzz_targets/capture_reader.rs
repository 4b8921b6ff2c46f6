#![no_main]
//! Any byte string is a capture file to the reader: it must end in frames, one error or
//! nothing, and never panic or allocate beyond its fixed buffer.

use earshot_wire::CaptureReader;
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::new(Box::new(Cursor::new(data.to_vec()))) else {
        return;
    };
    let mut errors = 0;
    while let Some(frame) = reader.next_frame() {
        match frame {
            Ok(f) => assert!(f.data.len() <= earshot_wire::capture::MAX_RECORD),
            Err(_) => errors += 1,
        }
    }
    assert!(errors <= 1, "more than one error before the end");
});
