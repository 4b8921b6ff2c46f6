//! From a link-layer frame down to UDP/TCP/SCTP payloads.
//! STUB: the real implementation replaces this file.

use crate::{LinkType, Timestamp};
use std::net::SocketAddr;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp {
        seq: u32,
        syn: bool,
        fin: bool,
        rst: bool,
    },
    /// One SCTP DATA chunk; `ppid` is its payload protocol identifier.
    Sctp {
        ppid: u32,
    },
}

/// A transport-layer payload with its addresses.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Innermost 802.1Q VLAN id, if any.
    pub vlan: Option<u16>,
    pub transport: Transport,
    pub payload: &'a [u8],
    /// True when the packet came out of a HEP envelope.
    pub from_hep: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DecapStats {
    pub frames: u64,
    pub malformed: u64,
    pub unsupported: u64,
    pub fragments: u64,
    pub reassembled: u64,
    pub fragment_timeouts: u64,
    pub hep: u64,
}

#[derive(Debug, Default)]
pub struct Decapsulator {
    stats: DecapStats,
}

impl Decapsulator {
    pub fn new() -> Self {
        Self::default()
    }
    /// Decodes one frame; calls `out` for every transport payload found in it (zero, one, or
    /// several: SCTP bundles chunks). Never panics on any input.
    pub fn decode(
        &mut self,
        _ts: Timestamp,
        _link: LinkType,
        _frame: &[u8],
        _out: &mut dyn FnMut(&Packet<'_>),
    ) {
        self.stats.frames += 1;
    }
    pub fn stats(&self) -> &DecapStats {
        &self.stats
    }
}
