//! GSM 06.10 full rate through libgsm (Degener/Bormann, TU Berlin; permissive
//! licence), compiled from the sources bundled in the `gsm-sys` crate.
//! RFC 3551 §4.5.8: a payload is one or more 33-octet frames of 160 samples.

use crate::fade::Fade;
use crate::{DecodeError, Decoder};

const FRAME_BYTES: usize = 33;
const FRAME_SAMPLES: usize = 160;

/// Owns one libgsm state.
struct Handle(gsm_sys::Gsm);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the pointer came from gsm_create, is non-null, and is
        // destroyed exactly once here.
        unsafe { gsm_sys::gsm_destroy(self.0) }
    }
}

// SAFETY: a libgsm state is plain heap memory with no thread affinity or
// shared globals; the decoder owns it exclusively and `&mut self` serialises
// every call.
unsafe impl Send for Handle {}

pub(crate) struct GsmDecoder {
    handle: Handle,
    fade: Fade,
}

impl GsmDecoder {
    pub(crate) fn new() -> Option<Self> {
        // SAFETY: gsm_create has no preconditions; null means out of memory.
        let raw = unsafe { gsm_sys::gsm_create() };
        (!raw.is_null()).then(|| Self {
            handle: Handle(raw),
            fade: Fade::new(8000, 1),
        })
    }

    fn decode_frame(&mut self, frame: &[u8]) -> Result<[i16; FRAME_SAMPLES], DecodeError> {
        let mut input = [0u8; FRAME_BYTES];
        input.copy_from_slice(frame);
        // libgsm itself only checks the magic nibble; check it first so a
        // bad frame leaves the state untouched.
        if input[0] >> 4 != 0xD {
            return Err(DecodeError::Malformed {
                codec: "GSM",
                reason: "frame does not start with the 0xD signature".into(),
            });
        }
        let mut pcm = [0i16; FRAME_SAMPLES];
        // SAFETY: the handle is live; input is 33 bytes and pcm 160 samples,
        // exactly what gsm_decode reads and writes.
        let rc =
            unsafe { gsm_sys::gsm_decode(self.handle.0, input.as_mut_ptr(), pcm.as_mut_ptr()) };
        if rc != 0 {
            return Err(DecodeError::Malformed {
                codec: "GSM",
                reason: "libgsm rejected the frame".into(),
            });
        }
        Ok(pcm)
    }
}

impl Decoder for GsmDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        if payload.is_empty() || payload.len() % FRAME_BYTES != 0 {
            return Err(DecodeError::BadLength {
                codec: "GSM",
                len: payload.len(),
                expected: "a multiple of 33",
            });
        }
        // Validate every frame before emitting any audio, so an error
        // appends nothing.
        if payload.chunks_exact(FRAME_BYTES).any(|f| f[0] >> 4 != 0xD) {
            return Err(DecodeError::Malformed {
                codec: "GSM",
                reason: "frame does not start with the 0xD signature".into(),
            });
        }
        let start = out.len();
        for frame in payload.chunks_exact(FRAME_BYTES) {
            let pcm = self.decode_frame(frame)?;
            out.extend_from_slice(&pcm);
        }
        self.fade.remember(&out[start..]);
        Ok(out.len() - start)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.fade.conceal(samples, out);
    }

    fn channels(&self) -> u8 {
        1
    }

    fn sample_rate(&self) -> u32 {
        8000
    }
}
