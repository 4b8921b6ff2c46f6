//! AMR-WB encoding through VisualOn's encoder (Debian `libvo-amrwbenc-dev`, Apache-2.0; the
//! encoder FFmpeg's `libvo_amrwbenc` uses), for the demo's AMR-WB call. Its three functions are
//! declared here by hand, as OpenCORE's decoders are. What it writes per 20 ms frame is the
//! RFC 4867 storage format (a header byte naming the frame type, then the speech bits), which
//! is an octet-aligned RTP payload's ToC and frame once a CMR byte is put in front.

use crate::EncodeError;
use std::ffi::{c_int, c_short, c_uchar, c_void};

/// Samples of one 20 ms frame at 16 kHz.
pub const WB_FRAME: usize = 320;
/// The largest storage frame (mode 8, 23.85 kbit/s: 1 + 60 bytes).
const MAX_FRAME_BYTES: usize = 61;
/// "No mode requested" in an octet-aligned payload's CMR byte (RFC 4867 §4.3.1).
const CMR_NONE: u8 = 0xF0;

// Linked by build.rs through pkg-config (vo-amrwbenc).
extern "C" {
    fn E_IF_init() -> *mut c_void;
    fn E_IF_encode(
        state: *mut c_void,
        mode: c_int,
        speech: *const c_short,
        out: *mut c_uchar,
        dtx: c_int,
    ) -> c_int;
    fn E_IF_exit(state: *mut c_void);
}

/// One AMR-WB encoder, at one mode, without DTX (every frame is speech).
pub struct AmrWbEncoder {
    state: *mut c_void,
    mode: c_int,
}

// SAFETY: the encoder state is one heap block of its own with no thread affinity; `&mut self`
// serialises every call.
unsafe impl Send for AmrWbEncoder {}

impl Drop for AmrWbEncoder {
    fn drop(&mut self) {
        // SAFETY: the pointer came from E_IF_init, is non-null, and is freed once.
        unsafe { E_IF_exit(self.state) }
    }
}

impl AmrWbEncoder {
    /// An encoder at `mode` 0–8 (6.60–23.85 kbit/s).
    pub fn new(mode: u8) -> Result<Self, EncodeError> {
        let failed = |reason: &str| EncodeError::Failed {
            codec: "AMR-WB",
            reason: reason.into(),
        };
        if mode > 8 {
            return Err(failed("the mode must be 0 to 8"));
        }
        // SAFETY: no preconditions; null means out of memory.
        let state = unsafe { E_IF_init() };
        if state.is_null() {
            return Err(failed("the encoder could not be made"));
        }
        Ok(AmrWbEncoder {
            state,
            mode: c_int::from(mode),
        })
    }

    /// Encodes one 20 ms frame of 16 kHz PCM into an octet-aligned RTP payload (RFC 4867: CMR,
    /// one ToC, the frame), appended to `out`. A short frame is padded with silence.
    pub fn encode_rtp(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut speech = [0i16; WB_FRAME];
        let n = pcm.len().min(WB_FRAME);
        speech[..n].copy_from_slice(&pcm[..n]);
        let mut frame = [0u8; MAX_FRAME_BYTES + 3];
        // SAFETY: the state is live; the encoder reads one frame of 320 samples and writes at
        // most one storage frame (61 bytes) into a buffer larger than that.
        let written = unsafe {
            E_IF_encode(
                self.state,
                self.mode,
                speech.as_ptr(),
                frame.as_mut_ptr(),
                0,
            )
        };
        let written = usize::try_from(written)
            .ok()
            .filter(|&w| (1..=MAX_FRAME_BYTES).contains(&w))
            .ok_or_else(|| EncodeError::Failed {
                codec: "AMR-WB",
                reason: format!("the encoder wrote {written} bytes for a frame"),
            })?;
        out.push(CMR_NONE);
        // The storage header's F bit is 0 (one frame): it is the payload's ToC as it stands.
        out.extend_from_slice(&frame[..written]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decoder_for, Codec};

    /// A 1 kHz tone through the encoder and earshot's own AMR-WB decoder (OpenCORE): the
    /// frames are what an octet-aligned call carries, and they sound as the tone did.
    #[test]
    fn an_encoded_tone_decodes_to_the_tone() {
        let mut enc = AmrWbEncoder::new(8).expect("encoder");
        let mut dec = decoder_for(&Codec::Amr {
            wideband: true,
            octet_aligned: true,
        })
        .expect("decoder");
        let tone: Vec<i16> = (0..16000 * 2)
            .map(|i| {
                ((i as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 16000.0).sin() * 8000.0) as i16
            })
            .collect();
        let mut heard = Vec::new();
        for frame in tone.chunks(WB_FRAME) {
            let mut p = Vec::new();
            enc.encode_rtp(frame, &mut p).expect("encode");
            assert_eq!(p[0], CMR_NONE);
            assert_eq!(p[1] >> 3 & 0x0f, 8, "ToC names mode 8");
            assert_eq!(p.len(), 2 + 60, "mode 8 is 477 bits: 60 bytes");
            dec.decode(&p, &mut heard).expect("decode");
        }
        // Zero crossings of the second second: 2,000 a second for 1 kHz.
        let second = &heard[16000..32000];
        let crossings = second
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        assert!((1900..=2100).contains(&crossings), "{crossings} crossings");
        assert!(AmrWbEncoder::new(9).is_err());
    }
}
