//! `earshot check-config`: validates a sensor or player configuration file with the same code
//! the daemons run, and explains what is wrong.

use anyhow::{anyhow, Result};
use std::path::{Path, PathBuf};

/// Check a sensor or player configuration file and explain any mistake.
///
/// The file is read with the same rules as `earshot sensor --config` / `earshot player
/// --config`: unknown keys, wrong types, addresses, CIDR ranges, TLS files, a token when the
/// Manager API is reachable beyond loopback... Prints "ok" and exits 0 when the daemon would
/// accept it. Relative paths are read from the current directory, as the daemon would.
///
/// Examples:
///   earshot check-config /etc/earshot/sensor.toml
///   earshot check-config --kind player /etc/earshot/player.toml
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The TOML file to check.
    file: PathBuf,
    /// What the file configures; guessed from its sections when not given.
    #[arg(long, value_enum)]
    kind: Option<Kind>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sensor,
    Player,
}

pub fn run(args: Args) -> Result<()> {
    let path = &args.file;
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{} is not valid TOML: {e}", path.display()))?;
    let kind = match args.kind {
        Some(k) => k,
        None => guess_kind(&table).ok_or_else(|| {
            anyhow!(
                "{}: cannot tell whether this configures a sensor or a player; \
                 say which with --kind sensor or --kind player",
                path.display()
            )
        })?,
    };
    let notes = match kind {
        Kind::Sensor => check_sensor(path, &text)?,
        Kind::Player => check_player(path, &text)?,
    };
    for note in notes {
        println!("note: {note}");
    }
    println!("{}: ok ({kind:?} configuration)", path.display());
    Ok(())
}

/// Sections only one of the two files has; `[manager]` is in both, with different keys.
fn guess_kind(t: &toml::Table) -> Option<Kind> {
    let has = |k: &str| t.contains_key(k);
    let manager_has = |k: &str| {
        t.get("manager")
            .and_then(toml::Value::as_table)
            .is_some_and(|m| m.contains_key(k))
    };
    let sensor_only = ["sensor", "capture", "calls", "hep", "codecs"];
    if sensor_only.iter().any(|k| has(k)) || manager_has("allow") {
        Some(Kind::Sensor)
    } else if has("database") || has("auth") || has("listen") || manager_has("host") {
        Some(Kind::Player)
    } else if t.is_empty() {
        None
    } else if has("manager") && !manager_has("port") && !manager_has("kind") {
        Some(Kind::Sensor)
    } else {
        Some(Kind::Player)
    }
}

/// Parses with the daemon's own structures, then resolves the settings exactly as at start.
fn check_sensor(path: &Path, text: &str) -> Result<Vec<String>> {
    let file: earshot_sensor::config::FileConfig =
        toml::from_str(text).map_err(|e| explain(path, &e))?;
    let mut notes = Vec::new();
    for pcap in &file.capture.pcap {
        earshot_wire::CaptureReader::open(pcap)
            .map_err(|e| anyhow!("{}: [capture] pcap {}: {e}", path.display(), pcap.display()))?;
    }
    let no_source = file.capture.interface.is_none()
        && file.capture.hep.is_none()
        && file.capture.pcap.is_empty();
    if no_source {
        notes.push(
            "no capture source ([capture] interface, hep or pcap): the sensor will need \
             --interface, --hep or --pcap on its command line"
                .to_string(),
        );
    }
    earshot_sensor::config::resolve(file, earshot_sensor::config::Overrides::default())
        .map_err(|e| anyhow!("{}: {e:#}", path.display()))?;
    Ok(notes)
}

fn check_player(path: &Path, text: &str) -> Result<Vec<String>> {
    let file: earshot_player::FileConfig = toml::from_str(text).map_err(|e| explain(path, &e))?;
    let config = earshot_player::Config::resolve(file, earshot_player::Overrides::default())
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let fail = |msg: String| Err(anyhow!("{}: {msg}", path.display()));
    if !valid_host_port(&config.listen) {
        return fail(format!(
            "listen = {:?}: expected HOST:PORT, e.g. \"127.0.0.1:8080\"",
            config.listen
        ));
    }
    let scheme = config.database_url.split(':').next().unwrap_or_default();
    if !["sqlite", "postgres", "postgresql", "mysql"].contains(&scheme) {
        return fail(format!(
            "[database] url = {:?}: expected sqlite://FILE (created if missing), postgres://… or mysql://…",
            config.database_url
        ));
    }
    let mut notes = Vec::new();
    match &config.default_sensor {
        Some(s) if s.port == 0 => return fail("[manager] port must be 1-65535, not 0".into()),
        Some(s) if s.host.trim().is_empty() => return fail("[manager] host is empty".into()),
        Some(s) if s.token.as_deref().is_some_and(|t| t.contains(['\r', '\n'])) => {
            return fail("[manager] token must be one line".into())
        }
        Some(_) => {}
        None => notes.push(
            "no default sensor ([manager] host): sensors must be registered with \
             `earshot sensors add`"
                .to_string(),
        ),
    }
    // The same loaders the player runs at start, so a file that passes here also starts.
    if let Some(ca) = &config.sensor_ca {
        earshot_tls::client_config(ca)
            .map_err(|e| anyhow!("{}: [sensors] tls_ca: {e}", path.display()))?;
    }
    if let Some((cert, key)) = &config.tls {
        earshot_tls::server_config(cert, key)
            .map_err(|e| anyhow!("{}: [tls]: {e}", path.display()))?;
    }
    if config.default_sensor.as_ref().is_some_and(|s| s.tls) && config.sensor_ca.is_none() {
        return fail(
            "[manager] tls = true needs [sensors] tls_ca: the certificate to check the sensor with"
                .into(),
        );
    }
    Ok(notes)
}

fn valid_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// toml's message, plus a "did you mean" when a key is unknown but close to a known one.
fn explain(path: &Path, e: &toml::de::Error) -> anyhow::Error {
    let message = e.to_string();
    match suggestion(&message) {
        Some((unknown, known)) => anyhow!(
            "{}: {message}\ndid you mean `{known}` instead of `{unknown}`?",
            path.display()
        ),
        None => anyhow!("{}: {message}", path.display()),
    }
}

/// From serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`"), the
/// unknown key and the closest known one, if close enough to be a typo.
fn suggestion(message: &str) -> Option<(String, String)> {
    let rest = message.split_once("unknown field `")?.1;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected")?.1;
    let known = expected.split('`').skip(1).step_by(2);
    let (best, score) = known
        .map(|k| (k, strsim::jaro_winkler(unknown, k)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (score >= 0.8).then(|| (unknown.to_string(), best.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_known_key() {
        let msg = "unknown field `tokn`, expected one of `listen`, `token`, `allow`";
        assert_eq!(suggestion(msg), Some(("tokn".into(), "token".into())));
        let single = "unknown field `ide`, expected `id`";
        assert_eq!(suggestion(single), Some(("ide".into(), "id".into())));
    }

    #[test]
    fn no_suggestion_for_a_key_unlike_any() {
        let msg = "unknown field `zzzzzz`, expected one of `listen`, `token`, `allow`";
        assert_eq!(suggestion(msg), None);
        assert_eq!(suggestion("invalid type: string, expected u32"), None);
    }

    #[test]
    fn guesses_the_kind_from_sections() {
        let t = |s: &str| toml::from_str::<toml::Table>(s).unwrap();
        assert_eq!(guess_kind(&t("[capture]\nloop = true")), Some(Kind::Sensor));
        assert_eq!(guess_kind(&t("[manager]\nallow = []")), Some(Kind::Sensor));
        assert_eq!(guess_kind(&t("[hep]\nallow = []")), Some(Kind::Sensor));
        assert_eq!(
            guess_kind(&t("listen = \"127.0.0.1:8080\"")),
            Some(Kind::Player)
        );
        assert_eq!(
            guess_kind(&t("[manager]\nhost = \"h\"")),
            Some(Kind::Player)
        );
        assert_eq!(guess_kind(&t("")), None);
    }
}
