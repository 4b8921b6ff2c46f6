//! Operations surface of the binary: `--version` with the git revision, shell completions and
//! man pages from the CLI definition, `check-config` on the shipped and on broken files, and
//! the systemd units (through `systemd-analyze verify` when the machine has it), and output
//! piped into a reader that stops early.

mod common;

use common::{earshot, repo_root};
use std::path::{Path, PathBuf};
use std::process::Output;

const SUBCOMMANDS: &[&str] = &["sensor", "player", "check-config", "completions", "man"];

fn run(args: &[&str]) -> Output {
    earshot().args(args).output().expect("run earshot")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("earshot-ops-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn version_names_the_git_revision() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    let v = text(&out.stdout);
    let prefix = format!("earshot {} (git ", env!("CARGO_PKG_VERSION"));
    assert!(v.starts_with(&prefix), "{v}");
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo_root())
        .output();
    match rev {
        Ok(r) if r.status.success() => {
            let rev = text(&r.stdout).trim().to_string();
            assert!(v.contains(&format!("(git {rev}")), "{v} should name {rev}");
        }
        _ => eprintln!("git not available: only the version's shape is checked"),
    }
}

#[test]
fn completions_cover_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(script.contains("log-format"), "{shell}: no global options");
    }
    let bad = run(&["completions", "cmd.exe"]);
    assert!(!bad.status.success());
}

#[test]
fn man_writes_a_page_per_subcommand() {
    let dir = scratch("man");
    let out = earshot()
        .args(["man", "--out"])
        .arg(&dir)
        .output()
        .expect("run earshot man");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let main = std::fs::read_to_string(dir.join("earshot.1")).expect("earshot.1");
    assert!(
        main.starts_with(".ie \\n(.g") || main.contains(".TH earshot"),
        "{main}"
    );
    for sub in SUBCOMMANDS {
        // roff escapes hyphens.
        let listed = sub.replace('-', "\\-");
        assert!(main.contains(&listed), "earshot.1 does not list {sub}");
        let page = dir.join(format!("earshot-{sub}.1"));
        let body =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(body.contains(".SH"), "{} has no sections", page.display());
    }
    let sensor = std::fs::read_to_string(dir.join("earshot-sensor.1")).unwrap();
    assert!(
        sensor.contains("token"),
        "the sensor page lacks its options"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn check(args: &[&str], file: &Path) -> Output {
    earshot()
        .arg("check-config")
        .args(args)
        .arg(file)
        .output()
        .expect("run earshot check-config")
}

#[test]
fn shipped_configurations_pass_check_config() {
    for (name, kind) in [("sensor.toml", "Sensor"), ("player.toml", "Player")] {
        let file = repo_root().join("dist").join(name);
        let out = check(&[], &file);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!("ok ({kind} configuration)")),
            "{stdout}"
        );
    }
}

/// Each broken file fails with an explanation containing the given words.
#[test]
fn broken_configurations_are_explained() {
    let dir = scratch("check");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "sensor",
            "[manager]\ntokn = \"x\"\n",
            &["unknown field `tokn`", "did you mean `token`"],
        ),
        (
            "sensor",
            "[capture]\nbuffer_mb = 64\nsnaplen = 65535\nspead = \"2\"\n",
            &["did you mean `speed`"],
        ),
        (
            "sensor",
            "[manager]\nlisten = \"0.0.0.0:5029\"\n",
            &["without a token", "Set a token"],
        ),
        (
            "sensor",
            "[manager]\nallow = [\"10.0.0.0/33\"]\n",
            &["allow"],
        ),
        (
            "sensor",
            "[manager]\nlisten = \"localhost\"\n",
            &["listen", "socket address"],
        ),
        (
            "sensor",
            "[manager]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n",
            &["/nonexistent/c.pem"],
        ),
        (
            "sensor",
            "[manager]\ntls_cert = \"/nonexistent/c.pem\"\n",
            &["both a certificate and a key"],
        ),
        ("sensor", "[capture]\nsnaplen = 10\n", &["snaplen", "64"]),
        (
            "sensor",
            "[capture]\npcap = [\"/nonexistent/x.pcap\"]\n",
            &["/nonexistent/x.pcap"],
        ),
        (
            "sensor",
            "[calls]\nmax_calls = \"many\"\n",
            &["max_calls", "expected usize"],
        ),
        (
            "player",
            "[manager]\nhost = \"h\"\nkind = \"bogus\"\n",
            &["unknown sensor kind"],
        ),
        ("player", "listen = \"nonsense\"\n", &["expected HOST:PORT"]),
        (
            "player",
            "[database]\nurl = \"oracle://db\"\n",
            &["[database] url"],
        ),
        (
            "player",
            "[auth]\nsecure_cookies = true\n",
            &["did you mean `secure_cookie`"],
        ),
        ("player", "listen = [", &["not valid TOML"]),
        (
            "player",
            "[auth]\nproxy_user_header = \"X-Remote-User\"\n",
            &["needs trusted_proxies"],
        ),
        (
            "player",
            "[tls]\ncert = \"/no/such/cert.pem\"\nkey = \"/no/such/key.pem\"\n",
            &["[tls]", "cannot read the TLS certificate"],
        ),
        (
            "player",
            "[manager]\nhost = \"pbx\"\ntls = true\n",
            &["needs [sensors] tls_ca"],
        ),
    ];
    for (i, (kind, body, words)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{i}.toml"));
        std::fs::write(&file, body).unwrap();
        let out = check(&["--kind", kind], &file);
        let err = text(&out.stderr);
        assert!(
            !out.status.success(),
            "case {i} {body:?} passed: {}",
            text(&out.stdout)
        );
        for w in *words {
            assert!(err.contains(w), "case {i} {body:?}: {w:?} not in:\n{err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_config_guesses_the_kind() {
    let dir = scratch("guess");
    let sensor = dir.join("s.toml");
    std::fs::write(&sensor, "[manager]\nallow = [\"127.0.0.0/8\"]\n").unwrap();
    let out = check(&[], &sensor);
    assert!(
        text(&out.stdout).contains("ok (Sensor"),
        "{}",
        text(&out.stderr)
    );
    let player = dir.join("p.toml");
    std::fs::write(&player, "[manager]\nhost = \"127.0.0.1\"\nport = 5029\n").unwrap();
    let out = check(&[], &player);
    assert!(
        text(&out.stdout).contains("ok (Player"),
        "{}",
        text(&out.stderr)
    );
    let empty = dir.join("e.toml");
    std::fs::write(&empty, "").unwrap();
    let out = check(&[], &empty);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--kind"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `systemd-analyze verify` on the units, with ExecStart pointing at the binary under test (it
/// checks that the command exists).
#[test]
fn systemd_units_verify() {
    let probe = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: systemd-analyze is not installed");
        return;
    }
    let dir = scratch("units");
    for unit in ["earshot-sensor.service", "earshot-player.service"] {
        let text = std::fs::read_to_string(repo_root().join("dist").join(unit)).unwrap();
        assert!(
            text.contains("ExecReload=/bin/kill -HUP $MAINPID"),
            "{unit}"
        );
        assert!(text.contains("NoNewPrivileges=yes"), "{unit}");
        let text = text.replace("/usr/local/bin/earshot", env!("CARGO_BIN_EXE_earshot"));
        let path = dir.join(unit);
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .expect("run systemd-analyze");
        let err = String::from_utf8_lossy(&out.stderr);
        // Without systemd as PID 1 (containers) verify cannot load units at all: skip then.
        if err.contains("System has not been booted with systemd")
            || err.contains("Failed to initialize manager")
        {
            eprintln!("skipping: systemd-analyze cannot run here: {err}");
            return;
        }
        let complaints: Vec<&str> = err
            .lines()
            .filter(|l| l.contains(unit) || l.contains("Unknown"))
            .collect();
        assert!(
            out.status.success() && complaints.is_empty(),
            "{unit}: {err}"
        );
    }
    let sensor = std::fs::read_to_string(repo_root().join("dist/earshot-sensor.service")).unwrap();
    assert!(sensor.contains("AmbientCapabilities=CAP_NET_RAW\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `earshot analyze big.pcap | head` ends quietly, like any Unix filter: no "Broken pipe" on
/// stderr, success.
#[test]
fn analyze_into_a_closed_pipe_ends_quietly() {
    let dir = scratch("pipe");
    let pcap = dir.join("calls.pcap");
    let made = run(&[
        "synth",
        "--calls",
        "300",
        "--seconds",
        "2",
        "--codec",
        "pcmu",
        "--out",
        pcap.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let mut child = earshot()
        .args(["analyze", pcap.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run earshot");
    // Read one line, then close the pipe while analyze still has hundreds of lines to write.
    let mut first = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).unwrap();
    assert!(!first.is_empty());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(text(&out.stderr), "", "stderr");
    assert!(out.status.success(), "{:?}", out.status);
    let _ = std::fs::remove_dir_all(&dir);
}
