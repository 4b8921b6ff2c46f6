//! Tolerant, sans-IO SIP and SDP parsing for passively captured signalling.
//!
//! Everything here works on borrowed byte slices: the capture layer owns the
//! packets and this crate only points into them, so parsing a datagram costs
//! one small `Vec` of header slices and no per-header allocation (values are
//! only copied when line folding or invalid UTF-8 forces it).
//!
//! Nothing in this crate panics on input bytes; malformed input yields
//! [`SipError`] / [`sdp::SdpError`] or is skipped where skipping loses
//! nothing important (e.g. a header line without a colon).

#![warn(missing_docs, unreachable_pub)]

mod call_state;
mod framing;
mod header;
mod message;
mod multipart;
mod name_addr;
pub mod sdp;
pub mod websocket;

pub use call_state::CallState;
pub use framing::{frame_message, Framing, MAX_BODY_BYTES, MAX_HEADER_BYTES};
pub use header::{canonical_name, header_param, split_list, SplitList};
pub use message::{
    looks_like_sip, Header, SipError, SipMessage, StartLine, MAX_HEADERS, MAX_LINE_BYTES,
};
pub use name_addr::{parse_name_addr, NameAddr};
