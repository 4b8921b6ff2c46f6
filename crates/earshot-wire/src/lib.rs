//! Packets off the wire: capture files, link layers, tunnels, IP and TCP reassembly, HEP.
//!
//! Everything here is sans-IO except [`capture`], which reads files through any `std::io::Read`.
//! Bytes and timestamps go in; typed transport-layer packets ([`Packet`]) come out.

#![warn(missing_docs, unreachable_pub)]

mod batch;
pub mod capture;
pub mod decap;
mod frag;
pub mod hep;
pub mod tcp;

pub use batch::{reuse_frame_list, FrameBatch, OwnedFrame};
pub use capture::{CaptureError, CaptureFormat, CaptureReader, Frame};
pub use decap::{
    DecapConfig, DecapStats, Decapsulator, HepSkipped, Packet, Transport, Udp4, MAX_HEP_INFLATED,
};
pub use tcp::{FlowKey, StreamEvent, TcpConfig, TcpFlags, TcpReassembler};

/// Capture time in nanoseconds since the Unix epoch.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The wall clock now: the one place earshot reads it as a capture-style time (before
    /// 1970 or past 2262 it saturates rather than wraps).
    pub fn now() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        Timestamp(since.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }

    /// The time `n` nanoseconds after the epoch.
    pub const fn from_nanos(n: i64) -> Self {
        Timestamp(n)
    }
    /// The time `us` microseconds after the epoch (pcap's classic resolution), saturating.
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us.saturating_mul(1_000))
    }
    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> i64 {
        self.0
    }
    /// Seconds since the epoch, for display and metrics (an `f64` keeps about 0.2 µs of a
    /// present-day time).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

/// Link-layer header type of a frame, as numbered by tcpdump's LINKTYPE_ registry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// `LINKTYPE_NULL`: BSD loopback, a 4-byte address family in the capturing host's order.
    pub const NULL: LinkType = LinkType(0);
    /// `LINKTYPE_ETHERNET`: Ethernet II (and 802.1Q VLAN tags).
    pub const ETHERNET: LinkType = LinkType(1);
    /// `LINKTYPE_PPP`: PPP, its protocol field after the HDLC-like `ff 03` if present (RFC 1662).
    pub const PPP: LinkType = LinkType(9);
    /// `LINKTYPE_RAW`: a bare IPv4 or IPv6 packet, the version nibble says which.
    pub const RAW: LinkType = LinkType(101);
    /// `LINKTYPE_LOOP`: OpenBSD loopback, a 4-byte address family in network order.
    pub const LOOP: LinkType = LinkType(108);
    /// `LINKTYPE_LINUX_SLL`: Linux "cooked" capture v1 (`tcpdump -i any` on older libpcap).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// `LINKTYPE_IPV4`: a bare IPv4 packet.
    pub const IPV4: LinkType = LinkType(228);
    /// `LINKTYPE_IPV6`: a bare IPv6 packet.
    pub const IPV6: LinkType = LinkType(229);
    /// `LINKTYPE_LINUX_SLL2`: Linux "cooked" capture v2 (`tcpdump -i any` on libpcap ≥ 1.10).
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// earshot-internal pseudo link type, never written to a file: the frame is a bare HEP
    /// v1/v2/v3 datagram as received by a HEP listener (no IP/UDP headers around it). It lets
    /// HEP travel through the same frame queue as captured frames. The value sits far above
    /// tcpdump's LINKTYPE_ registry (which stays below 2^16) so it cannot collide with one.
    pub const HEP: LinkType = LinkType(0xFFFF_0001);
}
