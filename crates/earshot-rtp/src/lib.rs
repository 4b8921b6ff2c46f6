//! RTP and RTCP: zero-copy packet views and per-stream quality (RFC 3550 loss and jitter,
//! ITU-T G.107 E-model MOS). Sans-IO: times are nanoseconds supplied by the caller.

mod header;
mod mos;
mod party;
mod quality_unknown;
mod rtcp;
mod stats;
mod timeline;

pub use header::{is_rtcp, Rtp, TelephoneEvent};
pub use mos::{
    codec_impairment, known_impairment, mode_dependent, mos_from_r, r_factor, Impairment,
};
pub use party::Party;
pub use quality_unknown::QualityUnknown;
pub use rtcp::{report_blocks, ReportBlock};
pub use stats::{StreamStats, TSHARK_COMPATIBLE_NOTE};
pub use timeline::{QualityPoint, Timeline, TimelineMode};
