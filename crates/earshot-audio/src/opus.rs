//! Opus through libopus (Xiph, BSD-3-Clause), linked via `audiopus_sys`
//! (which finds the system library with pkg-config: Debian `libopus-dev`).
//! libopus is the reference decoder: every TOC configuration, SILK/CELT/
//! hybrid, and its own packet-loss concealment (decode with no packet).

use crate::{DecodeError, Decoder, EncodeError};
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

/// Owns one libopus encoder state.
struct EncoderHandle(NonNull<ffi::OpusEncoder>);

impl Drop for EncoderHandle {
    fn drop(&mut self) {
        // SAFETY: the pointer came from opus_encoder_create, is non-null, and
        // is destroyed exactly once here.
        unsafe { ffi::opus_encoder_destroy(self.0.as_ptr()) }
    }
}

// SAFETY: as for the decoder: one heap block, no thread affinity, and
// `&mut self` serialises every call.
unsafe impl Send for EncoderHandle {}

/// Opus encoder (libopus, VoIP application), for generating traffic.
pub struct OpusEncoder {
    handle: EncoderHandle,
    channels: u8,
    packet: Vec<u8>,
}

impl OpusEncoder {
    /// `rate` is the input rate (8000, 12000, 16000, 24000 or 48000 Hz); the RTP clock of
    /// Opus stays 48 kHz whatever it is. `bitrate` in bit/s.
    pub fn new(rate: u32, channels: u8, bitrate: i32) -> Result<Self, EncodeError> {
        let fail = |reason: String| EncodeError::Failed {
            codec: "opus",
            reason,
        };
        if !(1..=2).contains(&channels) {
            return Err(fail(format!("{channels} channels: 1 or 2 only")));
        }
        let rate = i32::try_from(rate).map_err(|_| fail(format!("bad rate {rate}")))?;
        let mut err: c_int = 0;
        // SAFETY: `err` is a live c_int for the call; libopus validates rate,
        // channels and application and returns null (with err set) if bad.
        let raw = unsafe {
            ffi::opus_encoder_create(
                rate,
                c_int::from(channels),
                ffi::OPUS_APPLICATION_VOIP,
                &mut err,
            )
        };
        let handle = NonNull::new(raw)
            .map(EncoderHandle)
            .ok_or_else(|| fail(opus_error(err)))?;
        if err != ffi::OPUS_OK {
            return Err(fail(opus_error(err)));
        }
        // SAFETY: live handle; OPUS_SET_BITRATE takes one opus_int32 argument.
        let rc = unsafe {
            ffi::opus_encoder_ctl(handle.0.as_ptr(), ffi::OPUS_SET_BITRATE_REQUEST, bitrate)
        };
        if rc != ffi::OPUS_OK {
            return Err(fail(format!("bitrate {bitrate}: {}", opus_error(rc))));
        }
        Ok(Self {
            handle,
            channels,
            packet: vec![0; 1500],
        })
    }

    /// Encodes one frame (2.5, 5, 10, 20, 40 or 60 ms of interleaved PCM at the
    /// encoder's rate) and appends the packet to `out`; returns its length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let fail = |reason: String| EncodeError::Failed {
            codec: "opus",
            reason,
        };
        let frame = pcm.len() / usize::from(self.channels);
        let frame = c_int::try_from(frame).map_err(|_| fail("frame too long".into()))?;
        // SAFETY: live handle; `pcm` holds frame × channels samples; `packet`
        // is writable for its whole length, which is what we pass as the limit.
        let n = unsafe {
            ffi::opus_encode(
                self.handle.0.as_ptr(),
                pcm.as_ptr(),
                frame,
                self.packet.as_mut_ptr(),
                self.packet.len() as i32,
            )
        };
        if n < 0 {
            return Err(fail(opus_error(n)));
        }
        let n = usize::try_from(n).unwrap_or(0);
        out.extend_from_slice(self.packet.get(..n).unwrap_or_default());
        Ok(n)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_survives_encoding_and_decoding() {
        let mut enc = OpusEncoder::new(16000, 1, 24000).unwrap();
        let mut dec = OpusDecoder::new(1).unwrap();
        let hz = 440.0;
        let (mut packets, mut pcm48) = (0, Vec::new());
        for frame in 0..50 {
            let pcm: Vec<i16> = (0..320)
                .map(|n| {
                    let t = (frame * 320 + n) as f64 / 16000.0;
                    (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
                })
                .collect();
            let mut packet = Vec::new();
            let n = enc.encode(&pcm, &mut packet).unwrap();
            assert!(n > 0 && n == packet.len());
            packets += 1;
            assert_eq!(dec.decode(&packet, &mut pcm48).unwrap(), 960);
        }
        assert_eq!(pcm48.len(), packets * 960);
        // Past the codec delay, the 48 kHz output has the tone: its RMS is near 8000/sqrt(2),
        // and correlating with a 440 Hz sinusoid finds it.
        let tail = &pcm48[9600..];
        let rms =
            (tail.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
        assert!((4000.0..8000.0).contains(&rms), "rms {rms}");
        let (mut re, mut im) = (0.0, 0.0);
        for (n, &s) in tail.iter().enumerate() {
            let w = 2.0 * std::f64::consts::PI * hz * n as f64 / 48000.0;
            re += f64::from(s) * w.cos();
            im += f64::from(s) * w.sin();
        }
        let amplitude = 2.0 * (re * re + im * im).sqrt() / tail.len() as f64;
        assert!(amplitude > 6000.0, "440 Hz amplitude {amplitude}");
    }

    #[test]
    fn a_bad_frame_size_is_an_error() {
        let mut enc = OpusEncoder::new(16000, 1, 24000).unwrap();
        assert!(enc.encode(&[0; 100], &mut Vec::new()).is_err());
    }
}
