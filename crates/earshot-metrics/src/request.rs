//! The request head of a scrape, taken apart without I/O so that it can be tested and fuzzed
//! apart from the socket code that reads it (the sensor's `/metrics` server). A scrape is one
//! short `GET`; anything else is answered with an error, never parsed further.

/// Where a request head goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (any query string): the scrape itself.
    Metrics,
    /// A `GET` for any other path: answered 404.
    NotFound,
    /// Any method but `GET`, or no request line at all: answered 405.
    BadMethod,
}

/// True once `buf` holds a whole request head (a blank line, CRLF or bare LF style).
pub fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

/// The value of the first header called `name` (case-insensitive) in a request head.
pub fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Which answer a request head gets, from its request line alone.
pub fn route(head: &str) -> Route {
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics,
        ("GET", _) => Route::NotFound,
        _ => Route::BadMethod,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(
            route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route("GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
        assert_eq!(route(""), Route::BadMethod);
    }

    #[test]
    fn headers_are_found_by_any_case() {
        let head = "GET /metrics HTTP/1.1\r\nHost: x\r\nauthorization:  Bearer t0k \r\n\r\n";
        assert_eq!(header(head, "Authorization"), Some("Bearer t0k"));
        assert_eq!(header(head, "host"), Some("x"));
        assert_eq!(header(head, "cookie"), None);
        assert_eq!(
            header("GET /authorization: x HTTP/1.1\r\n\r\n", "authorization"),
            None
        );
    }

    #[test]
    fn a_head_ends_at_a_blank_line() {
        assert!(head_complete(b"GET /metrics HTTP/1.1\r\n\r\n"));
        assert!(head_complete(b"GET /metrics\n\n"));
        assert!(!head_complete(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"));
        assert!(!head_complete(b""));
    }
}
