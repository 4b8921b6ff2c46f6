//! Speex narrowband (8 kHz), wideband (16 kHz) and ultra-wideband (32 kHz)
//! through libspeex 1.2.1 (Xiph.org, BSD-3-Clause), compiled from the
//! sources bundled in `speex/` by build.rs. RFC 5574: a payload holds one or
//! more frames of 20 ms, the last padded to an octet with a terminator
//! pattern. Losses use libspeex' own concealment (decode with no bits).

use crate::{DecodeError, Decoder};
use std::os::raw::{c_char, c_int, c_void};
use std::ptr::NonNull;

/// `SpeexBits` from speex_bits.h, field for field.
#[repr(C)]
struct SpeexBits {
    chars: *mut c_char,
    nb_bits: c_int,
    char_ptr: c_int,
    bit_ptr: c_int,
    owner: c_int,
    overflow: c_int,
    buf_size: c_int,
    reserved1: c_int,
    reserved2: *mut c_void,
}

/// Opaque `SpeexMode`.
#[repr(C)]
struct SpeexMode {
    _private: [u8; 0],
}

const SPEEX_GET_FRAME_SIZE: c_int = 3;
const SPEEX_MODEID_NB: c_int = 0;
const SPEEX_MODEID_WB: c_int = 1;
const SPEEX_MODEID_UWB: c_int = 2;
/// A payload cannot sensibly carry more (RFC 5574 packs a few frames).
const MAX_FRAMES: usize = 64;
/// Bits of the shortest thing worth decoding: a narrowband mode header.
const MIN_BITS: c_int = 5;

extern "C" {
    fn speex_lib_get_mode(mode: c_int) -> *const SpeexMode;
    fn speex_decoder_init(mode: *const SpeexMode) -> *mut c_void;
    fn speex_decoder_destroy(state: *mut c_void);
    fn speex_decoder_ctl(state: *mut c_void, request: c_int, ptr: *mut c_void) -> c_int;
    fn speex_decode_int(state: *mut c_void, bits: *mut SpeexBits, out: *mut i16) -> c_int;
    fn speex_bits_init(bits: *mut SpeexBits);
    fn speex_bits_destroy(bits: *mut SpeexBits);
    fn speex_bits_read_from(bits: *mut SpeexBits, bytes: *const c_char, len: c_int);
    fn speex_bits_remaining(bits: *mut SpeexBits) -> c_int;
}

/// Owns one libspeex decoder state and its bit reader.
struct Handle {
    state: NonNull<c_void>,
    bits: Box<SpeexBits>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: `state` came from speex_decoder_init and `bits` was set up
        // by speex_bits_init; each is released exactly once here.
        unsafe {
            speex_decoder_destroy(self.state.as_ptr());
            speex_bits_destroy(&mut *self.bits);
        }
    }
}

// SAFETY: the decoder state and the bit buffer are heap memory owned by this
// handle alone (modes are immutable statics); `&mut self` serialises calls.
unsafe impl Send for Handle {}

pub(crate) struct SpeexDecoder {
    handle: Handle,
    rate: u32,
    frame: usize,
    scratch: Vec<i16>,
}

impl SpeexDecoder {
    /// `None` for a rate that is not 8, 16 or 32 kHz.
    pub(crate) fn new(rate: u32) -> Option<Self> {
        let mode_id = match rate {
            8000 => SPEEX_MODEID_NB,
            16000 => SPEEX_MODEID_WB,
            32000 => SPEEX_MODEID_UWB,
            _ => return None,
        };
        // SAFETY: a valid mode id; the result is a pointer to a static mode.
        let mode = unsafe { speex_lib_get_mode(mode_id) };
        if mode.is_null() {
            return None;
        }
        // SAFETY: `mode` is one of libspeex' static modes; null means out of
        // memory.
        let state = NonNull::new(unsafe { speex_decoder_init(mode) })?;
        let mut bits = Box::new(SpeexBits {
            chars: std::ptr::null_mut(),
            nb_bits: 0,
            char_ptr: 0,
            bit_ptr: 0,
            owner: 0,
            overflow: 0,
            buf_size: 0,
            reserved1: 0,
            reserved2: std::ptr::null_mut(),
        });
        // SAFETY: `bits` is a live, properly laid out SpeexBits.
        unsafe { speex_bits_init(&mut *bits) };
        let handle = Handle { state, bits };
        let mut frame: c_int = 0;
        // SAFETY: the state is live; SPEEX_GET_FRAME_SIZE writes one c_int.
        let rc = unsafe {
            speex_decoder_ctl(
                handle.state.as_ptr(),
                SPEEX_GET_FRAME_SIZE,
                (&mut frame as *mut c_int).cast(),
            )
        };
        let frame = usize::try_from(frame).ok().filter(|&f| rc == 0 && f > 0)?;
        Some(Self {
            handle,
            rate,
            frame,
            scratch: Vec::with_capacity(frame * 4),
        })
    }

    /// Decodes one frame into `dst` (`frame` samples); `with_bits` false
    /// asks for concealment. Returns libspeex' code (0 ok, -1 end, -2 bad).
    fn decode_frame(&mut self, with_bits: bool, dst: &mut [i16]) -> c_int {
        if dst.len() < self.frame {
            return -2;
        }
        let bits: *mut SpeexBits = if with_bits {
            &mut *self.handle.bits
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: the state is live, `bits` is the handle's initialised bit
        // reader (or null: concealment), and `dst` has room for the `frame`
        // samples libspeex writes.
        unsafe { speex_decode_int(self.handle.state.as_ptr(), bits, dst.as_mut_ptr()) }
    }
}

impl Decoder for SpeexDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        let len = c_int::try_from(payload.len()).unwrap_or(0);
        if len == 0 {
            return Err(DecodeError::BadLength {
                codec: "speex",
                len: payload.len(),
                expected: "at least one frame",
            });
        }
        // SAFETY: the bit reader is initialised; libspeex copies `len`
        // readable bytes from `payload` into its own buffer.
        unsafe {
            speex_bits_read_from(&mut *self.handle.bits, payload.as_ptr().cast(), len);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut result = Ok(());
        for _ in 0..MAX_FRAMES {
            // SAFETY: the bit reader is initialised and holds the payload.
            if unsafe { speex_bits_remaining(&mut *self.handle.bits) } < MIN_BITS {
                break;
            }
            let at = scratch.len();
            scratch.resize(at + self.frame, 0);
            match self.decode_frame(true, &mut scratch[at..]) {
                0 => {}
                -1 => {
                    // Terminator / padding: the payload's frames are done.
                    scratch.truncate(at);
                    break;
                }
                code => {
                    result = Err(DecodeError::Malformed {
                        codec: "speex",
                        reason: format!("corrupt frame (libspeex {code})"),
                    });
                    break;
                }
            }
        }
        if result.is_ok() && scratch.is_empty() {
            result = Err(DecodeError::Malformed {
                codec: "speex",
                reason: "no frame in payload".into(),
            });
        }
        let n = scratch.len();
        if result.is_ok() {
            out.extend_from_slice(&scratch);
        }
        self.scratch = scratch;
        result.map(|()| n)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        let target = out.len() + samples;
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        frame.resize(self.frame, 0);
        while out.len() < target {
            if self.decode_frame(false, &mut frame) != 0 {
                out.resize(target, 0);
                break;
            }
            let take = (target - out.len()).min(frame.len());
            out.extend_from_slice(&frame[..take]);
        }
        self.scratch = frame;
    }

    fn channels(&self) -> u8 {
        1
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }
}
