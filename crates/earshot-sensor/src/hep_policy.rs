//! Who may send HEP, checked on the socket thread before a datagram is handed on: the source
//! must be in the allow-list (loopback only unless configured, as for the Manager API), and, when
//! an auth key is set, the datagram must be HEP3 carrying that key (HEP v1/v2 cannot). A refusal
//! costs only the check, and is counted by reason.

use crate::counters::SensorCounters;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Who may send HEP.
#[derive(Clone, Debug)]
pub struct HepPolicy {
    /// Source ranges accepted; datagrams from elsewhere are dropped unread.
    pub allow: Vec<IpNet>,
    /// When set, only HEP3 datagrams whose auth key chunk equals it are accepted.
    pub auth_key: Option<Vec<u8>>,
}

impl Default for HepPolicy {
    /// Loopback only and no key: like the Manager API, open to the network only on purpose.
    fn default() -> Self {
        HepPolicy {
            allow: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            auth_key: None,
        }
    }
}

/// Why a datagram was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Address,
    AuthKey,
}

impl HepPolicy {
    /// Whether a datagram from `peer` may be handed on.
    pub fn check(&self, peer: IpAddr, datagram: &[u8]) -> Result<(), Refusal> {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        if !self.allow.iter().any(|n| n.contains(&peer)) {
            return Err(Refusal::Address);
        }
        if let Some(expected) = &self.auth_key {
            let presented = earshot_wire::hep::auth_key(datagram).map(trim_key);
            if !presented.is_some_and(|k| earshot_manager::framing::token_matches(expected, k)) {
                return Err(Refusal::AuthKey);
            }
        }
        Ok(())
    }

    /// Whether the socket at `local` can receive from beyond this host while only loopback
    /// sources are allowed: then remote agents' datagrams will all be refused.
    pub(crate) fn refuses_remote_agents_on(&self, local: SocketAddr) -> bool {
        let loopback = |n: &IpNet| n.addr().is_loopback();
        !local.ip().is_loopback() && self.allow.iter().all(loopback)
    }
}

/// Agents write the key as a C string now and then: a trailing NUL or whitespace is not part of
/// it (configured keys are trimmed too).
fn trim_key(key: &[u8]) -> &[u8] {
    let end = key
        .iter()
        .rposition(|b| *b != 0 && !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let start = key
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(end)
        .min(end);
    key.get(start..end).unwrap_or_default()
}

/// The policy at the socket, with its counters and a log line a second at most: a flood of
/// refused datagrams must not become a flood of log lines.
pub(crate) struct Gate<'a> {
    policy: &'a HepPolicy,
    counters: &'a SensorCounters,
    log_quiet_until: Option<Instant>,
    held_back: u64,
}

impl<'a> Gate<'a> {
    pub fn new(policy: &'a HepPolicy, counters: &'a SensorCounters) -> Gate<'a> {
        Gate {
            policy,
            counters,
            log_quiet_until: None,
            held_back: 0,
        }
    }

    /// Whether the datagram may be handed on; a refusal is counted (and logged, rate-limited).
    pub fn admit(&mut self, peer: SocketAddr, datagram: &[u8]) -> bool {
        let Err(refusal) = self.policy.check(peer.ip(), datagram) else {
            return true;
        };
        let (counter, why) = match refusal {
            Refusal::Address => (
                &self.counters.hep_refused_address,
                "source not in the HEP allow-list (--hep-allow, [hep] allow)",
            ),
            Refusal::AuthKey => (
                &self.counters.hep_refused_auth_key,
                "missing or wrong HEP3 auth key (--hep-auth-key, [hep] auth_key)",
            ),
        };
        SensorCounters::add(counter, 1);
        let now = Instant::now();
        if self.log_quiet_until.is_some_and(|t| now < t) {
            self.held_back += 1;
        } else {
            self.log_quiet_until = Some(now + Duration::from_secs(1));
            let held_back = std::mem::take(&mut self.held_back);
            let note = if held_back > 0 {
                format!(" ({held_back} more refused since the last such line)")
            } else {
                String::new()
            };
            tracing::warn!(%peer, "HEP datagram refused: {why}{note}");
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hep3_with_key(key: &[u8]) -> Vec<u8> {
        let mut chunk = vec![0, 0, 0, 14];
        chunk.extend_from_slice(&((6 + key.len()) as u16).to_be_bytes());
        chunk.extend_from_slice(key);
        let mut d = b"HEP3".to_vec();
        d.extend_from_slice(&((6 + chunk.len()) as u16).to_be_bytes());
        d.extend(chunk);
        d
    }

    #[test]
    fn the_default_policy_is_loopback_only() {
        let p = HepPolicy::default();
        let d = hep3_with_key(b"");
        assert_eq!(p.check("127.0.0.1".parse().unwrap(), &d), Ok(()));
        assert_eq!(p.check("::1".parse().unwrap(), &d), Ok(()));
        assert_eq!(p.check("::ffff:127.0.0.1".parse().unwrap(), &d), Ok(()));
        assert_eq!(
            p.check("10.0.0.1".parse().unwrap(), &d),
            Err(Refusal::Address)
        );
        assert!(p.refuses_remote_agents_on("0.0.0.0:9060".parse().unwrap()));
        assert!(!p.refuses_remote_agents_on("127.0.0.1:9060".parse().unwrap()));
    }

    #[test]
    fn a_key_must_be_presented_and_match() {
        let p = HepPolicy {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            auth_key: Some(b"s3cret".to_vec()),
        };
        let peer = "10.1.2.3".parse().unwrap();
        assert_eq!(p.check(peer, &hep3_with_key(b"s3cret")), Ok(()));
        assert_eq!(p.check(peer, &hep3_with_key(b"s3cret\0")), Ok(()));
        assert_eq!(
            p.check(peer, &hep3_with_key(b"s3cre")),
            Err(Refusal::AuthKey)
        );
        assert_eq!(p.check(peer, b"\x02\x10\x02\x11"), Err(Refusal::AuthKey));
        assert_eq!(
            p.check("192.0.2.1".parse().unwrap(), &hep3_with_key(b"s3cret")),
            Err(Refusal::Address),
            "the address is checked first"
        );
    }

    #[test]
    fn keys_are_trimmed_of_nul_and_spaces() {
        assert_eq!(trim_key(b" k\0"), b"k");
        assert_eq!(trim_key(b"\0\0"), b"");
        assert_eq!(trim_key(b"   "), b"");
        assert_eq!(trim_key(b"a b"), b"a b");
    }
}
