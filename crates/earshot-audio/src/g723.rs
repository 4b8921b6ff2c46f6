//! G.723.1 (ITU-T: 6.3 and 5.3 kbit/s, Annex A SID frames) carried in RTP as RFC 3551 §4.5.3
//! says: one or more 30 ms frames back to back, each frame's size named by the two low bits of
//! its first octet. Decoded by libavcodec's `g723_1` decoder (cargo feature `libavcodec`, see
//! `lavc.rs`); the framing is written here, so a bad packet is refused before any frame of it
//! is decoded.
//!
//! Silence: after a SID frame the sender may stop sending (DTX); the decoder then makes comfort
//! noise from the SID's level and spectrum when it is handed "untransmitted" frames, which is
//! what [`Decoder::conceal`] does after a SID. After speech, a gap is a loss: the last audio
//! fades out.

use crate::DecodeError;

/// Frames one payload may carry: 16 × 30 ms (RFC 3551 sets no limit; senders put 1–4). More
/// would let a small packet of SID frames ask for a second of audio.
pub const MAX_FRAMES: usize = 16;
/// Samples of one 30 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 240;
/// The two-bit frame types (RFC 3551 §4.5.3, G.723.1 Annex A).
const RATE_63: u8 = 0;
const RATE_53: u8 = 1;
const SID: u8 = 2;

/// The frame type and size in bytes of the frame starting with `first`: 24 (6.3 kbit/s), 20
/// (5.3 kbit/s) or 4 (SID). Type 3 is "untransmitted" inside a codec, reserved in RTP: `None`.
pub fn frame_len(first: u8) -> Option<(u8, usize)> {
    match first & 3 {
        RATE_63 => Some((RATE_63, 24)),
        RATE_53 => Some((RATE_53, 20)),
        SID => Some((SID, 4)),
        _ => None,
    }
}

/// Splits `payload` into its frames: `(start, length, type)` of each in `frames`; returns how
/// many. Every frame must lie within the payload, and there must be at least one.
pub fn split(
    payload: &[u8],
    frames: &mut [(usize, usize, u8); MAX_FRAMES],
) -> Result<usize, DecodeError> {
    let malformed = |reason: &str| DecodeError::Malformed {
        codec: "G.723.1",
        reason: reason.into(),
    };
    let mut pos = 0;
    let mut count = 0;
    while pos < payload.len() {
        let (ty, len) =
            frame_len(payload[pos]).ok_or_else(|| malformed("reserved frame type 3"))?;
        if pos + len > payload.len() {
            return Err(DecodeError::BadLength {
                codec: "G.723.1",
                len: payload.len(),
                expected: "frames of 24, 20 or 4 bytes",
            });
        }
        let slot = frames
            .get_mut(count)
            .ok_or_else(|| malformed("more than 16 frames in one packet"))?;
        *slot = (pos, len, ty);
        count += 1;
        pos += len;
    }
    if count == 0 {
        return Err(DecodeError::BadLength {
            codec: "G.723.1",
            len: 0,
            expected: "frames of 24, 20 or 4 bytes",
        });
    }
    Ok(count)
}

#[cfg(feature = "libavcodec")]
pub(crate) use decoder::G723Decoder;

#[cfg(feature = "libavcodec")]
mod decoder {
    use super::*;
    use crate::fade::Fade;
    use crate::lavc::Lavc;
    use crate::Decoder;

    /// What libavcodec's decoder takes for a frame the sender did not send (type 3, one
    /// byte): comfort noise after a SID.
    const UNTRANSMITTED: [u8; 1] = [3];

    pub(crate) struct G723Decoder {
        lavc: Lavc,
        fade: Fade,
        /// The last frame was a SID: the sender is in DTX, a gap is comfort noise.
        in_dtx: bool,
    }

    impl G723Decoder {
        pub(crate) fn new() -> Option<G723Decoder> {
            Some(G723Decoder {
                lavc: Lavc::open(c"g723_1", &[])?,
                fade: Fade::new(8000, 1),
                in_dtx: false,
            })
        }

        /// One frame into exactly FRAME_SAMPLES samples, so the stream's time stays that of
        /// its RTP timestamps whatever the library returns.
        fn frame(&mut self, frame: &[u8], out: &mut Vec<i16>) -> bool {
            let start = out.len();
            let ok = self.lavc.decode(frame, out).is_ok();
            out.resize(start + FRAME_SAMPLES, 0);
            ok
        }
    }

    impl Decoder for G723Decoder {
        fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
            let mut frames = [(0, 0, 0); MAX_FRAMES];
            let count = split(payload, &mut frames)?;
            let start = out.len();
            for &(at, len, _) in &frames[..count] {
                if !self.frame(&payload[at..at + len], out) {
                    out.truncate(start);
                    return Err(DecodeError::Malformed {
                        codec: "G.723.1",
                        reason: "libavcodec rejected a frame".into(),
                    });
                }
            }
            self.in_dtx = frames[count - 1].2 == SID;
            self.fade.remember(&out[start..]);
            Ok(count * FRAME_SAMPLES)
        }

        fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
            let mut left = samples;
            if self.in_dtx {
                while left >= FRAME_SAMPLES {
                    let start = out.len();
                    self.frame(&UNTRANSMITTED, out);
                    self.fade.remember(&out[start..]);
                    left -= FRAME_SAMPLES;
                }
            }
            self.fade.conceal(left, out);
        }

        fn channels(&self) -> u8 {
            1
        }

        fn sample_rate(&self) -> u32 {
            8000
        }
    }
}
