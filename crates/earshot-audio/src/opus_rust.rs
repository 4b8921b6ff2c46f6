//! Opus through `opus-decoder`, a pure-Rust decoder that passes the RFC 8251
//! conformance vectors (feature `opus-rust`, used only without `libopus`). It
//! is correct but slow: its CELT inverse MDCT is a direct O(N²) sum with a
//! `cos()` per term, about 350 frames/s per core.

use crate::guard::no_panic;
use crate::{DecodeError, Decoder};

/// 120 ms at 48 kHz: the longest an Opus packet can be.
const MAX_FRAME: usize = 5760;

pub(crate) struct OpusDecoder {
    inner: opus_decoder::OpusDecoder,
    channels: u8,
    scratch: Vec<i16>,
}

impl OpusDecoder {
    pub(crate) fn new(channels: u8) -> Option<Self> {
        if !(1..=2).contains(&channels) {
            return None;
        }
        let inner = opus_decoder::OpusDecoder::new(48000, usize::from(channels)).ok()?;
        Some(Self {
            inner,
            channels,
            scratch: vec![0; MAX_FRAME * usize::from(channels)],
        })
    }

    fn reset(&mut self) {
        if let Ok(fresh) = opus_decoder::OpusDecoder::new(48000, usize::from(self.channels)) {
            self.inner = fresh;
        }
    }

    /// One decoder call; an empty packet asks for concealment.
    fn run(&mut self, packet: &[u8]) -> Result<usize, String> {
        let inner = &mut self.inner;
        let scratch = &mut self.scratch;
        match no_panic(|| inner.decode(packet, scratch, false)) {
            Some(Ok(n)) => Ok(n.min(MAX_FRAME)),
            Some(Err(e)) => Err(e.to_string()),
            None => {
                self.reset();
                Err("decoder panicked; state reset".into())
            }
        }
    }
}

impl Decoder for OpusDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        if payload.is_empty() {
            return Err(DecodeError::BadLength {
                codec: "opus",
                len: 0,
                expected: "at least the TOC byte",
            });
        }
        let n = self.run(payload).map_err(|reason| DecodeError::Malformed {
            codec: "opus",
            reason,
        })?;
        let ch = usize::from(self.channels);
        out.extend_from_slice(self.scratch.get(..n * ch).unwrap_or_default());
        Ok(n)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let ch = usize::from(self.channels);
        let target = out.len() + samples * ch;
        while out.len() < target {
            let n = match self.run(&[]) {
                Ok(n) if n > 0 => n,
                _ => {
                    out.resize(target, 0);
                    break;
                }
            };
            let take = (target - out.len()).min(n * ch);
            out.extend_from_slice(self.scratch.get(..take).unwrap_or_default());
        }
    }

    fn channels(&self) -> u8 {
        self.channels
    }

    fn sample_rate(&self) -> u32 {
        48000
    }
}
