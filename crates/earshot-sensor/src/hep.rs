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
//! Before a datagram is handed on, the [`HepPolicy`] decides whether it may be (source address,
//! auth key); see `hep_policy.rs`.

use crate::hep_policy::{Gate, HepPolicy};
use crate::source::{FrameBatch, FrameSender, StopFlag, BATCH_FRAMES};
use earshot_wire::{LinkType, Timestamp};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest a receive waits: bounds how late a stop request is seen.
pub const READ_TIMEOUT: Duration = Duration::from_millis(50);
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
        if policy.refuses_remote_agents_on(self.local) {
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
        let mut gate = Gate::new(&self.policy, out.counters());
        while !stop.is_stopped() {
            // Wait (up to READ_TIMEOUT) for one datagram, then take whatever else is already
            // queued without waiting: batches fill up under load, and a lone datagram is never
            // held back waiting for company.
            let mut batch = FrameBatch::with_capacity(8);
            if !self.recv(&mut buf, &mut batch, &mut gate) {
                continue;
            }
            if self.socket.set_nonblocking(true).is_ok() {
                while batch.len() < BATCH_FRAMES && self.recv(&mut buf, &mut batch, &mut gate) {}
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
                        batch.push(Timestamp::now(), LinkType::HEP, data);
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
