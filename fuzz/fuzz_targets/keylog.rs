#![no_main]
//! A key log from anywhere (a file a PBX writes, a socket): any bytes in any chunks. Nothing
//! panics, a partial line never outgrows MAX_LINE, the store never outgrows its capacity.

use earshot_keylog::KeyLog;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut log = KeyLog::with_capacity(8);
    // The first byte picks the chunk size, so lines are split at every place over the runs.
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for chunk in data.chunks(step) {
        log.feed(chunk);
    }
    log.finish();
    assert!(log.len() <= 8);
    let stats = log.stats();
    assert!(stats.secrets + stats.comments + stats.unknown_labels + stats.malformed <= data.len() as u64 + 1);
});
