//! The live sensor: its one job is to run a [`config::SensorConfig`] — capture sources feeding
//! the call engine on its own thread, and the hand-off of calls and audio to listeners over the
//! Manager API.
//!
//! The shape, as the player's: [`config::FileConfig`] (the TOML file) and [`config::Overrides`]
//! (the command line, as plain data) go through [`config::resolve`] into a checked
//! [`config::SensorConfig`]; [`Sensor::start`] spawns everything it describes and returns a
//! [`SensorHandle`] (`local_addr`, `reload`, `shutdown`). The binary adds only clap and signals.
//!
//! The one rule this crate is built around: nothing waits on the packet path. Sources hand
//! frames to the pipeline through a bounded queue and count what does not fit (internal drops,
//! kept apart from the kernel's drops); the pipeline hands audio to listeners through bounded
//! queues and drops a listener that falls behind.

pub mod admission;
pub mod audit;
pub mod clock;
pub mod config;
pub mod counters;
mod fanout;
pub mod hep;
pub mod hep_policy;
pub mod keylog_watch;
pub mod listener;
pub mod live;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod queue;
pub mod replay;
pub mod rewind;
pub mod server;
pub mod source;
pub mod start;
pub mod summary;
mod waiting_room;

pub use counters::SensorCounters;
pub use pipeline::{Control, PipelineConfig, Shared, Snapshot};
pub use source::{FrameBatch, FrameSender, OwnedFrame, StopFlag};
pub use start::{Reloader, Sensor, SensorHandle, StartError};
