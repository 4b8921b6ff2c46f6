//! `Engine::handle_frames` and `Engine::handle_peeked` (frames in runs, with look-ahead and
//! prefetching) must give exactly what `Engine::handle_frame` gives frame by frame: the same
//! calls, streams, statistics, counters and the same packets to the sink, in the same order,
//! whatever the run lengths; and the engine's IPv4 fast paths must agree with its general one.

mod common;

use common::{dialog, invite, request, response, rtp, sdp, Recorder};
use earshot_core::{Config, Engine};
use earshot_wire::{CaptureReader, Decapsulator, Frame, LinkType, Packet, Timestamp};
use std::path::PathBuf;

/// Run lengths to try: one frame (no look-ahead at all), shorter and longer than the
/// look-ahead distances, and everything at once.
const RUNS: &[usize] = &[1, 3, 9, 17, 64, usize::MAX];

/// Everything observable about an engine after a capture, as text.
fn outcome(engine: &Engine, sink: &Recorder) -> String {
    format!(
        "{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}",
        engine.calls(),
        engine.unassociated_streams(),
        engine.counters(),
        engine.table_sizes(),
        sink,
    )
}

fn one_by_one(frames: &[Frame<'_>]) -> (Engine, Recorder) {
    let (mut engine, mut sink) = (Engine::new(Config::default()), Recorder::default());
    for f in frames {
        engine.handle_frame(f.ts, f.link, f.data, &mut sink);
    }
    (engine, sink)
}

/// The slow, general path: frames decapsulated apart and fed as packets, which skips every
/// IPv4 fast path of the engine (`on_udp4`, the flow table's front).
fn via_packets(frames: &[Frame<'_>]) -> String {
    let (mut engine, mut sink) = (Engine::new(Config::default()), Recorder::default());
    let mut decap = Decapsulator::new();
    for f in frames {
        decap.decode(f.ts, f.link, f.data, &mut |p: &Packet<'_>| {
            engine.handle_packet(p, &mut sink)
        });
    }
    calls_and_packets(&engine, &sink)
}

fn calls_and_packets(engine: &Engine, sink: &Recorder) -> String {
    format!(
        "{:#?}\n{:#?}\n{:#?}",
        engine.calls(),
        engine.unassociated_streams(),
        sink,
    )
}

fn in_runs(frames: &[Frame<'_>], run: usize) -> String {
    let (mut engine, mut sink) = (Engine::new(Config::default()), Recorder::default());
    for chunk in frames.chunks(run.min(frames.len()).max(1)) {
        engine.handle_frames(chunk, &mut sink);
    }
    outcome(&engine, &sink)
}

/// Runs peeked apart first, as `earshot analyze` does on its reader thread, from copies of
/// the frames' bytes.
fn peeked_in_runs(frames: &[Frame<'_>], run: usize) -> String {
    let (mut engine, mut sink) = (Engine::new(Config::default()), Recorder::default());
    let peeker = engine.peeker();
    for chunk in frames.chunks(run.min(frames.len()).max(1)) {
        let copies: Vec<Vec<u8>> = chunk.iter().map(|f| f.data.to_vec()).collect();
        let copied: Vec<Frame<'_>> = chunk
            .iter()
            .zip(&copies)
            .map(|(f, data)| Frame { data, ..*f })
            .collect();
        let peeks: Vec<_> = chunk.iter().map(|f| peeker.peek(f)).collect();
        engine.handle_peeked(&copied, &peeks, &mut sink);
    }
    outcome(&engine, &sink)
}

fn assert_same(name: &str, frames: &[Frame<'_>]) {
    let (engine, sink) = one_by_one(frames);
    let general = via_packets(frames);
    let fast = calls_and_packets(&engine, &sink);
    assert!(
        fast == general,
        "{name}: the fast paths differ from the general one\n--- general\n{general}\n--- fast\n{fast}"
    );
    let want = outcome(&engine, &sink);
    for &run in RUNS {
        let got = in_runs(frames, run);
        assert!(
            got == want,
            "{name}: runs of {run} differ from frame by frame\n--- frame by frame\n{want}\n--- runs\n{got}"
        );
        let got = peeked_in_runs(frames, run);
        assert!(
            got == want,
            "{name}: peeked runs of {run} differ from frame by frame\n--- frame by frame\n{want}\n--- runs\n{got}"
        );
    }
}

// ---------- frames built by hand ----------

fn ipv4_udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let mut udp = Vec::new();
    udp.extend_from_slice(&src.1.to_be_bytes());
    udp.extend_from_slice(&dst.1.to_be_bytes());
    udp.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    udp
}

/// Ethernet + IPv4 carrying `data` at fragment offset `offset` (bytes), `more` fragments.
fn eth_ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    offset: usize,
    more: bool,
    data: &[u8],
) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = 20 + data.len() as u16;
    let flags = if more { 0x2000 } else { 0 } | (offset / 8) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&flags.to_be_bytes());
    f.extend_from_slice(&[64, 17, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(data);
    f
}

fn datagram(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    eth_ipv4(src.0, dst.0, 0, 0, false, &ipv4_udp(src, dst, payload))
}

const CALLER: [u8; 4] = [10, 0, 0, 1];
const CALLED: [u8; 4] = [10, 0, 0, 2];

/// Two overlapping calls with RTP both ways, the second call's INVITE in IPv4 fragments
/// whose last piece comes only after RTP has flowed (so frames arrive while fragments are
/// pending), a re-INVITE that moves the media, a call reusing another's ports and SSRCs,
/// a fragment that never completes, RTCP, telephone events and unannounced RTP.
fn scenario() -> Vec<(Timestamp, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = |ms: i64, frame: Vec<u8>| out.push((Timestamp::from_nanos(ms * 1_000_000), frame));
    let sip = |p: u16| ((CALLER, 5060), (CALLED, p));
    for (n, port) in [(0u16, 5060u16), (1, 5061)] {
        let d = dialog(&format!("call-{n}@test"), &format!("tag{n}"));
        let inv = invite(
            &d.call_id,
            &d.from_tag,
            1,
            "10.0.0.1",
            4000 + 2 * n,
            &[0, 8, 101],
        );
        let answer = sdp("10.0.0.2", 6000 + 2 * n, &[0, 101]);
        let (a, b) = sip(port);
        let t0 = i64::from(n) * 300;
        if n == 0 {
            at(t0, datagram(a, b, &inv));
        } else {
            let whole = ipv4_udp(a, b, &inv);
            let cut = (whole.len() / 2) & !7;
            at(t0, eth_ipv4(a.0, b.0, 77, 0, true, &whole[..cut]));
            // RTP of the first call while the fragment waits.
            for i in 0..20u16 {
                let p = rtp(0x1111, 100 + i, u32::from(i) * 160, 0, &[0x55; 160]);
                at(
                    t0 + 1 + i64::from(i),
                    datagram((CALLER, 4000), (CALLED, 6000), &p),
                );
            }
            at(t0 + 25, eth_ipv4(a.0, b.0, 77, cut, false, &whole[cut..]));
        }
        let ok = response(200, "OK", &d, 1, "INVITE", Some("tt"), Some(&answer));
        at(t0 + 30, datagram(b, a, &ok));
        at(
            t0 + 40,
            datagram(a, b, &request("ACK", &d, 1, Some("tt"), false, None, None)),
        );
    }
    // Media both ways on both calls, interleaved, with a lost and a repeated packet.
    for i in 0..400u16 {
        let t = 400 + i64::from(i) * 5;
        let call = i % 2;
        let seq = 1000 + i / 2;
        if seq == 1033 {
            continue;
        }
        let pt = if (150..160).contains(&(i / 2)) {
            101
        } else {
            0
        };
        let payload: &[u8] = if pt == 101 {
            &[5, 0x80, 0, 160]
        } else {
            &[0x11; 160]
        };
        let ts = u32::from(seq) * 160;
        let fwd = rtp(0x2000 + u32::from(call), seq, ts, pt, payload);
        let back = rtp(0x3000 + u32::from(call), seq, ts, 0, &[0x22; 160]);
        at(
            t,
            datagram((CALLER, 4000 + 2 * call), (CALLED, 6000 + 2 * call), &fwd),
        );
        at(
            t + 1,
            datagram((CALLED, 6000 + 2 * call), (CALLER, 4000 + 2 * call), &back),
        );
        if seq == 1050 {
            at(
                t + 2,
                datagram((CALLED, 6000 + 2 * call), (CALLER, 4000 + 2 * call), &back),
            );
        }
        if i % 50 == 0 {
            let rr = [0x81, 201, 0, 7, 0, 0, 0x30, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
            at(t + 3, datagram((CALLER, 4001), (CALLED, 6001), &rr));
        }
    }
    // A re-INVITE moves call 0's caller media to a new port.
    let d = dialog("call-0@test", "tag0");
    let offer = sdp("10.0.0.1", 4100, &[8]);
    let reinv = request(
        "INVITE",
        &d,
        2,
        Some("tt"),
        false,
        None,
        Some(("application/sdp", &offer)),
    );
    at(2500, datagram((CALLER, 5060), (CALLED, 5060), &reinv));
    for i in 0..50u16 {
        let p = rtp(0x4000, i, u32::from(i) * 160, 8, &[0x33; 160]);
        at(
            2510 + i64::from(i) * 20,
            datagram((CALLER, 4100), (CALLED, 6000), &p),
        );
    }
    // Unannounced RTP between strangers.
    for i in 0..30u16 {
        let p = rtp(0x5000, i, u32::from(i) * 160, 0, &[0x44; 160]);
        at(
            3601 + i64::from(i) * 20,
            datagram(([10, 7, 7, 7], 20000), ([10, 8, 8, 8], 30000), &p),
        );
    }
    at(
        4400,
        datagram(
            (CALLER, 5060),
            (CALLED, 5060),
            &request("BYE", &d, 3, Some("tt"), false, None, None),
        ),
    );
    // A third call takes over call 1's media ports and its senders keep their SSRCs, as SIPp
    // does: the known flows must move to the new call.
    let d = dialog("call-2@test", "tag2");
    let inv = invite(&d.call_id, &d.from_tag, 1, "10.0.0.1", 4002, &[0]);
    let answer = sdp("10.0.0.2", 6002, &[0]);
    at(4500, datagram((CALLER, 5060), (CALLED, 5062), &inv));
    let ok = response(200, "OK", &d, 1, "INVITE", Some("tt"), Some(&answer));
    at(4510, datagram((CALLED, 5062), (CALLER, 5060), &ok));
    for i in 0..40u16 {
        let t = 4520 + i64::from(i) * 20;
        let p = rtp(0x2001, 2000 + i, u32::from(2000 + i) * 160, 0, &[0x66; 160]);
        at(t, datagram((CALLER, 4002), (CALLED, 6002), &p));
        let p = rtp(0x3001, 2000 + i, u32::from(2000 + i) * 160, 0, &[0x77; 160]);
        at(t + 1, datagram((CALLED, 6002), (CALLER, 4002), &p));
    }
    // A first fragment whose rest never comes: while it waits, every frame takes the general
    // decoding path.
    at(
        5400,
        eth_ipv4([10, 9, 9, 9], CALLED, 99, 0, true, &[0u8; 64]),
    );
    for i in 0..20u16 {
        let p = rtp(0x2001, 2040 + i, u32::from(2040 + i) * 160, 0, &[0x66; 160]);
        at(
            5401 + i64::from(i) * 20,
            datagram((CALLER, 4002), (CALLED, 6002), &p),
        );
    }
    out
}

#[test]
fn runs_match_frame_by_frame_on_a_built_scenario() {
    let frames: Vec<(Timestamp, Vec<u8>)> = scenario();
    let frames: Vec<Frame<'_>> = frames
        .iter()
        .map(|(ts, data)| Frame {
            ts: *ts,
            link: LinkType(1),
            data,
            orig_len: data.len() as u32,
        })
        .collect();
    // The scenario must really exercise the engine: calls with streams, an unassociated one.
    let (mut engine, mut sink) = (Engine::new(Config::default()), Recorder::default());
    engine.handle_frames(&frames, &mut sink);
    let calls = engine.calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert!(calls.iter().all(|c| c.streams.len() >= 2), "{calls:#?}");
    assert_eq!(engine.unassociated_streams().len(), 1);
    assert!(calls.iter().any(|c| !c.dtmf.is_empty()));
    let reused = calls.iter().find(|c| c.sip_call_id == "call-2@test");
    assert_eq!(reused.map(|c| c.streams.len()), Some(2), "{calls:#?}");
    assert_same("scenario", &frames);
}

/// Every capture in ../shared/pcaps.
#[test]
fn runs_match_frame_by_frame_on_shared_captures() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcaps");
    if !root.is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {} is missing",
            root.display()
        );
        eprintln!("skipping: ../shared missing");
        return;
    }
    let mut seen = 0;
    for path in captures(&root) {
        let Ok(mut reader) = CaptureReader::open(&path) else {
            continue;
        };
        let mut owned: Vec<(Timestamp, LinkType, Vec<u8>)> = Vec::new();
        while let Some(Ok(f)) = reader.next_frame() {
            owned.push((f.ts, f.link, f.data.to_vec()));
        }
        let frames: Vec<Frame<'_>> = owned
            .iter()
            .map(|(ts, link, data)| Frame {
                ts: *ts,
                link: *link,
                data,
                orig_len: data.len() as u32,
            })
            .collect();
        assert_same(&path.display().to_string(), &frames);
        seen += 1;
    }
    assert!(
        seen >= 40,
        "only {seen} captures found under {}",
        root.display()
    );
}

fn captures(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(captures(&p));
        } else if p
            .extension()
            .is_some_and(|x| ["pcap", "pcapng", "cap"].iter().any(|e| x == *e))
        {
            out.push(p);
        }
    }
    out.sort();
    out
}
