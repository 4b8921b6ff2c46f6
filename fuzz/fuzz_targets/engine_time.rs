#![no_main]
//! The call engine on frame scripts whose capture times are any i64: time jumping to either
//! end of the clock. Known to fail (an overflow in `Engine::expire`, reproducer in
//! `regressions/engine_time/`) until the engine's time handling saturates; see FUZZING.md.

#[path = "common/engine.rs"]
mod engine;

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::run_input(data, engine::ANY_TIMES));
