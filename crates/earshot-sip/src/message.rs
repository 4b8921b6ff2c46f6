//! The SIP message model and its datagram parser.

use std::borrow::Cow;
use std::fmt;

use crate::header::{self, names_equal, split_list};
use crate::multipart;
use crate::name_addr::{parse_name_addr, NameAddr};

/// More headers than this is an attack or garbage, not SIP; refusing keeps
/// per-message work bounded.
pub const MAX_HEADERS: usize = 256;

/// Longest accepted physical line. Real headers (Identity, Authorization,
/// long Via chains) stay well below this.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Why a buffer could not be parsed as a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    /// Nothing but CR and LF bytes: an empty buffer or a keep-alive (RFC 5626 §3.5.1).
    #[error("empty message: no start line")]
    Empty,
    /// The first line is not UTF-8, so it cannot be a request or status line.
    #[error("start line is not valid UTF-8")]
    StartLineNotUtf8,
    /// The first line is neither `Method Request-URI SIP/2.0` nor `SIP/2.0 Code Reason`;
    /// the text says which part is wrong.
    #[error("malformed start line: {0}")]
    BadStartLine(&'static str),
    /// A status line whose code is not three digits from 100 to 699 (RFC 3261 §7.2).
    #[error("status code is not a number between 100 and 699")]
    BadStatusCode,
    /// More header lines than [`MAX_HEADERS`].
    #[error("more than {limit} header lines")]
    TooManyHeaders {
        /// The limit passed ([`MAX_HEADERS`]).
        limit: usize,
    },
    /// A physical line longer than [`MAX_LINE_BYTES`].
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The limit passed ([`MAX_LINE_BYTES`]).
        limit: usize,
    },
}

/// Request line or status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method Request-URI SIP/2.0`.
    Request {
        /// The method token as written (`INVITE`, `BYE`, an extension method).
        method: &'a str,
        /// The Request-URI as written, not parsed further.
        uri: &'a str,
    },
    /// `SIP/2.0 Code Reason-Phrase`.
    Response {
        /// The status code, 100–699.
        code: u16,
        /// The reason phrase as written (may be empty).
        reason: &'a str,
    },
}

impl fmt::Display for StartLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartLine::Request { method, uri } => write!(f, "{method} {uri}"),
            StartLine::Response { code, reason } => write!(f, "{code} {reason}"),
        }
    }
}

/// One header line. `value` borrows from the packet unless line folding or
/// invalid UTF-8 forced a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name as written (long or compact form, any case).
    pub name: &'a str,
    /// The value with surrounding whitespace trimmed and folded lines joined.
    pub value: Cow<'a, str>,
}

/// A parsed SIP message borrowing from the packet buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage<'a> {
    /// The request or status line.
    pub start: StartLine<'a>,
    /// Headers in wire order, names as written (compact forms not expanded).
    pub headers: Vec<Header<'a>>,
    /// The body, cut to Content-Length when the datagram is longer; when the
    /// datagram is shorter, whatever arrived.
    pub body: &'a [u8],
}

impl fmt::Display for SipMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.start)?;
        if let Some(id) = self.call_id() {
            write!(f, " (Call-ID {id})")?;
        }
        Ok(())
    }
}

impl<'a> SipMessage<'a> {
    /// Parse one complete message (a UDP datagram, or a frame delimited by
    /// [`crate::frame_message`]). Leading CRLFs are ignored (RFC 3261 §7.5);
    /// a missing blank line after the headers is tolerated (no body).
    pub fn parse(buf: &'a [u8]) -> Result<SipMessage<'a>, SipError> {
        let skip = buf
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .ok_or(SipError::Empty)?;
        let mut lines = Lines { buf, pos: skip };
        let first = lines.next_line()?.ok_or(SipError::Empty)?;
        let first = std::str::from_utf8(first).map_err(|_| SipError::StartLineNotUtf8)?;
        let start = parse_start_line(first)?;
        let headers = parse_headers(&mut lines)?;
        let rest = buf.get(lines.pos..).unwrap_or_default();
        let mut msg = SipMessage {
            start,
            headers,
            body: rest,
        };
        if let Some(len) = msg.content_length() {
            msg.body = rest.get(..len).unwrap_or(rest);
        }
        Ok(msg)
    }

    /// First value of the named header (case-insensitive, compact forms
    /// equal long names).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| names_equal(h.name, name))
            .map(|h| h.value.as_ref())
    }

    /// All values of the named header, in order, one per header line.
    /// Use [`SipMessage::header_list`] to also split comma-joined values.
    pub fn headers<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |h| names_equal(h.name, name))
            .map(|h| h.value.as_ref())
    }

    /// All elements of the named header, splitting comma-separated values
    /// (for list headers like Via, Contact, Route, Allow, Supported).
    pub fn header_list<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers(name).flat_map(split_list)
    }

    /// The Call-ID (compact `i`), which names the dialog's call; `None` when missing or empty.
    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID").filter(|v| !v.is_empty())
    }

    /// CSeq number and method. Leading zeros are accepted; a number that
    /// does not fit in 32 bits is rejected (RFC 3261 §8.1.1.5).
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let mut parts = self.header("CSeq")?.split_ascii_whitespace();
        let num = parts.next()?.parse().ok()?;
        Some((num, parts.next()?))
    }

    /// The From header (compact `f`): the caller's name-addr and its tag.
    pub fn from(&self) -> Option<NameAddr<'_>> {
        parse_name_addr(self.header("From")?)
    }

    /// The To header (compact `t`): the callee's name-addr and, once answered, its tag.
    pub fn to(&self) -> Option<NameAddr<'_>> {
        parse_name_addr(self.header("To")?)
    }

    /// User-Agent, else Server (responses identify the software there).
    pub fn user_agent(&self) -> Option<&str> {
        self.header("User-Agent").or_else(|| self.header("Server"))
    }

    /// The Content-Type (compact `c`) as written, parameters included.
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    /// Declared body length; `None` when absent or not a number.
    pub fn content_length(&self) -> Option<usize> {
        self.header("Content-Length")?.trim().parse().ok()
    }

    /// Reason header (RFC 3326), e.g. `Q.850;cause=16;text="Normal"`.
    pub fn reason(&self) -> Option<&str> {
        self.header("Reason")
    }

    /// The SDP body: the body itself for `application/sdp`, or the first
    /// `application/sdp` part of a `multipart/*` body (nested up to three
    /// levels). Without a Content-Type, a body starting with `v=` is taken
    /// as SDP because some devices omit the header.
    pub fn sdp(&self) -> Option<&'a [u8]> {
        let body = self.body;
        if body.is_empty() {
            return None;
        }
        let Some(ct) = self.content_type() else {
            return body.starts_with(b"v=").then_some(body);
        };
        let mt = header::media_type(ct);
        if mt.eq_ignore_ascii_case("application/sdp") {
            return Some(body);
        }
        if starts_with_ignore_case(mt, "multipart/") {
            let boundary = header::header_param(ct, "boundary")?;
            return multipart::find_sdp(body, boundary);
        }
        None
    }

    /// Request method; `None` for responses (use [`SipMessage::cseq`]).
    pub fn method(&self) -> Option<&str> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// Response status code; `None` for requests.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// True for a request, false for a response.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
}

/// Physical-line reader: lines end at `\n`, an optional preceding `\r` is
/// dropped, so bare-LF messages parse like CRLF ones.
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    /// Next line, or `None` at the end of the buffer.
    fn next_line(&mut self) -> Result<Option<&'a [u8]>, SipError> {
        let Some(rest) = self.buf.get(self.pos..).filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let (line, advance) = match memchr::memchr(b'\n', rest) {
            Some(i) => (rest.get(..i).unwrap_or_default(), i + 1),
            None => (rest, rest.len()),
        };
        if line.len() > MAX_LINE_BYTES {
            return Err(SipError::LineTooLong {
                limit: MAX_LINE_BYTES,
            });
        }
        self.pos += advance;
        Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

fn parse_headers<'a>(lines: &mut Lines<'a>) -> Result<Vec<Header<'a>>, SipError> {
    let mut headers: Vec<Header<'a>> = Vec::with_capacity(16);
    while let Some(line) = lines.next_line()? {
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // Folded continuation (RFC 3261 §7.3.1): joins with one space.
            // A continuation before any header has nothing to continue.
            if let Some(last) = headers.last_mut() {
                fold_into(&mut last.value, line);
            }
            continue;
        }
        let Some(header) = parse_header_line(line) else {
            continue;
        };
        if headers.len() >= MAX_HEADERS {
            return Err(SipError::TooManyHeaders { limit: MAX_HEADERS });
        }
        headers.push(header);
    }
    Ok(headers)
}

/// `Name : value` with arbitrary whitespace around the colon. Lines without
/// a colon or with a non-UTF-8/empty name are skipped rather than failing
/// the whole message: the rest of it is usually still useful.
fn parse_header_line(line: &[u8]) -> Option<Header<'_>> {
    let colon = memchr::memchr(b':', line)?;
    let name = std::str::from_utf8(line.get(..colon)?).ok()?.trim();
    if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let value = lossy(trim_bytes(line.get(colon + 1..)?));
    Some(Header { name, value })
}

fn fold_into(value: &mut Cow<'_, str>, continuation: &[u8]) {
    let cont = lossy(trim_bytes(continuation));
    if cont.is_empty() {
        return;
    }
    let v = value.to_mut();
    if !v.is_empty() {
        v.push(' ');
    }
    v.push_str(&cont);
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn trim_bytes(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

fn parse_start_line(line: &str) -> Result<StartLine<'_>, SipError> {
    let line = line.trim();
    if starts_with_ignore_case(line, "SIP/") {
        parse_status_line(line)
    } else {
        parse_request_line(line)
    }
}

fn parse_status_line(line: &str) -> Result<StartLine<'_>, SipError> {
    let rest = line
        .split_once(|c: char| c.is_ascii_whitespace())
        .map(|(_, r)| r.trim_start())
        .ok_or(SipError::BadStartLine("status line has no status code"))?;
    let (code, reason) = rest
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((rest, ""));
    if code.len() != 3 {
        return Err(SipError::BadStatusCode);
    }
    let code: u16 = code.parse().map_err(|_| SipError::BadStatusCode)?;
    if !(100..=699).contains(&code) {
        return Err(SipError::BadStatusCode);
    }
    Ok(StartLine::Response {
        code,
        reason: reason.trim(),
    })
}

fn parse_request_line(line: &str) -> Result<StartLine<'_>, SipError> {
    let (method, rest) = line
        .split_once(|c: char| c.is_ascii_whitespace())
        .ok_or(SipError::BadStartLine("request line has no Request-URI"))?;
    if !method.bytes().all(is_token_byte) {
        return Err(SipError::BadStartLine("method is not a token"));
    }
    let (uri, version) = rest
        .rsplit_once(|c: char| c.is_ascii_whitespace())
        .ok_or(SipError::BadStartLine("request line has no SIP version"))?;
    if !starts_with_ignore_case(version, "SIP/") {
        return Err(SipError::BadStartLine(
            "request line does not end in SIP/x.y",
        ));
    }
    // Spaces inside the URI are invalid but seen in the wild; keep them.
    let uri = uri.trim();
    if uri.is_empty() {
        return Err(SipError::BadStartLine("empty Request-URI"));
    }
    Ok(StartLine::Request { method, uri })
}

/// RFC 3261 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Longest method name `looks_like_sip` accepts; real ones are ≤ 9 chars.
const MAX_METHOD: usize = 32;
/// How far `looks_like_sip` looks for the end of the request line.
const MAX_REQUEST_LINE: usize = 2048;

/// Cheap check whether `buf` starts with a SIP request or status line, for
/// recognising SIP on arbitrary ports. Rejects binary (RTP, TLS, …) on the
/// first byte; only a plausible request costs a scan of its first line.
pub fn looks_like_sip(buf: &[u8]) -> bool {
    match buf.first() {
        Some(b'S') if buf.starts_with(b"SIP/2.0 ") => looks_like_status(buf),
        Some(b) if b.is_ascii_uppercase() => looks_like_request(buf),
        _ => false,
    }
}

fn looks_like_status(buf: &[u8]) -> bool {
    let digits = buf
        .get(8..11)
        .is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    digits && matches!(buf.get(11), None | Some(b' ' | b'\r' | b'\n'))
}

fn looks_like_request(buf: &[u8]) -> bool {
    let head = buf.get(..MAX_METHOD + 1).unwrap_or(buf);
    let Some(sp) = memchr::memchr(b' ', head) else {
        return false;
    };
    if !head
        .get(..sp)
        .is_some_and(|m| m.iter().all(|&b| is_token_byte(b)))
    {
        return false;
    }
    let rest = buf.get(sp + 1..).unwrap_or_default();
    if !has_uri_scheme(rest) {
        return false;
    }
    let window = rest.get(..MAX_REQUEST_LINE).unwrap_or(rest);
    let Some(nl) = memchr::memchr(b'\n', window) else {
        return false;
    };
    let line = window.get(..nl).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.len() >= 8
        && line
            .get(line.len() - 8..)
            .is_some_and(|v| v.eq_ignore_ascii_case(b" SIP/2.0"))
}

/// `scheme:` with a short alphabetic scheme (sip, sips, tel, urn, …).
fn has_uri_scheme(rest: &[u8]) -> bool {
    let Some(colon) = rest.iter().take(9).position(|&b| b == b':') else {
        return false;
    };
    colon > 0
        && rest
            .get(..colon)
            .is_some_and(|s| s.iter().all(u8::is_ascii_alphabetic))
}
