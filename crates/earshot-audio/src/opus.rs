//! Opus through libopus (Xiph, BSD-3-Clause), linked via `audiopus_sys`
//! (which finds the system library with pkg-config: Debian `libopus-dev`).
//! libopus is the reference decoder: every TOC configuration, SILK/CELT/
//! hybrid, and its own packet-loss concealment (decode with no packet).

use crate::{DecodeError, Decoder};
use audiopus_sys as ffi;
use std::os::raw::c_int;
use std::ptr::NonNull;

/// 120 ms at 48 kHz: the longest an Opus packet can be.
const MAX_FRAME: usize = 5760;
/// Concealment is asked for in multiples of 2.5 ms (what libopus accepts).
const PLC_STEP: usize = 120;

/// Owns one libopus decoder state.
struct Handle(NonNull<ffi::OpusDecoder>);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the pointer came from opus_decoder_create, is non-null, and
        // is destroyed exactly once here.
        unsafe { ffi::opus_decoder_destroy(self.0.as_ptr()) }
    }
}

// SAFETY: a libopus decoder state is one heap block with no thread affinity
// and no shared mutable globals; the decoder owns it exclusively and
// `&mut self` serialises every call.
unsafe impl Send for Handle {}

pub(crate) struct OpusDecoder {
    handle: Handle,
    channels: u8,
    scratch: Vec<i16>,
}

impl OpusDecoder {
    pub(crate) fn new(channels: u8) -> Option<Self> {
        if !(1..=2).contains(&channels) {
            return None;
        }
        let mut err: c_int = 0;
        // SAFETY: valid rate (48000) and channel count (1 or 2); `err` is a
        // live c_int for the call. Null means failure.
        let raw = unsafe { ffi::opus_decoder_create(48000, c_int::from(channels), &mut err) };
        let handle = NonNull::new(raw).map(Handle)?;
        if err != ffi::OPUS_OK {
            return None;
        }
        Some(Self {
            handle,
            channels,
            scratch: vec![0; MAX_FRAME * usize::from(channels)],
        })
    }

    /// One decoder call into `scratch`; `None` as packet asks for
    /// concealment of `frame` samples per channel.
    fn run(&mut self, packet: Option<&[u8]>, frame: usize) -> Result<usize, String> {
        let frame = frame.min(MAX_FRAME);
        let (data, len) = match packet {
            Some(p) => (
                p.as_ptr(),
                i32::try_from(p.len()).map_err(|_| "packet too long".to_string())?,
            ),
            None => (std::ptr::null(), 0),
        };
        debug_assert!(self.scratch.len() >= frame * usize::from(self.channels));
        // SAFETY: the handle is live; `data` points to `len` readable bytes
        // (or is null with len 0, libopus' request for concealment);
        // `scratch` holds MAX_FRAME × channels samples and `frame` ≤
        // MAX_FRAME, so libopus writes within it.
        let n = unsafe {
            ffi::opus_decode(
                self.handle.0.as_ptr(),
                data,
                len,
                self.scratch.as_mut_ptr(),
                frame as c_int,
                0,
            )
        };
        if n < 0 {
            return Err(opus_error(n));
        }
        Ok(usize::try_from(n).unwrap_or(0).min(frame))
    }
}

fn opus_error(code: c_int) -> String {
    match code {
        ffi::OPUS_BAD_ARG => "bad argument".into(),
        ffi::OPUS_BUFFER_TOO_SMALL => "buffer too small".into(),
        ffi::OPUS_INTERNAL_ERROR => "internal error".into(),
        ffi::OPUS_INVALID_PACKET => "invalid packet".into(),
        ffi::OPUS_UNIMPLEMENTED => "unimplemented".into(),
        ffi::OPUS_INVALID_STATE => "invalid state".into(),
        ffi::OPUS_ALLOC_FAIL => "allocation failed".into(),
        other => format!("libopus error {other}"),
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
        let n = self
            .run(Some(payload), MAX_FRAME)
            .map_err(|reason| DecodeError::Malformed {
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
            let want = (target - out.len()) / ch;
            let ask = want.div_ceil(PLC_STEP).max(1) * PLC_STEP;
            let n = match self.run(None, ask) {
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
