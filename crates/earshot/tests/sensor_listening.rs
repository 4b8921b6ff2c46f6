//! What a listener hears and is told: a listener joining a GSM call mid-way hears it at the
//! level the offline decode has (its decoders are warmed on the call's recent past first), and
//! a listener is told why it hears nothing (waiting for media, undecodable codec) and is not
//! left without traffic while it waits.
//!
//! The captures are in tests/captures/listening/ (made by make.py there from sox's encoders);
//! the real binary replays them at real speed. Assertions judge what was received.

#[path = "common/sensor.rs"]
mod sensor;

use earshot_manager::stream_proto::{CallEvent, EndReason, Frame, ListenState, StreamItem};
use sensor::Sensor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/listening")
        .join(name)
}

/// The callreference of the only call, once it is listed.
fn only_call(s: &Sensor, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let text = s.cmd_text("listcalls");
        if let Some(r) = text.lines().find_map(|l| l.strip_prefix("callreference: ")) {
            return r.to_string();
        }
        assert!(Instant::now() < deadline, "no call listed: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// RMS level in dBFS of samples, skipping the first `skip` (a joining listener's first frames).
fn dbfs(x: &[f32], skip: usize) -> f64 {
    let x = &x[skip.min(x.len())..];
    let power = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    10.0 * (power.max(1e-12) / 32768f64.powi(2)).log10()
}

fn left_channel(items: &[(Instant, StreamItem)]) -> Vec<f32> {
    let mut left = Vec::new();
    for (_, item) in items {
        if let StreamItem::Frame(Frame::Audio(a)) = item {
            assert_eq!(a.channels, 2);
            left.extend(a.samples.chunks_exact(2).map(|p| f32::from(p[0])));
        }
    }
    left
}

/// gsm_tone.pcap: the caller sends a steady 1000 Hz tone at -9 dBFS in GSM 06.10 (sox/libgsm).
/// A cold libgsm decoder joining that stream mid-way never converges (it played -30 to -59
/// dBFS); a listener "from now" a few seconds in must hear what `extract` decodes from the
/// start, within 1 dB, and only from where it joined.
#[test]
fn a_gsm_listener_joining_mid_call_hears_the_right_level() {
    let pcap = capture("gsm_tone.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let r = only_call(&s, Duration::from_secs(10));
    // The media starts 0.6 s into the capture and lasts 10 s: join about 4 s into it.
    std::thread::sleep(Duration::from_secs(4));
    let items = sensor::read_stream_timed(
        s.addr,
        &format!("stream {r} channels=2 rate=8000 from=now"),
        Duration::from_secs(30),
    );
    let left = left_channel(&items);
    let seconds = left.len() as f64 / 8000.0;
    assert!(
        (2.0..8.5).contains(&seconds),
        "{seconds:.1} s of audio: a listener from now gets the rest of the call, not all of it"
    );
    let heard = dbfs(&left, 1600);

    let dir = sensor::scratch("listening-gsm");
    let wav = dir.join("caller.wav");
    let status = sensor::earshot()
        .arg("extract")
        .arg(&pcap)
        .args(["--call", "gsm-tone-1@earshot-test", "--mix", "caller"])
        .args(["--rate", "8000", "--out"])
        .arg(&wav)
        .status()
        .expect("run earshot extract");
    assert!(status.success());
    let (offline, _, _) = sensor::read_wav(&wav);
    let reference = dbfs(&offline, 1600);
    let _ = std::fs::remove_dir_all(dir);
    eprintln!("caller level: stream from=now {heard:.2} dBFS, extract {reference:.2} dBFS");
    assert!(
        (heard - reference).abs() <= 1.0,
        "the joining listener hears the caller at {heard:.2} dBFS, extract at {reference:.2}"
    );
}

/// The `status` events of a stream, in order, with when they arrived.
fn statuses(items: &[(Instant, StreamItem)]) -> Vec<(Instant, ListenState, Option<String>)> {
    items
        .iter()
        .filter_map(|(at, item)| match item {
            StreamItem::Frame(Frame::Event(CallEvent::Status { state, codec, .. })) => {
                Some((*at, *state, codec.clone()))
            }
            _ => None,
        })
        .collect()
}

/// ringing_then_answered.pcap: 12 s of ringing with no RTP, then 4 s of G.711. A listener
/// joined while it rings is told it waits for media, hears from the sensor every few seconds
/// (the player's relay gives up after 10 s of nothing), then gets the audio after the answer.
#[test]
fn a_listener_of_a_ringing_call_waits_is_kept_alive_and_hears_the_answer() {
    let pcap = capture("ringing_then_answered.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let r = only_call(&s, Duration::from_secs(10));
    let started = Instant::now();
    let items = sensor::read_stream_timed(
        s.addr,
        &format!("stream {r} channels=2 rate=8000 from=now"),
        Duration::from_secs(40),
    );
    let st = statuses(&items);
    assert!(
        matches!(st.first(), Some((_, ListenState::WaitingForMedia, None))),
        "first status: {st:?}"
    );
    // While it rings, something arrives at least every 5 s (the status keep-alive).
    let first_audio = items
        .iter()
        .find(|(_, i)| matches!(i, StreamItem::Frame(Frame::Audio(_))))
        .map(|(at, _)| *at)
        .expect("audio after the answer");
    let waited = first_audio.duration_since(started);
    assert!(
        waited > Duration::from_secs(9),
        "the first audio came {waited:?} after joining: the call should still have rung"
    );
    let mut last = started;
    for (at, _) in items.iter().filter(|(at, _)| *at <= first_audio) {
        let gap = at.duration_since(last);
        assert!(
            gap < Duration::from_secs(5),
            "{gap:?} without a frame while ringing"
        );
        last = *at;
    }
    assert!(
        st.iter().any(|(_, s, _)| *s == ListenState::Playing),
        "no playing status after the answer: {st:?}"
    );
    let left = left_channel(&items);
    let share = sensor::tone_share(&left, 8000.0, 1000.0);
    assert!(left.len() > 8000 * 2, "{} samples", left.len());
    assert!(share > 0.8, "the caller's 1000 Hz tone: share {share:.3}");
    let decodable_mos = items.iter().any(|(_, i)| {
        matches!(i, StreamItem::Frame(Frame::Quality(q)) if q.mos.is_some_and(|m| m > 4.0))
    });
    assert!(decodable_mos, "G.711 legs keep their MOS");
    match items.last() {
        Some((_, StreamItem::Frame(Frame::End(e)))) => assert_eq!(e.reason, EndReason::CallEnded),
        other => panic!("last item is not an end frame: {other:?}"),
    }
}

/// evs_call.pcap: both parties send EVS, which earshot cannot decode (no free decoder
/// exists). The listener is told so, with the codec's name, not left with silence and no word.
#[test]
fn a_listener_of_an_evs_call_is_told_it_cannot_be_decoded() {
    let pcap = capture("evs_call.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let r = only_call(&s, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    let items = sensor::read_stream_timed(
        s.addr,
        &format!("stream {r} channels=2 rate=8000 from=now"),
        Duration::from_secs(30),
    );
    let st = statuses(&items);
    assert!(
        st.iter()
            .any(|(_, s, c)| *s == ListenState::Undecodable && c.as_deref() == Some("EVS")),
        "no undecodable EVS status: {st:?}"
    );
    assert!(
        !st.iter().any(|(_, s, _)| *s == ListenState::Playing),
        "an EVS call reported as playing: {st:?}"
    );
    // Its quality frames carry no MOS: the E-model's 4.4 assumed a codec it knows.
    let mos: Vec<Option<f64>> = items
        .iter()
        .filter_map(|(_, i)| match i {
            StreamItem::Frame(Frame::Quality(q)) => Some(q.mos),
            _ => None,
        })
        .collect();
    assert!(!mos.is_empty(), "no quality frames");
    assert!(
        mos.iter().all(Option::is_none),
        "MOS of an EVS leg: {mos:?}"
    );
}
