//! Just enough MIME multipart (RFC 2046 §5.1) to pull the SDP out of
//! SIP-I/SIP-T bodies (SDP + ISUP) and similar.

use crate::header::{self, names_equal};

/// Nested multiparts deeper than this are not searched; real bodies nest at
/// most once.
const MAX_DEPTH: usize = 3;

/// Longest boundary RFC 2046 allows is 70; be a little lenient.
const MAX_BOUNDARY: usize = 200;

/// Content of the first `application/sdp` part, searching nested
/// `multipart/*` parts too.
pub(crate) fn find_sdp<'a>(body: &'a [u8], boundary: &str) -> Option<&'a [u8]> {
    find_sdp_at(body, boundary, 0)
}

fn find_sdp_at<'a>(body: &'a [u8], boundary: &str, depth: usize) -> Option<&'a [u8]> {
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return None;
    }
    for part in Parts::new(body, boundary.as_bytes()) {
        let (content_type, content) = split_part(part);
        let Some(ct) = content_type else { continue };
        let mt = header::media_type(ct);
        if mt.eq_ignore_ascii_case("application/sdp") {
            return Some(content);
        }
        let is_multipart = mt
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("multipart/"));
        if is_multipart && depth + 1 < MAX_DEPTH {
            if let Some(inner) = header::header_param(ct, "boundary") {
                if let Some(sdp) = find_sdp_at(content, inner, depth + 1) {
                    return Some(sdp);
                }
            }
        }
    }
    None
}

/// Iterator over the raw parts (part headers + content) between delimiter
/// lines. The preamble before the first delimiter is skipped.
struct Parts<'a, 'b> {
    body: &'a [u8],
    boundary: &'b [u8],
    /// Position just after the previous delimiter line, `None` when done.
    pos: Option<usize>,
}

impl<'a, 'b> Parts<'a, 'b> {
    fn new(body: &'a [u8], boundary: &'b [u8]) -> Self {
        let mut p = Parts {
            body,
            boundary,
            pos: None,
        };
        p.pos = p.find_delimiter(0).and_then(|(_, after)| after);
        p
    }

    /// Next delimiter at or after `from`: returns where it starts (minus the
    /// preceding line break) and where the following part begins, `None` for
    /// the closing `--boundary--`.
    fn find_delimiter(&self, from: usize) -> Option<(usize, Option<usize>)> {
        let mut search = from;
        loop {
            let hay = self.body.get(search..)?;
            let rel = memchr::memmem::find(hay, b"--")?;
            let at = search + rel;
            search = at + 2;
            let at_line_start = at == 0 || self.body.get(at - 1) == Some(&b'\n');
            let name = self.body.get(at + 2..)?;
            if !at_line_start || !name.starts_with(self.boundary) {
                continue;
            }
            let after_name = at + 2 + self.boundary.len();
            let start = line_break_start(self.body, at);
            if self.body.get(after_name..after_name + 2) == Some(b"--") {
                return Some((start, None));
            }
            // Transport padding may follow the boundary on its line.
            let next = memchr::memchr(b'\n', self.body.get(after_name..)?)
                .map_or(self.body.len(), |i| after_name + i + 1);
            return Some((start, Some(next)));
        }
    }
}

/// The CRLF (or LF) before a delimiter belongs to the delimiter.
fn line_break_start(body: &[u8], at: usize) -> usize {
    let mut start = at;
    if start > 0 && body.get(start - 1) == Some(&b'\n') {
        start -= 1;
        if start > 0 && body.get(start - 1) == Some(&b'\r') {
            start -= 1;
        }
    }
    start
}

impl<'a> Iterator for Parts<'a, '_> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let begin = self.pos.take()?;
        match self.find_delimiter(begin) {
            Some((end, next)) => {
                self.pos = next;
                self.body.get(begin..end.max(begin))
            }
            // Missing closing delimiter: the part runs to the end.
            None => self.body.get(begin..),
        }
    }
}

/// Split a part into its Content-Type (if any) and its content.
fn split_part(part: &[u8]) -> (Option<&str>, &[u8]) {
    let mut pos = 0;
    let mut content_type = None;
    loop {
        let Some(rest) = part.get(pos..) else {
            return (content_type, &[]);
        };
        let (line, advance) = match memchr::memchr(b'\n', rest) {
            Some(i) => (rest.get(..i).unwrap_or_default(), i + 1),
            None => (rest, rest.len()),
        };
        pos += advance;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return (content_type, part.get(pos..).unwrap_or_default());
        }
        if advance == 0 {
            return (content_type, &[]);
        }
        if content_type.is_none() {
            content_type = part_content_type(line);
        }
    }
}

fn part_content_type(line: &[u8]) -> Option<&str> {
    let line = std::str::from_utf8(line).ok()?;
    let (name, value) = line.split_once(':')?;
    names_equal(name.trim(), "Content-Type").then(|| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sdp_after_preamble() {
        let body = b"preamble text\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\ncontent-type:application/SDP\r\n\r\nv=0\r\ns=-\r\n\r\n--b1--\r\nepilogue";
        assert_eq!(find_sdp(body, "b1"), Some(&b"v=0\r\ns=-\r\n"[..]));
    }

    #[test]
    fn bare_lf_and_padding_and_no_close() {
        let body = b"--xyz   \nContent-Type: application/sdp\n\nv=0\ns=x\n";
        assert_eq!(find_sdp(body, "xyz"), Some(&b"v=0\ns=x\n"[..]));
    }

    #[test]
    fn nested_multipart() {
        let body = b"--outer\r\nContent-Type: multipart/alternative; boundary=\"in ner\"\r\n\r\n--in ner\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--in ner--\r\n--outer--\r\n";
        assert_eq!(find_sdp(body, "outer"), Some(&b"v=0"[..]));
    }

    #[test]
    fn boundary_text_inside_content_is_not_a_delimiter() {
        let body = b"--b\r\nContent-Type: application/sdp\r\n\r\nv=0 --b\r\n--b--";
        assert_eq!(find_sdp(body, "b"), Some(&b"v=0 --b"[..]));
    }

    #[test]
    fn no_sdp_part() {
        let body = b"--b\r\nContent-Type: application/isup\r\n\r\n\x01\x02\r\n--b--";
        assert_eq!(find_sdp(body, "b"), None);
        assert_eq!(find_sdp(body, ""), None);
        assert_eq!(find_sdp(b"", "b"), None);
    }
}
