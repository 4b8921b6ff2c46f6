//! TCP reassembly: ordering, retransmission, wrap-around, gaps and memory bounds.

mod common;

use earshot_wire::tcp::{CloseReason, StreamEvent, TcpConfig, TcpFlags, TcpReassembler};
use earshot_wire::{FlowKey, Timestamp};

fn flow() -> FlowKey {
    FlowKey {
        src: common::sock("10.0.0.1", 40000),
        dst: common::sock("10.0.0.2", 5060),
    }
}

const NONE: TcpFlags = TcpFlags {
    syn: false,
    fin: false,
    rst: false,
};
const SYN: TcpFlags = TcpFlags {
    syn: true,
    fin: false,
    rst: false,
};
const FIN: TcpFlags = TcpFlags {
    syn: false,
    fin: true,
    rst: false,
};

#[derive(Debug, PartialEq)]
enum Ev {
    Data(i64, Vec<u8>),
    Gap(u64),
    Closed(CloseReason),
}

struct Harness {
    r: TcpReassembler,
    events: Vec<Ev>,
}

impl Harness {
    fn new(cfg: TcpConfig) -> Self {
        Self {
            r: TcpReassembler::new(cfg),
            events: Vec::new(),
        }
    }

    fn seg(&mut self, ts: i64, seq: u32, flags: TcpFlags, data: &[u8]) {
        let ev = &mut self.events;
        self.r
            .segment(Timestamp(ts), flow(), seq, flags, data, &mut |e| {
                ev.push(conv(e))
            });
    }

    fn expire(&mut self, ts: i64) {
        let ev = &mut self.events;
        self.r.expire(Timestamp(ts), &mut |e| ev.push(conv(e)));
    }

    fn stream(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for e in &self.events {
            if let Ev::Data(_, d) = e {
                v.extend_from_slice(d);
            }
        }
        v
    }
}

fn conv(e: StreamEvent<'_>) -> Ev {
    match e {
        StreamEvent::Data { data, ts, flow: f } => {
            assert_eq!(f, flow());
            Ev::Data(ts.0, data.to_vec())
        }
        StreamEvent::Gap { skipped, .. } => Ev::Gap(skipped),
        StreamEvent::Closed { reason, .. } => Ev::Closed(reason),
    }
}

#[test]
fn in_order_with_handshake_and_fin() {
    let mut h = Harness::new(TcpConfig::default());
    h.seg(1, 1000, SYN, b"");
    h.seg(2, 1001, NONE, b"hello ");
    h.seg(3, 1007, FIN, b"world");
    assert_eq!(
        h.events,
        vec![
            Ev::Data(2, b"hello ".to_vec()),
            Ev::Data(3, b"world".to_vec()),
            Ev::Closed(CloseReason::Fin)
        ]
    );
    assert_eq!(h.r.flows(), 0);
}

#[test]
fn out_of_order_is_buffered_until_the_gap_fills() {
    let mut h = Harness::new(TcpConfig::default());
    h.seg(1, 100, SYN, b"");
    h.seg(2, 111, NONE, b"CCCCC");
    h.seg(3, 106, NONE, b"BBBBB");
    assert!(h.events.is_empty());
    assert_eq!(h.r.buffered(), 10);
    h.seg(4, 101, NONE, b"AAAAA");
    assert_eq!(
        h.events,
        vec![
            Ev::Data(4, b"AAAAA".to_vec()),
            Ev::Data(3, b"BBBBB".to_vec()),
            Ev::Data(2, b"CCCCC".to_vec()),
        ]
    );
    assert_eq!(h.r.buffered(), 0);
}

#[test]
fn retransmissions_with_partial_overlap_deliver_each_byte_once() {
    let mut h = Harness::new(TcpConfig::default());
    h.seg(1, 0, NONE, b"0123456789");
    h.seg(2, 0, NONE, b"0123456789"); // full retransmission
    h.seg(3, 5, NONE, b"56789abcde"); // half old, half new
    h.seg(4, 20, NONE, b"klmno"); // out of order
    h.seg(5, 18, NONE, b"ijklmnop"); // overlaps the buffered one and extends it
    h.seg(6, 12, NONE, b"cdefghij"); // fills the gap, overlapping both sides
    assert_eq!(h.stream(), b"0123456789abcdefghijklmnop");
    assert_eq!(h.r.stats().delivered_bytes, 26);
    assert!(h.r.stats().retransmitted_bytes >= 15);
}

#[test]
fn sequence_wraps_around_2_pow_32() {
    let mut h = Harness::new(TcpConfig::default());
    let isn = u32::MAX - 5;
    h.seg(1, isn, SYN, b"");
    // Bytes at seq 2^32-4 .. 2^32+5: the second segment starts after the wrap.
    h.seg(2, isn.wrapping_add(1 + 6), NONE, b"GHIJ"); // out of order, post-wrap
    h.seg(3, isn.wrapping_add(1), NONE, b"ABCDEF");
    h.seg(4, isn.wrapping_add(1 + 2), NONE, b"CDEFGH"); // retransmission across the wrap
    h.seg(5, isn.wrapping_add(1 + 10), NONE, b"KL");
    assert_eq!(h.stream(), b"ABCDEFGHIJKL");
}

#[test]
fn mid_stream_start_uses_the_first_sequence_seen() {
    let mut h = Harness::new(TcpConfig::default());
    h.seg(1, 0x8000_0000, NONE, b"REGISTER sip");
    h.seg(2, 0x8000_000c, NONE, b":x SIP/2.0\r\n");
    assert_eq!(h.stream(), b"REGISTER sip:x SIP/2.0\r\n");
    // A bare ACK for a flow we never saw creates nothing.
    let key = FlowKey {
        src: common::sock("10.9.9.9", 1),
        dst: common::sock("10.9.9.8", 2),
    };
    h.r.segment(Timestamp(3), key, 5, NONE, b"", &mut |_| panic!("no event"));
    assert_eq!(h.r.flows(), 1);
}

#[test]
fn unfilled_gap_is_skipped_after_the_timeout() {
    let cfg = TcpConfig {
        gap_timeout_ns: 1_000,
        ..TcpConfig::default()
    };
    let mut h = Harness::new(cfg);
    h.seg(0, 0, NONE, b"aaaa");
    h.seg(10, 8, NONE, b"cccc"); // bytes 4..8 lost for good
    h.seg(20, 12, NONE, b"dddd");
    assert_eq!(h.stream(), b"aaaa");
    h.seg(2_000, 16, NONE, b"eeee"); // time has passed: give up on the hole
    assert_eq!(
        h.events[1..],
        [
            Ev::Gap(4),
            Ev::Data(10, b"cccc".to_vec()),
            Ev::Data(20, b"dddd".to_vec()),
            Ev::Data(2_000, b"eeee".to_vec()),
        ]
    );
    assert_eq!(h.r.stats().gaps, 1);
    // A late copy of the lost bytes is now old and dropped.
    h.seg(2_001, 4, NONE, b"bbbb");
    assert_eq!(h.stream(), b"aaaaccccddddeeee");
}

#[test]
fn unfilled_gap_is_skipped_when_the_buffer_is_full() {
    let cfg = TcpConfig {
        max_buffered_per_flow: 100,
        ..TcpConfig::default()
    };
    let mut h = Harness::new(cfg);
    h.seg(0, 0, NONE, b"x");
    for i in 0..30u32 {
        h.seg(1, 2 + i * 10, NONE, &[b'a' + i as u8; 10]);
        assert!(h.r.buffered() <= 100, "buffered {}", h.r.buffered());
    }
    assert!(h.events.contains(&Ev::Gap(1)));
    assert_eq!(h.stream().len(), 1 + 10 * 30 - h.r.buffered());
}

#[test]
fn global_memory_bound_and_flow_eviction() {
    let cfg = TcpConfig {
        max_flows: 16,
        max_buffered_total: 1000,
        ..TcpConfig::default()
    };
    let mut r = TcpReassembler::new(cfg);
    for i in 0..200u16 {
        let key = FlowKey {
            src: common::sock("10.0.0.1", 1000 + i),
            dst: common::sock("10.0.0.2", 5060),
        };
        r.segment(Timestamp(i64::from(i)), key, 0, NONE, b"x", &mut |_| {});
        // Leave a hole so the next segment is buffered.
        r.segment(
            Timestamp(i64::from(i)),
            key,
            10,
            NONE,
            &[0; 200],
            &mut |_| {},
        );
        assert!(r.flows() <= 16);
        assert!(r.buffered() <= 1000 + 200);
    }
    assert!(r.stats().evicted_flows >= 184);
}

#[test]
fn expire_drops_idle_flows_after_flushing() {
    let mut h = Harness::new(TcpConfig::default());
    h.seg(0, 0, NONE, b"ab");
    h.seg(1, 5, NONE, b"fg");
    h.expire(60_000_000_000);
    assert_eq!(h.r.flows(), 1);
    h.expire(400_000_000_000);
    assert_eq!(h.r.flows(), 0);
    assert_eq!(
        h.events,
        vec![
            Ev::Data(0, b"ab".to_vec()),
            Ev::Gap(3),
            Ev::Data(1, b"fg".to_vec()),
            Ev::Closed(CloseReason::Expired)
        ]
    );
}

#[test]
fn rst_and_syn_reuse_close_the_flow() {
    let mut h = Harness::new(TcpConfig::default());
    h.seg(0, 10, SYN, b"");
    h.seg(1, 11, NONE, b"abc");
    h.seg(2, 10, SYN, b""); // SYN retransmitted after data: ignored
    h.seg(3, 500, SYN, b""); // new connection, new ISN
    h.seg(4, 501, NONE, b"new");
    h.seg(5, 504, TcpFlags { rst: true, ..NONE }, b"");
    assert_eq!(
        h.events,
        vec![
            Ev::Data(1, b"abc".to_vec()),
            Ev::Closed(CloseReason::Restarted),
            Ev::Data(4, b"new".to_vec()),
            Ev::Closed(CloseReason::Rst),
        ]
    );
}

#[test]
fn retransmitted_syn_before_data_is_harmless() {
    let mut h = Harness::new(TcpConfig::default());
    h.seg(0, 10, SYN, b"");
    h.seg(1, 10, SYN, b"");
    h.seg(2, 11, NONE, b"abc");
    assert_eq!(h.events, vec![Ev::Data(2, b"abc".to_vec())]);
}
