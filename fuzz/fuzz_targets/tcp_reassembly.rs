#![no_main]
//! TCP reassembly fed hostile segments: sequence numbers anywhere, SYN/FIN/RST at random, time
//! going back and jumping, more flows than allowed. The limits must hold after every step and
//! delivered bytes must come from segments (never more than was sent).

use earshot_wire::{FlowKey, StreamEvent, TcpConfig, TcpFlags, TcpReassembler, Timestamp};
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

const CFG: TcpConfig = TcpConfig {
    max_flows: 4,
    max_buffered_per_flow: 2048,
    max_buffered_total: 4096,
    gap_timeout_ns: 1_000_000_000,
    idle_timeout_ns: 5_000_000_000,
};

fn flow(n: u8) -> FlowKey {
    let addr = |host: u8, port: u16| {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, host), port))
    };
    FlowKey {
        src: addr(n % 6, 5060 + u16::from(n % 6)),
        dst: addr(100, 5060),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut tcp = TcpReassembler::new(CFG.clone());
    let mut ts = 0i64;
    let mut sent = 0u64;
    let mut delivered = 0u64;
    let mut out = |e: StreamEvent<'_>| {
        if let StreamEvent::Data { data, .. } = e {
            delivered += data.len() as u64;
        }
    };
    // Records: op, flow, seq (u32 BE), time step (u16 BE), length, payload.
    let mut rest = data;
    while rest.len() >= 9 {
        let (head, tail) = rest.split_at(9);
        let op = head[0];
        let seq = u32::from_be_bytes([head[2], head[3], head[4], head[5]]);
        let step = i64::from(i16::from_be_bytes([head[6], head[7]]));
        // Mostly forward in 1 ms units; a negative step is time going backwards.
        ts = ts.saturating_add(step * 1_000_000);
        if op == 0xff {
            ts = ts.saturating_add(i64::MAX / 2);
        }
        let len = usize::from(head[8]).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        if op % 16 == 15 {
            tcp.expire(Timestamp(ts), &mut out);
        } else {
            let flags = TcpFlags {
                syn: op & 0x10 != 0,
                fin: op & 0x20 != 0,
                rst: op & 0x40 != 0,
            };
            sent += payload.len() as u64;
            tcp.segment(Timestamp(ts), flow(head[1]), seq, flags, payload, &mut out);
        }
        assert!(tcp.flows() <= CFG.max_flows);
        assert!(tcp.buffered() <= CFG.max_buffered_total);
    }
    tcp.expire(Timestamp(i64::MAX), &mut out);
    assert!(
        delivered <= sent,
        "{delivered} bytes delivered, {sent} sent"
    );
});
