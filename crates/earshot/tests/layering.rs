//! The crates' dependencies point one way (docs/architecture.md): the protocol crate and the
//! player never build the engine, the codecs or the sensor. Read from each crate's Cargo.toml
//! (normal dependencies only; tests may use anything), followed through the workspace.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Each workspace crate's normal `earshot-*` dependencies.
fn workspace_deps() -> HashMap<String, Vec<String>> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut deps = HashMap::new();
    for entry in std::fs::read_dir(&crates).expect("crates/") {
        let dir = entry.expect("entry").path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let name = dir.file_name().expect("name").to_string_lossy().to_string();
        let mut section = String::new();
        let mut mine = Vec::new();
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
            } else if section == "[dependencies]" && line.starts_with("earshot-") {
                let dep = line.split(['.', ' ', '=']).next().unwrap_or("").to_string();
                mine.push(dep);
            }
        }
        deps.insert(name, mine);
    }
    deps
}

/// Everything `name` builds, itself excluded.
fn closure(deps: &HashMap<String, Vec<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        for d in deps.get(&n).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn the_player_and_the_protocol_crate_do_not_build_the_engine() {
    let deps = workspace_deps();
    assert!(
        deps.len() >= 10,
        "found the workspace's crates: {:?}",
        deps.keys()
    );
    assert!(closure(&deps, "earshot-player").contains("earshot-manager"));
    // The protocol crate and the player talk to sensors; neither builds one.
    for protocol in ["earshot-player", "earshot-manager"] {
        let builds = closure(&deps, protocol);
        for engine in [
            "earshot-core",
            "earshot-audio",
            "earshot-sensor",
            "earshot-wire",
        ] {
            assert!(
                !builds.contains(engine),
                "{protocol} builds {engine}: {builds:?}"
            );
        }
    }
    for low in [
        "earshot-wire",
        "earshot-sip",
        "earshot-rtp",
        "earshot-audio",
    ] {
        let up = closure(&deps, low);
        assert!(
            up.iter()
                .all(|d| ["earshot-wire", "earshot-sip", "earshot-rtp"].contains(&d.as_str())),
            "{low} depends on {up:?}"
        );
    }
}
