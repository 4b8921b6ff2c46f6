//! Audio out of earshot for codec tests: a call's two channels as `extract --all` writes them
//! and as a live listener hears them, raw reference decodes, and their correlation. Used by the
//! codec tests (AMR, G.723.1/iLBC) with `#[path = "common/audio.rs"] mod audio;` beside
//! `mod common;` and `mod sensor;`.

use crate::common::earshot;
use crate::sensor;
use std::path::Path;
use std::time::Duration;

/// A file of 16-bit little-endian samples (a reference decode).
pub fn read_s16le(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// `extract --all --rate RATE` of the one call in `pcap`: its left (caller) and right (callee)
/// channels, and extract's stderr. Fails when extract fails or writes no stereo WAV at `rate`.
pub fn extract_stereo(pcap: &Path, rate: u32) -> (Vec<i16>, Vec<i16>, String) {
    let name = pcap.file_name().and_then(|n| n.to_str()).unwrap_or("pcap");
    let out = std::env::temp_dir().join(format!("earshot-audio-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = earshot()
        .args(["extract", "--all", "--rate", &rate.to_string(), "--out"])
        .arg(&out)
        .arg(pcap)
        .output()
        .expect("run earshot extract");
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{name}: {stderr}");
    let wav = std::fs::read_dir(&out)
        .expect("out dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "wav"))
        .unwrap_or_else(|| panic!("{name}: no WAV written; {stderr}"));
    let mut reader = hound::WavReader::open(&wav).expect("WAV");
    assert_eq!(reader.spec().channels, 2);
    assert_eq!(reader.spec().sample_rate, rate);
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let _ = std::fs::remove_dir_all(&out);
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right, stderr)
}

/// What a live listener hears of the capture's call from its start (the sensor replays it as
/// fast as it can; `from=start` plays the rewind through the listeners' decoders): its left
/// and right channels at `rate`.
pub fn live_stereo(pcap: &Path, rate: u32) -> (Vec<i16>, Vec<i16>) {
    let s = sensor::Sensor::start(&["--pcap", pcap.to_str().unwrap(), "--speed", "max"]);
    let row = s.wait_call_with_rtp(Duration::from_secs(20));
    let r = row[0].as_str().expect("call reference").to_string();
    let items = sensor::read_stream(
        s.addr,
        &format!("stream {r} channels=2 rate={rate} from=start"),
        Duration::from_secs(30),
    );
    let (l, r) = sensor::stereo_channels(&items);
    // The stream's samples are i16 values carried as f32 by the helper.
    let back = |c: Vec<f32>| c.into_iter().map(|v| v as i16).collect();
    (back(l), back(r))
}

/// Normalised correlation of two signals over their common length.
pub fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1.0)
}
