//! iLBC (RFC 3951) in RTP as RFC 3952 says: whole frames of 38 bytes (20 ms mode) or 50 bytes
//! (30 ms mode), several a packet. Decoded by libavcodec's `ilbc` decoder (cargo feature
//! `libavcodec`, see `lavc.rs`).
//!
//! The mode comes from the SDP (`mode=20`, else 30 ms), but senders do not always keep to it:
//! a payload whose length fits only the other mode's frames is decoded in that mode, by a
//! second decoder opened the first time it is needed (at most two per stream, never one per
//! packet).

use crate::DecodeError;

/// Frames one payload may carry: 16 (RFC 3952 sets no limit).
pub const MAX_FRAMES: usize = 16;

/// Bytes and samples of one frame in `mode` (20 or 30 ms).
pub fn frame_size(mode: u8) -> (usize, usize) {
    if mode == 20 {
        (38, 160)
    } else {
        (50, 240)
    }
}

/// The mode a payload of `len` bytes is in, preferring `preferred`, and its frame count.
pub fn mode_of(len: usize, preferred: u8) -> Result<(u8, usize), DecodeError> {
    let other = if preferred == 20 { 30 } else { 20 };
    let fits = |mode: u8| {
        let (bytes, _) = frame_size(mode);
        (len > 0 && len % bytes == 0).then_some((mode, len / bytes))
    };
    let (mode, frames) = fits(preferred)
        .or_else(|| fits(other))
        .ok_or(DecodeError::BadLength {
            codec: "iLBC",
            len,
            expected: "a multiple of 38 (20 ms) or 50 (30 ms) bytes",
        })?;
    if frames > MAX_FRAMES {
        return Err(DecodeError::Malformed {
            codec: "iLBC",
            reason: "more than 16 frames in one packet".into(),
        });
    }
    Ok((mode, frames))
}

#[cfg(feature = "libavcodec")]
pub(crate) use decoder::IlbcDecoder;

#[cfg(feature = "libavcodec")]
mod decoder {
    use super::*;
    use crate::fade::Fade;
    use crate::lavc::Lavc;
    use crate::Decoder;

    pub(crate) struct IlbcDecoder {
        /// Decoders for the 20 and 30 ms modes; the SDP's is opened at once.
        modes: [Option<Lavc>; 2],
        /// The SDP's mode.
        preferred: u8,
        fade: Fade,
    }

    fn slot(mode: u8) -> usize {
        usize::from(mode != 20)
    }

    fn open(mode: u8) -> Option<Lavc> {
        let (bytes, _) = frame_size(mode);
        // libavcodec's iLBC decoder takes its mode from block_align (38 or 50).
        Lavc::open(c"ilbc", &[(c"block_align", bytes as i64)])
    }

    impl IlbcDecoder {
        pub(crate) fn new(mode: u8) -> Option<IlbcDecoder> {
            let mode = if mode == 20 { 20 } else { 30 };
            let mut modes = [None, None];
            modes[slot(mode)] = Some(open(mode)?);
            Some(IlbcDecoder {
                modes,
                preferred: mode,
                fade: Fade::new(8000, 1),
            })
        }
    }

    impl Decoder for IlbcDecoder {
        fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
            let (mode, frames) = mode_of(payload.len(), self.preferred)?;
            let (bytes, samples) = frame_size(mode);
            let lavc = match &mut self.modes[slot(mode)] {
                Some(lavc) => lavc,
                empty => empty.insert(open(mode).ok_or_else(|| DecodeError::Malformed {
                    codec: "iLBC",
                    reason: format!("no libavcodec decoder for the {mode} ms mode"),
                })?),
            };
            let start = out.len();
            for frame in payload.chunks_exact(bytes) {
                let at = out.len();
                if lavc.decode(frame, out).is_err() {
                    out.truncate(start);
                    return Err(DecodeError::Malformed {
                        codec: "iLBC",
                        reason: "libavcodec rejected a frame".into(),
                    });
                }
                // Exactly one frame's samples, so time follows the RTP timestamps.
                out.resize(at + samples, 0);
            }
            self.fade.remember(&out[start..]);
            Ok(frames * samples)
        }

        fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
            // libavcodec's iLBC decoder has no entry for a lost frame (an empty packet means
            // end of stream), so a loss fades out like the codecs without concealment.
            self.fade.conceal(samples, out);
        }

        fn channels(&self) -> u8 {
            1
        }

        fn sample_rate(&self) -> u32 {
            8000
        }
    }
}
