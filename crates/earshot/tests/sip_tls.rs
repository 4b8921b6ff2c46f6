//! SIP over TLS read with a key log (issue 16): the captures in tests/captures/sip-tls/ were
//! made by make.py there with Python's ssl (OpenSSL) on both ends, tcpdump on loopback and
//! libsrtp2 for the media, so what is checked here is earshot against independent TLS and
//! SRTP implementations. The call: 1001 calls 2002 (INVITE, 100, 200, ACK, BYE, 200) with
//! SDES keys in both SDPs; under SRTP a 400 Hz tone from the caller, 1 kHz from the callee.

mod common;
#[path = "common/sensor.rs"]
mod sensor;

use common::voiced;
use sensor::Sensor;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn capture(name: &str) -> PathBuf {
    common::repo_root()
        .join("tests/captures/sip-tls")
        .join(name)
}

/// The captures: (name, whether it carries media).
const RUNS: [(&str, bool); 5] = [
    ("tls13", true),
    ("tls12_aes_gcm", true),
    ("tls12_chacha20", false),
    ("tls12_cbc_etm", false),
    ("tls12_cbc_mte", false),
];

fn analyze(pcap: &Path, keys: Option<&Path>) -> Value {
    let mut cmd = sensor::earshot();
    cmd.args(["analyze", "--json"]);
    if let Some(k) = keys {
        cmd.arg("--tls-keylog").arg(k);
    }
    let out = cmd.arg(pcap).output().expect("run earshot analyze");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze --json prints JSON")
}

#[test]
fn with_the_key_log_every_tls_call_is_listed_as_the_script_made_it() {
    for (name, media) in RUNS {
        let doc = analyze(
            &capture(&format!("{name}.pcap")),
            Some(&capture(&format!("{name}.keys"))),
        );
        let calls = doc["calls"].as_array().expect("calls");
        assert_eq!(calls.len(), 1, "{name}: {doc}");
        let call = &calls[0];
        assert_eq!(call["call_id"], "sip-tls-1@earshot-test", "{name}");
        assert_eq!(call["caller"], "1001", "{name}");
        assert_eq!(call["called"], "2002", "{name}");
        assert_eq!(call["state"], "ended", "{name}: {call}");
        assert_eq!(call["sip_code"], 200, "{name}");
        let tls = &doc["capture"]["tls"];
        assert_eq!(tls["connections"], 1, "{name}: {tls}");
        assert_eq!(tls["decrypted"], 1, "{name}: {tls}");
        assert_eq!(tls["without_key"], 0, "{name}: {tls}");
        assert_eq!(tls["auth_failures"], 0, "{name}: {tls}");
        if media {
            // The SDES keys of the decrypted SDP open the SRTP: 150 packets each way.
            let streams = call["streams"].as_array().expect("streams");
            assert_eq!(streams.len(), 2, "{name}: {call}");
            for s in streams {
                assert_eq!(s["srtp"]["decrypted"], 150, "{name}: {s}");
                assert_eq!(s["srtp"]["auth_failures"], 0, "{name}: {s}");
            }
        }
    }
}

#[test]
fn without_the_key_log_the_call_is_not_listed_and_the_connection_is_counted() {
    for (name, _) in RUNS {
        let doc = analyze(&capture(&format!("{name}.pcap")), None);
        assert_eq!(
            doc["calls"].as_array().map(Vec::len),
            Some(0),
            "{name}: {doc}"
        );
        let tls = &doc["capture"]["tls"];
        assert_eq!(tls["connections"], 1, "{name}: {tls}");
        assert_eq!(tls["without_key"], 1, "{name}: {tls}");
        assert_eq!(tls["decrypted"], 0, "{name}: {tls}");
        assert_eq!(
            doc["capture"]["sip_messages"], 0,
            "{name}: never read as SIP"
        );
    }
}

/// The key log with the last hex digit of every secret changed.
fn wrong_keys(name: &str) -> PathBuf {
    let text = std::fs::read_to_string(capture(&format!("{name}.keys"))).expect("key log");
    let bent: String = text
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                return format!("{l}\n");
            }
            let (head, last) = l.split_at(l.len() - 1);
            let last = if last == "0" { "1" } else { "0" };
            format!("{head}{last}\n")
        })
        .collect();
    let path = sensor::scratch(&format!("tls-wrong-{name}")).join("keys.log");
    std::fs::write(&path, bent).expect("write key log");
    path
}

#[test]
fn a_wrong_secret_counts_authentication_failures_and_lists_no_call() {
    for (name, _) in RUNS {
        let doc = analyze(&capture(&format!("{name}.pcap")), Some(&wrong_keys(name)));
        assert_eq!(
            doc["calls"].as_array().map(Vec::len),
            Some(0),
            "{name}: {doc}"
        );
        let tls = &doc["capture"]["tls"];
        assert!(
            tls["auth_failures"].as_u64().is_some_and(|n| n >= 4),
            "{name}: {tls}"
        );
        assert_eq!(tls["decrypted"], 0, "{name}: {tls}");
        assert_eq!(doc["capture"]["sip_messages"], 0, "{name}");
    }
}

/// `extract --all --tls-keylog KEYS` of a capture: the one WAV's left and right channels.
fn extract(pcap: &Path, keys: &Path, name: &str) -> (Vec<f32>, Vec<f32>) {
    let dir = sensor::scratch(name);
    let out = sensor::earshot()
        .args(["extract", "--all", "--tls-keylog"])
        .arg(keys)
        .arg("--out")
        .arg(&dir)
        .arg(pcap)
        .output()
        .expect("run earshot extract");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wav = std::fs::read_dir(&dir)
        .expect("extract output")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "wav"))
        .expect("a WAV file: the call was found");
    let (samples, channels, rate) = sensor::read_wav(&wav);
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!((channels, rate), (2, 8000));
    samples
        .chunks_exact(2)
        .map(|p| (p[0], p[1]))
        .unzip::<f32, f32, Vec<f32>, Vec<f32>>()
}

#[test]
fn extract_gives_the_caller_400_hz_and_the_callee_1_khz() {
    for name in ["tls13", "tls12_aes_gcm"] {
        let (left, right) = extract(
            &capture(&format!("{name}.pcap")),
            &capture(&format!("{name}.keys")),
            &format!("tls-extract-{name}"),
        );
        let (l, r) = (voiced(&left, 8000), voiced(&right, 8000));
        assert!(
            l.len() >= 7000 && r.len() >= 7000,
            "{name}: {} {}",
            l.len(),
            r.len()
        );
        let shares = (
            sensor::tone_share(l, 8000.0, 400.0),
            sensor::tone_share(l, 8000.0, 1000.0),
            sensor::tone_share(r, 8000.0, 1000.0),
            sensor::tone_share(r, 8000.0, 400.0),
        );
        assert!(
            shares.0 > 0.8 && shares.1 < 0.05 && shares.2 > 0.8 && shares.3 < 0.05,
            "{name}: left 400 Hz {:.3} (1 kHz {:.3}), right 1 kHz {:.3} (400 Hz {:.3})",
            shares.0,
            shares.1,
            shares.2,
            shares.3
        );
    }
}

/// A live sensor replays the TLS 1.3 capture at its real pace while the key log is written
/// only after it started and after the INVITE went by: until then the call is not listed;
/// once the lines are in the file the waiting records are read, the call appears, and a
/// listener hears both tones.
#[test]
fn a_live_sensor_reads_sip_over_tls_once_the_key_log_is_written() {
    live_key_log("tls13", Delivery::File);
}

/// The same over TLS 1.2 (ECDHE-RSA-AES128-GCM-SHA256: CLIENT_RANDOM lines, the PRF's keys).
#[test]
fn a_live_sensor_reads_sip_over_tls_1_2_once_the_key_log_is_written() {
    live_key_log("tls12_aes_gcm", Delivery::File);
}

/// The same with the key log lines sent to `--tls-keylog-socket`, as a PBX's key log callback
/// would, in two writes, the first ending mid-line.
#[test]
fn a_live_sensor_reads_sip_over_tls_once_the_key_log_socket_gets_the_lines() {
    live_key_log("tls13", Delivery::Socket);
}

#[derive(Clone, Copy, Debug)]
enum Delivery {
    File,
    Socket,
}

fn live_key_log(name: &str, delivery: Delivery) {
    let dir = sensor::scratch(&format!("tls-live-{name}-{delivery:?}"));
    let keys = dir.join(match delivery {
        Delivery::File => "sslkeys.log",
        Delivery::Socket => "keylog.sock",
    });
    let pcap = capture(&format!("{name}.pcap"));
    let option = match delivery {
        Delivery::File => "--tls-keylog",
        Delivery::Socket => "--tls-keylog-socket",
    };
    let s = Sensor::start(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--speed",
        "1",
        option,
        keys.to_str().unwrap(),
    ]);
    // The INVITE is about 0.55 s into the capture, the media from 0.65 s for 3 s.
    std::thread::sleep(Duration::from_millis(1000));
    let listed = s.calls_json();
    assert_eq!(listed.len(), 1, "no call before the key log: {listed:?}");
    // Written in two pieces, the first ending mid-line, as a growing file is.
    let text = std::fs::read_to_string(capture(&format!("{name}.keys"))).expect("key log");
    let (a, b) = text.split_at(text.len() / 2);
    let mut out: Box<dyn std::io::Write> = match delivery {
        Delivery::File => {
            std::fs::write(&keys, "").expect("create key log");
            Box::new(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&keys)
                    .expect("open key log"),
            )
        }
        Delivery::Socket => Box::new(
            std::os::unix::net::UnixStream::connect(&keys).expect("connect to the key log socket"),
        ),
    };
    out.write_all(a.as_bytes()).expect("write key log");
    out.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(250));
    out.write_all(b.as_bytes()).expect("append key log");
    drop(out);
    let deadline = Instant::now() + Duration::from_secs(5);
    let row = s.wait_call_with_rtp(deadline - Instant::now());
    let r = row[0].as_str().expect("call reference").to_string();
    let items = sensor::read_stream(
        s.addr,
        &format!("stream {r} channels=2 rate=8000 from=start"),
        Duration::from_secs(20),
    );
    let (left, right) = sensor::stereo_channels(&items);
    let (l, r) = (voiced(&left, 8000), voiced(&right, 8000));
    assert!(
        l.len() >= 4000 && r.len() >= 4000,
        "{} {}",
        l.len(),
        r.len()
    );
    let (l400, r1k) = (
        sensor::tone_share(l, 8000.0, 400.0),
        sensor::tone_share(r, 8000.0, 1000.0),
    );
    assert!(
        l400 > 0.8 && r1k > 0.8,
        "400 Hz left {l400:.3}, 1 kHz right {r1k:.3}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A key log socket path the sensor cannot use stops it at once with what to check, and a
/// regular file at that path is never deleted.
#[test]
fn a_key_log_socket_path_that_cannot_be_used_is_explained() {
    let dir = sensor::scratch("tls-socket-bad");
    let pcap = capture("tls13.pcap");
    let missing = dir.join("no-such-dir/keylog.sock");
    let file = dir.join("keys.log");
    std::fs::write(&file, "CLIENT_RANDOM kept\n").expect("write");
    for (path, says) in [
        (&missing, "check that its directory exists"),
        (&file, "not a socket"),
    ] {
        let out = sensor::earshot()
            .args([
                "sensor",
                "--pcap",
                pcap.to_str().unwrap(),
                "--tls-keylog-socket",
            ])
            .arg(path)
            .output()
            .expect("run earshot sensor");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{path:?}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(&file).expect("kept"),
        "CLIENT_RANDOM kept\n"
    );
    let _ = std::fs::remove_dir_all(dir);
}
