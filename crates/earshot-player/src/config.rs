//! `earshot player` configuration: a TOML file, then command-line overrides.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! [manager]            # the default sensor, used when a request names no sensor id
//! host = "127.0.0.1"
//! port = 5029
//! token = "s3cret"
//! id = 0               # the id it is listed under (default 0)
//! tls = false          # its Manager API speaks TLS (checked against [sensors] tls_ca)
//! [sensors]
//! tls_ca = "/etc/earshot/sensors-ca.pem"  # CA (or certificate) trusted for sensors with tls
//! [database]
//! url = "sqlite://earshot.db?mode=rwc"
//! [tls]                # serve HTTPS instead of HTTP (implies secure cookies)
//! cert = "/etc/earshot/player.pem"
//! key = "/etc/earshot/player.key"
//! [auth]
//! secure_cookie = true # set when the player is reached over HTTPS (e.g. behind a proxy)
//! proxy_user_header = "X-Remote-User"  # trust this header for the user name...
//! trusted_proxies = ["127.0.0.1/32"]   # ...only on requests from these addresses
//! [metrics]
//! token = "scrape-s3cret" # /metrics then needs `Authorization: Bearer …`; unset: loopback only
//! [http]               # limits of the web server (docs/security.md, "## The player")
//! max_connections = 4096
//! header_timeout_seconds = 10
//! request_timeout_seconds = 30
//! frame_ancestors = "'self'"
//! [login]
//! max_failures_per_user = 5
//! max_failures_per_address = 20
//! lockout_seconds = 300
//! concurrent_hashes = 2
//! [listening]
//! max_per_user_per_call = 4
//! chunk_idle_seconds = 30
//! [embed]              # other sites' dashboards (docs/api.md); nothing is allowed by default
//! allowed_origins = ["https://dash.example.com"]  # CORS for /api/v1, token WebSockets, frame-ancestors
//! requests_per_minute = 120  # per API key on /api/v1
//! token_seconds = 60         # how long a listen token may be used to start its session
//! ```

use crate::db::{Sensor, SensorKind};
use ipnet::IpNet;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    pub sensors: SensorsSection,
    pub tls: Option<TlsSection>,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub login: LoginSection,
    #[serde(default)]
    pub listening: ListeningSection,
    #[serde(default)]
    pub embed: EmbedSection,
}

/// `[embed]`: the dashboards of other sites that embed live listening (docs/api.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedSection {
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    pub requests_per_minute: Option<u32>,
    pub token_seconds: Option<u64>,
}

/// Embedding as the player runs it: [`Embed::default`] allows no other origin at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Embed {
    /// Origins (`scheme://host[:port]`, lower case) whose pages may call `/api/v1` from the
    /// browser, listen with a token, and frame the player.
    pub allowed_origins: Vec<String>,
    /// `/api/v1` requests one API key may make per minute (all players' memory separately).
    pub requests_per_minute: u32,
    /// The lifetime of a listen token: it must start its session within this.
    pub token_seconds: u64,
}

/// The longest a listen token may live: it is a bearer secret in a URL, meant to be used at once.
pub const MAX_TOKEN_SECONDS: u64 = 600;

impl Default for Embed {
    fn default() -> Self {
        Embed {
            allowed_origins: Vec::new(),
            requests_per_minute: 120,
            token_seconds: 60,
        }
    }
}

impl Embed {
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    }

    fn resolve(section: EmbedSection) -> Result<Embed, ConfigError> {
        let d = Embed::default();
        let allowed_origins = section
            .allowed_origins
            .iter()
            .map(|o| parse_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        let requests_per_minute = match section.requests_per_minute {
            Some(0) => {
                return Err(ConfigError::Invalid(
                    "[embed] requests_per_minute must be at least 1".into(),
                ))
            }
            v => v.unwrap_or(d.requests_per_minute),
        };
        let token_seconds = match section.token_seconds {
            Some(s) if s == 0 || s > MAX_TOKEN_SECONDS => {
                return Err(ConfigError::Invalid(format!(
                    "[embed] token_seconds must be 1-{MAX_TOKEN_SECONDS}: a listen token is meant to be used at once"
                )))
            }
            v => v.unwrap_or(d.token_seconds),
        };
        Ok(Embed {
            allowed_origins,
            requests_per_minute,
            token_seconds,
        })
    }
}

/// An origin exactly as browsers send it (`https://dash.example.com`, `http://10.0.0.5:3000`):
/// a scheme, a host and maybe a port; no path, no wildcard. It goes into headers and is
/// compared with the `Origin` header, so anything else is refused when the file is read.
pub fn parse_origin(o: &str) -> Result<String, ConfigError> {
    let bad = || {
        ConfigError::Invalid(format!(
            "[embed] allowed_origins: {o:?} is not an origin; write it as the browser's address bar shows the dashboard, without a path: \"https://dash.example.com\" or \"http://10.0.0.5:3000\""
        ))
    };
    let (scheme, authority) = o.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "http" | "https") || authority.is_empty() {
        return Err(bad());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if !authority.chars().all(allowed) {
        return Err(bad());
    }
    Ok(o.to_ascii_lowercase())
}

/// `[http]`: limits of the web server itself. Every connection costs a file descriptor and
/// some memory, so none may stay open unboundedly long or in unbounded number.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub max_connections: Option<usize>,
    pub header_timeout_seconds: Option<u64>,
    pub request_timeout_seconds: Option<u64>,
    pub frame_ancestors: Option<String>,
}

/// `[login]`: how many wrong passwords are tolerated, and how many are checked at once.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSection {
    pub max_failures_per_user: Option<u32>,
    pub max_failures_per_address: Option<u32>,
    pub lockout_seconds: Option<u64>,
    pub concurrent_hashes: Option<usize>,
}

/// `[listening]`: limits of listening sessions.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListeningSection {
    pub max_per_user_per_call: Option<usize>,
    pub chunk_idle_seconds: Option<u64>,
}

/// The limits the player runs with; [`Limits::default`] are the documented defaults
/// (docs/security.md, "## The player").
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Open connections (HTTP and WebSocket) at most; also kept below the file limit.
    pub max_connections: usize,
    /// A connection must send a complete request head within this, also between requests.
    pub header_timeout: Duration,
    /// A request (body read and handler) must be answered within this; WebSockets excepted.
    pub request_timeout: Duration,
    /// The CSP `frame-ancestors` value: which pages may embed the player.
    pub frame_ancestors: String,
    pub max_failures_per_user: u32,
    pub max_failures_per_address: u32,
    pub lockout: Duration,
    /// Password hashes (argon2, 19 MiB each) computed at once, on threads of their own.
    pub concurrent_hashes: usize,
    /// Listening sessions one user may hold on one call (WebSocket and /api/chunk together).
    pub max_per_user_per_call: usize,
    /// An /api/chunk session nobody polled for this long is ended (and its audit row closed).
    pub chunk_idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            frame_ancestors: "'self'".into(),
            max_failures_per_user: 5,
            max_failures_per_address: 20,
            lockout: Duration::from_secs(300),
            concurrent_hashes: 2,
            max_per_user_per_call: 4,
            chunk_idle: Duration::from_secs(30),
        }
    }
}

impl Limits {
    fn resolve(
        http: HttpSection,
        login: LoginSection,
        listening: ListeningSection,
    ) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let positive = |key: &str, v: Option<u64>, default: Duration| match v {
            None => Ok(default),
            Some(0) => Err(ConfigError::Invalid(format!("{key} must be at least 1"))),
            Some(s) => Ok(Duration::from_secs(s)),
        };
        let at_least_one = |key: &str, v: Option<usize>, default: usize| match v {
            None => Ok(default),
            Some(0) => Err(ConfigError::Invalid(format!("{key} must be at least 1"))),
            Some(n) => Ok(n),
        };
        let frame_ancestors = match http.frame_ancestors {
            None => d.frame_ancestors,
            Some(v) => {
                let v = v.trim().to_string();
                // It goes into a header: one source list, nothing that could end the directive.
                if v.is_empty() || v.contains([';', ',', '\r', '\n']) || !v.is_ascii() {
                    return Err(ConfigError::Invalid(format!(
                        "[http] frame_ancestors {v:?}: give a CSP source list such as \"'self'\", \"'none'\" or \"'self' https://intranet.example\""
                    )));
                }
                v
            }
        };
        Ok(Limits {
            max_connections: at_least_one(
                "[http] max_connections",
                http.max_connections,
                d.max_connections,
            )?,
            header_timeout: positive(
                "[http] header_timeout_seconds",
                http.header_timeout_seconds,
                d.header_timeout,
            )?,
            request_timeout: positive(
                "[http] request_timeout_seconds",
                http.request_timeout_seconds,
                d.request_timeout,
            )?,
            frame_ancestors,
            max_failures_per_user: login
                .max_failures_per_user
                .unwrap_or(d.max_failures_per_user)
                .max(1),
            max_failures_per_address: login
                .max_failures_per_address
                .unwrap_or(d.max_failures_per_address)
                .max(1),
            lockout: positive("[login] lockout_seconds", login.lockout_seconds, d.lockout)?,
            concurrent_hashes: at_least_one(
                "[login] concurrent_hashes",
                login.concurrent_hashes,
                d.concurrent_hashes,
            )?,
            max_per_user_per_call: at_least_one(
                "[listening] max_per_user_per_call",
                listening.max_per_user_per_call,
                d.max_per_user_per_call,
            )?,
            chunk_idle: positive(
                "[listening] chunk_idle_seconds",
                listening.chunk_idle_seconds,
                d.chunk_idle,
            )?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorsSection {
    pub tls_ca: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: PathBuf,
    pub key: PathBuf,
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
    #[serde(default)]
    pub tls: bool,
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
    pub proxy_user_header: Option<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
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
    /// PEM file of the certificates trusted for sensors registered with `tls`.
    pub sensor_ca: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// A reverse proxy's user header, trusted only from these addresses.
    pub proxy_auth: Option<ProxyAuth>,
    /// Bearer token `/metrics` requires; `None`: loopback clients only.
    pub metrics_token: Option<String>,
    /// Connection, login and listening limits.
    pub limits: Limits,
    /// Other sites' dashboards embedding the player.
    pub embed: Embed,
}

/// Single sign-on through a reverse proxy: the proxy authenticates the user and names them in
/// a header. Only requests from the listed proxy addresses are believed; the named user must
/// exist in the player's users table, which gives the role.
#[derive(Debug, Clone)]
pub struct ProxyAuth {
    pub header: String,
    pub trusted: Vec<IpNet>,
}

/// Command-line overrides; `None` keeps the file's value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub manager: Option<String>,
    pub token: Option<String>,
    pub database: Option<String>,
    pub sensor_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
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
            token: normalize_token(o.token.or(section.token)),
            tls: section.tls,
            kind,
        });
        let tls = match (o.tls_cert, o.tls_key, file.tls) {
            (Some(c), Some(k), _) => Some((c, k)),
            (None, None, Some(t)) => Some((t.cert, t.key)),
            (None, None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "--tls-cert and --tls-key go together: give both, or neither".into(),
                ))
            }
        };
        let limits = Limits::resolve(file.http, file.login, file.listening)?;
        let proxy_auth = match file.auth.proxy_user_header {
            None => None,
            Some(header) => {
                if file.auth.trusted_proxies.is_empty() {
                    return Err(ConfigError::Invalid(
                        "[auth] proxy_user_header needs trusted_proxies: the addresses of the reverse proxies allowed to name the user (anyone else could send the header)".into(),
                    ));
                }
                if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(ConfigError::Invalid(format!(
                        "[auth] proxy_user_header {header:?} is not an HTTP header name"
                    )));
                }
                Some(ProxyAuth {
                    header,
                    trusted: file.auth.trusted_proxies,
                })
            }
        };
        Ok(Config {
            listen,
            database_url,
            default_sensor,
            // Over HTTPS the session cookie must never travel in clear text.
            secure_cookie: file.auth.secure_cookie || tls.is_some(),
            sensor_ca: o.sensor_ca.or(file.sensors.tls_ca),
            tls,
            proxy_auth,
            metrics_token: normalize_token(o.metrics_token.or(file.metrics.token)),
            limits,
            embed: Embed::resolve(file.embed)?,
        })
    }
}

/// Tokens are one-line secrets: surrounding spaces (a copy-paste, a quoted value) are never
/// part of them, and an empty one means none. Every token the player is given, from the file,
/// the command line, the API or the CLI, goes through here. Passwords are never trimmed: a
/// space is a legitimate character of a passphrase.
pub fn normalize_token(token: Option<String>) -> Option<String> {
    token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}
