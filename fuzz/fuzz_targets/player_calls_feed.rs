#![no_main]
//! The player's copy of a sensor's call table, fed any lines a sensor (or something
//! pretending to be one) sends on the `calls` subscription: never a panic, and the table
//! holds at most one call per line taken.

use earshot_player::directory::SensorCalls;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut calls = SensorCalls::new(1);
    calls.begin();
    let mut lines = 0;
    for line in data.split(|&b| b == b'\n') {
        let _ = calls.on_line(line);
        lines += 1;
        assert!(calls.len() <= lines);
        for c in calls.calls() {
            let _ = c.key();
            let _ = c.matches("1", "sensor");
        }
    }
});
