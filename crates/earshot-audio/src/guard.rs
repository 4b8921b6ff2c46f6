//! Third-party pure-Rust decoders are young; a panic inside one must not take
//! the capture process down. Catch it, report a malformed payload, and let
//! the caller rebuild the codec state.

use std::panic::{catch_unwind, AssertUnwindSafe};

pub(crate) fn no_panic<T>(f: impl FnOnce() -> T) -> Option<T> {
    // AssertUnwindSafe: on a panic the caller discards the decoder state that
    // `f` may have left half-updated.
    catch_unwind(AssertUnwindSafe(f)).ok()
}
