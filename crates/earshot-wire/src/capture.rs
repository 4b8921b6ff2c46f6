//! Streaming reader for pcap and pcapng files (optionally gzip-compressed).
//!
//! The block parsing is hand-written rather than built on `pcap-parser`: its streaming readers
//! hand out blocks that borrow the reader, and returning such a borrow from a loop that first
//! skips non-packet blocks and refills the buffer runs into the borrow checker's "conditional
//! return of a borrow" limitation (NLL problem case #3). A small parser over our own buffer
//! returns offsets from the loop and borrows only once at the end, which keeps `Frame` zero-copy
//! and the hot path free of allocation. Memory use is constant: one buffer of [`BUF_SIZE`].

use crate::{LinkType, Timestamp};
use std::io::{ErrorKind, Read};
use std::path::Path;

/// Largest captured length accepted for one record; a larger one marks the file damaged.
/// 256 KiB is the largest snaplen tcpdump and Wireshark write.
pub const MAX_RECORD: usize = 256 * 1024;
/// Size of the read buffer; must hold the largest record plus its block framing.
const BUF_SIZE: usize = 1024 * 1024;
/// Bound on interfaces per pcapng section, so a hostile file cannot grow the table without end.
const MAX_INTERFACES: usize = 65_536;

/// Why a capture file cannot be read (further).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened.
    #[error("{path}: {source}")]
    Open {
        /// The path as given.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The first four bytes (after gzip, if any) are neither a pcap nor a pcapng magic.
    #[error("not a pcap or pcapng file (magic number {0:02x?})")]
    BadMagic([u8; 4]),
    /// The file ends before its file header.
    #[error("empty file: no capture header")]
    Empty,
    /// Reading failed (including a corrupt gzip stream).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A header, record or block that is cut short or cannot be right (a record above
    /// [`MAX_RECORD`], lengths that disagree, a packet on an undeclared interface); the text
    /// says which.
    #[error("damaged capture: {0}")]
    Damaged(String),
}

/// One captured frame, borrowed from the reader's buffer until the next call to `next_frame`.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Capture time, at the resolution the file records (µs or ns for pcap, per interface
    /// for pcapng).
    pub ts: Timestamp,
    /// The link type of the frame's interface: how `data` begins.
    pub link: LinkType,
    /// The bytes captured, at most the snap length.
    pub data: &'a [u8],
    /// Length on the wire; larger than `data.len()` when the capture was cut by snaplen.
    pub orig_len: u32,
}

/// Which container the stream turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap format (microsecond or nanosecond magic, either byte order).
    Pcap,
    /// pcapng (sections, interface descriptions, enhanced and simple packet blocks).
    PcapNg,
}

const PCAP_US: u32 = 0xa1b2_c3d4;
const PCAP_NS: u32 = 0xa1b2_3c4d;
const NG_SHB: u32 = 0x0a0d_0d0a;
const NG_BOM: u32 = 0x1a2b_3c4d;

#[derive(Debug, Clone, Copy)]
struct Pcap {
    big: bool,
    nanos: bool,
    link: LinkType,
}

/// Converts a pcapng interface's timestamp units to nanoseconds: `ts * mul / div + offset`.
#[derive(Debug, Clone, Copy)]
struct Iface {
    link: LinkType,
    snaplen: u32,
    mul: i128,
    div: i128,
    offset_ns: i64,
}

impl Iface {
    fn to_ns(self, ts: u64) -> i64 {
        let units = i128::from(ts);
        let ns = if self.div == 1 {
            units * self.mul
        } else {
            units * self.mul / self.div
        };
        i64::try_from(ns)
            .unwrap_or(i64::MAX)
            .saturating_add(self.offset_ns)
    }
}

#[derive(Debug)]
struct PcapNg {
    big: bool,
    ifaces: Vec<Iface>,
    last_ts: Timestamp,
}

#[derive(Debug)]
enum Format {
    Pcap(Pcap),
    Ng(PcapNg),
}

/// A record located in the buffer, before it is lent out as a [`Frame`].
struct Located {
    ts: Timestamp,
    link: LinkType,
    off: usize,
    len: usize,
    orig_len: u32,
}

/// Buffered byte source with its own fixed-size buffer.
struct Source {
    inner: Box<dyn Read + Send>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Source {
    fn avail(&self) -> usize {
        self.end - self.start
    }

    fn bytes(&self, len: usize) -> &[u8] {
        self.buf.get(self.start..self.start + len).unwrap_or(&[])
    }

    /// Makes at least `need` bytes available; `Ok(false)` at end of input before that.
    fn fill(&mut self, need: usize) -> std::io::Result<bool> {
        if self.avail() >= need {
            return Ok(true);
        }
        if need > self.buf.len() {
            return Ok(false);
        }
        if self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.avail() < need {
            let Some(tail) = self.buf.get_mut(self.end..) else {
                return Ok(false);
            };
            let room = tail.len();
            match self.inner.read(tail) {
                Ok(0) => return Ok(false),
                // `min` keeps a misbehaving reader from pushing `end` past the buffer.
                Ok(n) => self.end += n.min(room),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Discards `n` bytes without buffering them all; `Ok(false)` if input ends first.
    fn skip(&mut self, mut n: usize) -> std::io::Result<bool> {
        loop {
            let take = n.min(self.avail());
            self.consume(take);
            n -= take;
            if n == 0 {
                return Ok(true);
            }
            if !self.fill(1)? {
                return Ok(false);
            }
        }
    }
}

/// Streaming pcap/pcapng reader with constant memory use.
pub struct CaptureReader {
    src: Source,
    format: Format,
    done: bool,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format)
            .field("done", &self.done)
            .finish()
    }
}

fn damaged(msg: impl Into<String>) -> CaptureError {
    CaptureError::Damaged(msg.into())
}

/// Truncation and decompression faults mean a damaged file, not a failing disk.
fn io_err(e: std::io::Error) -> CaptureError {
    match e.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::InvalidData | ErrorKind::InvalidInput => {
            damaged(e.to_string())
        }
        _ => CaptureError::Io(e),
    }
}

fn rd32(b: &[u8], at: usize, big: bool) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn rd16(b: &[u8], at: usize, big: bool) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

/// Reads up to 4 bytes, fewer only at end of input.
fn read_prefix(r: &mut dyn Read) -> Result<([u8; 4], usize), CaptureError> {
    let mut m = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match r.read(m.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok((m, n))
}

impl CaptureReader {
    /// Opens a file (pcap, pcapng, either gzipped) and reads its header.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let f = std::fs::File::open(path).map_err(|source| CaptureError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(Box::new(f))
    }

    /// Detects gzip, then pcap or pcapng, and reads the file header.
    pub fn new(mut inner: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let (magic, n) = read_prefix(&mut inner)?;
        let prefix = std::io::Cursor::new(magic.get(..n).unwrap_or(&[]).to_vec());
        let mut inner: Box<dyn Read + Send> = Box::new(prefix.chain(inner));
        if n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
            inner = Box::new(flate2::read::MultiGzDecoder::new(inner));
        }
        let mut src = Source {
            inner,
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
        };
        let format = read_file_header(&mut src)?;
        Ok(Self {
            src,
            format,
            done: false,
        })
    }

    /// Which container the file is.
    pub fn format(&self) -> CaptureFormat {
        match self.format {
            Format::Pcap(_) => CaptureFormat::Pcap,
            Format::Ng(_) => CaptureFormat::PcapNg,
        }
    }

    /// Next frame, `None` at end of file. A damaged tail gives one `Err` and then `None`.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureError>> {
        if self.done {
            return None;
        }
        let located = match &mut self.format {
            Format::Pcap(p) => next_pcap(&mut self.src, p),
            Format::Ng(ng) => next_ng(&mut self.src, ng),
        };
        match located {
            Ok(Some(l)) => {
                let data = self.src.buf.get(l.off..l.off + l.len).unwrap_or(&[]);
                Some(Ok(Frame {
                    ts: l.ts,
                    link: l.link,
                    data,
                    orig_len: l.orig_len,
                }))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn read_file_header(src: &mut Source) -> Result<Format, CaptureError> {
    if !src.fill(4).map_err(io_err)? {
        return match src.avail() {
            0 => Err(CaptureError::Empty),
            _ => Err(damaged("file shorter than its magic number")),
        };
    }
    let m = src.bytes(4);
    let magic = [m[0], m[1], m[2], m[3]];
    let le = u32::from_le_bytes(magic);
    let be = u32::from_be_bytes(magic);
    if le == NG_SHB {
        return Ok(Format::Ng(PcapNg {
            big: false,
            ifaces: Vec::new(),
            last_ts: Timestamp(0),
        }));
    }
    let (big, nanos) = match (le, be) {
        (PCAP_US, _) => (false, false),
        (PCAP_NS, _) => (false, true),
        (_, PCAP_US) => (true, false),
        (_, PCAP_NS) => (true, true),
        _ => return Err(CaptureError::BadMagic(magic)),
    };
    if !src.fill(24).map_err(io_err)? {
        return Err(damaged("truncated pcap file header"));
    }
    let link = rd32(src.bytes(24), 20, big) & 0xffff;
    src.consume(24);
    Ok(Format::Pcap(Pcap {
        big,
        nanos,
        link: LinkType(link),
    }))
}

fn next_pcap(src: &mut Source, p: &Pcap) -> Result<Option<Located>, CaptureError> {
    if !src.fill(16).map_err(io_err)? {
        return match src.avail() {
            0 => Ok(None),
            _ => Err(damaged("truncated pcap record header")),
        };
    }
    let h = src.bytes(16);
    let sec = i64::from(rd32(h, 0, p.big));
    let frac = i64::from(rd32(h, 4, p.big));
    let caplen = rd32(h, 8, p.big) as usize;
    let orig_len = rd32(h, 12, p.big);
    if caplen > MAX_RECORD {
        return Err(damaged(format!("record of {caplen} bytes exceeds limit")));
    }
    if !src.fill(16 + caplen).map_err(io_err)? {
        return Err(damaged("truncated pcap record"));
    }
    let frac_ns = if p.nanos { frac } else { frac * 1_000 };
    let off = src.start + 16;
    src.consume(16 + caplen);
    Ok(Some(Located {
        ts: Timestamp(sec * 1_000_000_000 + frac_ns),
        link: p.link,
        off,
        len: caplen,
        orig_len,
    }))
}

const NG_IDB: u32 = 1;
const NG_PB: u32 = 2;
const NG_SPB: u32 = 3;
const NG_EPB: u32 = 6;

fn next_ng(src: &mut Source, ng: &mut PcapNg) -> Result<Option<Located>, CaptureError> {
    loop {
        if !src.fill(12).map_err(io_err)? {
            return match src.avail() {
                0 => Ok(None),
                _ => Err(damaged("truncated pcapng block header")),
            };
        }
        let h = src.bytes(12);
        let raw_type = rd32(h, 0, false);
        if raw_type == NG_SHB {
            ng.big = match rd32(h, 8, false) {
                NG_BOM => false,
                x if x.swap_bytes() == NG_BOM => true,
                _ => return Err(damaged("bad pcapng byte-order magic")),
            };
            ng.ifaces.clear();
        }
        let btype = rd32(h, 0, ng.big);
        let total = rd32(h, 4, ng.big) as usize;
        if total < 12 {
            return Err(damaged(format!("pcapng block length {total}")));
        }
        let is_packet = matches!(btype, NG_EPB | NG_SPB | NG_PB);
        if !is_packet && btype != NG_IDB {
            if !src.skip(total).map_err(io_err)? {
                return Err(damaged("truncated pcapng block"));
            }
            continue;
        }
        if total > MAX_RECORD + 64 {
            return Err(damaged(format!(
                "pcapng block of {total} bytes exceeds limit"
            )));
        }
        if !src.fill(total).map_err(io_err)? {
            return Err(damaged("truncated pcapng block"));
        }
        let block_start = src.start;
        let block = src.bytes(total);
        if rd32(block, total - 4, ng.big) as usize != total {
            return Err(damaged("pcapng block length fields disagree"));
        }
        let found = if btype == NG_IDB {
            parse_idb(block, ng)?;
            None
        } else {
            Some(parse_packet_block(block, btype, ng)?)
        };
        src.consume(total);
        if let Some((off, len, ts, link, orig_len)) = found {
            return Ok(Some(Located {
                ts,
                link,
                off: block_start + off,
                len,
                orig_len,
            }));
        }
    }
}

/// Returns (offset in block, length, timestamp, link type, original length).
fn parse_packet_block(
    block: &[u8],
    btype: u32,
    ng: &mut PcapNg,
) -> Result<(usize, usize, Timestamp, LinkType, u32), CaptureError> {
    let big = ng.big;
    let total = block.len();
    if btype == NG_SPB {
        let iface = ng
            .ifaces
            .first()
            .ok_or_else(|| damaged("simple packet block before any interface"))?;
        let orig_len = rd32(block, 8, big);
        let room = total.saturating_sub(16);
        let mut len = (orig_len as usize).min(room);
        if iface.snaplen != 0 {
            len = len.min(iface.snaplen as usize);
        }
        // SPBs carry no timestamp; the previous packet's is the best estimate of when it came.
        return Ok((12, len, ng.last_ts, iface.link, orig_len));
    }
    if total < 32 {
        return Err(damaged("short pcapng packet block"));
    }
    let if_id = if btype == NG_PB {
        u32::from(rd16(block, 8, big))
    } else {
        rd32(block, 8, big)
    };
    let iface = ng
        .ifaces
        .get(if_id as usize)
        .ok_or_else(|| damaged(format!("packet on undeclared interface {if_id}")))?;
    let ts_raw = (u64::from(rd32(block, 12, big)) << 32) | u64::from(rd32(block, 16, big));
    let caplen = rd32(block, 20, big) as usize;
    let orig_len = rd32(block, 24, big);
    if caplen > total - 32 {
        return Err(damaged("packet block captured length exceeds block"));
    }
    let ts = Timestamp(iface.to_ns(ts_raw));
    ng.last_ts = ts;
    Ok((28, caplen, ts, iface.link, orig_len))
}

fn parse_idb(block: &[u8], ng: &mut PcapNg) -> Result<(), CaptureError> {
    let big = ng.big;
    if block.len() < 20 {
        return Err(damaged("short interface description block"));
    }
    if ng.ifaces.len() >= MAX_INTERFACES {
        return Err(damaged("too many interfaces"));
    }
    let mut iface = Iface {
        link: LinkType(u32::from(rd16(block, 8, big))),
        snaplen: rd32(block, 12, big),
        mul: 1_000,
        div: 1,
        offset_ns: 0,
    };
    let opts = block.get(16..block.len() - 4).unwrap_or(&[]);
    let mut at = 0;
    while at + 4 <= opts.len() {
        let code = rd16(opts, at, big);
        let len = usize::from(rd16(opts, at + 2, big));
        let val = opts.get(at + 4..at + 4 + len).unwrap_or(&[]);
        match (code, val) {
            (0, _) => break,
            (9, [r]) => set_tsresol(&mut iface, *r)?,
            (14, v) if v.len() == 8 => {
                let secs = if big {
                    i64::from_be_bytes(v.try_into().unwrap_or([0; 8]))
                } else {
                    i64::from_le_bytes(v.try_into().unwrap_or([0; 8]))
                };
                iface.offset_ns = secs.saturating_mul(1_000_000_000);
            }
            _ => {}
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    ng.ifaces.push(iface);
    Ok(())
}

fn set_tsresol(iface: &mut Iface, r: u8) -> Result<(), CaptureError> {
    let exp = u32::from(r & 0x7f);
    if r & 0x80 == 0 {
        // Units of 10^-exp seconds.
        if exp > 30 {
            return Err(damaged(format!("if_tsresol 10^-{exp}")));
        }
        if exp <= 9 {
            iface.mul = 10i128.pow(9 - exp);
            iface.div = 1;
        } else {
            iface.mul = 1;
            iface.div = 10i128.pow(exp - 9);
        }
    } else {
        // Units of 2^-exp seconds.
        if exp > 63 {
            return Err(damaged(format!("if_tsresol 2^-{exp}")));
        }
        iface.mul = 1_000_000_000;
        iface.div = 1i128 << exp;
    }
    Ok(())
}
