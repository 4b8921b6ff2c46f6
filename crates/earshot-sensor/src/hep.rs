//! The HEP listener: a UDP socket receiving HEP v1/v2/v3 datagrams, as heplify, Kamailio
//! (siptrace), OpenSIPS (proto_hep), FreeSWITCH and Asterisk (res_hep) send them.
//!
//! Each datagram is handed to the pipeline whole, as a frame of the earshot-internal pseudo
//! link type [`LinkType::HEP`]; the decoder in earshot-wire unwraps it there, so HEP travels
//! through the same bounded queue, the same decoder and the same engine as captured frames, and
//! the packet inside is analysed as if it had been captured directly. The frame's timestamp is
//! the time of receipt; the decoder replaces it with the capture time the HEP agent wrote into
//! the envelope when there is one.
//!
//! Like every live source, the socket thread never waits on the pipeline: batches go through
//! [`FrameSender::send`], and what does not fit is counted as internal drops.
//!
//! Before a datagram is handed on, the [`HepPolicy`] decides whether it may be: its source must
//! be in the allow-list (loopback only unless configured, as for the Manager API), and, when an
//! auth key is set, it must be HEP3 carrying that key. Refusals are counted by reason and cost
//! nothing but the check.

use crate::counters::SensorCounters;
use crate::source::{FrameBatch, FrameSender, StopFlag};
use earshot_wire::{LinkType, Timestamp};
use ipnet::IpNet;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest a receive waits: bounds how late a stop request is seen.
pub const READ_TIMEOUT: Duration = Duration::from_millis(50);
/// Datagrams per batch at most.
const BATCH: usize = 256;
/// Largest UDP payload (IPv4); IPv6 jumbograms are not used for HEP.
const MAX_DATAGRAM: usize = 65_535;
/// Socket receive buffer asked for. Linux's default (about 200 KB) overflows within a
/// fraction of a second of a busy proxy's HEP feed whenever this thread is descheduled; the
/// kernel caps the request at `net.core.rmem_max`, and the listener warns when it did.
pub const RECV_BUFFER: usize = 16 << 20;

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum HepError {
    #[error("cannot listen for HEP on udp {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("HEP listener on udp {addr}: {cause}")]
    Socket {
        addr: SocketAddr,
        cause: std::io::Error,
    },
}

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
    fn loopback_only_on_open_socket(&self, local: SocketAddr) -> bool {
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

/// A bound HEP socket, ready to run. Binding happens at startup so an address in use or a
/// privileged port fails before the sensor reports itself ready.
#[derive(Debug)]
pub struct HepListener {
    socket: UdpSocket,
    local: SocketAddr,
    policy: HepPolicy,
}

impl HepListener {
    pub fn bind(addr: SocketAddr) -> Result<Self, HepError> {
        let bind_err = |cause| HepError::Bind { addr, cause };
        let sock_err = |cause| HepError::Socket { addr, cause };
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(bind_err)?;
        // Sized before binding, so no datagram ever meets the small default buffer.
        if let Err(e) = socket.set_recv_buffer_size(RECV_BUFFER) {
            tracing::warn!(%addr, "HEP listener: cannot enlarge the receive buffer: {e}");
        }
        socket.bind(&addr.into()).map_err(bind_err)?;
        let socket: UdpSocket = socket.into();
        socket
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(sock_err)?;
        let local = socket.local_addr().map_err(sock_err)?;
        // Linux reports twice the usable size; compare against half of what it says.
        let got = SockRef::from(&socket).recv_buffer_size().unwrap_or(0) / 2;
        if got < RECV_BUFFER {
            tracing::warn!(
                addr = %local,
                "HEP receive buffer is {} KiB, not the {} KiB asked for; raise \
                 net.core.rmem_max (sysctl) so bursts are not dropped by the kernel",
                got >> 10,
                RECV_BUFFER >> 10
            );
        }
        Ok(HepListener {
            socket,
            local,
            policy: HepPolicy::default(),
        })
    }

    /// Replaces the default policy (loopback only, no key).
    pub fn with_policy(mut self, policy: HepPolicy) -> Self {
        if policy.loopback_only_on_open_socket(self.local) {
            tracing::warn!(
                addr = %self.local,
                "HEP is received on {} but only loopback may send it: allow your proxies with \
                 --hep-allow CIDR (or [hep] allow)",
                self.local
            );
        }
        self.policy = policy;
        self
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Receives until `stop` or until the pipeline goes away.
    pub fn run(self, out: &FrameSender, stop: &StopFlag) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut gate = Gate {
            policy: &self.policy,
            counters: out.counters(),
            log_quiet_until: None,
            held_back: 0,
        };
        while !stop.is_stopped() {
            // Wait (up to READ_TIMEOUT) for one datagram, then take whatever else is already
            // queued without waiting: batches fill up under load, and a lone datagram is never
            // held back waiting for company.
            let mut batch = FrameBatch::with_capacity(8);
            if !self.recv(&mut buf, &mut batch, &mut gate) {
                continue;
            }
            if self.socket.set_nonblocking(true).is_ok() {
                while batch.len() < BATCH && self.recv(&mut buf, &mut batch, &mut gate) {}
                if let Err(e) = self.socket.set_nonblocking(false) {
                    // Without blocking reads the loop would spin; give up rather than burn a core.
                    tracing::error!(addr = %self.local, "HEP listener: {e}");
                    out.send(batch);
                    return;
                }
            }
            if !out.send(batch) {
                return;
            }
        }
    }

    /// Adds one datagram to `batch` as a frame, if the policy lets it through; false on
    /// timeout, would-block or a transient error (a refused datagram is true: keep reading).
    fn recv(&self, buf: &mut [u8], batch: &mut FrameBatch, gate: &mut Gate<'_>) -> bool {
        match self.socket.recv_from(buf) {
            Ok((n, peer)) => match buf.get(..n) {
                Some(data) => {
                    if gate.admit(peer, data) {
                        batch.push(now(), LinkType::HEP, data);
                    }
                    true
                }
                None => false,
            },
            Err(e) => {
                match e.kind() {
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted => {}
                    _ => {
                        // E.g. ICMP errors reported on the socket; they concern one peer, not
                        // the listener, so keep going, without spinning on a persistent one.
                        tracing::debug!(addr = %self.local, "HEP receive: {e}");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                false
            }
        }
    }

    /// Runs the listener on its own thread.
    pub fn spawn(self, out: FrameSender, stop: StopFlag) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("earshot-hep".into())
            .spawn(move || {
                let addr = self.local;
                self.run(&out, &stop);
                tracing::info!(%addr, "HEP listener stopped");
            })
    }
}

/// The policy at the socket, with its counters and a log line a second at most: a flood of
/// refused datagrams must not become a flood of log lines.
struct Gate<'a> {
    policy: &'a HepPolicy,
    counters: &'a SensorCounters,
    log_quiet_until: Option<Instant>,
    held_back: u64,
}

impl Gate<'_> {
    fn admit(&mut self, peer: SocketAddr, datagram: &[u8]) -> bool {
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

fn now() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
    )
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
        assert!(p.loopback_only_on_open_socket("0.0.0.0:9060".parse().unwrap()));
        assert!(!p.loopback_only_on_open_socket("127.0.0.1:9060".parse().unwrap()));
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
