//! Streams outside calls and streams without a clock (issue 12, item 7), on the capture
//! tests/captures/streams/make_orphan_sdp.py writes, against tshark's figures for it
//! (tests/captures/streams/tshark-rtp-streams.txt).

mod common;

use serde_json::Value;

fn capture_dir() -> std::path::PathBuf {
    common::repo_root().join("tests/captures/streams")
}

/// tshark's `-z rtp,streams` rows in `file`: SSRC → (packets, mean jitter, max jitter).
fn tshark_rows_of(file: &str) -> Vec<(String, u64, f64, f64)> {
    let text = std::fs::read_to_string(capture_dir().join(file)).unwrap();
    text.lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let i = cols.iter().position(|c| c.starts_with("0x"))?;
            // SSRC, payload, packets, lost, (pct), min/mean/max delta, min/mean/max jitter
            let ssrc = cols[i].to_ascii_uppercase().replace("0X", "0x");
            let packets = cols[i + 2].parse().ok()?;
            let mean = cols[i + 9].parse().ok()?;
            let max = cols[i + 10].parse().ok()?;
            Some((ssrc, packets, mean, max))
        })
        .collect()
}

fn tshark_rows() -> Vec<(String, u64, f64, f64)> {
    tshark_rows_of("tshark-rtp-streams.txt")
}

fn stream<'a>(doc: &'a Value, ssrc: &str) -> &'a Value {
    doc["unassociated_streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ssrc"] == ssrc)
        .unwrap_or_else(|| panic!("stream {ssrc} listed: {doc:#}"))
}

#[test]
fn rtpmaps_of_a_183_without_its_invite_give_the_streams_their_clock() {
    let doc = common::analyze_json(&[&capture_dir().join("orphan-sdp.pcap")]);
    let rows = tshark_rows();
    assert_eq!(rows.len(), 3, "tshark's rows: {rows:?}");
    for (ssrc, packets, mean, max) in rows.iter().filter(|r| r.0 != "0x44440004") {
        let s = stream(&doc, ssrc);
        assert_eq!(s["codec"], "AMR-WB", "{ssrc}");
        assert_eq!(s["clock_rate"], 16000, "{ssrc}");
        assert_eq!(s["packets"], *packets, "{ssrc}");
        let ours = s["jitter_ms"].as_f64().expect("jitter known");
        let ours_max = s["max_jitter_ms"].as_f64().expect("max jitter known");
        assert!(
            (ours - mean).abs() < 0.01,
            "{ssrc}: mean jitter {ours} vs tshark {mean}"
        );
        assert!(
            (ours_max - max).abs() < 0.01,
            "{ssrc}: max jitter {ours_max} vs tshark {max}"
        );
        // Its jitter is measured, but AMR-WB's impairment depends on its mode: no MOS.
        assert!(s["mos"].is_null(), "{ssrc}: {s:#}");
    }
}

#[test]
fn unknown_clock_and_events_alone_have_no_jitter_or_mos() {
    let doc = common::analyze_json(&[&capture_dir().join("orphan-sdp.pcap")]);
    // PT 97: no SDP says what it is, so nothing says at what clock its timestamps run.
    let unknown = stream(&doc, "0x33330003");
    assert_eq!(unknown["packets"], 250);
    for field in ["jitter_ms", "max_jitter_ms", "mos"] {
        assert!(unknown[field].is_null(), "PT97 {field}: {unknown:#}");
    }
    // Telephone-events alone: no audio, no MOS.
    let events = stream(&doc, "0x44440004");
    assert_eq!(events["payload_type"], 101);
    assert!(events["mos"].is_null(), "{events:#}");
    assert!(events["jitter_ms"].is_null(), "{events:#}");

    let out = common::earshot()
        .arg("analyze")
        .arg(capture_dir().join("orphan-sdp.pcap"))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table.lines().find(|l| l.contains("0x33330003")).unwrap();
    assert!(
        line.contains("jitter - ms") && line.contains("MOS -"),
        "{line}"
    );
}

/// Video m-lines (issue 12, item 8): ffmpeg's H.264 and H.263 RTP is tied to its call as a
/// video stream, measured with the 90 kHz clock as tshark measures it, and kept out of the
/// call's codecs and MOS; the call lasts until its media ends.
#[test]
fn video_streams_belong_to_their_call_and_are_measured_at_90_khz() {
    let doc = common::analyze_json(&[&capture_dir().join("video-call.pcap")]);
    let un = doc["unassociated_streams"].as_array().unwrap();
    assert!(un.is_empty(), "nothing unassociated: {un:#?}");
    let calls = doc["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    let rows = tshark_rows_of("tshark-video-streams.txt");
    assert_eq!(rows.len(), 4, "tshark's rows: {rows:?}");
    let mut videos = Vec::new();
    for call in calls {
        assert_eq!(
            call["codecs"],
            serde_json::json!(["PCMU"]),
            "{}",
            call["call_id"]
        );
        let streams = call["streams"].as_array().unwrap();
        assert_eq!(streams.len(), 2, "{}: audio and video", call["call_id"]);
        for s in streams {
            let ssrc = s["ssrc"].as_str().unwrap();
            let (_, packets, mean, max) = rows
                .iter()
                .find(|r| r.0.eq_ignore_ascii_case(ssrc))
                .unwrap_or_else(|| panic!("{ssrc} in tshark's rows"));
            assert_eq!(s["packets"], *packets, "{ssrc}");
            let ours = s["jitter_ms"].as_f64().expect("jitter known");
            let ours_max = s["max_jitter_ms"].as_f64().expect("max jitter known");
            let close = |a: f64, b: f64| (a - b).abs() <= 0.1 || (a - b).abs() <= 0.05 * b;
            assert!(
                close(ours, *mean),
                "{ssrc}: mean jitter {ours} vs tshark {mean}"
            );
            assert!(
                close(ours_max, *max),
                "{ssrc}: max jitter {ours_max} vs tshark {max}"
            );
            if s["media"] == "video" {
                assert_eq!(s["clock_rate"], 90000, "{ssrc}");
                assert!(s["mos"].is_null(), "{ssrc}: video has no MOS");
                assert_eq!(s["direction"], "caller", "{ssrc}");
                // The call does not end before its video does.
                assert!(call["end"].as_str().unwrap() >= s["end"].as_str().unwrap());
                videos.push(s["codec"].as_str().unwrap().to_string());
            } else {
                assert_eq!(s["media"], "audio");
                assert_eq!(s["codec"], "PCMU");
            }
        }
    }
    videos.sort();
    assert_eq!(videos, ["H263", "H264"]);
}

/// Counts what the engine hands a sink, as the live sensor's fan-out and `extract` get it.
#[derive(Default)]
struct Counting {
    audio: u64,
    video: u64,
}

impl earshot_core::Sink for Counting {
    fn rtp(&mut self, p: &earshot_core::RtpPacket<'_>) {
        let video = p
            .format
            .is_some_and(|f| earshot_core::is_video_format(&f.encoding, f.clock_rate))
            || matches!(p.payload_type, 26 | 31 | 32 | 34 | 96);
        if video {
            self.video += 1;
        } else {
            self.audio += 1;
        }
    }
}

/// No video packet may reach an audio decoder or listener: the engine gives sinks only the
/// audio of a call with video.
#[test]
fn video_rtp_reaches_no_sink() {
    let mut engine = earshot_core::Engine::new(earshot_core::Config::default());
    let mut sink = Counting::default();
    let mut reader =
        earshot_wire::CaptureReader::open(&capture_dir().join("video-call.pcap")).unwrap();
    while let Some(frame) = reader.next_frame() {
        let f = frame.unwrap();
        engine.handle_frame(f.ts, f.link, f.data, &mut sink);
    }
    assert_eq!(sink.video, 0);
    assert_eq!(sink.audio, 400, "both calls' PCMU");
    // And extract turns the calls into audio without an unsupported-codec complaint.
    let out_dir = std::env::temp_dir().join(format!("earshot-video-{}", std::process::id()));
    let out = common::earshot()
        .args(["extract", "--all", "--out"])
        .arg(&out_dir)
        .arg(capture_dir().join("video-call.pcap"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("unsupported"), "{stderr}");
    let _ = std::fs::remove_dir_all(&out_dir);
}

/// `extract --stream` outside a call uses what the orphan 183's SDP said: AMR-WB, decoded at
/// its own 16 kHz, not refused as an unknown dynamic type.
#[test]
fn extract_takes_the_codec_of_a_stream_from_an_orphan_sdp() {
    let out_file = std::env::temp_dir().join(format!("earshot-amr-{}.wav", std::process::id()));
    let out = common::earshot()
        .args(["extract", "--stream", "0x11110001", "--out"])
        .arg(&out_file)
        .arg(capture_dir().join("orphan-sdp.pcap"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("unknown payload type"), "{stderr}");
    let wav = hound::WavReader::open(&out_file).expect("a WAV");
    assert_eq!(wav.spec().sample_rate, 16000, "AMR-WB's rate: {stderr}");
    assert!(wav.duration() > 0, "{stderr}");
    let _ = std::fs::remove_file(&out_file);
}
