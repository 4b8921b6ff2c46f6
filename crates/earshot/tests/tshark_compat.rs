//! Every shared capture through `earshot analyze --json`, compared with tshark's figures
//! recorded by tests/expected/generate.py (calls, streams, packets, loss, jitter).

mod common;

use serde_json::Value;
use std::collections::BTreeSet;

fn streams_by_key(list: &[Value]) -> Vec<(String, &Value)> {
    list.iter()
        .map(|s| {
            let key = format!(
                "{} -> {} {}",
                s["src"].as_str().unwrap_or(""),
                s["dst"].as_str().unwrap_or(""),
                s["ssrc"].as_str().unwrap_or("")
            );
            (key, s)
        })
        .collect()
}

fn jitter_close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 0.1 || (ours - theirs).abs() <= 0.05 * theirs.abs()
}

fn compare_streams(label: &str, expected: &[Value], ours: &[Value], problems: &mut Vec<String>) {
    let ours = streams_by_key(ours);
    if ours.len() != expected.len() {
        let keys: Vec<&String> = ours.iter().map(|(k, _)| k).collect();
        problems.push(format!(
            "{label}: {} streams, tshark has {}; ours: {keys:?}",
            ours.len(),
            expected.len()
        ));
    }
    for (key, exp) in streams_by_key(expected) {
        let Some((_, got)) = ours.iter().find(|(k, _)| *k == key) else {
            problems.push(format!("{label}: missing stream {key}"));
            continue;
        };
        for field in ["packets", "lost"] {
            if got[field].as_i64() != exp[field].as_i64() {
                problems.push(format!(
                    "{label}: {key}: {field} {} vs tshark {}",
                    got[field], exp[field]
                ));
            }
        }
        for (ours_f, theirs_f) in [
            ("jitter_ms", "mean_jitter_ms"),
            ("max_jitter_ms", "max_jitter_ms"),
        ] {
            let (o, t) = (
                got[ours_f].as_f64().unwrap_or(f64::NAN),
                exp[theirs_f].as_f64().unwrap_or(f64::NAN),
            );
            // Where no clock rate is known (a dynamic payload type nothing describes,
            // telephone-events alone) earshot says null and tshark prints 0.
            let both_unknown = got[ours_f].is_null() && t == 0.0;
            if !both_unknown && !jitter_close(o, t) {
                problems.push(format!("{label}: {key}: {ours_f} {o} vs tshark {t}"));
            }
        }
    }
}

#[test]
fn analyze_matches_tshark_on_every_shared_capture() {
    let Some(pcaps) = common::shared_pcaps() else {
        return;
    };
    let expected_dir = common::repo_root().join("tests/expected");
    let mut files: Vec<_> = std::fs::read_dir(&expected_dir)
        .expect("tests/expected exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "expected files for the shared captures");
    let mut problems = Vec::new();
    for file in files {
        let exp: Value =
            serde_json::from_slice(&std::fs::read(&file).expect("read expected")).expect("json");
        let rel = exp["capture"].as_str().expect("capture name");
        let doc = common::analyze_json(&[&pcaps.join(rel)]);
        let calls = doc["calls"].as_array().cloned().unwrap_or_default();

        let ids: BTreeSet<&str> = calls.iter().filter_map(|c| c["call_id"].as_str()).collect();
        let exp_calls = exp["calls"].as_array().cloned().unwrap_or_default();
        let exp_ids: BTreeSet<&str> = exp_calls
            .iter()
            .filter_map(|c| c["call_id"].as_str())
            .collect();
        if ids != exp_ids {
            problems.push(format!("{rel}: Call-IDs {ids:?} vs tshark {exp_ids:?}"));
        }
        for ec in &exp_calls {
            let Some(c) = calls.iter().find(|c| c["call_id"] == ec["call_id"]) else {
                continue;
            };
            for (ours, theirs) in [("caller", "caller"), ("called", "called")] {
                if c[ours] != ec[theirs] {
                    problems.push(format!(
                        "{rel}: {}: {ours} {} vs tshark {}",
                        ec["call_id"], c[ours], ec[theirs]
                    ));
                }
            }
        }
        let call_streams: Vec<Value> = calls
            .iter()
            .flat_map(|c| c["streams"].as_array().cloned().unwrap_or_default())
            .collect();
        compare_streams(
            rel,
            exp["streams"].as_array().map_or(&[], |v| v),
            &call_streams,
            &mut problems,
        );
        let un = doc["unassociated_streams"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        compare_streams(
            &format!("{rel} (unassociated)"),
            exp["unassociated_streams"].as_array().map_or(&[], |v| v),
            &un,
            &mut problems,
        );
    }
    assert!(
        problems.is_empty(),
        "{} differences from tshark:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
