//! Payload formats from SDP in SIP messages of dialogs whose INVITE was not captured.
//!
//! A capture that starts mid-dialog (or misses the INVITE) may still carry a 183 or 200 with
//! SDP. No call can be made of it, but its `a=rtpmap` lines say what the dynamic payload types
//! sent to and from its media addresses carry, and at what clock rate: without them such a
//! stream has no known clock and no jitter. tshark uses them the same way.
//!
//! The table is bounded ([`MAX_ENTRIES`] addresses, [`MAX_FORMATS`] formats each) and its
//! entries expire: a hostile stream of SDP bodies cannot grow it, only be refused and counted.

use crate::call::PayloadFormat;
use earshot_sip::sdp::Sdp;
use rustc_hash::FxHashMap;
use std::net::SocketAddr;

/// Media addresses remembered at once; far more than the orphan dialogs of any real capture.
pub(crate) const MAX_ENTRIES: usize = 4096;
/// Formats kept per address (an m-line rarely lists more than a dozen).
pub(crate) const MAX_FORMATS: usize = 16;

#[derive(Debug)]
struct Entry {
    seen_ns: i64,
    formats: Vec<PayloadFormat>,
}

#[derive(Debug, Default)]
pub(crate) struct OrphanSdp {
    entries: FxHashMap<SocketAddr, Entry>,
}

impl OrphanSdp {
    /// Remembers the formats of every audio and video m-line of `sdp` for its address.
    /// Returns how many addresses were refused because the table was full.
    pub(crate) fn learn(&mut self, now_ns: i64, ttl_ns: i64, sdp: &Sdp<'_>) -> u64 {
        let mut refused = 0;
        for m in &sdp.media {
            let kind_ok =
                m.kind.eq_ignore_ascii_case("audio") || m.kind.eq_ignore_ascii_case("video");
            let Some(ip) = m.connection.or(sdp.connection) else {
                continue;
            };
            if !kind_ok || m.port == 0 || ip.is_unspecified() {
                continue;
            }
            let addr = SocketAddr::new(ip, m.port);
            if !self.entries.contains_key(&addr) && self.entries.len() >= MAX_ENTRIES {
                self.expire(now_ns, ttl_ns);
                if self.entries.len() >= MAX_ENTRIES {
                    refused += 1;
                    continue;
                }
            }
            let entry = self.entries.entry(addr).or_insert_with(|| Entry {
                seen_ns: now_ns,
                formats: Vec::new(),
            });
            entry.seen_ns = now_ns;
            entry.formats.clear();
            for r in m.rtpmap.iter().take(MAX_FORMATS) {
                entry.formats.push(PayloadFormat {
                    pt: r.pt,
                    encoding: r.encoding.to_owned(),
                    clock_rate: r.clock_rate,
                    channels: r.channels,
                    encrypted: m.is_secure(),
                    fmtp: crate::call::kept_fmtp(m, r.pt),
                });
            }
            for &pt in &m.formats {
                if entry.formats.len() >= MAX_FORMATS || entry.formats.iter().any(|f| f.pt == pt) {
                    continue;
                }
                if let Some(mut fmt) = PayloadFormat::from_static(pt) {
                    fmt.encrypted = m.is_secure();
                    entry.formats.push(fmt);
                }
            }
        }
        refused
    }

    /// The formats announced for the destination of a packet, else for its source (the
    /// announcing party receives there and, with symmetric RTP, sends from there too).
    /// Empty when neither was announced, or the announcement is older than `ttl_ns`.
    pub(crate) fn formats(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        now_ns: i64,
        ttl_ns: i64,
    ) -> &[PayloadFormat] {
        if self.entries.is_empty() {
            return &[];
        }
        let fresh = |a: &SocketAddr| {
            self.entries
                .get(a)
                .filter(|e| now_ns.saturating_sub(e.seen_ns) <= ttl_ns)
        };
        fresh(&dst)
            .or_else(|| fresh(&src))
            .map_or(&[][..], |e| &e.formats[..])
    }

    /// Forgets announcements older than `ttl_ns`.
    pub(crate) fn expire(&mut self, now_ns: i64, ttl_ns: i64) {
        self.entries
            .retain(|_, e| now_ns.saturating_sub(e.seen_ns) <= ttl_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use earshot_sip::sdp;

    fn sdp_text(port: u32) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 10.9.0.1\r\ns=-\r\nc=IN IP4 10.9.{}.{}\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 96\r\na=rtpmap:96 AMR/8000\r\n",
            port / 250,
            port % 250,
            1024 + port % 60000
        )
    }

    #[test]
    fn the_table_is_bounded_counts_what_it_refuses_and_expires() {
        let mut t = OrphanSdp::default();
        let ttl = 10;
        let mut refused = 0;
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            let text = sdp_text(i);
            let sdp = sdp::parse(text.as_bytes()).unwrap();
            refused += t.learn(0, ttl, &sdp);
        }
        assert_eq!(t.entries.len(), MAX_ENTRIES);
        assert_eq!(refused, 10);
        // Once the old ones expire, a new address is taken again.
        let text = sdp_text(MAX_ENTRIES as u32 + 20);
        let sdp = sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(t.learn(100, ttl, &sdp), 0);
        assert_eq!(t.entries.len(), 1);
        let addr = SocketAddr::new(
            sdp.media[0].connection.or(sdp.connection).unwrap(),
            sdp.media[0].port,
        );
        let other: SocketAddr = "10.1.1.1:2000".parse().unwrap();
        assert_eq!(t.formats(other, addr, 105, ttl)[0].encoding, "AMR");
        assert!(
            t.formats(other, addr, 200, ttl).is_empty(),
            "stale entries are not used"
        );
    }
}
