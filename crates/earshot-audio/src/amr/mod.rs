//! AMR (narrowband, 3GPP TS 26.071) and AMR-WB (TS 26.171) through OpenCORE AMR (Apache-2.0;
//! Debian `libopencore-amrnb-dev`/`libopencore-amrwb-dev`, found with pkg-config), carried in
//! RTP as RFC 4867 says: octet-aligned or bandwidth-efficient, a CMR, a table of contents
//! (one entry per frame: more-follows bit, frame type, quality bit), then the frames.
//!
//! What is written here is the RTP payload format: OpenCORE decodes frames in the storage
//! format of RFC 4867 §5.3 (a header byte `0 FT(4) Q 0 0`, then the frame's bits, padded to an
//! octet), so each RTP frame is re-packed into that. Interleaving, CRCs and robust sorting
//! (RFC 4867 §4.4.2.1, §4.3.2) are refused when the SDP asks for them (`Codec::from_sdp`
//! names such a stream unsupported), never decoded wrongly.
//!
//! A payload is outside input: at most [`MAX_FRAMES`] table-of-contents entries are read, and
//! every frame must lie within the payload before any is decoded, so a bad packet appends
//! nothing.

mod encode;
pub use encode::{AmrWbEncoder, WB_FRAME};

use crate::fade::Fade;
use crate::{DecodeError, Decoder};
use std::os::raw::{c_int, c_short, c_uchar, c_void};

/// Frames one payload may carry: 16 × 20 ms (RFC 4867 sets no limit; real senders put 1–4).
pub const MAX_FRAMES: usize = 16;
/// The frame type that means "no data" (a frame not sent, DTX).
const NO_DATA: u8 = 15;
/// The largest storage frame: AMR-WB 23.85 kbit/s, 477 bits → 60 bytes, plus its header.
const MAX_STORAGE: usize = 61;

/// Narrowband or wideband.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmrBand {
    Narrow,
    Wide,
}

impl AmrBand {
    fn name(self) -> &'static str {
        match self {
            AmrBand::Narrow => "AMR",
            AmrBand::Wide => "AMR-WB",
        }
    }

    /// Samples of one 20 ms frame at the output rate.
    pub fn frame_samples(self) -> usize {
        match self {
            AmrBand::Narrow => 160,
            AmrBand::Wide => 320,
        }
    }

    pub fn rate(self) -> u32 {
        match self {
            AmrBand::Narrow => 8000,
            AmrBand::Wide => 16000,
        }
    }

    /// Bits of speech (or SID) data a frame type carries (RFC 4867 §3.6 / TS 26.101 and
    /// TS 26.201), `None` for reserved types. NO_DATA and AMR-WB's "speech lost" carry none.
    pub fn frame_bits(self, ft: u8) -> Option<usize> {
        const NB: [u16; 16] = [
            95, 103, 118, 134, 148, 159, 204, 244, 39, 43, 38, 37, 0, 0, 0, 0,
        ];
        const WB: [u16; 16] = [
            132, 177, 253, 285, 317, 365, 397, 461, 477, 40, 0, 0, 0, 0, 0, 0,
        ];
        let reserved = match self {
            AmrBand::Narrow => (12..=14).contains(&ft),
            AmrBand::Wide => (10..=13).contains(&ft),
        };
        let table = match self {
            AmrBand::Narrow => &NB,
            AmrBand::Wide => &WB,
        };
        (!reserved).then(|| table.get(usize::from(ft)).map(|&b| usize::from(b)))?
    }
}

/// One frame of a payload, re-packed in the storage format OpenCORE decodes.
#[derive(Clone, Copy)]
pub struct StorageFrame {
    bytes: [u8; MAX_STORAGE],
    len: usize,
}

impl StorageFrame {
    pub fn frame_type(&self) -> u8 {
        (self.bytes[0] >> 3) & 0x0f
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Reads bits MSB first out of a byte slice.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn remaining(&self) -> usize {
        self.data.len() * 8 - self.pos.min(self.data.len() * 8)
    }

    fn take(&mut self, n: usize) -> Option<u32> {
        if n > 32 || self.remaining() < n {
            return None;
        }
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.data[self.pos / 8];
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    fn align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }
}

/// Splits an RFC 4867 payload into its frames (`octet_aligned` as the SDP's `octet-align=1`
/// says). Every frame is checked to lie in the payload before any is returned.
pub fn split_payload(
    band: AmrBand,
    octet_aligned: bool,
    payload: &[u8],
    frames: &mut Vec<StorageFrame>,
) -> Result<(), DecodeError> {
    frames.clear();
    let malformed = |reason: &str| DecodeError::Malformed {
        codec: band.name(),
        reason: reason.into(),
    };
    let mut bits = Bits {
        data: payload,
        pos: 0,
    };
    // CMR: the mode the receiver asks the other side to use; nothing to decode.
    bits.take(4).ok_or_else(|| malformed("no CMR"))?;
    if octet_aligned {
        bits.take(4).ok_or_else(|| malformed("no CMR"))?;
    }
    let mut toc = [(0u8, false); MAX_FRAMES];
    let mut count = 0;
    loop {
        let entry = bits
            .take(6)
            .ok_or_else(|| malformed("table of contents runs past the payload"))?;
        if octet_aligned {
            bits.take(2);
        }
        let more = entry & 0x20 != 0;
        let ft = ((entry >> 1) & 0x0f) as u8;
        let good = entry & 1 != 0;
        let slot = toc
            .get_mut(count)
            .ok_or_else(|| malformed("more than 16 frames in one packet"))?;
        *slot = (ft, good);
        count += 1;
        if !more {
            break;
        }
    }
    for &(ft, good) in &toc[..count] {
        let n = band
            .frame_bits(ft)
            .ok_or_else(|| malformed("reserved frame type"))?;
        if octet_aligned {
            bits.align();
        }
        let mut frame = StorageFrame {
            bytes: [0; MAX_STORAGE],
            len: 1 + n.div_ceil(8),
        };
        frame.bytes[0] = (ft << 3) | (u8::from(good) << 2);
        if bits.remaining() < n {
            return Err(malformed("a frame runs past the payload"));
        }
        for i in 0..n {
            let bit = bits.take(1).unwrap_or(0) as u8;
            frame.bytes[1 + i / 8] |= bit << (7 - i % 8);
        }
        frames.push(frame);
    }
    Ok(())
}

// Linked by build.rs through pkg-config (opencore-amrnb, opencore-amrwb).
extern "C" {
    fn Decoder_Interface_init() -> *mut c_void;
    fn Decoder_Interface_exit(state: *mut c_void);
    fn Decoder_Interface_Decode(
        state: *mut c_void,
        input: *const c_uchar,
        out: *mut c_short,
        bfi: c_int,
    );
}

extern "C" {
    fn D_IF_init() -> *mut c_void;
    fn D_IF_exit(state: *mut c_void);
    fn D_IF_decode(state: *mut c_void, bits: *const c_uchar, synth: *mut c_short, bfi: c_int);
}

/// Owns one OpenCORE decoder state.
struct State {
    band: AmrBand,
    ptr: *mut c_void,
}

impl Drop for State {
    fn drop(&mut self) {
        // SAFETY: the pointer came from the matching init, is non-null, and is freed once.
        unsafe {
            match self.band {
                AmrBand::Narrow => Decoder_Interface_exit(self.ptr),
                AmrBand::Wide => D_IF_exit(self.ptr),
            }
        }
    }
}

// SAFETY: an OpenCORE decoder state is one heap block of its own, with no thread affinity or
// shared mutable globals (its tables are const); `&mut self` serialises every call.
unsafe impl Send for State {}

impl State {
    fn new(band: AmrBand) -> Option<State> {
        // SAFETY: the init functions have no preconditions; null means out of memory.
        let ptr = unsafe {
            match band {
                AmrBand::Narrow => Decoder_Interface_init(),
                AmrBand::Wide => D_IF_init(),
            }
        };
        (!ptr.is_null()).then_some(State { band, ptr })
    }

    /// Decodes one storage-format frame into `pcm` (one frame of samples).
    fn decode(&mut self, frame: &[u8; MAX_STORAGE], pcm: &mut [i16; 320]) {
        // SAFETY: the state is live; OpenCORE reads at most one storage frame (≤ 61 bytes,
        // the header names its size; a reserved type reads nothing more) and writes one
        // frame of 160 (NB) or 320 (WB) samples; both buffers are that large.
        unsafe {
            match self.band {
                AmrBand::Narrow => {
                    Decoder_Interface_Decode(self.ptr, frame.as_ptr(), pcm.as_mut_ptr(), 0)
                }
                AmrBand::Wide => D_IF_decode(self.ptr, frame.as_ptr(), pcm.as_mut_ptr(), 0),
            }
        }
    }
}

pub(crate) struct AmrDecoder {
    state: State,
    octet_aligned: bool,
    frames: Vec<StorageFrame>,
    fade: Fade,
}

impl AmrDecoder {
    pub(crate) fn new(band: AmrBand, octet_aligned: bool) -> Option<AmrDecoder> {
        Some(AmrDecoder {
            state: State::new(band)?,
            octet_aligned,
            frames: Vec::with_capacity(MAX_FRAMES),
            fade: Fade::new(band.rate(), 1),
        })
    }

    fn band(&self) -> AmrBand {
        self.state.band
    }

    fn decode_frame(&mut self, frame: &[u8; MAX_STORAGE], out: &mut Vec<i16>) {
        let n = self.band().frame_samples();
        let mut pcm = [0i16; 320];
        self.state.decode(frame, &mut pcm);
        out.extend_from_slice(&pcm[..n]);
    }
}

impl Decoder for AmrDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        let mut frames = std::mem::take(&mut self.frames);
        let split = split_payload(self.band(), self.octet_aligned, payload, &mut frames);
        let start = out.len();
        if split.is_ok() {
            for f in &frames {
                // NO_DATA still goes to the decoder: it plays comfort noise from the last SID.
                self.decode_frame(&f.bytes, out);
            }
            self.fade.remember(&out[start..]);
        }
        let samples = frames.len() * self.band().frame_samples();
        self.frames = frames;
        split.map(|()| samples)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        // A lost frame is NO_DATA to OpenCORE, which conceals from its state.
        let mut frame = [0u8; MAX_STORAGE];
        frame[0] = NO_DATA << 3;
        let n = self.band().frame_samples();
        let whole = samples / n;
        for _ in 0..whole {
            self.decode_frame(&frame, out);
        }
        self.fade.conceal(samples - whole * n, out);
    }

    fn channels(&self) -> u8 {
        1
    }

    fn sample_rate(&self) -> u32 {
        self.band().rate()
    }
}

#[cfg(test)]
mod tests;
