//! Memory freed after a peak of calls goes back to the system (its own test binary: it reads
//! the whole process's RSS, which other tests running alongside would disturb).

use earshot_sensor::memory;

/// Resident set of this process, in bytes, from /proc/self/statm (pages).
#[cfg(target_os = "linux")]
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm's second field");
    pages * 4096
}

/// What a peak of calls leaves: many small records freed, with a few survivors scattered
/// between them (calls that are still up, a later allocation), so the heap cannot simply be
/// cut at its top. glibc keeps such free memory for the process; the sensor's trim gives the
/// pages back. Checked on what the kernel reports resident, not on time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn memory_freed_after_a_peak_of_calls_is_given_back() {
    const RECORDS: usize = 400_000;
    const RECORD: usize = 400;
    let before = rss_bytes();
    let mut records: Vec<Vec<u8>> = (0..RECORDS).map(|i| vec![i as u8; RECORD]).collect();
    let peak = rss_bytes();
    assert!(
        peak - before > RECORDS * RECORD / 2,
        "the records are resident"
    );
    // Every 64th record survives: about one per 25 KB of heap, so no page run is left whole
    // at the top and malloc's own trimming of its top cannot help.
    let survivors: Vec<Vec<u8>> = records
        .drain(..)
        .enumerate()
        .filter(|(i, _)| i % 64 == 0)
        .map(|(_, r)| r)
        .collect();
    drop(records);
    let freed = rss_bytes();
    memory::give_back();
    let after = rss_bytes();
    let grown = peak - before;
    eprintln!(
        "RSS before {before}, peak {peak}, after free {freed}, after give_back {after} \
         ({} survivors)",
        survivors.len()
    );
    // Not all of it: a page that holds a survivor stays, and glibc gives back only whole
    // pages inside free chunks. Without the trim nearly all of it stays (freed ≈ peak).
    assert!(
        after < before + grown / 2,
        "after the trim {} bytes of the peak's {grown} are still resident",
        after - before
    );
}

/// The hook trims once the table has fallen well below its peak, and not while it is full.
#[test]
fn the_hook_trims_after_many_calls_ended() {
    assert!(!memory::after_expire(50_000));
    assert!(!memory::after_expire(49_000));
    assert!(!memory::after_expire(1_000), "due");
    assert!(memory::after_expire(1_000), "a tick later");
    assert!(!memory::after_expire(500));
    assert!(
        !memory::after_expire(500),
        "fewer than TRIM_AFTER_CALLS gone since"
    );
}
