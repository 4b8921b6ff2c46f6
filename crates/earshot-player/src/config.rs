//! `earshot player` configuration: a TOML file, then command-line overrides.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! [manager]            # the default sensor, used when a request names no sensor id
//! host = "127.0.0.1"
//! port = 5029
//! token = "s3cret"
//! id = 0               # the id it is listed under (default 0)
//! [database]
//! url = "sqlite://earshot.db?mode=rwc"
//! [auth]
//! secure_cookie = true # set when the player is reached over HTTPS (e.g. behind a proxy)
//! [metrics]
//! token = "scrape-s3cret" # /metrics then needs `Authorization: Bearer …`; unset: loopback only
//! ```

use crate::db::{Sensor, SensorKind};
use serde::Deserialize;
use std::path::Path;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE: &str = "sqlite://earshot.db?mode=rwc";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    #[serde(default)]
    pub manager: Option<ManagerSection>,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub metrics: MetricsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    pub token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerSection {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub token: Option<String>,
    pub id: Option<i64>,
    pub kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    #[serde(default)]
    pub secure_cookie: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not valid player configuration: {reason}")]
    Parse { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub database_url: String,
    /// The sensor from `[manager]` / `--manager`, used when a request names no sensor id.
    pub default_sensor: Option<Sensor>,
    pub secure_cookie: bool,
    /// Bearer token `/metrics` requires; `None`: loopback clients only.
    pub metrics_token: Option<String>,
}

/// Command-line overrides; `None` keeps the file's value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub manager: Option<String>,
    pub token: Option<String>,
    pub database: Option<String>,
    pub metrics_token: Option<String>,
}

impl Config {
    pub fn resolve(file: FileConfig, o: Overrides) -> Result<Config, ConfigError> {
        let listen = o
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let database_url = o
            .database
            .or(file.database.url)
            .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
        let section = file.manager.unwrap_or_default();
        let (mut host, mut port) = (section.host, section.port);
        if let Some(m) = o.manager {
            let (h, p) = m.rsplit_once(':').ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "--manager {m}: expected HOST:PORT, e.g. 127.0.0.1:5029"
                ))
            })?;
            let p: u16 = p.parse().map_err(|_| {
                ConfigError::Invalid(format!("--manager {m}: the port must be a number 1-65535"))
            })?;
            host = Some(h.trim_matches(['[', ']']).to_string());
            port = Some(p);
        }
        let kind = match section.kind.as_deref() {
            None => SensorKind::Earshot,
            Some(k) => k.parse().map_err(ConfigError::Invalid)?,
        };
        let default_sensor = host.map(|host| Sensor {
            id_sensor: section.id.unwrap_or(0),
            name: "default".into(),
            host,
            port: port.unwrap_or(5029),
            token: o.token.or(section.token).filter(|t| !t.is_empty()),
            tls: false,
            kind,
        });
        Ok(Config {
            listen,
            database_url,
            default_sensor,
            secure_cookie: file.auth.secure_cookie,
            metrics_token: o
                .metrics_token
                .or(file.metrics.token)
                .filter(|t| !t.is_empty()),
        })
    }
}
