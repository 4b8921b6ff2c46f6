//! The call-tracking core of earshot: bytes and timestamps in; SIP dialogs, their RTP streams
//! and per-stream quality out. Deterministic and free of I/O, so the live sensor and offline
//! analysis run exactly the same code and every behaviour can be tested from a capture.
//!
//! * [`Engine`] takes link-layer frames (or already decapsulated [`earshot_wire::Packet`]s)
//!   in capture order and keeps the [`Call`] table.
//! * A [`Sink`] passed with every packet hears about call changes and receives each RTP
//!   packet that belongs to a call, for the audio path, without the engine ever waiting on it.

mod call;
mod correlation;
mod engine;
mod flows;
mod lookahead;
mod media;
mod orphan_sdp;
mod quality;
mod rtp_only;
mod signalling;
mod stream;
mod tcp_sip;

pub use call::{Call, CallKey, CallState, MediaEndpoint, Party, PayloadFormat, SipRecord};
pub use correlation::{
    CallGroup, Correlation, CorrelationError, CorrelationKind, HeaderRegex, Leg, MAX_KEYS_PER_CALL,
    MAX_KEY_BYTES,
};
pub use earshot_rtp::{QualityPoint, Timeline, TimelineMode};
pub use engine::{
    CaptureCounters, Config, DtlsTotals, Engine, Event, NullSink, RtpPacket, Sink, SrtpTotals,
    TableSizes,
};
pub use lookahead::{Peek, Peeker};
pub use quality::{all_points, point_mos, CaptureGaps, FarEndReport, MAX_CAPTURE_GAPS};
pub use rtp_only::{is_rtp_only, RTP_ONLY_PREFIX};
pub use stream::{is_video_format, KeySource, QualityUnknown, Stream, StreamKey};
pub use tcp_sip::{TcpMediaStats, TlsStats};
