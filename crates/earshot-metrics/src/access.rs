//! Who may scrape. Prometheus cannot log in, so the sensor and the player share one rule: with a
//! metrics token, the right `Authorization: Bearer <token>` from any address; without one,
//! loopback clients only. The counts are not secret audio, but they tell an outsider how busy a
//! network is and which codes its calls end with, so exposing them is a decision, not a default.

use std::net::IpAddr;

/// Whether a scrape may read the metrics. `authorization` is the request's `Authorization`
/// header value; `client` its peer address (`None` when unknown: refused without a token).
pub fn scrape_allowed(
    token: Option<&str>,
    authorization: Option<&str>,
    client: Option<IpAddr>,
) -> bool {
    match token {
        Some(t) => authorization
            .and_then(|a| a.trim().strip_prefix("Bearer "))
            .is_some_and(|sent| constant_time_eq(sent.trim().as_bytes(), t.as_bytes())),
        None => client.is_some_and(is_loopback),
    }
}

/// What a refused scraper is told, so the fix is in the message.
pub fn refusal_reason(token_set: bool) -> &'static str {
    if token_set {
        "send the metrics token as `Authorization: Bearer <token>`"
    } else {
        "metrics are served to loopback only: scrape from this host, or set a metrics token (--metrics-token or [metrics] token)"
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(v4) => v4.is_loopback(),
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrapes_need_the_token_or_loopback() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let far: IpAddr = "192.0.2.7".parse().unwrap();
        let far_mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(scrape_allowed(None, None, Some(lo)));
        assert!(scrape_allowed(None, None, Some(lo6)));
        assert!(scrape_allowed(None, None, Some(mapped)));
        assert!(!scrape_allowed(None, None, Some(far)));
        assert!(!scrape_allowed(None, None, Some(far_mapped)));
        assert!(!scrape_allowed(None, None, None));
        assert!(scrape_allowed(Some("t0k"), Some("Bearer t0k"), Some(far)));
        assert!(scrape_allowed(Some("t0k"), Some(" Bearer t0k "), None));
        assert!(!scrape_allowed(Some("t0k"), Some("Bearer nope"), Some(lo)));
        assert!(!scrape_allowed(Some("t0k"), Some("Bearer t0"), Some(lo)));
        assert!(!scrape_allowed(Some("t0k"), None, Some(lo)));
        assert!(!scrape_allowed(Some("t0k"), Some("t0k"), Some(lo)));
        assert!(!scrape_allowed(Some("t0k"), Some("Basic t0k"), Some(lo)));
    }
}
