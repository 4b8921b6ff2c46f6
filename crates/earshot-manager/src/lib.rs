//! Sans-IO core of earshot's Manager API (TCP 5029), compatible with VoIPmonitor's.
//!
//! The network server owns sockets and timers; this crate owns the protocol:
//! - [`framing::RequestReader`] decides when a request is complete and splits off `auth`;
//! - [`command::parse_command`] turns the command line into a [`command::Command`];
//! - [`replies`] and [`listcalls`] produce reply bytes (VoIPmonitor strings byte-exact);
//! - [`listing::Listing`] is the published call table, persistent so a new version costs what
//!   changed, and [`calls_feed`] turns two versions into `calls` events;
//! - [`stream_proto`] encodes and decodes earshot's `stream` push protocol.
//!
//! The wire protocol is documented in `docs/manager-protocol.md`.

pub mod callref;
pub mod calls_feed;
pub mod command;
pub mod framing;
pub mod ladder;
pub mod listcalls;
pub mod listing;
pub mod quality;
pub mod replies;
pub mod stream_proto;

pub use callref::{CallRef, CallRefError, CallRefGenerator};
pub use command::{
    parse_command, Command, CommandError, ListCallsFormat, ListFilter, ListParams, StreamFrom,
    StreamRequest,
};
pub use framing::{
    authorize, encode_request, Request, RequestError, RequestReader, IDLE_TIMEOUT,
    MAX_REQUEST_BYTES,
};
pub use listcalls::{CallSummary, CallText, GroupSummary, LegSummary, ListContext, FIELDS};
pub use listing::Listing;

/// Default Manager API address: loopback only, like VoIPmonitor.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:5029";
