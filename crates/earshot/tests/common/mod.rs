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
