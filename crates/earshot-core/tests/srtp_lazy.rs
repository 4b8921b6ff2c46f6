//! SRTP decrypted on demand: every packet of a keyed stream is authenticated, but its payload
//! is decrypted only when it will be read — a telephone-event, or a sink that wants the call's
//! payloads (`Sink::wants_payload`). From tests/captures/srtp/ (libsrtp2 protected them).

use earshot_core::{CallKey, Config, Engine, RtpPacket, Sink};
use earshot_wire::CaptureReader;
use std::path::{Path, PathBuf};

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/srtp")
        .join(name)
}

/// Every RTP packet the sink gets: (seq, event, encrypted, payload); `wants` is its answer.
struct Packets {
    wants: bool,
    got: Vec<(u16, bool, bool, Vec<u8>)>,
}

impl Sink for Packets {
    fn rtp(&mut self, p: &RtpPacket<'_>) {
        if p.ssrc == 0x7777_AAAA {
            let packet = (p.seq, p.event, p.encrypted, p.payload.to_vec());
            self.got.push(packet);
        }
    }
    fn wants_payload(&self, _call: CallKey) -> bool {
        self.wants
    }
}

fn run(name: &str, wants: bool, corrupt: &[u16]) -> (Engine, Packets) {
    let path = capture(name);
    let mut reader =
        CaptureReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut engine = Engine::new(Config::default());
    let mut sink = Packets {
        wants,
        got: Vec::new(),
    };
    while let Some(frame) = reader.next_frame() {
        let f = frame.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut data = f.data.to_vec();
        // The caller's packets by sequence number: the last byte is its tag's.
        let caller = data.len() > 46 && data[34..36] == 38010u16.to_be_bytes();
        if caller && corrupt.contains(&u16::from_be_bytes([data[44], data[45]])) {
            let last = data.len() - 1;
            data[last] ^= 1;
        }
        engine.handle_frame(f.ts, f.link, &data, &mut sink);
    }
    (engine, sink)
}

#[test]
fn a_sink_that_reads_no_payload_gets_authenticated_packets_and_dtmf_still_decrypts() {
    let (_, clear) = run("srtp_dtmf_clear.pcap", true, &[]);
    assert_eq!(clear.got.len(), 150);
    let corrupt = [20, 21, 52];
    let (full, decrypted) = run("srtp_dtmf.pcap", true, &corrupt);
    let (lazy, proof) = run("srtp_dtmf.pcap", false, &corrupt);
    // The same packets reach the sink (the refused ones none), the same counts and figures.
    let seqs = |p: &Packets| p.got.iter().map(|g| g.0).collect::<Vec<_>>();
    assert_eq!(seqs(&decrypted), seqs(&proof));
    assert_eq!(decrypted.got.len(), 150 - corrupt.len());
    assert_eq!(
        format!("{:?}", full.counters()),
        format!("{:?}", lazy.counters())
    );
    assert_eq!(lazy.counters().srtp.decrypted, 147);
    assert_eq!(lazy.counters().srtp.auth_failures, 3);
    let (a, b) = (&full.calls()[0], &lazy.calls()[0]);
    assert_eq!(a.dtmf, "59");
    assert_eq!(
        b.dtmf, "59",
        "the events were decrypted for the DTMF digits"
    );
    let (sa, sb) = (&a.streams[0], &b.streams[0]);
    assert_eq!(
        sa.srtp.as_ref().map(|s| s.counters),
        sb.srtp.as_ref().map(|s| s.counters)
    );
    assert_eq!(
        sa.srtp.as_ref().map(|s| s.roc()),
        sb.srtp.as_ref().map(|s| s.roc())
    );
    for ((want, got), lazily) in clear
        .got
        .iter()
        .filter(|c| !corrupt.contains(&c.0))
        .zip(&decrypted.got)
        .zip(&proof.got)
    {
        // Wanted: the clear payload. Not wanted: nothing to read, and not marked ciphertext
        // (it authenticated), but a telephone-event all the same clear.
        assert_eq!(
            (got.0, got.2, &got.3),
            (want.0, false, &want.3),
            "{}",
            want.0
        );
        if want.1 {
            assert_eq!((lazily.2, &lazily.3), (false, &want.3), "event {}", want.0);
        } else {
            assert_eq!((lazily.2, lazily.3.len()), (false, 0), "audio {}", want.0);
        }
    }
}
