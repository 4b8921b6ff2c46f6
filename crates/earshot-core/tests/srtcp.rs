//! SRTCP in the engine, from tests/captures/srtp/srtcp_rr*.pcap (make.py there: libsrtp2's
//! `srtp_protect_rtcp` encrypted the callee's receiver reports with its SDES key): the reports
//! of an SRTP call reach the capture-loss / network-loss split exactly as its clear twin's do,
//! and RTCP of an SRTP call that its key does not authenticate, or that no key opens, is
//! counted and never read as report blocks, however well-formed it looks.

use earshot_core::{CaptureGaps, Config, Engine, NullSink, Stream};
use earshot_wire::CaptureReader;
use std::path::{Path, PathBuf};

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/srtp")
        .join(name)
}

/// The callee's RTCP port (make.py: RTP + 1).
const CALLEE_RTCP: u16 = 38021;

/// Feeds a capture (make.py's Ethernet, IPv4, UDP frames) with `edit` applied to each UDP
/// payload, by source port; the frame's lengths and IPv4 checksum follow the payload, and an
/// emptied payload drops the frame.
fn run(name: &str, edit: impl Fn(u16, &mut Vec<u8>)) -> Engine {
    let path = capture(name);
    let mut reader =
        CaptureReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut engine = Engine::new(Config::default());
    while let Some(frame) = reader.next_frame() {
        let f = frame.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (headers, payload) = f.data.split_at(42);
        let mut payload = payload.to_vec();
        edit(u16::from_be_bytes([headers[34], headers[35]]), &mut payload);
        if payload.is_empty() {
            continue;
        }
        let data = reframe(headers, &payload);
        engine.handle_frame(f.ts, f.link, &data, &mut NullSink);
    }
    engine
}

fn reframe(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut data = headers.to_vec();
    let ip_len = (20 + 8 + payload.len()) as u16;
    data[16..18].copy_from_slice(&ip_len.to_be_bytes());
    data[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    data[24..26].copy_from_slice(&[0, 0]);
    let sum = data[14..34]
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    data[24..26].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    data.extend_from_slice(payload);
    data
}

fn caller_stream(engine: &Engine) -> Stream {
    let calls = engine.calls();
    let call = calls.first().expect("the call");
    call.streams
        .iter()
        .find(|s| s.key.ssrc == 0x7777_AAAA)
        .cloned()
        .expect("the caller's stream")
}

/// (network loss, capture loss, far end's cumulative loss and reports) of the caller's stream.
fn split(engine: &Engine) -> (u64, u64, Option<(i32, u32)>) {
    let s = caller_stream(engine);
    let gaps = CaptureGaps::default();
    let far = s.far_end().map(|f| (f.cumulative_lost, f.reports));
    (s.network_loss(&gaps), s.capture_loss(&gaps), far)
}

#[test]
fn srtcp_receiver_reports_split_the_loss_as_the_clear_twins_do() {
    let clear = run("srtcp_rr_clear.pcap", |_, _| {});
    let srtp = run("srtcp_rr.pcap", |_, _| {});
    // The capture lacks 10 of the caller's packets: the callee lost 5 (network), got 5 (the
    // sensor missed them).
    assert_eq!(split(&clear), (5, 5, Some((5, 4))), "the clear twin");
    assert_eq!(split(&srtp), split(&clear), "the SRTCP call");
    assert_eq!(srtp.counters().rtcp_reports, clear.counters().rtcp_reports);
    assert_eq!(srtp.counters().rtcp_reports, 4);
    let t = srtp.counters().srtcp;
    assert_eq!((t.decrypted, t.auth_failures, t.no_key), (4, 0, 0));
    assert_eq!(clear.counters().srtcp, Default::default());
    // The SRTP media, only authenticated for a sink that reads no payload, counts as usable.
    assert_eq!(srtp.counters().srtp.decrypted, 190 + 200);
    assert!(caller_stream(&srtp).is_decrypted());
}

/// A reporter that sends no RTP (it only receives) has no stream to keep its SRTCP state on:
/// each report is opened by a receiver made for it, with the same result.
#[test]
fn srtcp_of_a_party_that_only_receives_is_read_too() {
    let engine = run("srtcp_rr.pcap", |port, p| {
        if port == 38020 {
            p.clear();
        }
    });
    assert_eq!(
        engine.calls()[0].streams.len(),
        1,
        "the caller's stream alone"
    );
    assert_eq!(split(&engine), (5, 5, Some((5, 4))));
    assert_eq!(engine.counters().srtcp.decrypted, 4);
}

/// A receiver report a forger sends in the clear on the callee's RTCP port, well-formed RTCP
/// (one block, no SRTCP trailer) that says the callee lost 50 of the caller's packets.
fn forged_report() -> Vec<u8> {
    let mut v = vec![0x81, 201, 0, 7];
    v.extend_from_slice(&0x8888_BBBBu32.to_be_bytes());
    v.extend_from_slice(&0x7777_AAAAu32.to_be_bytes());
    v.extend_from_slice(&50u32.to_be_bytes());
    v.extend_from_slice(&199u32.to_be_bytes());
    v.extend_from_slice(&[0; 12]);
    v
}

#[test]
fn rtcp_of_an_srtp_call_that_its_key_does_not_authenticate_is_never_read() {
    // The key is known: the forged reports fail its tag check.
    let engine = run("srtcp_rr.pcap", |port, p| {
        if port == CALLEE_RTCP {
            *p = forged_report();
        }
    });
    let t = engine.counters().srtcp;
    assert_eq!((t.decrypted, t.auth_failures, t.no_key), (0, 4, 0));
    assert_eq!(engine.counters().rtcp_reports, 0);
    assert_eq!(
        split(&engine),
        (10, 0, None),
        "no far end's word: all network loss"
    );
    // A report whose tag was flipped: refused too.
    let engine = run("srtcp_rr.pcap", |port, p| {
        if port == CALLEE_RTCP {
            let last = p.len() - 1;
            p[last] ^= 1;
        }
    });
    assert_eq!(engine.counters().srtcp.auth_failures, 4);
    assert_eq!(split(&engine).2, None);
}

#[test]
fn rtcp_of_an_srtp_call_without_a_key_is_counted_and_never_read() {
    // The SDP's keys gone (`a=crypto` made an unknown attribute, the same length): the call is
    // still SRTP (RTP/SAVP), and neither its real SRTCP nor forged clear reports are read.
    let unkeyed = |port: u16, p: &mut Vec<u8>| {
        if let Some(at) = p.windows(9).position(|w| w == b"a=crypto:") {
            p[at + 2] = b'x';
            // Both SDPs' lines (the offer's and the answer's are in different messages).
        }
        let _ = port;
    };
    let engine = run("srtcp_rr.pcap", unkeyed);
    let t = engine.counters().srtcp;
    assert_eq!((t.decrypted, t.auth_failures, t.no_key), (0, 0, 4));
    assert_eq!(engine.counters().srtp.no_key, 390);
    assert_eq!(split(&engine).2, None);
    let engine = run("srtcp_rr.pcap", |port, p| {
        unkeyed(port, p);
        if port == CALLEE_RTCP {
            *p = forged_report();
        }
    });
    assert_eq!(engine.counters().srtcp.no_key, 4);
    assert_eq!(engine.counters().rtcp_reports, 0);
    assert_eq!(split(&engine).2, None);
}
