//! Transports earshot used to drop, on captures made by independent tools: HEP3 with
//! zlib-compressed payloads (tests/captures/transport/, made by Python scripts there).

use earshot_core::{CallState, Config, Engine, NullSink};
use earshot_wire::CaptureReader;
use std::path::{Path, PathBuf};

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/transport")
        .join(name)
}

fn run(name: &str) -> Engine {
    let path = capture(name);
    let mut reader =
        CaptureReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut engine = Engine::new(Config::default());
    while let Some(frame) = reader.next_frame() {
        let f = frame.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        engine.handle_frame(f.ts, f.link, f.data, &mut NullSink);
    }
    engine
}

/// make_hep_zlib.py: three calls, 21 SIP messages, each in a HEP3 chunk 16 (zlib); then a zip
/// bomb, two broken streams and an envelope without payload, each skipped and counted.
#[test]
fn hep3_compressed_payloads_are_inflated_and_skips_counted() {
    let engine = run("hep-zlib.pcap");
    let k = engine.counters();
    assert_eq!(k.frames, 25);
    assert_eq!(k.sip_messages, 21, "every compressed SIP message is read");
    let calls = engine.calls();
    assert_eq!(calls.len(), 3);
    for c in &calls {
        assert_eq!(c.state, CallState::Ended, "{}", c.sip_call_id);
        assert_eq!(c.sip_messages, 7, "{}", c.sip_call_id);
        assert!(c.sip_call_id.starts_with("hepzlib-"), "{}", c.sip_call_id);
    }
    let s = &k.hep_skipped;
    assert_eq!(s.too_big, 1, "the zip bomb");
    assert_eq!(s.inflate_failed, 2, "not zlib; cut short");
    assert_eq!(s.unsupported, 1, "no payload chunk");
    assert_eq!(s.malformed, 0);
    assert_eq!(k.malformed, 2, "inflate failures are malformed frames too");
}
