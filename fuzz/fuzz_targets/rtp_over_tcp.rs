#![no_main]
//! Media framed on TCP (RFC 4571, ICE-TCP STUN, TURN ChannelData) through the engine: a call
//! whose SDP says `TCP/RTP/AVP`, then hostile segments on its connection, both ways: any
//! sequence numbers (retransmissions, holes, reordering), SYN/FIN/RST, payloads that are raw
//! bytes or wrapped as a 4571 frame of RTP, a ChannelData or a STUN message whose lengths
//! may lie. Beyond "no panic": every media packet taken off TCP costs at least 4 bytes of
//! what was sent (so nothing is emitted in proportion to a length field), and the engine's
//! call table holds the one call.

use earshot_core::{Config, Engine, NullSink};
use earshot_wire::{Packet, Timestamp, Transport};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;

const CALLER: &str = "10.0.0.1";
const CALLEE: &str = "10.0.0.2";

fn sdp(ip: &str, port: u16, setup: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} TCP/RTP/AVP 0 8\r\na=setup:{setup}\r\na=connection:new\r\n"
    )
}

fn sip(first: &str, body: &str) -> Vec<u8> {
    format!(
        "{first}\r\nVia: SIP/2.0/UDP {CALLER}:5060;branch=z9hG4bK1\r\nFrom: <sip:a@{CALLER}>;tag=a\r\n\
         To: <sip:b@{CALLEE}>;tag=b\r\nCall-ID: fuzz-tcp\r\nCSeq: 1 INVITE\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn udp(engine: &mut Engine, ts: i64, src: &str, dst: &str, payload: &[u8]) {
    let p = Packet {
        ts: Timestamp(ts),
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        vlan: None,
        transport: Transport::Udp,
        payload,
        from_hep: false,
    };
    engine.handle_packet(&p, &mut NullSink);
}

/// Wraps `body` as the record's op asks: raw, a 4571 frame of RTP, ChannelData or STUN; the
/// length fields come from `len` (which may lie) or the true length.
fn shape(op: u8, len: u16, seq: u16, body: &[u8], out: &mut Vec<u8>) {
    let lie = op & 0x80 != 0;
    match (op >> 2) & 3 {
        0 => out.extend_from_slice(body),
        1 => {
            let n = if lie { len } else { (12 + body.len()) as u16 };
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&[0x80, 0]);
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 1, 2, 3, 4]);
            out.extend_from_slice(body);
        }
        2 => {
            let n = if lie { len } else { body.len() as u16 };
            out.extend_from_slice(&[0x40, 0x00]);
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(body);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        _ => {
            let n = if lie { len } else { (body.len() as u16) & !3 };
            out.extend_from_slice(&[0x00, 0x01]);
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&body[..usize::from(n).min(body.len())]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut engine = Engine::new(Config::default());
    let a_sip = format!("{CALLER}:5060");
    let b_sip = format!("{CALLEE}:5060");
    let invite = sip("INVITE sip:b@10.0.0.2 SIP/2.0", &sdp(CALLER, 9, "active"));
    udp(&mut engine, 0, &a_sip, &b_sip, &invite);
    let ok = sip("SIP/2.0 200 OK", &sdp(CALLEE, 20000, "passive"));
    udp(&mut engine, 1_000_000, &b_sip, &a_sip, &ok);

    let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:20000".parse().unwrap();
    let mut seqs = [1000u32, 0xFFFF_FF00];
    let mut ts = 2_000_000i64;
    let mut sent = 0u64;
    let mut payload = Vec::new();
    // Records: op, seq offset (i16 BE), length field (u16 BE), body length, body.
    let mut rest = data;
    let mut n = 0u16;
    while rest.len() >= 6 {
        let (head, tail) = rest.split_at(6);
        let op = head[0];
        let delta = i16::from_be_bytes([head[1], head[2]]);
        let len = u16::from_be_bytes([head[3], head[4]]);
        let body_len = usize::from(head[5]).min(tail.len());
        let (body, tail) = tail.split_at(body_len);
        rest = tail;
        n = n.wrapping_add(1);
        payload.clear();
        shape(op, len, n, body, &mut payload);
        let dir = usize::from(op & 1);
        let (src, dst) = if dir == 0 { (a, b) } else { (b, a) };
        // Mostly in order; a non-zero delta is a retransmission, hole or reordering.
        let seq = seqs[dir].wrapping_add(delta as i32 as u32);
        if delta == 0 {
            seqs[dir] = seqs[dir].wrapping_add(payload.len() as u32);
        }
        ts += 1_000_000;
        let p = Packet {
            ts: Timestamp(ts),
            src,
            dst,
            vlan: None,
            transport: Transport::Tcp {
                seq,
                syn: op & 0x70 == 0x10,
                fin: op & 0x70 == 0x20,
                rst: op & 0x70 == 0x40,
            },
            payload: &payload,
            from_hep: false,
        };
        sent += payload.len() as u64;
        engine.handle_packet(&p, &mut NullSink);
        if op & 0x70 == 0x70 {
            engine.expire(Timestamp(ts), &mut NullSink);
        }
        let c = engine.counters();
        let taken = c.tcp_media.frames + c.tcp_media.skipped;
        assert!(taken * 4 <= sent, "{taken} frames out of {sent} bytes");
        let sizes = engine.table_sizes();
        assert!(sizes.calls <= 1, "{sizes:?}");
    }
});
