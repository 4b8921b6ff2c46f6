//! Header-name normalisation and value helpers shared by the message,
//! multipart and framing code.

/// Compact header forms (RFC 3261 §7.3.3 and the IANA "SIP Parameters"
/// registry). Kept as a flat table: a 20-entry scan is cheaper than hashing.
const COMPACT: [(u8, &str); 20] = [
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'n', "Identity-Info"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// The long form of a header name: compact one-letter names are expanded,
/// anything else is returned unchanged (case is not normalised).
pub fn canonical_name(name: &str) -> &str {
    match name.as_bytes() {
        [c] => {
            let c = c.to_ascii_lowercase();
            COMPACT
                .iter()
                .find(|(k, _)| *k == c)
                .map_or(name, |(_, long)| long)
        }
        _ => name,
    }
}

/// Case-insensitive header-name equality that treats compact and long forms
/// as the same header.
pub(crate) fn names_equal(a: &str, b: &str) -> bool {
    canonical_name(a).eq_ignore_ascii_case(canonical_name(b))
}

/// Iterator over the elements of a comma-separated header value.
///
/// Commas inside double quotes or `<...>` do not split, because display names
/// and URIs may legally contain them. Elements are trimmed; empty elements
/// (e.g. from `a,,b`) are skipped.
#[derive(Debug, Clone)]
pub struct SplitList<'a> {
    rest: &'a str,
}

/// Split a header value such as `Via`, `Contact` or `Allow` into its
/// comma-separated elements. See [`SplitList`].
pub fn split_list(value: &str) -> SplitList<'_> {
    SplitList { rest: value }
}

impl<'a> Iterator for SplitList<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let end = top_level_comma(self.rest);
            let (item, rest) = match end {
                Some(i) => (self.rest.get(..i)?, self.rest.get(i + 1..)?),
                None => (self.rest, ""),
            };
            self.rest = rest;
            let item = item.trim();
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

/// Byte index of the first comma outside quotes and angle brackets.
fn top_level_comma(s: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if in_quotes {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_quotes = true,
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            b',' if !in_angle => return Some(i),
            _ => {}
        }
    }
    None
}

/// Value of the `;name=value` parameter in a header value (e.g. `tag` in a
/// From value after the URI, or `boundary` in a Content-Type). Whitespace
/// around `=` is tolerated and surrounding quotes are removed. A parameter
/// without a value yields `Some("")`.
///
/// The search starts after the first `;` outside `<...>` and quotes, so URI
/// parameters inside angle brackets are not mistaken for header parameters.
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let start = first_param_semicolon(value)?;
    let params = value.get(start + 1..)?;
    params_lookup(params, name)
}

fn first_param_semicolon(s: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut in_angle = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'"' if !in_angle => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            b';' if !in_quotes && !in_angle => return Some(i),
            _ => {}
        }
    }
    None
}

/// Look `name` up in a `;`-separated parameter list (without the leading `;`).
pub(crate) fn params_lookup<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    for param in params.split(';') {
        let (k, v) = match param.split_once('=') {
            Some((k, v)) => (k, v),
            None => (param, ""),
        };
        if k.trim().eq_ignore_ascii_case(name) {
            return Some(unquote(param_value_end(v.trim())));
        }
    }
    None
}

/// A parameter value ends at whitespace or a comma (the next list element),
/// unless it is quoted.
fn param_value_end(v: &str) -> &str {
    if v.starts_with('"') {
        return v;
    }
    let end = v
        .find(|c: char| c == ',' || c.is_ascii_whitespace())
        .unwrap_or(v.len());
    v.get(..end).unwrap_or(v)
}

/// Strip one pair of surrounding double quotes, if present. Escapes are not
/// processed: parameter values that need them (boundaries, tags) never do.
pub(crate) fn unquote(v: &str) -> &str {
    if let Some(inner) = v.strip_prefix('"') {
        match inner.find('"') {
            Some(end) => inner.get(..end).unwrap_or(inner),
            None => inner,
        }
    } else {
        v
    }
}

/// The media type of a Content-Type value (`type/subtype`, no parameters),
/// trimmed. Comparison is the caller's job (case-insensitive).
pub(crate) fn media_type(content_type: &str) -> &str {
    content_type
        .split(';')
        .next()
        .map_or(content_type, str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_names_expand() {
        assert_eq!(canonical_name("i"), "Call-ID");
        assert_eq!(canonical_name("I"), "Call-ID");
        assert_eq!(canonical_name("l"), "Content-Length");
        assert_eq!(canonical_name("q"), "q");
        assert_eq!(canonical_name("Via"), "Via");
        assert!(names_equal("v", "VIA"));
        assert!(names_equal("call-id", "i"));
        assert!(names_equal("x", "session-expires"));
        assert!(!names_equal("f", "To"));
    }

    #[test]
    fn split_list_respects_quotes_and_brackets() {
        let v = r#""Doe, John" <sip:a@b;x=1,2>;q=1 , <sip:c@d>,,sip:e@f"#;
        let got: Vec<_> = split_list(v).collect();
        assert_eq!(
            got,
            vec![r#""Doe, John" <sip:a@b;x=1,2>;q=1"#, "<sip:c@d>", "sip:e@f"]
        );
        let got: Vec<_> = split_list(r#""a\",b" <sip:x>, y"#).collect();
        assert_eq!(got, vec![r#""a\",b" <sip:x>"#, "y"]);
        assert_eq!(split_list("  ").count(), 0);
    }

    #[test]
    fn params() {
        assert_eq!(
            header_param("multipart/mixed;boundary=\"abc def\"", "BOUNDARY"),
            Some("abc def")
        );
        assert_eq!(
            header_param("multipart/mixed; charset=x ; boundary = abc", "boundary"),
            Some("abc")
        );
        assert_eq!(header_param("<sip:a@b;tag=no>;tag=yes", "tag"), Some("yes"));
        assert_eq!(header_param("<sip:a@b;tag=no>", "tag"), None);
        assert_eq!(header_param("<sip:a@b>;lr", "lr"), Some(""));
        assert_eq!(media_type(" Application/SDP ; x=y"), "Application/SDP");
    }
}
