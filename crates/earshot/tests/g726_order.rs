//! The G.726 bit order option of `extract` and the sensor's `[codecs] g726_order`, on
//! tests/captures/transport/g726-ffmpeg.pcap (ffmpeg's AAL2-ordered G.726 under the RFC 3551
//! name; see the README there).

mod common;

use std::path::{Path, PathBuf};

fn captures() -> PathBuf {
    common::repo_root().join("tests/captures/transport")
}

fn s16(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn wav(path: &Path) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).expect("read wav");
    r.samples::<i16>().map(|s| s.expect("sample")).collect()
}

fn snr_db(reference: &[i16], test: &[i16]) -> f64 {
    let n = reference.len().min(test.len());
    let (mut sig, mut err) = (0f64, 0f64);
    for (r, t) in reference[..n].iter().zip(&test[..n]) {
        sig += f64::from(*r).powi(2);
        err += (f64::from(*r) - f64::from(*t)).powi(2);
    }
    10.0 * (sig / err.max(1.0)).log10()
}

/// `extract` with `args`, the WAV's samples.
fn extract(out: &str, args: &[&str]) -> Vec<i16> {
    let tmp = std::env::temp_dir().join(format!("earshot-g726-{}-{out}.wav", std::process::id()));
    let o = common::earshot()
        .arg("extract")
        .arg(captures().join("g726-ffmpeg.pcap"))
        .args(args)
        .arg("--out")
        .arg(&tmp)
        .output()
        .expect("run earshot");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pcm = wav(&tmp);
    let _ = std::fs::remove_file(&tmp);
    pcm
}

#[test]
fn extract_g726_order_option_reads_aal2_under_the_rfc_name() {
    let reference = s16(&captures().join("ref-aal2-32.s16"));
    // Stream 2: ffmpeg's AAL2-ordered G.726-32, announced as G726-32.
    let stream = ["--stream", "0x00726002"];
    let default = extract("default", &stream);
    let forced = extract("aal2", &[&stream[..], &["--g726-order", "aal2"]].concat());
    let (d, f) = (snr_db(&reference, &default), snr_db(&reference, &forced));
    eprintln!("G726-32 in AAL2 order: default {d:.1} dB, --g726-order aal2 {f:.1} dB");
    assert_eq!(forced.len(), reference.len());
    assert!(
        f >= 20.0,
        "--g726-order aal2: {f:.1} dB against ffmpeg's decode"
    );
    assert!(
        d < 5.0,
        "the named order is kept at 32 kbit/s by default: {d:.1} dB"
    );
}

#[test]
fn extract_of_a_call_detects_aal2_at_24_kbits() {
    let reference = s16(&captures().join("ref-aal2-24.s16"));
    // The whole call through the playout path; stereo, the caller on the left.
    let stereo = extract("call", &["--call", "g726-1@10.30.0.1"]);
    let caller: Vec<i16> = stereo.chunks_exact(2).map(|f| f[0]).collect();
    // The call's audio starts at its first packet; search a small lead-in.
    let best = (0..400)
        .map(|lag| snr_db(&reference, caller.get(lag..).unwrap_or(&[])))
        .fold(f64::MIN, f64::max);
    eprintln!("AAL2 G726-24 in a call, auto: {best:.1} dB");
    assert!(
        best >= 20.0,
        "auto order in a call: {best:.1} dB against ffmpeg's decode"
    );
}

#[test]
fn sensor_config_takes_the_g726_order() {
    let dir = std::env::temp_dir().join(format!("earshot-g726-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (value, ok) in [
        ("aal2", true),
        ("rfc3551", true),
        ("auto", true),
        ("lsb-first", false),
    ] {
        let path = dir.join(format!("{value}.toml"));
        std::fs::write(&path, format!("[codecs]\ng726_order = \"{value}\"\n")).unwrap();
        let o = common::earshot()
            .arg("check-config")
            .arg(&path)
            .output()
            .expect("run earshot");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.success(), ok, "{value}: {stderr}");
        if !ok {
            assert!(stderr.contains("auto, rfc3551 or aal2"), "{stderr}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
