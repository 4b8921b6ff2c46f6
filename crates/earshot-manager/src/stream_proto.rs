//! earshot's `stream` push protocol: one JSON header line, then length-prefixed frames.
//!
//! ```text
//! header : JSON object, UTF-8, ending in "\n" (or, instead, an "error: …\n" line and close)
//! frame  : kind u8 | length u32 big-endian | payload (length bytes)
//! kind 1 audio   : seq u32 BE | capture_ts_ns i64 BE | rate u32 BE | channels u8 | samples s16le
//! kind 2 event   : JSON object
//! kind 3 quality : JSON object, one leg
//! kind 4 end     : JSON object, the last frame; the server closes after it
//! kind 5 opus    : seq u32 BE | capture_ts_ns i64 BE | rate u32 BE | channels u8 | one Opus packet
//!                  (20 ms; sent instead of kind 1 when the stream asked for format=opus)
//! other kinds    : reserved; clients skip them
//! ```
//! The full description is in `docs/manager-protocol.md`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const PROTOCOL_VERSION: u32 = 1;
pub const KIND_AUDIO: u8 = 1;
pub const KIND_EVENT: u8 = 2;
pub const KIND_QUALITY: u8 = 3;
pub const KIND_END: u8 = 4;
pub const KIND_OPUS: u8 = 5;
/// Largest payload a decoder accepts: a second of 48 kHz stereo is 192 000 bytes.
pub const MAX_FRAME_PAYLOAD: usize = 1 << 20;
/// Largest header line a decoder accepts.
pub const MAX_HEADER_LINE: usize = 64 * 1024;
const FRAME_HEAD: usize = 5;
const AUDIO_HEAD: usize = 4 + 8 + 4 + 1;

/// How a stream's audio is carried: what `format=` asks for and the header's `format` says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AudioEncoding {
    /// Kind-1 frames of interleaved 16-bit little-endian PCM.
    #[default]
    S16le,
    /// Kind-5 frames, one 20 ms Opus packet (RFC 6716) each: a tenth of PCM's bytes or less,
    /// for listeners across a WAN link.
    Opus,
}

impl AudioEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            AudioEncoding::S16le => "s16le",
            AudioEncoding::Opus => "opus",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "s16le" | "pcm" => Some(AudioEncoding::S16le),
            "opus" => Some(AudioEncoding::Opus),
            _ => None,
        }
    }
}

/// The first line of a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamHeader {
    pub version: u32,
    pub callreference: String,
    pub callid: String,
    pub caller: String,
    pub called: String,
    /// `"s16le"` (kind-1 PCM frames) or `"opus"` (kind-5 Opus frames), as requested.
    pub format: String,
    pub rate: u32,
    pub channels: u8,
    /// `"now"`, `"start"` or `"-SECONDS"`, as requested.
    pub from: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AudioFrame {
    /// Frame counter, from 0, +1 per audio frame; a gap means frames were dropped.
    pub seq: u32,
    /// Capture time of the first sample, ns since the Unix epoch.
    pub capture_ts_ns: i64,
    pub rate: u32,
    pub channels: u8,
    /// Interleaved samples (caller left, called right when stereo).
    pub samples: Vec<i16>,
}

/// One Opus packet of 20 ms, encoded once per call and format however many listen.
#[derive(Clone, Debug, PartialEq)]
pub struct OpusFrame {
    /// As [`AudioFrame::seq`]: kind-1 and kind-5 frames share the counter.
    pub seq: u32,
    /// Capture time of the packet's first sample, ns since the Unix epoch.
    pub capture_ts_ns: i64,
    /// The rate the encoder was fed (8000, 16000 or 48000); a decoder may output another.
    pub rate: u32,
    pub channels: u8,
    pub packet: Vec<u8>,
}

/// A call event. Unknown `event` values from newer servers decode as `Other`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEvent {
    Answered {
        ts_ns: i64,
        code: u16,
    },
    /// A re-INVITE was seen; `codec` is set when the codec changed.
    Reinvite {
        ts_ns: i64,
        codec: Option<String>,
    },
    CodecChange {
        ts_ns: i64,
        party: String,
        codec: String,
        payload_type: u8,
    },
    Hold {
        ts_ns: i64,
    },
    Resume {
        ts_ns: i64,
    },
    Ended {
        ts_ns: i64,
        state: String,
        code: Option<u16>,
    },
    /// What the listener hears and why: sent when it changes, and repeated every few seconds
    /// while it is not `playing`, so a relay never mistakes a ringing or held call for a dead
    /// sensor. `codec` names the codec that cannot be decoded; `party` the one party it
    /// concerns (None: both, or the call as a whole).
    Status {
        ts_ns: i64,
        state: ListenState,
        codec: Option<String>,
        party: Option<String>,
    },
    #[serde(other)]
    Other,
}

/// The state a `status` event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenState {
    /// No RTP yet (the call is ringing) or none for a while.
    WaitingForMedia,
    /// Audio is decoded and sent.
    Playing,
    /// The call is on hold.
    OnHold,
    /// RTP arrives in a codec the sensor cannot decode: the audio sent is silence.
    Undecodable,
    /// The media is SRTP and the sensor has no key: the audio sent is silence, never the
    /// ciphertext played as noise.
    Encrypted,
    /// A state from a newer server.
    #[serde(other)]
    Unknown,
}

impl ListenState {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenState::WaitingForMedia => "waiting_for_media",
            ListenState::Playing => "playing",
            ListenState::OnHold => "on_hold",
            ListenState::Undecodable => "undecodable",
            ListenState::Encrypted => "encrypted",
            ListenState::Unknown => "unknown",
        }
    }
}

/// Once per second per leg.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub ts_ns: i64,
    /// `"caller"` or `"called"`: who sends this leg.
    pub leg: String,
    pub ssrc: u32,
    pub packets: u64,
    pub lost: u64,
    pub loss_pct: f64,
    /// RFC 3550 jitter; None (JSON null) where no clock rate is known (a dynamic payload type
    /// no SDP described, telephone-events alone).
    pub jitter_ms: Option<f64>,
    /// E-model MOS; None (JSON null) where `quality_unknown` says why there is none (a codec
    /// the sensor cannot decode, an unknown clock, events alone): a listener hearing silence
    /// must not read "4.4".
    pub mos: Option<f64>,
    /// `earshot_rtp::QualityUnknown::as_str`: `"undecodable"`, `"clock_unknown"`,
    /// `"events_only"`, `"video"`; null when the MOS is known. Absent from older sensors.
    #[serde(default)]
    pub quality_unknown: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The call ended (BYE, CANCEL, failure or timeout).
    CallEnded,
    /// The client was too slow and the server's queue overflowed.
    Overflow,
    ServerShutdown,
    /// Anything else; `detail` says what.
    Error,
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndFrame {
    pub reason: EndReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Audio(AudioFrame),
    Opus(OpusFrame),
    Event(CallEvent),
    Quality(QualityReport),
    End(EndFrame),
    /// A kind this decoder does not know; kept so callers can log it.
    Unknown {
        kind: u8,
        payload: Vec<u8>,
    },
}

/// What the decoder yields, in order: the header, then frames.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamItem {
    Header(StreamHeader),
    Frame(Frame),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("server refused the stream: {0}")]
    Refused(String),
    #[error("header line longer than {MAX_HEADER_LINE} bytes")]
    HeaderTooLong,
    #[error("bad header: {0}")]
    BadHeader(String),
    #[error("frame payload of {0} bytes exceeds the limit")]
    FrameTooLarge(usize),
    #[error("bad audio frame: {0}")]
    BadAudio(&'static str),
    #[error("bad JSON in frame kind {kind}: {msg}")]
    BadJson { kind: u8, msg: String },
    #[error("data after the end frame")]
    AfterEnd,
    #[error("stream cut inside a frame or header")]
    Truncated,
    #[error("frame too large to encode")]
    EncodeTooLarge,
}

// ---- encoding ----

/// The header line, newline included.
pub fn encode_header(h: &StreamHeader) -> Vec<u8> {
    let mut out = serde_json::to_vec(h).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The refusal sent instead of a header (then the server closes).
pub fn encode_refusal(message: &str) -> Vec<u8> {
    format!("error: {}\n", message.replace('\n', " ")).into_bytes()
}

fn frame(kind: u8, payload: &[u8], out: &mut Vec<u8>) -> Result<(), StreamError> {
    if payload.len() > MAX_FRAME_PAYLOAD {
        return Err(StreamError::EncodeTooLarge);
    }
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends one encoded frame to `out`.
pub fn encode_frame(f: &Frame, out: &mut Vec<u8>) -> Result<(), StreamError> {
    let json = |v: Result<Vec<u8>, serde_json::Error>| {
        v.map_err(|e| StreamError::BadJson {
            kind: 0,
            msg: e.to_string(),
        })
    };
    match f {
        Frame::Audio(a) => {
            if a.channels == 0 || a.samples.len() % a.channels as usize != 0 {
                return Err(StreamError::BadAudio(
                    "samples not a whole number of frames",
                ));
            }
            let mut p = Vec::with_capacity(AUDIO_HEAD + a.samples.len() * 2);
            p.extend_from_slice(&a.seq.to_be_bytes());
            p.extend_from_slice(&a.capture_ts_ns.to_be_bytes());
            p.extend_from_slice(&a.rate.to_be_bytes());
            p.push(a.channels);
            for s in &a.samples {
                p.extend_from_slice(&s.to_le_bytes());
            }
            frame(KIND_AUDIO, &p, out)
        }
        Frame::Opus(o) => {
            if !matches!(o.channels, 1 | 2) || o.packet.is_empty() {
                return Err(StreamError::BadAudio(
                    "an Opus frame needs 1 or 2 channels and a packet",
                ));
            }
            let mut p = Vec::with_capacity(AUDIO_HEAD + o.packet.len());
            p.extend_from_slice(&o.seq.to_be_bytes());
            p.extend_from_slice(&o.capture_ts_ns.to_be_bytes());
            p.extend_from_slice(&o.rate.to_be_bytes());
            p.push(o.channels);
            p.extend_from_slice(&o.packet);
            frame(KIND_OPUS, &p, out)
        }
        Frame::Event(e) => frame(KIND_EVENT, &json(serde_json::to_vec(e))?, out),
        Frame::Quality(q) => frame(KIND_QUALITY, &json(serde_json::to_vec(q))?, out),
        Frame::End(e) => frame(KIND_END, &json(serde_json::to_vec(e))?, out),
        Frame::Unknown { kind, payload } => frame(*kind, payload, out),
    }
}

// ---- decoding ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DecodeState {
    Header,
    Frames,
    Ended,
    Failed,
}

/// Incremental decoder for the client side: feed bytes with [`StreamDecoder::push`], take items
/// with [`StreamDecoder::next_item`]. After an error it stays failed.
#[derive(Debug)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    state: DecodeState,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            state: DecodeState::Header,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete item, `Ok(None)` when more bytes are needed.
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, StreamError> {
        let r = match self.state {
            DecodeState::Header => self.header(),
            DecodeState::Frames => self.frame(),
            DecodeState::Ended if self.buf.is_empty() => Ok(None),
            DecodeState::Ended => Err(StreamError::AfterEnd),
            DecodeState::Failed => Ok(None),
        };
        if r.is_err() {
            self.state = DecodeState::Failed;
            self.buf.clear();
        }
        r
    }

    /// Call at end of input: an error if the stream stopped mid-item or before its end frame.
    pub fn finish(&self) -> Result<(), StreamError> {
        match self.state {
            DecodeState::Ended | DecodeState::Failed if self.buf.is_empty() => Ok(()),
            _ => Err(StreamError::Truncated),
        }
    }

    fn header(&mut self) -> Result<Option<StreamItem>, StreamError> {
        let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
            if self.buf.len() > MAX_HEADER_LINE {
                return Err(StreamError::HeaderTooLong);
            }
            return Ok(None);
        };
        if nl > MAX_HEADER_LINE {
            return Err(StreamError::HeaderTooLong);
        }
        let line: Vec<u8> = self.buf.drain(..=nl).collect();
        let line = String::from_utf8_lossy(&line[..nl]);
        if let Some(msg) = line.strip_prefix("error: ") {
            return Err(StreamError::Refused(msg.trim_end().to_string()));
        }
        let h: StreamHeader =
            serde_json::from_str(&line).map_err(|e| StreamError::BadHeader(e.to_string()))?;
        self.state = DecodeState::Frames;
        Ok(Some(StreamItem::Header(h)))
    }

    fn frame(&mut self) -> Result<Option<StreamItem>, StreamError> {
        let Some(head) = self.buf.get(..FRAME_HEAD) else {
            return Ok(None);
        };
        let kind = head[0];
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME_PAYLOAD {
            return Err(StreamError::FrameTooLarge(len));
        }
        if self.buf.len() < FRAME_HEAD + len {
            return Ok(None);
        }
        let payload: Vec<u8> = self
            .buf
            .drain(..FRAME_HEAD + len)
            .skip(FRAME_HEAD)
            .collect();
        let f = decode_payload(kind, payload)?;
        if matches!(f, Frame::End(_)) {
            self.state = DecodeState::Ended;
        }
        Ok(Some(StreamItem::Frame(f)))
    }
}

fn decode_payload(kind: u8, payload: Vec<u8>) -> Result<Frame, StreamError> {
    let bad = |e: serde_json::Error| StreamError::BadJson {
        kind,
        msg: e.to_string(),
    };
    Ok(match kind {
        KIND_AUDIO => Frame::Audio(decode_audio(&payload)?),
        KIND_OPUS => Frame::Opus(decode_opus(&payload)?),
        KIND_EVENT => Frame::Event(serde_json::from_slice(&payload).map_err(bad)?),
        KIND_QUALITY => Frame::Quality(serde_json::from_slice(&payload).map_err(bad)?),
        KIND_END => Frame::End(serde_json::from_slice(&payload).map_err(bad)?),
        _ => Frame::Unknown { kind, payload },
    })
}

/// The 17-byte head kind-1 and kind-5 frames share: seq, capture time, rate, channels.
struct AudioHead {
    seq: u32,
    capture_ts_ns: i64,
    rate: u32,
    channels: u8,
}

fn audio_head(p: &[u8]) -> Result<(AudioHead, &[u8]), StreamError> {
    let (head, body) = p
        .split_at_checked(AUDIO_HEAD)
        .ok_or(StreamError::BadAudio("shorter than its 17-byte header"))?;
    let seq = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&head[4..12]);
    let rate = u32::from_be_bytes([head[12], head[13], head[14], head[15]]);
    let channels = head[16];
    if !matches!(channels, 1 | 2) {
        return Err(StreamError::BadAudio("channels must be 1 or 2"));
    }
    if rate == 0 {
        return Err(StreamError::BadAudio("rate 0"));
    }
    let head = AudioHead {
        seq,
        capture_ts_ns: i64::from_be_bytes(ts),
        rate,
        channels,
    };
    Ok((head, body))
}

fn decode_opus(p: &[u8]) -> Result<OpusFrame, StreamError> {
    let (head, packet) = audio_head(p)?;
    if packet.is_empty() {
        return Err(StreamError::BadAudio("an Opus frame without a packet"));
    }
    Ok(OpusFrame {
        seq: head.seq,
        capture_ts_ns: head.capture_ts_ns,
        rate: head.rate,
        channels: head.channels,
        packet: packet.to_vec(),
    })
}

fn decode_audio(p: &[u8]) -> Result<AudioFrame, StreamError> {
    let (head, body) = audio_head(p)?;
    let channels = head.channels;
    if body.len() % (2 * channels as usize) != 0 {
        return Err(StreamError::BadAudio(
            "samples not a whole number of frames",
        ));
    }
    let samples = body
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    Ok(AudioFrame {
        seq: head.seq,
        capture_ts_ns: head.capture_ts_ns,
        rate: head.rate,
        channels,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> StreamHeader {
        StreamHeader {
            version: PROTOCOL_VERSION,
            callreference: "563de480a000".into(),
            callid: "1-29453@127.0.0.1".into(),
            caller: "sipp".into(),
            called: "service".into(),
            format: "s16le".into(),
            rate: 8000,
            channels: 2,
            from: "now".into(),
        }
    }

    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame::Audio(AudioFrame {
                seq: 7,
                capture_ts_ns: 1_795_692_898_123_456_789,
                rate: 8000,
                channels: 2,
                samples: vec![0, -1, i16::MAX, i16::MIN, 16, 16],
            }),
            Frame::Opus(OpusFrame {
                seq: 8,
                capture_ts_ns: 1_795_692_898_143_456_789,
                rate: 16000,
                channels: 2,
                packet: vec![0xfc, 0xff, 0xfe],
            }),
            Frame::Event(CallEvent::Answered {
                ts_ns: 5,
                code: 200,
            }),
            Frame::Event(CallEvent::CodecChange {
                ts_ns: 6,
                party: "caller".into(),
                codec: "PCMA".into(),
                payload_type: 8,
            }),
            Frame::Event(CallEvent::Hold { ts_ns: 7 }),
            Frame::Quality(QualityReport {
                ts_ns: 8,
                leg: "called".into(),
                ssrc: 0x343d_a99b,
                packets: 111,
                lost: 1,
                loss_pct: 0.9,
                jitter_ms: Some(0.14),
                mos: Some(4.4),
                quality_unknown: None,
            }),
            Frame::Unknown {
                kind: 99,
                payload: vec![1, 2, 3],
            },
            Frame::End(EndFrame {
                reason: EndReason::CallEnded,
                detail: None,
            }),
        ]
    }

    fn encode_all() -> Vec<u8> {
        let mut out = encode_header(&header());
        for f in sample_frames() {
            encode_frame(&f, &mut out).unwrap();
        }
        out
    }

    fn decode_all(d: &mut StreamDecoder) -> Vec<StreamItem> {
        let mut items = Vec::new();
        while let Some(i) = d.next_item().unwrap() {
            items.push(i);
        }
        items
    }

    #[test]
    fn roundtrip_whole_and_byte_by_byte() {
        let bytes = encode_all();
        let mut expected = vec![StreamItem::Header(header())];
        expected.extend(sample_frames().into_iter().map(StreamItem::Frame));

        let mut d = StreamDecoder::new();
        d.push(&bytes);
        assert_eq!(decode_all(&mut d), expected);
        d.finish().unwrap();

        let mut d = StreamDecoder::new();
        let mut items = Vec::new();
        for b in &bytes {
            d.push(std::slice::from_ref(b));
            items.extend(decode_all(&mut d));
        }
        assert_eq!(items, expected);
    }

    #[test]
    fn audio_layout_is_as_documented() {
        let mut out = Vec::new();
        let f = Frame::Audio(AudioFrame {
            seq: 1,
            capture_ts_ns: 2,
            rate: 8000,
            channels: 1,
            samples: vec![0x0102],
        });
        encode_frame(&f, &mut out).unwrap();
        assert_eq!(
            out,
            [1, 0, 0, 0, 19, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0x1f, 0x40, 1, 0x02, 0x01]
        );
    }

    #[test]
    fn opus_layout_is_as_documented_and_an_empty_packet_is_refused() {
        let mut out = Vec::new();
        let f = Frame::Opus(OpusFrame {
            seq: 1,
            capture_ts_ns: 2,
            rate: 16000,
            channels: 2,
            packet: vec![0xaa, 0xbb],
        });
        encode_frame(&f, &mut out).unwrap();
        assert_eq!(
            out,
            [5, 0, 0, 0, 19, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0x3e, 0x80, 2, 0xaa, 0xbb]
        );
        let mut body = encode_header(&header());
        body.extend_from_slice(&out[..5]);
        let last = body.len() - 1;
        body[last] = 17; // the head alone
        body.extend_from_slice(&out[5..22]);
        let mut d = StreamDecoder::new();
        d.push(&body);
        d.next_item().unwrap();
        assert!(matches!(d.next_item(), Err(StreamError::BadAudio(_))));
        assert_eq!(AudioEncoding::parse("opus"), Some(AudioEncoding::Opus));
        assert_eq!(AudioEncoding::parse("OPUS"), None);
        assert_eq!(AudioEncoding::Opus.as_str(), "opus");
    }

    #[test]
    fn refusal_and_malformed_input() {
        let mut d = StreamDecoder::new();
        d.push(&encode_refusal("call not found"));
        assert_eq!(
            d.next_item(),
            Err(StreamError::Refused("call not found".into()))
        );
        assert_eq!(d.next_item(), Ok(None), "stays failed");

        let mut d = StreamDecoder::new();
        d.push(b"{not json}\n");
        assert!(matches!(d.next_item(), Err(StreamError::BadHeader(_))));

        let mut body = encode_header(&header());
        body.extend_from_slice(&[KIND_AUDIO, 0xff, 0xff, 0xff, 0xff]);
        let mut d = StreamDecoder::new();
        d.push(&body);
        d.next_item().unwrap();
        assert!(matches!(d.next_item(), Err(StreamError::FrameTooLarge(_))));

        let mut body = encode_header(&header());
        body.extend_from_slice(&[KIND_AUDIO, 0, 0, 0, 3, 1, 2, 3]);
        let mut d = StreamDecoder::new();
        d.push(&body);
        d.next_item().unwrap();
        assert!(matches!(d.next_item(), Err(StreamError::BadAudio(_))));

        let mut body = encode_header(&header());
        body.extend_from_slice(&[KIND_END, 0, 0, 0, 2, b'{', b'}']);
        let mut d = StreamDecoder::new();
        d.push(&body);
        d.next_item().unwrap();
        assert!(matches!(
            d.next_item(),
            Err(StreamError::BadJson { kind: 4, .. })
        ));
    }

    #[test]
    fn data_after_end_and_truncation() {
        let mut bytes = encode_all();
        bytes.push(0);
        let mut d = StreamDecoder::new();
        d.push(&bytes);
        while let Ok(Some(_)) = d.next_item() {}
        assert_eq!(d.finish(), Ok(()));

        let bytes = encode_all();
        let mut d = StreamDecoder::new();
        d.push(&bytes[..bytes.len() - 3]);
        while let Ok(Some(_)) = d.next_item() {}
        assert_eq!(d.finish(), Err(StreamError::Truncated));
    }

    #[test]
    fn unknown_event_and_reason_are_tolerated() {
        let e: CallEvent = serde_json::from_str(r#"{"event":"transfer","ts_ns":1}"#).unwrap();
        assert_eq!(e, CallEvent::Other);
        let end: EndFrame = serde_json::from_str(r#"{"reason":"moon_phase"}"#).unwrap();
        assert_eq!(end.reason, EndReason::Unknown);
    }

    #[test]
    fn a_status_event_has_the_documented_shape_and_unknown_states_are_tolerated() {
        let e = CallEvent::Status {
            ts_ns: 5,
            state: ListenState::Undecodable,
            codec: Some("AMR".into()),
            party: Some("caller".into()),
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"event":"status","ts_ns":5,"state":"undecodable","codec":"AMR","party":"caller"}"#
        );
        assert_eq!(serde_json::from_str::<CallEvent>(&text).unwrap(), e);
        let newer = r#"{"event":"status","ts_ns":1,"state":"muted","codec":null,"party":null}"#;
        let e: CallEvent = serde_json::from_str(newer).unwrap();
        assert!(matches!(
            e,
            CallEvent::Status {
                state: ListenState::Unknown,
                ..
            }
        ));
    }

    proptest::proptest! {
        #[test]
        fn decoder_never_panics(head in proptest::bool::ANY,
                                data in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let mut d = StreamDecoder::new();
            if head {
                d.push(&encode_header(&header()));
            }
            d.push(&data);
            for _ in 0..64 {
                match d.next_item() {
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            let _ = d.finish();
        }
    }
}
