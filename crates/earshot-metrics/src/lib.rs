//! What `/metrics` needs and nothing more: the Prometheus text exposition format (version
//! 0.0.4) written by hand, and histograms made of relaxed atomics.
//!
//! The counters themselves live where their events happen (plain `AtomicU64`s in the sensor and
//! the player); this crate only reads them into text. A registry-based client library would
//! have meant moving every existing counter behind its types, and its histograms take a lock
//! per observation; a fixed set of atomic buckets never waits, which the packet path requires.

#![warn(missing_docs, unreachable_pub)]

mod access;
mod histogram;
pub mod request;
mod text;

pub use access::{refusal_reason, scrape_allowed};
pub use histogram::Histogram;
pub use text::{Exposition, CONTENT_TYPE};
