//! RFC 6455 frame decoding for SIP over WebSocket (RFC 7118), for one
//! direction of a reassembled TCP (or decrypted TLS) stream.
//!
//! Each SIP message travels in exactly one WebSocket message (RFC 7118 §5),
//! so the decoder's output can go straight to [`crate::SipMessage::parse`].

/// Largest message reassembled; bigger frames/messages are skipped without
/// buffering them.
pub const MAX_MESSAGE: usize = 1024 * 1024;
/// Largest HTTP Upgrade request/response accepted.
pub const MAX_HANDSHAKE: usize = 16 * 1024;

const OP_CONTINUATION: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing seen yet: handshake or (mid-stream capture) frames.
    Detect,
    Handshake,
    Frames,
    /// Upgrade refused or garbage: everything further is ignored.
    Dead,
}

/// Stateful decoder for one direction of a WebSocket connection.
///
/// Feed stream bytes in order with [`WsDecoder::push`]; complete text and
/// binary message payloads are handed to the callback, unmasked and with
/// fragments joined. Control frames are skipped; frames using extensions
/// (RSV bits, e.g. permessage-deflate) are skipped and counted.
#[derive(Debug)]
pub struct WsDecoder {
    phase: Phase,
    buf: Vec<u8>,
    /// Payload of a fragmented message being joined.
    message: Vec<u8>,
    in_message: bool,
    /// The fragmented message in progress is being dropped (too large or
    /// unsupported); continuation frames are skipped until FIN.
    discarding: bool,
    /// Payload bytes of a skipped frame not yet seen.
    skip: u64,
    messages: u64,
    skipped_frames: u64,
}

impl Default for WsDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Parsed frame header.
struct FrameHeader {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: u64,
}

impl WsDecoder {
    /// A decoder that has not yet seen the stream's first byte (the HTTP Upgrade, if any).
    pub fn new() -> Self {
        WsDecoder {
            phase: Phase::Detect,
            buf: Vec::new(),
            message: Vec::new(),
            in_message: false,
            discarding: false,
            skip: 0,
            messages: 0,
            skipped_frames: 0,
        }
    }

    /// Complete messages delivered so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Data frames dropped (oversized, extension-encoded, orphan
    /// continuations).
    pub fn skipped_frames(&self) -> u64 {
        self.skipped_frames
    }

    /// The upgrade was refused or the stream is not WebSocket; further
    /// input is ignored.
    pub fn is_dead(&self) -> bool {
        self.phase == Phase::Dead
    }

    /// Feed the next stream bytes; `out` receives each complete message.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        if self.phase == Phase::Dead {
            return;
        }
        if self.skip > 0 {
            let n = usize::try_from(self.skip)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            self.skip -= n as u64;
            bytes = bytes.get(n..).unwrap_or_default();
        }
        self.buf.extend_from_slice(bytes);
        let consumed = self.process(out);
        self.buf.drain(..consumed.min(self.buf.len()));
    }

    /// Decode as much of `buf` as possible; returns bytes consumed.
    fn process(&mut self, out: &mut dyn FnMut(&[u8])) -> usize {
        let mut pos = 0;
        loop {
            let step = match self.phase {
                Phase::Detect => self.detect(pos),
                Phase::Handshake => self.handshake(pos),
                Phase::Frames => self.frame(pos, out),
                Phase::Dead => return self.buf.len(),
            };
            match step {
                Some(n) => pos += n,
                None => return pos,
            }
        }
    }

    /// `Some(0)` after switching phase; `None` while undecided.
    fn detect(&mut self, pos: usize) -> Option<usize> {
        let data = self.buf.get(pos..)?;
        let http = [&b"GET "[..], b"HTTP/"];
        if http.iter().any(|p| data.starts_with(p)) {
            self.phase = Phase::Handshake;
            return Some(0);
        }
        let prefix_of_http = http
            .iter()
            .any(|p| data.len() < p.len() && p.starts_with(data));
        if prefix_of_http {
            return None;
        }
        self.phase = Phase::Frames;
        Some(0)
    }

    fn handshake(&mut self, pos: usize) -> Option<usize> {
        let data = self.buf.get(pos..)?;
        let Some(len) = http_header_len(data) else {
            if data.len() > MAX_HANDSHAKE {
                self.phase = Phase::Dead;
            }
            return None;
        };
        let refused = data.starts_with(b"HTTP/") && !is_switching_protocols(data);
        self.phase = if refused || len > MAX_HANDSHAKE {
            Phase::Dead
        } else {
            Phase::Frames
        };
        Some(len)
    }

    fn frame(&mut self, pos: usize, out: &mut dyn FnMut(&[u8])) -> Option<usize> {
        let h = parse_frame_header(self.buf.get(pos..)?)?;
        let start = pos + h.header_len;
        let available = self.buf.len().saturating_sub(start) as u64;
        if !self.accept_frame(&h) {
            self.skipped_frames += u64::from(h.opcode < 8);
            let take = h.payload_len.min(available);
            self.skip = h.payload_len - take;
            return Some(h.header_len + take as usize);
        }
        if available < h.payload_len {
            return None;
        }
        // accept_frame bounded payload_len by MAX_MESSAGE, so it fits.
        let end = start + h.payload_len as usize;
        let payload = self.buf.get_mut(start..end)?;
        if let Some(key) = h.mask {
            unmask(payload, key);
        }
        self.deliver(&h, start, end, out);
        Some(end - pos)
    }

    /// Whether this frame's payload is wanted; updates fragmentation state
    /// for frames that are not.
    fn accept_frame(&mut self, h: &FrameHeader) -> bool {
        if h.opcode >= 8 {
            return false;
        }
        let size_after = match h.opcode {
            OP_CONTINUATION => (self.message.len() as u64).saturating_add(h.payload_len),
            _ => h.payload_len,
        };
        let wanted = match h.opcode {
            OP_CONTINUATION => self.in_message && !self.discarding,
            OP_TEXT | OP_BINARY => true,
            _ => false,
        };
        if wanted && h.rsv == 0 && size_after <= MAX_MESSAGE as u64 {
            return true;
        }
        self.abandon_message(h);
        false
    }

    fn abandon_message(&mut self, h: &FrameHeader) {
        self.message.clear();
        let starts_or_continues = matches!(h.opcode, OP_CONTINUATION | OP_TEXT | OP_BINARY);
        self.in_message = starts_or_continues && !h.fin;
        self.discarding = self.in_message;
    }

    fn deliver(&mut self, h: &FrameHeader, start: usize, end: usize, out: &mut dyn FnMut(&[u8])) {
        let payload = self.buf.get(start..end).unwrap_or_default();
        if h.opcode != OP_CONTINUATION {
            // A new message implicitly ends any unfinished one (peer bug).
            self.message.clear();
            if h.fin {
                self.in_message = false;
                self.messages += 1;
                out(payload);
                return;
            }
        }
        self.message.extend_from_slice(payload);
        self.in_message = !h.fin;
        self.discarding = false;
        if h.fin {
            self.messages += 1;
            out(&self.message);
            self.message.clear();
        }
    }
}

fn unmask(payload: &mut [u8], key: [u8; 4]) {
    for (b, k) in payload.iter_mut().zip(key.iter().cycle()) {
        *b ^= k;
    }
}

fn parse_frame_header(data: &[u8]) -> Option<FrameHeader> {
    let b0 = *data.first()?;
    let b1 = *data.get(1)?;
    let (payload_len, mut header_len) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(data.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(data.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        let key: [u8; 4] = data.get(header_len..header_len + 4)?.try_into().ok()?;
        header_len += 4;
        Some(key)
    } else {
        None
    };
    Some(FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x07,
        opcode: b0 & 0x0f,
        mask,
        header_len,
        payload_len,
    })
}

/// Length of an HTTP header block including the terminating blank line.
fn http_header_len(data: &[u8]) -> Option<usize> {
    let crlf = memchr::memmem::find(data, b"\r\n\r\n").map(|i| i + 4);
    let lf = memchr::memmem::find(data, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn is_switching_protocols(data: &[u8]) -> bool {
    let line_end = memchr::memchr(b'\n', data).unwrap_or(data.len());
    let line = data.get(..line_end).unwrap_or_default();
    line.split(|&b| b == b' ').nth(1) == Some(b"101")
}

/// Whether `buf` starts an HTTP request asking to upgrade to WebSocket, or
/// a `101` response: a hint that a TCP stream carries SIP over WebSocket.
pub fn looks_like_handshake(buf: &[u8]) -> bool {
    if buf.starts_with(b"HTTP/1.1 101") {
        return true;
    }
    if !buf.starts_with(b"GET ") {
        return false;
    }
    let head = buf.get(..MAX_HANDSHAKE).unwrap_or(buf);
    let head = head
        .get(..http_header_len(head).unwrap_or(head.len()))
        .unwrap_or(head);
    head.windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a frame; `mask` also masks the payload as a client would.
    pub(crate) fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mut p = payload.to_vec();
        if let Some(k) = mask {
            f.extend_from_slice(&k);
            unmask(&mut p, k);
        }
        f.extend_from_slice(&p);
        f
    }

    fn decode_all(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, WsDecoder) {
        let mut d = WsDecoder::new();
        let mut got = Vec::new();
        for c in chunks {
            d.push(c, &mut |m| got.push(m.to_vec()));
        }
        (got, d)
    }

    const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\n\r\n";

    #[test]
    fn masked_client_frame_after_handshake() {
        let mut s = REQ.to_vec();
        s.extend(frame(
            true,
            OP_TEXT,
            b"OPTIONS sip:a SIP/2.0\r\n\r\n",
            Some([1, 2, 3, 4]),
        ));
        s.extend(frame(true, OP_BINARY, b"second", None));
        let (got, d) = decode_all(&[&s]);
        assert_eq!(
            got,
            vec![
                b"OPTIONS sip:a SIP/2.0\r\n\r\n".to_vec(),
                b"second".to_vec()
            ]
        );
        assert_eq!(d.messages(), 2);
        assert!(looks_like_handshake(REQ));
        assert!(!looks_like_handshake(b"GET / HTTP/1.1\r\n\r\n"));
    }

    #[test]
    fn fragmented_with_interleaved_ping_and_split_pushes() {
        let mut s = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        s.extend(frame(false, OP_TEXT, b"SIP/2.0 ", Some([9, 9, 9, 9])));
        s.extend(frame(true, 9, b"ping!", Some([1, 1, 1, 1])));
        s.extend(frame(false, OP_CONTINUATION, b"200 ", Some([7, 0, 7, 0])));
        s.extend(frame(true, OP_CONTINUATION, b"OK", Some([0, 0, 0, 5])));
        s.extend(frame(true, 8, b"\x03\xe8", None));
        // Every split point, including one byte at a time.
        for cut in 0..s.len() {
            let (got, _) = decode_all(&[&s[..cut], &s[cut..]]);
            assert_eq!(got, vec![b"SIP/2.0 200 OK".to_vec()], "cut {cut}");
        }
        let singles: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(decode_all(&singles).0, vec![b"SIP/2.0 200 OK".to_vec()]);
    }

    #[test]
    fn extended_lengths() {
        let medium = vec![b'a'; 300];
        let large = vec![b'b'; 70_000];
        let mut s = frame(true, OP_TEXT, &medium, Some([1, 2, 3, 4]));
        s.extend(frame(true, OP_BINARY, &large, None));
        let (got, _) = decode_all(&[&s]);
        assert_eq!(got, vec![medium, large]);
    }

    #[test]
    fn refused_upgrade_and_oversized() {
        let mut s = b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec();
        s.extend(frame(true, OP_TEXT, b"x", None));
        let (got, d) = decode_all(&[&s]);
        assert!(got.is_empty());
        assert!(d.is_dead());

        // An oversized frame is skipped across pushes without buffering;
        // the next frame still decodes.
        let mut hdr = vec![0x82, 127];
        hdr.extend_from_slice(&((MAX_MESSAGE as u64) + 1).to_be_bytes());
        let body = vec![0u8; MAX_MESSAGE + 1];
        let next = frame(true, OP_TEXT, b"after", None);
        let (got, d) = decode_all(&[&hdr, &body[..10], &body[10..], &next]);
        assert_eq!(got, vec![b"after".to_vec()]);
        assert_eq!(d.skipped_frames(), 1);
        assert!(d.buf.capacity() < MAX_MESSAGE);
    }

    #[test]
    fn compressed_and_orphan_frames_skipped() {
        let mut s = vec![0xc1, 3, 1, 2, 3]; // RSV1: permessage-deflate
        s.extend(frame(true, OP_CONTINUATION, b"orphan", None));
        s.extend(frame(false, OP_TEXT, b"big", None));
        s.extend(frame(true, OP_CONTINUATION, &vec![0; MAX_MESSAGE], None));
        s.extend(frame(true, OP_TEXT, b"ok", None));
        let (got, d) = decode_all(&[&s]);
        assert_eq!(got, vec![b"ok".to_vec()]);
        assert_eq!(d.skipped_frames(), 3);
    }
}
