//! L16 (RFC 3551 §4.5.11): uncompressed 16-bit big-endian PCM, interleaved.

use crate::fade::Fade;
use crate::{DecodeError, Decoder};

pub(crate) struct L16Decoder {
    rate: u32,
    channels: u8,
    fade: Fade,
}

impl L16Decoder {
    pub(crate) fn new(rate: u32, channels: u8) -> Option<Self> {
        (rate > 0 && (1..=8).contains(&channels)).then(|| Self {
            rate,
            channels,
            fade: Fade::new(rate, channels),
        })
    }
}

impl Decoder for L16Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        let frame_bytes = 2 * usize::from(self.channels);
        if payload.len() % frame_bytes != 0 {
            return Err(DecodeError::BadLength {
                codec: "L16",
                len: payload.len(),
                expected: "a multiple of 2 bytes per channel",
            });
        }
        let start = out.len();
        out.extend(
            payload
                .chunks_exact(2)
                .map(|pair| i16::from_be_bytes([pair[0], pair[1]])),
        );
        self.fade.remember(&out[start..]);
        Ok(payload.len() / frame_bytes)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.fade.conceal(samples, out);
    }

    fn channels(&self) -> u8 {
        self.channels
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }
}
