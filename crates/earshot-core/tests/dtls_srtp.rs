//! DTLS-SRTP in the engine, from the captures of tests/captures/dtls-srtp/ (OpenSSL's
//! handshakes, libsrtp2's SRTP with the keying material OpenSSL exported): a key log that
//! arrives after the handshake, or corrects a wrong secret, keys the packets that follow.

use earshot_core::{Config, Engine, KeySource, RtpPacket, Sink};
use earshot_wire::CaptureReader;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/dtls-srtp")
        .join(name)
}

/// Every RTP packet the sink gets: (ssrc, seq) → (encrypted, payload), in arrival order.
#[derive(Default)]
struct Packets(Vec<((u32, u16), bool, Vec<u8>)>);

impl Sink for Packets {
    fn rtp(&mut self, p: &RtpPacket<'_>) {
        self.0
            .push(((p.ssrc, p.seq), p.encrypted, p.payload.to_vec()));
    }
}

/// Feeds a capture; `before_packet(engine, n)` runs before the frame that follows the n-th RTP
/// packet the sink got (each n once).
fn run(name: &str, mut before_packet: impl FnMut(&mut Engine, usize)) -> (Engine, Packets) {
    let path = capture(name);
    let mut reader =
        CaptureReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut engine = Engine::new(Config::default());
    let mut sink = Packets::default();
    let mut told = usize::MAX;
    while let Some(frame) = reader.next_frame() {
        let f = frame.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if told != sink.0.len() {
            told = sink.0.len();
            before_packet(&mut engine, told);
        }
        engine.handle_frame(f.ts, f.link, f.data, &mut sink);
    }
    (engine, sink)
}

fn key_log(name: &str) -> Vec<u8> {
    std::fs::read(capture(name)).expect("the key log (make.py)")
}

fn clear_payloads() -> HashMap<(u32, u16), Vec<u8>> {
    let (_, clear) = run("clear_twin.pcap", |_, _| {});
    clear.0.into_iter().map(|(k, _, p)| (k, p)).collect()
}

#[test]
fn a_key_log_that_arrives_after_the_handshake_keys_the_packets_that_follow() {
    let (engine, sink) = run("dtls_srtp_aes_cm_80.pcap", |e, n| {
        if n == 50 {
            e.key_log_mut().feed(&key_log("keys.log"));
        }
    });
    let clear = clear_payloads();
    assert_eq!(sink.0.len(), 400);
    for (i, (id, encrypted, payload)) in sink.0.iter().enumerate() {
        if i < 50 {
            assert!(*encrypted, "packet {i} came before the key log");
        } else {
            assert!(!encrypted, "packet {i} came after it");
            assert_eq!(Some(payload), clear.get(id), "packet {i} is the clear one");
        }
    }
    let k = engine.counters();
    assert_eq!(
        (k.srtp.no_key, k.srtp.decrypted, k.srtp.auth_failures),
        (50, 350, 0)
    );
    assert_eq!(
        (k.dtls.handshakes, k.dtls.keyed, k.dtls.without_key),
        (1, 1, 0)
    );
    let call = &engine.calls()[0];
    for s in &call.streams {
        assert_eq!(s.srtp_source, Some(KeySource::Dtls));
        assert!(s.is_decrypted() && !s.is_encrypted());
    }
}

#[test]
fn a_key_log_that_corrects_a_wrong_secret_keys_the_packets_that_follow() {
    let (engine, sink) = run("dtls_srtp_aes_cm_80.pcap", |e, n| {
        if n == 0 {
            e.key_log_mut().feed(&key_log("keys_wrong.log"));
        }
        if n == 100 {
            e.key_log_mut().feed(&key_log("keys.log"));
        }
    });
    let clear = clear_payloads();
    for (i, (id, encrypted, payload)) in sink.0.iter().enumerate() {
        assert_eq!(*encrypted, i < 100, "packet {i}");
        if i >= 100 {
            assert_eq!(Some(payload), clear.get(id), "packet {i}");
        }
    }
    let k = engine.counters();
    assert_eq!((k.srtp.auth_failures, k.srtp.decrypted), (100, 300));
    assert_eq!(k.dtls.keyed, 1, "one handshake, keyed (twice)");
}

/// Counts this thread's allocations, to hold the RTP path to none per packet.
struct Counting;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(|a| a.get())
}

#[test]
fn srtp_packets_waiting_for_a_key_and_decrypted_ones_allocate_nothing() {
    let path = capture("dtls_srtp_aes_cm_80.pcap");
    let mut reader = CaptureReader::open(&path).expect("the capture");
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame() {
        let f = frame.expect("a frame");
        frames.push((f.ts, f.link, f.data.to_vec()));
    }
    let mut engine = Engine::new(Config::default());
    let sink = &mut earshot_core::NullSink;
    // SIP, the handshake and the first SRTP packets of both streams.
    let media = frames.len() - 402;
    let (head, rest) = frames.split_at(media + 20);
    for (ts, link, data) in head {
        engine.handle_frame(*ts, *link, data, sink);
    }
    let (waiting, rest) = rest.split_at(100);
    let before = allocations();
    for (ts, link, data) in waiting {
        engine.handle_frame(*ts, *link, data, sink);
    }
    assert_eq!(allocations() - before, 0, "packets waiting for a key");
    engine.key_log_mut().feed(&key_log("keys.log"));
    let (keying, rest) = rest.split_at(10);
    let before = allocations();
    for (ts, link, data) in keying {
        engine.handle_frame(*ts, *link, data, sink);
    }
    // Each stream's SRTP state, once: the counter counts.
    assert!(
        allocations() > before,
        "the first keyed packets make their SRTP state"
    );
    let before = allocations();
    for (ts, link, data) in &rest[..100] {
        engine.handle_frame(*ts, *link, data, sink);
    }
    assert_eq!(allocations() - before, 0, "decrypted packets");
    assert_eq!(engine.counters().srtp.decrypted, 110);
}
