//! `name-addr` / `addr-spec` values as found in From, To, Contact,
//! P-Asserted-Identity, Remote-Party-ID, Referred-By and friends.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;

use crate::header::params_lookup;

/// A parsed `"Display" <uri>;params` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name without quotes; escapes (`\"`, `\\`) resolved.
    pub display: Option<Cow<'a, str>>,
    /// The URI as written, without angle brackets.
    pub uri: &'a str,
    /// User part of a sip:/sips:/tel: URI, without user parameters. Not
    /// percent-decoded.
    pub user: Option<&'a str>,
    /// Host of a sip:/sips: URI without port; IPv6 without brackets.
    pub host: Option<&'a str>,
    /// The `tag` header parameter (outside the angle brackets).
    pub tag: Option<&'a str>,
}

impl fmt::Display for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{d}\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        if let Some(t) = self.tag {
            write!(f, ";tag={t}")?;
        }
        Ok(())
    }
}

/// Parse the first name-addr of a header value. Returns `None` when no URI
/// can be found (e.g. an unterminated `<` or an empty value).
pub fn parse_name_addr(s: &str) -> Option<NameAddr<'_>> {
    let s = s.trim();
    let (display, rest) = split_display(s)?;
    let (uri, params) = if let Some(inner) = rest.strip_prefix('<') {
        inner.split_once('>')?
    } else {
        // addr-spec form: everything after the first ';' is a header param
        // (RFC 3261 §20.10), and the URI ends at whitespace or a comma.
        let end = rest
            .find(|c: char| c == ';' || c == ',' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        (rest.get(..end)?, rest.get(end..)?)
    };
    let uri = uri.trim();
    if uri.is_empty() {
        return None;
    }
    let (user, host) = user_host(uri);
    let tag = params
        .trim_start()
        .strip_prefix(';')
        .and_then(|p| params_lookup(p, "tag"))
        .filter(|t| !t.is_empty());
    Some(NameAddr {
        display,
        uri,
        user,
        host,
        tag,
    })
}

/// Split off the display name; the remainder starts at `<` or is an
/// addr-spec.
fn split_display(s: &str) -> Option<(Option<Cow<'_, str>>, &str)> {
    if let Some(after) = s.strip_prefix('"') {
        let (display, rest) = quoted_string(after)?;
        return Some((Some(display), rest.trim_start()));
    }
    match s.find('<') {
        Some(lt) => {
            let name = s.get(..lt)?.trim();
            let display = (!name.is_empty()).then_some(Cow::Borrowed(name));
            Some((display, s.get(lt..)?))
        }
        None => Some((None, s)),
    }
}

/// Body of a quoted string (input starts after the opening quote). Returns
/// the unescaped text and what follows the closing quote. An unterminated
/// string is an error: guessing where it ends would invent a URI.
fn quoted_string(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut has_escape = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => {
                has_escape = true;
                i += 2;
            }
            b'"' => {
                let raw = s.get(..i)?;
                let rest = s.get(i + 1..)?;
                let text = if has_escape {
                    Cow::Owned(unescape(raw))
                } else {
                    Cow::Borrowed(raw)
                };
                return Some((text, rest));
            }
            _ => i += 1,
        }
    }
    None
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn user_host(uri: &str) -> (Option<&str>, Option<&str>) {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return (None, None);
    };
    if scheme.eq_ignore_ascii_case("tel") {
        let num = rest.split(';').next().filter(|n| !n.is_empty());
        return (num, None);
    }
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return (None, None);
    }
    // The user part may itself contain ';' and '?' (RFC 3261 user-unreserved),
    // so split on '@' before looking at parameters.
    let (user, hostport) = match rest.split_once('@') {
        Some((u, h)) => (u.split(';').next().filter(|u| !u.is_empty()), h),
        None => (None, rest),
    };
    let hostport = hostport.split([';', '?']).next().unwrap_or(hostport);
    (user, strip_port(hostport).filter(|h| !h.is_empty()))
}

/// Host without port. Handles `[v6]:port` and, because real devices send it
/// (see the heplify IPv6 capture), unbracketed IPv6 with or without a port.
fn strip_port(hostport: &str) -> Option<&str> {
    if let Some(inner) = hostport.strip_prefix('[') {
        return inner.split(']').next();
    }
    match hostport.bytes().filter(|&b| b == b':').count() {
        0 => Some(hostport),
        1 => hostport.split(':').next(),
        _ => {
            if hostport.parse::<Ipv6Addr>().is_ok() {
                return Some(hostport);
            }
            match hostport.rsplit_once(':') {
                Some((h, port))
                    if port.bytes().all(|b| b.is_ascii_digit())
                        && h.parse::<Ipv6Addr>().is_ok() =>
                {
                    Some(h)
                }
                _ => Some(hostport),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_display_with_escapes() {
        let na = parse_name_addr(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(na.display.as_deref(), Some(r#"J Rosenberg \""#));
        assert!(matches!(na.display, Some(Cow::Owned(_))));
        assert_eq!(na.uri, "sip:jdrosen@example.com");
        assert_eq!(na.user, Some("jdrosen"));
        assert_eq!(na.host, Some("example.com"));
        assert_eq!(na.tag, Some("98asjd8"));
    }

    #[test]
    fn token_display_and_no_display() {
        let na = parse_name_addr("test <sip:test@10.0.2.15:5060>;tag=gm5D9rB47ggme").unwrap();
        assert_eq!(na.display.as_deref(), Some("test"));
        assert!(matches!(na.display, Some(Cow::Borrowed(_))));
        assert_eq!(na.host, Some("10.0.2.15"));
        assert_eq!(na.tag, Some("gm5D9rB47ggme"));
        let na = parse_name_addr("<sip:9275890000@VMSSM;user=phone>").unwrap();
        assert_eq!(na.display, None);
        assert_eq!(na.user, Some("9275890000"));
        assert_eq!(na.host, Some("VMSSM"));
        assert_eq!(na.tag, None);
    }

    #[test]
    fn addr_spec_params_are_header_params() {
        let na = parse_name_addr("sip:alice@atlanta.com;tag=abc").unwrap();
        assert_eq!(na.uri, "sip:alice@atlanta.com");
        assert_eq!(na.tag, Some("abc"));
        // Inside brackets, ;tag belongs to the URI, not the header.
        let na = parse_name_addr("<sip:alice@atlanta.com;tag=abc>").unwrap();
        assert_eq!(na.tag, None);
    }

    #[test]
    fn user_params_and_tel() {
        let na = parse_name_addr("<sip:+1234;npdi;rn=+1999@gw.example:5061;user=phone>").unwrap();
        assert_eq!(na.user, Some("+1234"));
        assert_eq!(na.host, Some("gw.example"));
        let na = parse_name_addr("<tel:9171969136;phone-context=+7>").unwrap();
        assert_eq!(na.user, Some("9171969136"));
        assert_eq!(na.host, None);
        let na = parse_name_addr("<urn:service:sos>").unwrap();
        assert_eq!((na.user, na.host), (None, None));
    }

    #[test]
    fn ipv6_hosts() {
        let na = parse_name_addr("<sip:9876@fe80:0:0:0:21a:a0ff:fe07:32e0:5060>").unwrap();
        assert_eq!(na.host, Some("fe80:0:0:0:21a:a0ff:fe07:32e0"));
        let na = parse_name_addr("<sip:9876@fe80::1>").unwrap();
        assert_eq!(na.host, Some("fe80::1"));
        let na = parse_name_addr("sip:[2001:db8::10]:5070;transport=tcp").unwrap();
        assert_eq!(na.user, None);
        assert_eq!(na.host, Some("2001:db8::10"));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_name_addr(""), None);
        assert_eq!(parse_name_addr("\"unterminated <sip:a@b>"), None);
        assert_eq!(parse_name_addr("name <sip:a@b"), None);
        assert_eq!(parse_name_addr("<>"), None);
    }

    #[test]
    fn display_roundtrip() {
        let na = parse_name_addr("Bob <sip:bob@b.example>;tag=1").unwrap();
        assert_eq!(na.to_string(), "\"Bob\" <sip:bob@b.example>;tag=1");
    }
}
