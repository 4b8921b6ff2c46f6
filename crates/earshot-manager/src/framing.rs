//! Request framing: when has a client finished sending its command?
//!
//! VoIPmonitor's rule (manager.cpp `manager_read_thread`), which clients rely on:
//! - the *first* segment received ends the request if it contains `\r\n\r\n`;
//! - a *later* segment ends it if it contains a newline;
//! - end of input (half-close) or 500 ms without new bytes ends it too.
//!
//! Only the first line is a command. earshot adds an optional `auth <token>` line before it; when
//! that line is present, a later segment's newline ends the request only once the command line is
//! complete too, so a client writing the auth line and the command separately is not cut short.
//!
//! The reader is sans-IO: the server feeds it each `recv()` result, calls [`RequestReader::on_eof`]
//! on a zero-length read, and runs the idle timer itself, calling
//! [`RequestReader::on_idle_timeout`] when [`IDLE_TIMEOUT`] passes without bytes while
//! [`RequestReader::wants_idle_timer`] is true.

use std::time::Duration;
use thiserror::Error;

/// Requests larger than this are refused (the command line of a `listcalls {…}` is far smaller).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Silence after the first segment that ends a request, as in VoIPmonitor.
pub const IDLE_TIMEOUT: Duration = Duration::from_millis(500);

const AUTH_PREFIX: &[u8] = b"auth ";

/// A framed request: the optional auth token and the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The token of an `auth <token>` first line, raw bytes (compared in constant time).
    pub auth_token: Option<Vec<u8>>,
    /// The command line without its line ending; invalid UTF-8 replaced lossily, which makes
    /// such a command unknown rather than a crash.
    pub command_line: String,
}

/// What a client sends for `command`: an `auth <token>` line when it has a token, the command
/// line, and the blank line that ends a request at once (the first-segment rule above).
pub fn encode_request(token: Option<&str>, command: &crate::Command) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(t) = token {
        out.extend_from_slice(AUTH_PREFIX);
        out.extend_from_slice(t.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(command.encode().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("request larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
}

impl RequestError {
    /// The bytes to send before closing.
    pub fn reply(&self) -> &'static [u8] {
        match self {
            RequestError::TooLarge => crate::replies::REQUEST_TOO_LARGE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing received yet.
    Empty,
    /// At least one segment received; waiting for the end of the request.
    Partial,
    /// A request (or an error) was produced; further input is ignored.
    Done,
}

/// Accumulates one connection's request bytes until the request is complete.
#[derive(Debug)]
pub struct RequestReader {
    buf: Vec<u8>,
    phase: Phase,
}

impl Default for RequestReader {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestReader {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            phase: Phase::Empty,
        }
    }

    /// Feeds one received segment. Returns the request once complete, an error when the request
    /// exceeds [`MAX_REQUEST_BYTES`], or `None` to keep reading. After a result, returns `None`.
    pub fn push(&mut self, segment: &[u8]) -> Option<Result<Request, RequestError>> {
        if self.phase == Phase::Done || segment.is_empty() {
            return None;
        }
        let first = self.phase == Phase::Empty;
        self.phase = Phase::Partial;
        let room = MAX_REQUEST_BYTES - self.buf.len();
        let taken = &segment[..segment.len().min(room)];
        self.buf.extend_from_slice(taken);
        let overflow = taken.len() < segment.len();
        if self.is_complete(first, taken) {
            return Some(Ok(self.finish()));
        }
        if overflow {
            self.phase = Phase::Done;
            return Some(Err(RequestError::TooLarge));
        }
        None
    }

    /// The peer half-closed: whatever arrived is the request. `None` if nothing arrived (the
    /// server then closes without a reply, as VoIPmonitor does with an empty request).
    pub fn on_eof(&mut self) -> Option<Result<Request, RequestError>> {
        self.flush()
    }

    /// [`IDLE_TIMEOUT`] passed without bytes. Ends a started request like EOF does; before the
    /// first byte it does nothing (VoIPmonitor's first read has no timeout; the server may apply
    /// its own connection deadline).
    pub fn on_idle_timeout(&mut self) -> Option<Result<Request, RequestError>> {
        if self.phase == Phase::Partial {
            self.flush()
        } else {
            None
        }
    }

    /// True while the server should run the idle timer (restarted after every segment).
    pub fn wants_idle_timer(&self) -> bool {
        self.phase == Phase::Partial
    }

    /// True once a request or an error was returned.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn flush(&mut self) -> Option<Result<Request, RequestError>> {
        if self.phase != Phase::Partial {
            self.phase = Phase::Done;
            return None;
        }
        Some(Ok(self.finish()))
    }

    fn is_complete(&self, first: bool, segment: &[u8]) -> bool {
        if contains(&self.buf, b"\r\n\r\n") {
            return true;
        }
        !first && segment.contains(&b'\n') && command_line_complete(&self.buf)
    }

    fn finish(&mut self) -> Request {
        self.phase = Phase::Done;
        let buf = std::mem::take(&mut self.buf);
        split_request(&buf)
    }
}

/// Whether the buffer holds the command line's newline (the second line's with an auth line).
fn command_line_complete(buf: &[u8]) -> bool {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return false;
    };
    if !buf.starts_with(AUTH_PREFIX) {
        return true;
    }
    buf[nl + 1..].contains(&b'\n')
}

/// Splits a complete request into the optional auth token and the command line. Like
/// VoIPmonitor, the request is cut at the first `\r\n\r\n` and each line at `\r` or `\n`.
fn split_request(buf: &[u8]) -> Request {
    let buf = match find(buf, b"\r\n\r\n") {
        Some(end) => &buf[..end],
        None => buf,
    };
    let mut lines = buf.split(|&b| b == b'\n').map(strip_cr);
    let first = lines.next().unwrap_or_default();
    let (auth_token, command) = match first.strip_prefix(AUTH_PREFIX) {
        Some(token) => (
            Some(trim_ascii(token).to_vec()),
            lines.next().unwrap_or_default(),
        ),
        None => (None, first),
    };
    Request {
        auth_token,
        command_line: String::from_utf8_lossy(command).into_owned(),
    }
}

/// The line up to its first `\r` (VoIPmonitor cuts there too).
fn strip_cr(line: &[u8]) -> &[u8] {
    match line.iter().position(|&b| b == b'\r') {
        Some(i) => &line[..i],
        None => line,
    }
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Compares a presented token with the configured one in time that depends only on the
/// configured token's length, so response timing does not reveal how many bytes matched.
pub fn token_matches(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = (expected.len() != presented.len()) as u8;
    for (i, &e) in expected.iter().enumerate() {
        let p = presented.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(e ^ p);
    }
    diff == 0
}

/// Access check for a request. With no token configured every request passes (the auth line, if
/// any, is ignored); otherwise the request must carry the right token.
pub fn authorize(expected: Option<&[u8]>, request: &Request) -> bool {
    match expected {
        None => true,
        Some(exp) => request
            .auth_token
            .as_deref()
            .is_some_and(|tok| token_matches(exp, tok)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cmd: &str) -> Request {
        Request {
            auth_token: None,
            command_line: cmd.to_string(),
        }
    }

    #[test]
    fn crlfcrlf_in_first_segment_completes() {
        let mut r = RequestReader::new();
        assert_eq!(r.push(b"listcalls\r\n\r\n"), Some(Ok(req("listcalls"))));
        assert!(r.is_done());
        assert_eq!(r.push(b"more"), None);
    }

    #[test]
    fn lone_newline_in_first_segment_waits() {
        let mut r = RequestReader::new();
        assert_eq!(r.push(b"listcalls\n"), None);
        assert!(r.wants_idle_timer());
        assert_eq!(r.on_eof(), Some(Ok(req("listcalls"))));
    }

    #[test]
    fn newline_in_later_segment_completes() {
        let mut r = RequestReader::new();
        assert_eq!(r.push(b"listen 0x12"), None);
        assert_eq!(r.push(b"34 abc"), None);
        assert_eq!(r.push(b"\r\n"), Some(Ok(req("listen 0x1234 abc"))));
    }

    #[test]
    fn crlfcrlf_split_across_segments() {
        let mut r = RequestReader::new();
        assert_eq!(r.push(b"getversion\r\n\r"), None);
        assert_eq!(r.push(b"\n"), Some(Ok(req("getversion"))));
    }

    #[test]
    fn eof_without_newline_and_idle_timeout() {
        let mut r = RequestReader::new();
        assert_eq!(r.push(b"totalcalls"), None);
        assert_eq!(r.on_eof(), Some(Ok(req("totalcalls"))));
        let mut r = RequestReader::new();
        assert_eq!(r.on_idle_timeout(), None, "no timer before the first byte");
        assert!(!r.wants_idle_timer());
        assert_eq!(r.push(b"help"), None);
        assert_eq!(r.on_idle_timeout(), Some(Ok(req("help"))));
        assert_eq!(r.on_idle_timeout(), None);
    }

    #[test]
    fn empty_connection_gives_nothing() {
        let mut r = RequestReader::new();
        assert_eq!(r.push(b""), None);
        assert_eq!(r.on_eof(), None);
        assert!(r.is_done());
    }

    #[test]
    fn only_first_line_counts() {
        let mut r = RequestReader::new();
        let got = r
            .push(b"totalcalls\r\nlistcalls\r\n\r\ngetversion")
            .unwrap()
            .unwrap();
        assert_eq!(got, req("totalcalls"));
    }

    #[test]
    fn auth_line_then_command() {
        let mut r = RequestReader::new();
        assert_eq!(r.push(b"auth s3cret\nlistcalls\n"), None);
        let got = r.on_eof().unwrap().unwrap();
        assert_eq!(got.auth_token.as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(got.command_line, "listcalls");

        let mut r = RequestReader::new();
        let got = r.push(b"auth tok\r\ntotalcalls\r\n\r\n").unwrap().unwrap();
        assert_eq!(got.auth_token.as_deref(), Some(&b"tok"[..]));
        assert_eq!(got.command_line, "totalcalls");
    }

    /// What a client encodes is one request, framed by its first segment, token and all.
    #[test]
    fn an_encoded_request_is_framed_at_once() {
        let c = crate::Command::Listen {
            callref: crate::CallRef::from_u64(0xabc),
            listen_id: "p1".into(),
        };
        for token in [None, Some("s3cret")] {
            let mut r = RequestReader::new();
            let got = r.push(&encode_request(token, &c)).unwrap().unwrap();
            assert_eq!(got.auth_token.as_deref(), token.map(str::as_bytes));
            assert_eq!(crate::parse_command(&got.command_line), Ok(c.clone()));
        }
    }

    #[test]
    fn auth_line_in_its_own_segment_waits_for_the_command() {
        let mut r = RequestReader::new();
        assert_eq!(r.push(b"auth to"), None);
        assert_eq!(r.push(b"k\n"), None, "the command line has not arrived yet");
        assert_eq!(r.push(b"totalcalls"), None);
        let got = r.push(b"\n").unwrap().unwrap();
        assert_eq!(got.auth_token.as_deref(), Some(&b"tok"[..]));
        assert_eq!(got.command_line, "totalcalls");
    }

    #[test]
    fn auth_without_command_is_an_empty_command() {
        let mut r = RequestReader::new();
        let got = r.push(b"auth tok\r\n\r\n").unwrap().unwrap();
        assert_eq!(got.command_line, "");
    }

    #[test]
    fn oversized_request_is_refused() {
        let mut r = RequestReader::new();
        let chunk = vec![b'a'; 40 * 1024];
        assert_eq!(r.push(&chunk), None);
        assert_eq!(r.push(&chunk), Some(Err(RequestError::TooLarge)));
        assert_eq!(
            RequestError::TooLarge.reply(),
            b"error: request too large\n"
        );
        assert_eq!(r.push(b"\n"), None);
        assert_eq!(r.on_eof(), None);
    }

    #[test]
    fn terminator_within_the_limit_wins_over_size() {
        let mut r = RequestReader::new();
        let mut big = b"help\r\n\r\n".to_vec();
        big.resize(100 * 1024, b'x');
        assert_eq!(r.push(&big), Some(Ok(req("help"))));
    }

    #[test]
    fn exactly_the_limit_then_eof_is_accepted() {
        let mut r = RequestReader::new();
        let data = vec![b'z'; MAX_REQUEST_BYTES];
        assert_eq!(r.push(&data), None);
        let got = r.on_eof().unwrap().unwrap();
        assert_eq!(got.command_line.len(), MAX_REQUEST_BYTES);
    }

    #[test]
    fn binary_garbage_is_lossy_text() {
        let mut r = RequestReader::new();
        let got = r.push(b"\xff\xfe\x00list\r\n\r\n").unwrap().unwrap();
        assert!(got.command_line.contains('\u{fffd}'));
    }

    #[test]
    fn token_comparison() {
        assert!(token_matches(b"abc", b"abc"));
        assert!(!token_matches(b"abc", b"abd"));
        assert!(!token_matches(b"abc", b"ab"));
        assert!(!token_matches(b"abc", b"abcd"));
        assert!(!token_matches(b"abc", b""));
        assert!(token_matches(b"", b""));
        let with = Request {
            auth_token: Some(b"abc".to_vec()),
            command_line: String::new(),
        };
        assert!(authorize(None, &req("x")));
        assert!(authorize(None, &with));
        assert!(authorize(Some(b"abc"), &with));
        assert!(!authorize(Some(b"abd"), &with));
        assert!(!authorize(Some(b"abc"), &req("x")));
    }

    proptest::proptest! {
        #[test]
        fn reader_never_panics(segments in proptest::collection::vec(
            proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..8), eof in proptest::bool::ANY) {
            let mut r = RequestReader::new();
            for s in &segments {
                let _ = r.push(s);
            }
            let _ = if eof { r.on_eof() } else { r.on_idle_timeout() };
        }
    }
}
