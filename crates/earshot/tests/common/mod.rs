//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `../shared/pcaps` beside the repository. Under CI (`CI=true`) its absence fails the test;
/// elsewhere the test is skipped with a notice.
pub fn shared_pcaps() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pcaps");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is missing: CI needs the shared test captures",
            dir.display()
        );
    }
    eprintln!("skipping: {} is missing", dir.display());
    None
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn earshot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_earshot"))
}

/// Runs `earshot analyze --json` and parses its document.
pub fn analyze_json(files: &[&Path]) -> serde_json::Value {
    let out = earshot()
        .arg("analyze")
        .arg("--json")
        .args(files)
        .output()
        .expect("run earshot");
    assert!(
        out.status.success(),
        "earshot analyze {:?} failed: {}",
        files,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze --json prints JSON")
}

/// Level in dBFS of a sine of `freq` Hz in `x` (16-bit full scale), through a Blackman-Harris
/// window so that tones 20 Hz apart do not leak into each other.
pub fn tone_dbfs(x: &[f32], rate: f64, freq: f64) -> f64 {
    let n = x.len();
    let (mut re, mut im, mut wsum) = (0.0f64, 0.0f64, 0.0f64);
    for (k, &v) in x.iter().enumerate() {
        let p = 2.0 * std::f64::consts::PI * k as f64 / (n - 1) as f64;
        let w = 0.35875 - 0.48829 * p.cos() + 0.14128 * (2.0 * p).cos() - 0.01168 * (3.0 * p).cos();
        let ph = 2.0 * std::f64::consts::PI * freq * k as f64 / rate;
        re += f64::from(v) * w * ph.cos();
        im += f64::from(v) * w * ph.sin();
        wsum += w;
    }
    let amp = 2.0 * (re * re + im * im).sqrt() / wsum;
    20.0 * (amp / 32768.0).max(1e-12).log10()
}

/// One second (at most) from the middle of the part of a channel that carries sound: the
/// call's media, not the silence around it.
pub fn voiced(x: &[f32], rate: usize) -> &[f32] {
    let first = x.iter().position(|v| v.abs() > 300.0).unwrap_or(0);
    let last = x.iter().rposition(|v| v.abs() > 300.0).unwrap_or(0);
    let x = &x[first..=last.max(first)];
    let cut = x.len().saturating_sub(rate) / 2;
    &x[cut..x.len() - cut]
}
