//! A minimal, hand-written binding to the system's libavcodec (FFmpeg 5.1: libavcodec 59,
//! libavutil 57; Debian `libavcodec-dev`, found with pkg-config by build.rs when the cargo
//! feature `libavcodec` is on) for the two decoders earshot takes from it: `g723_1` and `ilbc`.
//! Neither has a free standalone library in Debian. No bindgen: a dozen functions are declared
//! below, and two structs are read through their *leading* fields only.
//!
//! Why reading leading fields is sound: FFmpeg keeps the public structs ABI-stable within a
//! major version, adding new fields only at the end (the "sizeof(AVFrame) is not part of the
//! public ABI" rule in libavutil/frame.h and libavcodec/packet.h: the structs are allocated by
//! the library, `av_frame_alloc` / `av_packet_alloc`, never by us). So, checked against
//! /usr/include/x86_64-linux-gnu/libavcodec/packet.h and libavutil/frame.h of 5.1:
//! * `AVPacket` starts `AVBufferRef *buf; int64_t pts; int64_t dts; uint8_t *data; int size;`
//!   ([`PacketHead`]): we set `data` and `size` (and leave `buf` NULL: a non-reference-counted
//!   packet, which `avcodec_send_packet` copies into a padded buffer of its own);
//! * `AVFrame` starts `uint8_t *data[8]; int linesize[8]; uint8_t **extended_data;
//!   int width, height; int nb_samples; int format;` ([`FrameHead`]): we read `data[0]`,
//!   `nb_samples` and `format`.
//!
//! These fields have been in those places since FFmpeg 1.x and are the ones every binding
//! relies on. The `AVCodecContext` is never read or written directly: its settings go through
//! the AVOption API by name (`av_opt_set*`), which does not depend on its layout.
//!
//! Allocation: the context, packet and frame are allocated once per stream. Per packet,
//! libavcodec itself copies the (non-reference-counted) input into a padded buffer and takes
//! the output frame's buffer from its pool (a pool allocation only until it warms up); nothing
//! else is allocated on this path.
//!
//! Logging: libavcodec reports a bad frame on stderr through `av_log`. A sensor decodes
//! whatever the network carries, so the first decoder made sets the (process-wide) log level
//! to quiet; errors come back as return codes.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::Once;

/// libavcodec may read this many bytes past the end of an input buffer (AV_INPUT_BUFFER_PADDING_SIZE).
const PADDING: usize = 64;
/// The largest frame either codec has: iLBC 30 ms, 50 bytes.
pub(crate) const MAX_FRAME: usize = 50;
/// The most samples one frame yields: 240 (30 ms at 8 kHz).
pub(crate) const MAX_SAMPLES: usize = 240;

const AV_LOG_QUIET: c_int = -8;
/// AVERROR(EAGAIN) on Linux.
const EAGAIN: c_int = -11;
/// enum AVSampleFormat: AV_SAMPLE_FMT_S16 and AV_SAMPLE_FMT_S16P (libavutil/samplefmt.h).
const FMT_S16: c_int = 1;
const FMT_S16P: c_int = 6;

#[repr(C)]
struct PacketHead {
    buf: *mut c_void,
    pts: i64,
    dts: i64,
    data: *mut u8,
    size: c_int,
}

#[repr(C)]
struct FrameHead {
    data: [*mut u8; 8],
    linesize: [c_int; 8],
    extended_data: *mut *mut u8,
    width: c_int,
    height: c_int,
    nb_samples: c_int,
    format: c_int,
}

// Linked by build.rs through pkg-config (libavcodec, libavutil).
extern "C" {
    fn avcodec_find_decoder_by_name(name: *const c_char) -> *const c_void;
    fn avcodec_alloc_context3(codec: *const c_void) -> *mut c_void;
    fn avcodec_open2(ctx: *mut c_void, codec: *const c_void, options: *mut c_void) -> c_int;
    fn avcodec_free_context(ctx: *mut *mut c_void);
    fn avcodec_send_packet(ctx: *mut c_void, pkt: *const PacketHead) -> c_int;
    fn avcodec_receive_frame(ctx: *mut c_void, frame: *mut FrameHead) -> c_int;
    fn av_packet_alloc() -> *mut PacketHead;
    fn av_packet_free(pkt: *mut *mut PacketHead);
    fn av_frame_alloc() -> *mut FrameHead;
    fn av_frame_free(frame: *mut *mut FrameHead);
    fn av_frame_unref(frame: *mut FrameHead);
    fn av_opt_set(obj: *mut c_void, name: *const c_char, val: *const c_char, flags: c_int)
        -> c_int;
    fn av_opt_set_int(obj: *mut c_void, name: *const c_char, val: i64, flags: c_int) -> c_int;
    fn av_log_set_level(level: c_int);
}

static QUIET: Once = Once::new();

/// Why a frame gave no audio.
#[derive(Debug)]
pub(crate) struct FrameRejected;

/// One libavcodec audio decoder: context, packet and frame, freed together.
pub(crate) struct Lavc {
    ctx: *mut c_void,
    pkt: *mut PacketHead,
    frame: *mut FrameHead,
    /// The frame being decoded and zeroed padding after it.
    input: [u8; MAX_FRAME + PADDING],
}

// SAFETY: the context, packet and frame belong to this value alone; libavcodec keeps no thread
// affinity for them (threads = 1: no worker threads of its own), and `&mut self` serialises
// every call.
unsafe impl Send for Lavc {}

impl Drop for Lavc {
    fn drop(&mut self) {
        // SAFETY: each pointer is either null or came from its allocator and is freed once;
        // the free functions accept null.
        unsafe {
            avcodec_free_context(&mut self.ctx);
            av_packet_free(&mut self.pkt);
            av_frame_free(&mut self.frame);
        }
    }
}

impl Lavc {
    /// Opens libavcodec's decoder `name` for 8 kHz mono; `int_options` are further
    /// AVCodecContext options by name (iLBC's `block_align` chooses its mode).
    pub(crate) fn open(name: &CStr, int_options: &[(&CStr, i64)]) -> Option<Lavc> {
        // SAFETY: no preconditions.
        QUIET.call_once(|| unsafe { av_log_set_level(AV_LOG_QUIET) });
        // SAFETY: `name` is NUL-terminated; a null result means this libavcodec lacks it.
        let codec = unsafe { avcodec_find_decoder_by_name(name.as_ptr()) };
        if codec.is_null() {
            return None;
        }
        // SAFETY: as documented: the allocators return null on failure, which Drop accepts.
        let lavc = unsafe {
            Lavc {
                ctx: avcodec_alloc_context3(codec),
                pkt: av_packet_alloc(),
                frame: av_frame_alloc(),
                input: [0; MAX_FRAME + PADDING],
            }
        };
        if lavc.ctx.is_null() || lavc.pkt.is_null() || lavc.frame.is_null() {
            return None;
        }
        // SAFETY: ctx is a live AVCodecContext (an AVOption-enabled object); names and values
        // are NUL-terminated. Option errors surface as a failing avcodec_open2 below (G.723.1
        // refuses a context without a channel count).
        unsafe {
            av_opt_set(lavc.ctx, c"ch_layout".as_ptr(), c"mono".as_ptr(), 0);
            av_opt_set_int(lavc.ctx, c"ar".as_ptr(), 8000, 0);
            av_opt_set_int(lavc.ctx, c"threads".as_ptr(), 1, 0);
            for (key, value) in int_options {
                if av_opt_set_int(lavc.ctx, key.as_ptr(), *value, 0) < 0 {
                    return None;
                }
            }
            if avcodec_open2(lavc.ctx, codec, std::ptr::null_mut()) < 0 {
                return None;
            }
        }
        Some(lavc)
    }

    /// Decodes one codec frame (at most [`MAX_FRAME`] bytes) and appends what libavcodec
    /// returns, at most [`MAX_SAMPLES`] samples, to `out`; returns how many.
    pub(crate) fn decode(
        &mut self,
        frame: &[u8],
        out: &mut Vec<i16>,
    ) -> Result<usize, FrameRejected> {
        let len = frame.len();
        if len == 0 || len > MAX_FRAME {
            return Err(FrameRejected);
        }
        self.input[..len].copy_from_slice(frame);
        self.input[len..len + PADDING].fill(0);
        // SAFETY: pkt is a live AVPacket; its leading fields are as PacketHead says (see the
        // module comment). data points at `len` bytes followed by PADDING zeroed bytes, which
        // live as long as self; buf stays NULL, so libavcodec copies them and keeps no pointer.
        let sent = unsafe {
            (*self.pkt).data = self.input.as_mut_ptr();
            (*self.pkt).size = len as c_int;
            let sent = avcodec_send_packet(self.ctx, self.pkt);
            (*self.pkt).data = std::ptr::null_mut();
            (*self.pkt).size = 0;
            sent
        };
        let mut got = 0;
        // Drain every frame, so the next send never meets EAGAIN; these decoders give one
        // frame per packet, and the loop stops at the first EAGAIN or error.
        loop {
            // SAFETY: ctx and frame are live; receive_frame unreferences the frame first.
            let r = unsafe { avcodec_receive_frame(self.ctx, self.frame) };
            if r != 0 {
                break;
            }
            got += self.take_frame(out);
        }
        if (sent < 0 && sent != EAGAIN) || got == 0 {
            return Err(FrameRejected);
        }
        Ok(got)
    }

    /// Copies a decoded mono S16/S16P frame into `out` (bounded) and releases it.
    fn take_frame(&mut self, out: &mut Vec<i16>) -> usize {
        // SAFETY: a frame just returned by avcodec_receive_frame: FrameHead's fields are its
        // leading fields. For mono S16 and S16P, data[0] holds nb_samples i16 values (libav
        // aligns its buffers, so the pointer is suitably aligned for i16).
        unsafe {
            let f = &*self.frame;
            let n = usize::try_from(f.nb_samples).unwrap_or(0).min(MAX_SAMPLES);
            let ok = (f.format == FMT_S16 || f.format == FMT_S16P) && !f.data[0].is_null();
            let taken = if ok && n > 0 {
                let samples = std::slice::from_raw_parts(f.data[0] as *const i16, n);
                out.extend_from_slice(samples);
                n
            } else {
                0
            };
            av_frame_unref(self.frame);
            taken
        }
    }
}
