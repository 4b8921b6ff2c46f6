//! G.729 / G.729A with Annex B through `g729-sys`, a pure-Rust translation of
//! bcg729 (see docs/codecs.md for the licence caveat). G.729A is decoded by
//! the full G.729 decoder: the bitstreams are interoperable.
//!
//! RFC 3551 §4.5.6: a payload is zero or more 10-octet frames (10 ms each),
//! optionally followed by one 2-octet Annex B SID frame.

use crate::guard::no_panic;
use crate::{DecodeError, Decoder};

const FRAME_BYTES: usize = 10;
const SID_BYTES: usize = 2;
const FRAME_SAMPLES: usize = 80;

pub(crate) struct G729Decoder {
    inner: g729_sys::Decoder,
    /// After a SID the sender is in DTX: missing frames are comfort noise,
    /// not losses.
    in_dtx: bool,
}

impl G729Decoder {
    pub(crate) fn new() -> Self {
        Self {
            inner: g729_sys::Decoder::new(),
            in_dtx: false,
        }
    }

    fn run(&mut self, frame: &[u8], erased: bool, sid: bool) -> Option<[i16; FRAME_SAMPLES]> {
        let inner = &mut self.inner;
        let pcm = no_panic(|| inner.decode(frame, erased, sid, false));
        if pcm.is_none() {
            self.inner = g729_sys::Decoder::new();
        }
        pcm
    }
}

impl Decoder for G729Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        let sid_len = payload.len() % FRAME_BYTES;
        if payload.is_empty() || (sid_len != 0 && sid_len != SID_BYTES) {
            return Err(DecodeError::BadLength {
                codec: "G729",
                len: payload.len(),
                expected: "10*n bytes, optionally plus a 2-byte SID",
            });
        }
        let (speech, sid) = payload.split_at(payload.len() - sid_len);
        let start = out.len();
        for frame in speech.chunks_exact(FRAME_BYTES) {
            let Some(pcm) = self.run(frame, false, false) else {
                out.truncate(start);
                return Err(DecodeError::Malformed {
                    codec: "G729",
                    reason: "decoder failed on this frame; state reset".into(),
                });
            };
            out.extend_from_slice(&pcm);
            self.in_dtx = false;
        }
        if !sid.is_empty() {
            match self.run(sid, false, true) {
                Some(pcm) => out.extend_from_slice(&pcm),
                None => {
                    out.truncate(start);
                    return Err(DecodeError::Malformed {
                        codec: "G729",
                        reason: "decoder failed on the SID frame; state reset".into(),
                    });
                }
            }
            self.in_dtx = true;
        }
        Ok(out.len() - start)
    }

    /// Frame erasure concealment, or Annex B comfort noise while in DTX.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let target = out.len() + samples;
        while out.len() < target {
            let dtx = self.in_dtx;
            let pcm = self.run(&[], !dtx, dtx).unwrap_or([0; FRAME_SAMPLES]);
            let take = (target - out.len()).min(FRAME_SAMPLES);
            out.extend_from_slice(pcm.get(..take).unwrap_or_default());
        }
    }

    fn channels(&self) -> u8 {
        1
    }

    fn sample_rate(&self) -> u32 {
        8000
    }
}
