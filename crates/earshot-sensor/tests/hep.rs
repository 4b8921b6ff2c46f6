//! The HEP listener: datagrams in, frames of the HEP pseudo link type out, decoded by the same
//! decoder as captured frames.

use earshot_sensor::hep::HepListener;
use earshot_sensor::{FrameBatch, FrameSender, OwnedFrame, SensorCounters, StopFlag};
use earshot_wire::{Decapsulator, LinkType, Timestamp, Transport};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIP: &[u8] = b"INVITE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060\r\n\
Call-ID: hep-test@earshot\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

fn chunk(ctype: u16, val: &[u8]) -> Vec<u8> {
    let mut c = vec![0, 0];
    c.extend_from_slice(&ctype.to_be_bytes());
    c.extend_from_slice(&((6 + val.len()) as u16).to_be_bytes());
    c.extend_from_slice(val);
    c
}

/// A HEP3 datagram as heplify sends one: IPv4/UDP, capture time, capture id, SIP payload.
fn hep3(secs: u32, usecs: u32, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(chunk(1, &[2])); // IPv4
    body.extend(chunk(2, &[17])); // UDP
    body.extend(chunk(3, &[192, 0, 2, 10]));
    body.extend(chunk(4, &[192, 0, 2, 20]));
    body.extend(chunk(7, &5060u16.to_be_bytes()));
    body.extend(chunk(8, &5062u16.to_be_bytes()));
    body.extend(chunk(9, &secs.to_be_bytes()));
    body.extend(chunk(10, &usecs.to_be_bytes()));
    body.extend(chunk(11, &[1])); // protocol type: SIP
    body.extend(chunk(12, &2001u32.to_be_bytes())); // capture agent id
    body.extend(chunk(15, payload));
    let mut h = b"HEP3".to_vec();
    h.extend_from_slice(&((6 + body.len()) as u16).to_be_bytes());
    h.extend(body);
    h
}

fn recv_frames(rx: &crossbeam_channel::Receiver<FrameBatch>, n: usize) -> Vec<OwnedFrame> {
    let mut frames = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while frames.len() < n && Instant::now() < deadline {
        if let Ok(batch) = rx.recv_timeout(Duration::from_millis(50)) {
            frames.extend(batch);
        }
    }
    frames
}

#[test]
fn hep3_invite_reaches_the_pipeline_and_decodes_with_inner_addresses() {
    let listener = HepListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr();
    assert_ne!(addr.port(), 0);
    let counters = Arc::new(SensorCounters::default());
    let (tx, rx) = crossbeam_channel::bounded(16);
    let stop = StopFlag::default();
    let thread = listener
        .spawn(FrameSender::new(tx, counters.clone()), stop.clone())
        .unwrap();

    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = hep3(1_700_000_000, 250_000, SIP);
    agent.send_to(&datagram, addr).unwrap();
    let frames = recv_frames(&rx, 1);
    stop.stop();
    thread.join().unwrap();

    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!(f.link, LinkType::HEP);
    assert_eq!(f.data, datagram);
    let mut d = Decapsulator::new();
    let mut got = Vec::new();
    d.decode(f.ts, f.link, &f.data, &mut |p| {
        got.push((
            p.src,
            p.dst,
            p.ts,
            p.transport,
            p.from_hep,
            p.payload.to_vec(),
        ))
    });
    assert_eq!(got.len(), 1);
    let (src, dst, ts, transport, from_hep, payload) = &got[0];
    assert_eq!(*src, "192.0.2.10:5060".parse::<SocketAddr>().unwrap());
    assert_eq!(*dst, "192.0.2.20:5062".parse::<SocketAddr>().unwrap());
    // The agent's capture time, not the time of receipt.
    assert_eq!(*ts, Timestamp(1_700_000_000_250_000_000));
    assert_eq!(*transport, Transport::Udp);
    assert!(from_hep);
    assert_eq!(payload.as_slice(), SIP);
    assert_eq!(SensorCounters::get(&counters.frames), 1);
}

#[test]
fn a_burst_is_batched_and_nothing_is_lost() {
    let listener = HepListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr();
    let counters = Arc::new(SensorCounters::default());
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let stop = StopFlag::default();
    let thread = listener
        .spawn(FrameSender::new(tx, counters.clone()), stop.clone())
        .unwrap();
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Bursts of 25, paced so that a small kernel receive buffer (net.core.rmem_max) on the
    // test machine cannot lose any: the point is batching, not the kernel's capacity.
    for i in 0..200u32 {
        agent.send_to(&hep3(1_700_000_000, i, SIP), addr).unwrap();
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let frames = recv_frames(&rx, 200);
    stop.stop();
    thread.join().unwrap();
    assert_eq!(frames.len(), 200);
    assert_eq!(SensorCounters::get(&counters.internal_drops), 0);
}

#[test]
fn full_queue_counts_internal_drops_and_never_blocks() {
    let listener = HepListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr();
    let counters = Arc::new(SensorCounters::default());
    // One batch fits; nobody reads: the rest must be dropped and counted, not waited for.
    let (tx, _rx) = crossbeam_channel::bounded(1);
    let stop = StopFlag::default();
    let thread = listener
        .spawn(FrameSender::new(tx, counters.clone()), stop.clone())
        .unwrap();
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20u32 {
        agent.send_to(&hep3(1_700_000_000, i, SIP), addr).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while SensorCounters::get(&counters.frames) < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.stop();
    thread.join().unwrap();
    let frames = SensorCounters::get(&counters.frames);
    let dropped = SensorCounters::get(&counters.internal_drops);
    assert_eq!(frames, 20);
    assert!(dropped > 0 && dropped < 20, "dropped {dropped}");
}

#[test]
fn bind_errors_name_the_address() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = HepListener::bind(addr).unwrap_err().to_string();
    assert!(err.contains(&addr.to_string()), "{err}");
}
