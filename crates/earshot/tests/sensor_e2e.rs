//! End to end: `earshot sensor` replays a capture as live traffic, and raw TCP clients use the
//! Manager API: the text and JSON listings, `listen` + `readaudio` against the offline audio
//! engine (`earshot extract`), and `stream` (stereo legs, the end frame when the call ends).

#[path = "common/sensor.rs"]
mod sensor;

use earshot_manager::stream_proto::{EndReason, Frame, StreamItem};
use sensor::{best_alignment, read_wav, samples, Sensor};
use std::path::Path;
use std::time::{Duration, Instant};

fn extract(pcap: &Path, call_id: &str, mix: &str, out: &Path) -> (Vec<f32>, u16) {
    let status = sensor::earshot()
        .args(["extract"])
        .arg(pcap)
        .args(["--call", call_id, "--mix", mix, "--rate", "8000", "--out"])
        .arg(out)
        .status()
        .expect("run earshot extract");
    assert!(status.success(), "earshot extract failed");
    let (s, ch, rate) = read_wav(out);
    assert_eq!(rate, 8000);
    (s, ch)
}

/// A capture from `../shared/pcaps/` at wall-clock pace: listings, readaudio vs the offline
/// decode, and a stream that ends with an end frame when the call ends.
#[test]
fn wall_clock_replay_listings_readaudio_and_stream_end() {
    let Some(pcaps) = sensor::shared("pcaps") else {
        return;
    };
    let pcap = pcaps.join("wireshark/sip-rtp-g711.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(10));
    let r = row[0].as_str().unwrap().to_string();
    let bare = r.trim_start_matches("0x").to_string();
    assert_eq!(row[1], "1-1966@10.0.2.20");

    // A raw client sending `listcalls\n` and half-closing (`nc -N`) gets the block format.
    let text =
        String::from_utf8(sensor::request_half_close(s.addr, b"listcalls\n")).expect("UTF-8");
    assert!(text.starts_with("[call]\n"), "block format: {text}");
    for line in [
        "caller: sipp\n",
        "called: test\n",
        &format!("callreference: {bare}\n"),
        "callid: 1-1966@10.0.2.20\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in {text}");
    }

    // `listcalls {"limit":10}`: the 68 names, the totals element, then the rows.
    let v: serde_json::Value =
        serde_json::from_slice(&s.cmd(r#"listcalls {"limit":10}"#)).expect("JSON");
    let v = v.as_array().unwrap();
    assert_eq!(
        v[0].as_array().unwrap().len(),
        earshot_manager::FIELDS.len()
    );
    assert_eq!(v[0][0], "callreference");
    assert_eq!(v[1][0]["total"], 1);
    assert_eq!(v[1][0]["is_receiver"], 0);
    assert_eq!(v[2].as_array().unwrap().len(), 68);
    assert_eq!(v[2][0], r.as_str());
    assert_eq!(v[2][7], "sipp");
    assert_eq!(v[2][8], "test");

    // A stream from now on, read in the background until the call ends.
    let addr = s.addr;
    let stream_cmd = format!("stream {r}");
    let streamer =
        std::thread::spawn(move || sensor::read_stream(addr, &stream_cmd, Duration::from_secs(30)));

    // listen + readaudio every 200 ms until the call is gone.
    assert_eq!(s.cmd(&format!("listen {r} e2e")), b"success");
    let mut audio = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let reply = s.cmd(&format!("readaudio {r} e2e"));
        if reply == b"information: wait for data" {
            continue;
        }
        if reply == b"error: call not found" {
            break;
        }
        assert!(
            !reply.starts_with(b"error: "),
            "{}",
            String::from_utf8_lossy(&reply)
        );
        assert_eq!(reply.len() % 800, 0);
        audio.extend(reply);
        assert!(Instant::now() < deadline, "the call never ended");
    }
    let ours = samples(&audio);
    assert!(ours.len() > 8000 * 3, "only {} samples read", ours.len());

    // The audio engine's offline output for the same call.
    let dir = sensor::scratch("e2e-g711");
    let (offline, ch) = extract(&pcap, "1-1966@10.0.2.20", "mono", &dir.join("call.wav"));
    assert_eq!(ch, 1);
    let template = &ours[8000..8000 + 16000];
    let (offset, corr) = best_alignment(template, &offline);
    eprintln!("readaudio vs extract: correlation {corr:.3} at {offset}");
    assert!(corr >= 0.9, "readaudio vs offline decode: {corr:.3}");

    // The stream: header, audio frames in sequence, then the end frame (call_ended).
    let items = streamer.join().expect("stream reader");
    let StreamItem::Header(h) = &items[0] else {
        panic!("first item is the header: {:?}", items[0]);
    };
    assert_eq!(
        (h.rate, h.channels, h.callid.as_str()),
        (8000, 1, "1-1966@10.0.2.20")
    );
    let mut seq = 0;
    for item in &items[1..] {
        if let StreamItem::Frame(Frame::Audio(a)) = item {
            assert_eq!(a.seq, seq);
            seq += 1;
        }
    }
    assert!(seq > 100, "{seq} audio frames");
    match items.last() {
        Some(StreamItem::Frame(Frame::End(e))) => assert_eq!(e.reason, EndReason::CallEnded),
        other => panic!("last item is not an end frame: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// call.pcap (the caller streams speech, the callee answers with a 440 Hz tone) replayed at
/// twice real speed, its call streamed from the start with `options`; None without the
/// shared captures.
fn stream_recorded_call(options: &str) -> Option<(Vec<StreamItem>, std::path::PathBuf)> {
    let vm = sensor::shared("voipmonitor")?;
    let pcap = vm.join("call.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "2"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(10));
    let r = row[0].as_str().unwrap().to_string();
    let items = sensor::read_stream(
        s.addr,
        &format!("stream {r} {options}"),
        Duration::from_secs(30),
    );
    Some((items, pcap))
}

/// call.pcap: the caller streams speech, the callee answers with a 440 Hz tone. A stereo
/// stream puts the caller left and the callee right, and ends when the call does.
#[test]
fn stereo_stream_puts_the_caller_left() {
    let Some((items, pcap)) = stream_recorded_call("channels=2 rate=8000 from=start") else {
        return;
    };
    let StreamItem::Header(h) = &items[0] else {
        panic!("header first");
    };
    assert_eq!(
        (h.channels, h.caller.as_str(), h.called.as_str()),
        (2, "sipp", "service")
    );
    let (left, right) = sensor::stereo_channels(&items);
    assert!(left.len() > 8000 * 15, "{} s of audio", left.len() / 8000);
    callee_tone_right_then_end(&items, &left, &right, 8000.0);

    // The left channel is the caller's audio as the offline engine decodes it.
    let dir = sensor::scratch("e2e-stereo");
    let (offline, _) = extract(
        &pcap,
        "1-29453@127.0.0.1",
        "caller",
        &dir.join("caller.wav"),
    );
    let template = &left[16000..16000 + 24000];
    let (offset, corr) = best_alignment(template, &offline);
    eprintln!("stream left vs extract caller: correlation {corr:.3} at {offset}");
    assert!(
        corr >= 0.9,
        "left channel vs the caller's decoded audio: {corr:.3}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The same call streamed as `format=opus`: kind-5 frames only, each one 20 ms packet a
/// standard decoder (libopus here, WebCodecs in the page) turns back into the parties on their
/// channels, callee's tone on the right; in a tenth of PCM's bytes or less.
#[test]
fn an_opus_stream_carries_the_call_in_a_tenth_of_the_bytes() {
    let Some((items, _)) = stream_recorded_call("channels=2 rate=16000 from=start format=opus")
    else {
        return;
    };
    let StreamItem::Header(h) = &items[0] else {
        panic!("header first");
    };
    assert_eq!((h.format.as_str(), h.rate, h.channels), ("opus", 16000, 2));
    let mut decoder = earshot_audio::decoder_for(&earshot_audio::Codec::Opus { channels: 2 })
        .expect("an Opus decoder");
    let (mut pcm, mut bytes, mut frames) = (Vec::new(), 0usize, 0u32);
    for item in &items {
        match item {
            StreamItem::Frame(Frame::Audio(_)) => panic!("a PCM frame in an Opus stream"),
            StreamItem::Frame(Frame::Opus(o)) => {
                assert_eq!((o.rate, o.channels), (16000, 2));
                assert_eq!(o.seq, frames, "no frame lost");
                frames += 1;
                bytes += o.packet.len();
                let n = decoder.decode(&o.packet, &mut pcm).expect("a valid packet");
                assert_eq!(n, 960, "20 ms at 48 kHz");
            }
            _ => {}
        }
    }
    let seconds = f64::from(frames) * 0.02;
    assert!(seconds > 15.0, "{seconds} s of audio");
    let per_second = bytes as f64 / seconds;
    eprintln!("opus: {frames} frames, {per_second:.0} B/s of packets (PCM: 64000)");
    assert!(per_second < 6400.0, "{per_second:.0} B/s");
    let side = |c: usize| -> Vec<f32> {
        pcm.iter()
            .skip(c)
            .step_by(2)
            .map(|&v| f32::from(v))
            .collect()
    };
    callee_tone_right_then_end(&items, &side(0), &side(1), 48000.0);
}

/// call.pcap's stereo stream: the callee's 440 Hz tone on the right, not on the left, and the
/// stream ends with the call.
fn callee_tone_right_then_end(items: &[StreamItem], left: &[f32], right: &[f32], rate: f64) {
    let (tl, tr) = (
        sensor::tone_share(left, rate, 440.0),
        sensor::tone_share(right, rate, 440.0),
    );
    eprintln!("440 Hz share: left {tl:.3}, right {tr:.3}");
    assert!(
        tr > 0.8,
        "right channel (callee) is the 440 Hz tone: {tr:.3}"
    );
    assert!(tl < 0.2, "left channel (caller) is not the tone: {tl:.3}");
    match items.last() {
        Some(StreamItem::Frame(Frame::End(e))) => assert_eq!(e.reason, EndReason::CallEnded),
        other => panic!("last item is not an end frame: {other:?}"),
    }
}

#[test]
fn active_call_info_has_the_sip_messages_in_order_and_the_streams() {
    let Some(dir) = sensor::shared("voipmonitor") else {
        return;
    };
    let pcap = dir.join("call.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "4"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(10));
    let callref = row[0].as_str().expect("callreference first");
    let info: serde_json::Value =
        serde_json::from_slice(&s.cmd(&format!("active_call_info {callref}")))
            .expect("active_call_info is JSON");
    assert_eq!(info["call"]["callreference"], callref);
    let sip = info["sip_packets"].as_array().expect("sip_packets");
    let first_lines: Vec<&str> = sip
        .iter()
        .filter_map(|m| m["data"].as_str()?.lines().next())
        .collect();
    assert!(
        first_lines
            .first()
            .is_some_and(|l| l.starts_with("INVITE ")),
        "{first_lines:?}"
    );
    assert!(
        first_lines.iter().any(|l| l.starts_with("SIP/2.0 200")),
        "{first_lines:?}"
    );
    let times: Vec<i64> = sip.iter().filter_map(|m| m["time"].as_i64()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in capture order");
    assert!(!info["rtp_streams"]
        .as_array()
        .expect("rtp_streams")
        .is_empty());

    // sniffer_stat keeps kernel and internal drops apart, and reports memory.
    let stat = s.stat();
    for key in [
        "kernel_drops",
        "internal_drops",
        "audio_drops",
        "listener_drops",
    ] {
        assert_eq!(stat[key], 0, "{key}: {stat}");
    }
    assert!(
        stat["memory_bytes"].as_u64().is_some_and(|m| m > 1 << 20),
        "{stat}"
    );
    assert!(
        stat["packets_processed"].as_u64().is_some_and(|n| n > 0),
        "{stat}"
    );
}

/// Listening again the moment a listener stopped (a player page reconnecting, or one poller
/// handing over to the next) must bring the call's audio: the fan-out thread tells the
/// pipeline asynchronously that the old listener left the call with nobody, and that news
/// must not stop the call's packets reaching the new listener.
#[test]
fn listening_again_right_after_listen_stop_gets_audio() {
    let Some(dir) = sensor::shared("voipmonitor") else {
        return;
    };
    let pcap = dir.join("call.pcap");
    let s = Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "1"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(10));
    let r = row[0].as_str().expect("callreference first").to_string();
    // The call lasts 21 s; a round takes about 0.6 s while audio flows.
    for round in 0..10 {
        let id = format!("again{round}");
        assert_eq!(
            s.cmd(&format!("listen {r} {id}")),
            b"success",
            "round {round}"
        );
        // Half a second of audio, not just the few packets already on their way when the
        // old listener left.
        let mut audio = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while audio.len() < 8000 {
            assert!(
                Instant::now() < deadline,
                "round {round}: {} bytes of audio in 2 s after listening again",
                audio.len()
            );
            std::thread::sleep(Duration::from_millis(50));
            let reply = s.cmd(&format!("readaudio {r} {id}"));
            assert!(
                !reply.starts_with(b"error: "),
                "round {round}: {}",
                String::from_utf8_lossy(&reply)
            );
            if reply != b"information: wait for data" {
                assert_eq!(reply.len() % 800, 0, "round {round}");
                audio.extend(reply);
            }
        }
        assert!(
            samples(&audio).iter().any(|&v| v.abs() > 100.0),
            "round {round}: only silence"
        );
        assert!(s.cmd(&format!("listen_stop {r} {id}")).is_empty());
    }
}
