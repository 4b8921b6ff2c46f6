//! Typed views over RTP packets, in the style of smoltcp's `wire` module: the view borrows the
//! datagram and decodes fields on demand, so classifying millions of packets costs no copies.

/// A validated RTP packet (RFC 3550 §5.1).
#[derive(Copy, Clone, Debug)]
pub struct Rtp<'a> {
    buf: &'a [u8],
    /// The fixed header's fields, decoded once at parse: the engine reads every field of every
    /// packet, several of them more than once. Decoded rather than kept as a byte array,
    /// because reading a `u32` out of a just-copied array made the CPU wait for the copy's
    /// stores (a failed store-to-load forward, ~5% of a packet's time).
    second: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload_start: usize,
    payload_end: usize,
}

impl<'a> Rtp<'a> {
    /// Parses `buf` as RTP version 2. Returns `None` when it cannot be RTP: wrong version,
    /// an RTCP packet type, or header fields (CSRCs, extension, padding) that run past the end.
    pub fn parse(buf: &'a [u8]) -> Option<Rtp<'a>> {
        let head: [u8; 12] = buf.get(..12)?.try_into().ok()?;
        let first = head[0];
        if first >> 6 != 2 || (192..=223).contains(&head[1]) {
            return None;
        }
        let csrc_count = usize::from(first & 0x0f);
        let mut start = 12 + 4 * csrc_count;
        if first & 0x10 != 0 {
            let ext = buf.get(start..start + 4)?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            start += 4 + 4 * words;
        }
        let mut end = buf.len();
        if first & 0x20 != 0 {
            let pad = usize::from(*buf.last()?);
            if pad == 0 {
                return None;
            }
            end = end.checked_sub(pad)?;
        }
        if start > end {
            return None;
        }
        Some(Rtp {
            buf,
            second: head[1],
            sequence: u16::from_be_bytes([head[2], head[3]]),
            timestamp: u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
            ssrc: u32::from_be_bytes([head[8], head[9], head[10], head[11]]),
            payload_start: start,
            payload_end: end,
        })
    }

    pub fn marker(&self) -> bool {
        self.second & 0x80 != 0
    }
    pub fn payload_type(&self) -> u8 {
        self.second & 0x7f
    }
    pub fn sequence(&self) -> u16 {
        self.sequence
    }
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }
    /// The whole packet, header included (what SRTP authenticates).
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    pub fn payload(&self) -> &'a [u8] {
        // `parse` checked start <= end <= len; `get` keeps this panic-free regardless.
        self.buf
            .get(self.payload_start..self.payload_end)
            .unwrap_or_default()
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// True for RTCP: version 2 and a packet type in 192..=223, the range RFC 5761 §4 reserves so
/// RTP and RTCP can share a port (rtcp-mux).
pub fn is_rtcp(buf: &[u8]) -> bool {
    match (buf.first(), buf.get(1)) {
        (Some(&b0), Some(&b1)) => b0 >> 6 == 2 && (192..=223).contains(&b1) && buf.len() >= 8,
        _ => false,
    }
}

/// An RFC 4733 telephone-event payload (DTMF digits and other tones).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..4)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The DTMF character for events 0–15 (RFC 4733 §3.2), `None` for other tones.
    pub fn digit(&self) -> Option<char> {
        const DIGITS: &[u8; 16] = b"0123456789*#ABCD";
        DIGITS.get(usize::from(self.event)).map(|&c| char::from(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(first: u8, second: u8, tail: &[u8]) -> Vec<u8> {
        let mut v = vec![
            first, second, 0x12, 0x34, 0, 0, 0x1f, 0x40, 0xde, 0xad, 0xbe, 0xef,
        ];
        v.extend_from_slice(tail);
        v
    }

    #[test]
    fn parses_fields() {
        let p = packet(0x80, 0x80 | 8, &[1, 2, 3]);
        let rtp = Rtp::parse(&p).expect("valid rtp");
        assert!(rtp.marker());
        assert_eq!(rtp.payload_type(), 8);
        assert_eq!(rtp.sequence(), 0x1234);
        assert_eq!(rtp.timestamp(), 8000);
        assert_eq!(rtp.ssrc(), 0xdeadbeef);
        assert_eq!(rtp.payload(), &[1, 2, 3]);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        let mut tail = vec![0, 0, 0, 1]; // one CSRC
        tail.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // one-word extension
        tail.extend_from_slice(&[7, 7, 0, 2]); // payload 7 7, then 2 bytes of padding
        let p = packet(0x80 | 0x20 | 0x10 | 1, 0, &tail);
        let rtp = Rtp::parse(&p).expect("valid rtp");
        assert_eq!(rtp.payload(), &[7, 7]);
    }

    #[test]
    fn rejects_rtcp_and_truncation() {
        assert!(Rtp::parse(&packet(0x80, 200, &[])).is_none());
        assert!(is_rtcp(&packet(0x81, 201, &[])));
        assert!(Rtp::parse(&packet(0x40, 0, &[])).is_none());
        assert!(
            Rtp::parse(&packet(0x8f, 0, &[])).is_none(),
            "15 CSRCs past the end"
        );
        assert!(
            Rtp::parse(&packet(0xa0, 0, &[0, 0, 0, 200])).is_none(),
            "padding too long"
        );
        assert!(Rtp::parse(&[0x80; 11]).is_none());
    }

    #[test]
    fn telephone_event_digits() {
        let ev = TelephoneEvent::parse(&[11, 0x8a, 0x03, 0x20]).expect("event");
        assert_eq!(ev.digit(), Some('#'));
        assert!(ev.end);
        assert_eq!(ev.volume, 10);
        assert_eq!(ev.duration, 800);
        assert_eq!(
            TelephoneEvent::parse(&[16, 0, 0, 0]).and_then(|e| e.digit()),
            None
        );
    }
}
