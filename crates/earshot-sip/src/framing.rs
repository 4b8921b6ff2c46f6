//! Message framing for SIP over stream transports (RFC 3261 §18.3).

use crate::header::names_equal;
use crate::message::looks_like_sip;

/// A header section larger than this is not SIP (or is an attack).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Larger bodies are refused rather than buffered.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Result of [`frame_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The first message (including any leading CRLF keep-alives) is this
    /// many bytes long.
    Complete(usize),
    /// The buffer holds only CRLF keep-alives (RFC 5626 §3.5.1) so far;
    /// drop this many bytes.
    KeepAlive(usize),
    /// A message has started but is incomplete.
    NeedMore,
    /// Not SIP, or beyond the size caps: the caller should resynchronise
    /// (e.g. drop the stream or scan for the next start line).
    Invalid,
}

/// Length of the first message in a stream buffer. The body length comes
/// from Content-Length (or `l:`); on streams a missing one means no body.
pub fn frame_message(buf: &[u8]) -> Framing {
    let skip = buf
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(buf.len());
    if skip == buf.len() {
        return if skip == 0 {
            Framing::NeedMore
        } else {
            Framing::KeepAlive(skip)
        };
    }
    let msg = buf.get(skip..).unwrap_or_default();
    match first_line_state(msg) {
        LineState::Sip => {}
        LineState::Partial => return Framing::NeedMore,
        LineState::NotSip => return Framing::Invalid,
    }
    let Some(header_len) = header_end(msg) else {
        return if msg.len() > MAX_HEADER_BYTES {
            Framing::Invalid
        } else {
            Framing::NeedMore
        };
    };
    if header_len > MAX_HEADER_BYTES {
        return Framing::Invalid;
    }
    let body_len = match content_length(msg.get(..header_len).unwrap_or_default()) {
        Ok(n) if n <= MAX_BODY_BYTES => n,
        _ => return Framing::Invalid,
    };
    let total = skip + header_len + body_len;
    if buf.len() >= total {
        Framing::Complete(total)
    } else {
        Framing::NeedMore
    }
}

enum LineState {
    Sip,
    Partial,
    NotSip,
}

/// Decide from the start line. While it is incomplete, printable ASCII
/// keeps the hope alive; anything else fails fast so binary junk resyncs.
fn first_line_state(msg: &[u8]) -> LineState {
    match memchr::memchr(b'\n', msg) {
        Some(_) if looks_like_sip(msg) => LineState::Sip,
        Some(_) => LineState::NotSip,
        None if msg.len() > 4096 => LineState::NotSip,
        None if msg.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\r') => LineState::Partial,
        None => LineState::NotSip,
    }
}

/// Length of the header section including the blank line, accepting
/// `\r\n\r\n`, `\n\n` and the mixed forms.
fn header_end(msg: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let rel = memchr::memchr(b'\n', msg.get(from..)?)?;
        let nl = from + rel;
        match msg.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if msg.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            Some(_) => from = nl + 1,
            None => return None,
        }
    }
}

/// Content-Length from a header block; `Ok(0)` when absent, `Err` when
/// present but not a number (the stream can no longer be framed).
fn content_length(headers: &[u8]) -> Result<usize, ()> {
    for line in headers.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default().trim_ascii();
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if names_equal(name, "Content-Length") {
            let value = line.get(colon + 1..).unwrap_or_default().trim_ascii();
            return std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or(());
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nl: 5\r\n\r\nhello";

    #[test]
    fn complete_and_pipelined() {
        assert_eq!(frame_message(MSG), Framing::Complete(MSG.len()));
        let mut two = MSG.to_vec();
        two.extend_from_slice(b"SIP/2.0 200 OK\r\n\r\n");
        assert_eq!(frame_message(&two), Framing::Complete(MSG.len()));
        let second = &two[MSG.len()..];
        assert_eq!(frame_message(second), Framing::Complete(second.len()));
    }

    #[test]
    fn partial_everywhere() {
        for cut in 1..MSG.len() {
            assert_eq!(frame_message(&MSG[..cut]), Framing::NeedMore, "cut {cut}");
        }
        assert_eq!(frame_message(b""), Framing::NeedMore);
    }

    #[test]
    fn keepalives_counted() {
        assert_eq!(frame_message(b"\r\n\r\n"), Framing::KeepAlive(4));
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(MSG);
        assert_eq!(frame_message(&buf), Framing::Complete(MSG.len() + 4));
    }

    #[test]
    fn bare_lf_and_missing_length() {
        let m = b"OPTIONS sip:x SIP/2.0\nVia: a\n\nINVITE";
        assert_eq!(frame_message(m), Framing::Complete(m.len() - 6));
        let m = b"SIP/2.0 100 Trying\r\nContent-Length :  3 \r\n\r\nabcdef";
        assert_eq!(frame_message(m), Framing::Complete(m.len() - 3));
    }

    #[test]
    fn invalid_cases() {
        assert_eq!(frame_message(b"\x80\x00\x12\x34"), Framing::Invalid);
        assert_eq!(frame_message(b"GET / HTTP/1.1\r\n\r\n"), Framing::Invalid);
        let bad_len = b"SIP/2.0 200 OK\r\nContent-Length: x\r\n\r\n";
        assert_eq!(frame_message(bad_len), Framing::Invalid);
        let huge = b"SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n";
        assert_eq!(frame_message(huge), Framing::Invalid);
        let mut long = b"SIP/2.0 200 OK\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES + 1));
        assert_eq!(frame_message(&long), Framing::Invalid);
    }
}
