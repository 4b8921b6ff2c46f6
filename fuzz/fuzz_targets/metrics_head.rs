#![no_main]
//! The `/metrics` request head: the blank-line test the server reads until, the route and the
//! headers the access rule reads, and the access rule itself, on any bytes a client sends.

use earshot_metrics::request::{head_complete, header, route};
use earshot_metrics::scrape_allowed;
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let _ = head_complete(data);
    let Ok(head) = std::str::from_utf8(data) else {
        return;
    };
    let _ = route(head);
    let auth = header(head, "authorization");
    if let Some(v) = auth {
        assert!(v.len() <= head.len());
    }
    let far = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    let _ = scrape_allowed(None, auth, far);
    let _ = scrape_allowed(Some("t0k"), auth, None);
    // A scraper sending the right token is let in, whatever else the head holds.
    if auth.and_then(|a| a.strip_prefix("Bearer ")).map(str::trim) == Some("t0k") {
        assert!(scrape_allowed(Some("t0k"), auth, far));
    }
});
