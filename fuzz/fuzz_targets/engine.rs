#![no_main]
//! The call engine on frame scripts with capture times a classic pcap or HEP source can produce; see
//! `common/engine.rs`.

#[path = "common/engine.rs"]
mod engine;

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::run_input(data, engine::CAPTURE_TIMES));
