//! The sensor's configuration: a TOML file ([`FileConfig`], every key optional), what the
//! command line may set over it ([`Overrides`], plain data: the library knows no clap), and
//! [`resolve`], which merges the two and checks everything into the [`SensorConfig`] that
//! [`crate::start::Sensor::start`] runs. `earshot check-config` and a SIGHUP reload call the same
//! `resolve`, so a file that passes the check also starts, and one that would not start is
//! refused by a reload.
//!
//! Every key is documented, commented, in dist/sensor.toml. A list given on the command line
//! replaces the file's list rather than adding to it (the command line is what the operator
//! means right now), except `--codec` and `--correlate-header`, which add to the file's.

use crate::admission::ListenLimits;
use crate::hep_policy::HepPolicy;
use crate::live::LiveConfig;
use crate::pipeline::PipelineConfig;
use crate::replay::Speed;
use crate::server::{self, ManagerConfig};
use earshot_audio::{DecoderOptions, G726Order};
use earshot_core::{Correlation, CorrelationError, PayloadFormat};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a configuration cannot run. Each message names the key or option and says what is
/// expected instead.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    /// Not TOML, or not the sensor's keys (`deny_unknown_fields`): serde's message names the key.
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("cannot read the token file {path}: {reason}")]
    TokenFile { path: String, reason: String },
    #[error(transparent)]
    Tls(#[from] earshot_tls::TlsError),
    #[error(transparent)]
    Correlation(#[from] CorrelationError),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// The configuration file; every key is optional.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub sensor: SensorSection,
    #[serde(default)]
    pub capture: CaptureSection,
    #[serde(default)]
    pub calls: CallsSection,
    #[serde(default)]
    pub manager: ManagerSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub listen: ListenSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub hep: HepSection,
    #[serde(default)]
    pub codecs: CodecsSection,
    #[serde(default)]
    pub correlation: CorrelationSection,
}

impl FileConfig {
    /// Reads and parses `path`; the message names the file.
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

/// How payloads are read where devices disagree with the specifications.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct CodecsSection {
    /// "auto", "rfc3551" or "aal2" (docs/codecs.md, "G.726 bit order").
    pub g726_order: Option<String>,
    /// `PT=NAME/RATE[/CHANNELS]` for dynamic payload types of streams without SIP.
    pub payload_types: Option<Vec<String>>,
}

/// Limits on listeners (docs/security.md, "Listeners").
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    /// Listeners of one call from one client address (and token identity); 0: no limit.
    pub max_per_client_per_call: Option<usize>,
    /// Audio queued for one listener, in KiB.
    pub queue_kb: Option<usize>,
    /// Audio queued for all listeners together, in MiB.
    pub memory_mb: Option<usize>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// The sensor's audit log of Manager API listeners (JSON lines, appended).
    pub file: Option<PathBuf>,
}

/// Who may send HEP to the `[capture] hep` sockets.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct HepSection {
    /// Source ranges allowed; unset: loopback only.
    pub allow: Option<Vec<IpNet>>,
    /// HEP3 auth key every datagram must carry; unset: none needed.
    pub auth_key: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Where `/metrics` is served: "127.0.0.1:9105", or a bare port for loopback.
    pub listen: Option<String>,
    /// Bearer token scrapes must send; unset: loopback clients only.
    pub token: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct SensorSection {
    pub id: Option<i64>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct CaptureSection {
    /// Interfaces to capture on: `interface = ["eth0", "eth1"]` (or one name as a string).
    pub interface: Option<OneOrMany<String>>,
    /// BPF filter for every interface.
    pub filter: Option<String>,
    pub snaplen: Option<u32>,
    /// Kernel capture buffer per interface, in MiB.
    pub buffer_mb: Option<u32>,
    pub promiscuous: Option<bool>,
    /// UDP address(es) to receive HEP on: `hep = "0.0.0.0:9060"`.
    pub hep: Option<OneOrMany<SocketAddr>>,
    #[serde(default)]
    pub pcap: Vec<PathBuf>,
    pub speed: Option<String>,
    #[serde(default, rename = "loop")]
    pub repeat: bool,
    /// TLS key logs followed as they grow (`--tls-keylog`).
    pub tls_keylog: Option<OneOrMany<PathBuf>>,
    /// A Unix socket key log writers connect to (`--tls-keylog-socket`).
    pub tls_keylog_socket: Option<PathBuf>,
    /// Frames queued between capture and the pipeline, in batches of up to 256.
    pub queue_batches: Option<usize>,
}

/// A key that takes one value or a list, so `hep = "0.0.0.0:9060"` and
/// `interface = ["eth0", "eth1"]` both read naturally.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct CallsSection {
    pub idle_timeout_s: Option<u64>,
    /// An INVITE answered by nothing but 100 Trying is over after this long; 0 never.
    pub unanswered_timeout_s: Option<u64>,
    pub linger_s: Option<u64>,
    pub rewind_s: Option<u64>,
    pub rewind_budget_mb: Option<usize>,
    /// Rewind one call may hold, in MiB.
    pub rewind_call_mb: Option<usize>,
    pub max_calls: Option<usize>,
    pub hep_max_clock_skew_s: Option<u64>,
    /// Streams no SIP describes become calls of their own (`--rtp-without-sip`).
    pub rtp_without_sip: Option<bool>,
    /// SIP messages kept per call for `active_call_info`; 0 keeps none.
    pub sip_log_messages: Option<usize>,
    /// SIP text one call's log may hold, in KiB.
    pub sip_log_call_kb: Option<usize>,
    /// SIP text all calls' logs may hold together, in MiB.
    pub sip_log_mb: Option<usize>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ManagerSection {
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
    /// A file holding the token, for a token kept out of this file.
    pub token_file: Option<PathBuf>,
    pub allow: Option<Vec<IpNet>>,
    pub max_connections: Option<usize>,
    pub max_listeners: Option<usize>,
    pub max_listeners_per_call: Option<usize>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// `[correlation]`: what legs of one call through a B2BUA are grouped by. X-CID, X-Call-ID,
/// Session-ID and P-Charging-Vector are always read.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct CorrelationSection {
    /// false: no call is grouped with another.
    pub enabled: Option<bool>,
    /// More headers whose value is the A-leg's Call-ID (VoIPmonitor's `callidmerge_header`).
    pub headers: Option<Vec<String>>,
    /// VoIPmonitor's `callidmerge_secret`: those headers' values are base64 of the A-leg's
    /// Call-ID XORed with this string.
    pub header_secret: Option<String>,
    /// A header and an expression whose first group (else whole match) is a key both legs
    /// carry: `regex_header = "X-Info"`, `regex = "corr=([0-9a-f]+)"`.
    pub regex_header: Option<String>,
    pub regex: Option<String>,
    /// Keys the index holds at most (default 262144).
    pub max_keys: Option<usize>,
}

/// What the command line sets over the file (`earshot sensor --…`; `earshot analyze` uses
/// [`CorrelationOverrides`] alone). Empty lists, `None` and `false` keep the file's value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub interface: Vec<String>,
    pub filter: Option<String>,
    pub snaplen: Option<u32>,
    pub capture_buffer_mb: Option<u32>,
    pub hep: Vec<SocketAddr>,
    pub hep_allow: Vec<IpNet>,
    pub hep_auth_key: Option<String>,
    pub pcap: Vec<PathBuf>,
    /// "1", "2.5", "max": parsed by [`resolve`], so the file and the flag fail alike.
    pub speed: Option<String>,
    pub repeat: bool,
    pub tls_keylog: Vec<PathBuf>,
    pub tls_keylog_socket: Option<PathBuf>,
    pub manager: Option<SocketAddr>,
    pub sensor_id: Option<i64>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub allow: Vec<IpNet>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `ADDR:PORT` or a bare port (see [`metrics_addr`]).
    pub metrics: Option<String>,
    pub metrics_token: Option<String>,
    pub audit_log: Option<PathBuf>,
    pub g726_order: Option<G726Order>,
    pub rtp_without_sip: bool,
    /// `PT=NAME/RATE[/CHANNELS]` specs, added to `[codecs] payload_types` (a flag's payload
    /// type replaces the file's).
    pub codecs: Vec<String>,
    pub correlation: CorrelationOverrides,
}

/// The `--correlate-*` options, added to `[correlation]`.
#[derive(Debug, Default, Clone)]
pub struct CorrelationOverrides {
    pub headers: Vec<String>,
    pub secret: Option<String>,
    /// `HEADER:REGEX`.
    pub regex: Option<String>,
    pub no_correlation: bool,
}

/// Everything the sensor runs with, merged and checked.
#[derive(Clone)]
pub struct SensorConfig {
    /// One entry per interface, all with the same filter and buffer settings.
    pub live: Vec<LiveConfig>,
    pub hep: Vec<SocketAddr>,
    pub hep_policy: HepPolicy,
    pub pcaps: Vec<PathBuf>,
    /// Key logs to follow (`--tls-keylog`).
    pub tls_keylogs: Vec<PathBuf>,
    /// The key log socket (`--tls-keylog-socket`).
    pub tls_keylog_socket: Option<PathBuf>,
    pub speed: Speed,
    pub repeat: bool,
    /// Capacity of the queue between the sources and the pipeline, in batches.
    pub queue_batches: usize,
    pub pipeline: PipelineConfig,
    pub manager: ManagerConfig,
    pub metrics: Option<SocketAddr>,
    pub metrics_token: Option<String>,
    pub listen: ListenLimits,
    pub audit_log: Option<PathBuf>,
}

impl SensorConfig {
    /// True when no interface, HEP socket or capture file is configured: nothing to start.
    pub fn has_no_source(&self) -> bool {
        self.pcaps.is_empty() && self.live.is_empty() && self.hep.is_empty()
    }
}

/// The Manager API's address when neither the file nor the command line gives one.
pub const DEFAULT_MANAGER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5029);
/// Batches queued between the sources and the pipeline by default (`[capture] queue_batches`).
pub const DEFAULT_QUEUE_BATCHES: usize = 4096;
/// Connections the Manager API accepts at once by default (`[manager] max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;

const SECOND: i64 = 1_000_000_000;

/// Merges the file and the command line (the command line wins) and checks every value.
/// Reads the token file, if one is named, and the TLS certificate and key.
pub fn resolve(file: FileConfig, o: Overrides) -> Result<SensorConfig, ConfigError> {
    let speed: Speed = o
        .speed
        .as_deref()
        .or(file.capture.speed.as_deref())
        .unwrap_or("1")
        .parse()
        .map_err(ConfigError::Invalid)?;
    let sensor_id = o.sensor_id.or(file.sensor.id);
    let mut pipeline = pipeline_config(&file, &o, sensor_id)?;
    let m = file.manager;
    if let Some(n) = m.max_listeners {
        pipeline.max_listeners = n;
    }
    if let Some(n) = m.max_listeners_per_call {
        pipeline.max_listeners_per_call = n;
    }
    let listen = listen_limits(&file.listen, &pipeline)?;
    let allow = if !o.allow.is_empty() {
        o.allow
    } else {
        m.allow.unwrap_or_else(ManagerConfig::loopback_only)
    };
    let tls = match (o.tls_cert.or(m.tls_cert), o.tls_key.or(m.tls_key)) {
        (Some(cert), Some(key)) => Some(earshot_tls::server_config(&cert, &key)?),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "TLS needs both a certificate and a key: set tls_cert and tls_key",
            ))
        }
    };
    let token = manager_token(
        [o.token, m.token],
        [o.token_file.as_deref(), m.token_file.as_deref()],
    )?;
    let manager = ManagerConfig {
        tls,
        listen: o.manager.or(m.listen).unwrap_or(DEFAULT_MANAGER),
        allow,
        token,
        max_connections: m.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
        sensor_id,
    };
    if manager.max_connections < 2 {
        return Err(invalid(format!(
            "[manager] max_connections must be at least 2, not {}",
            manager.max_connections
        )));
    }
    manager.check().map_err(ConfigError::Invalid)?;
    let c = file.capture;
    let live = live_configs(
        list(o.interface, c.interface),
        o.filter.or(c.filter),
        o.snaplen.or(c.snaplen),
        o.capture_buffer_mb.or(c.buffer_mb),
        c.promiscuous.unwrap_or(true),
    )?;
    let hep_policy = HepPolicy {
        allow: match (o.hep_allow.is_empty(), file.hep.allow) {
            (false, _) => o.hep_allow,
            (true, Some(allow)) => allow,
            (true, None) => HepPolicy::default().allow,
        },
        auth_key: server::normalise_token(o.hep_auth_key.or(file.hep.auth_key))
            .map(String::into_bytes),
    };
    let metrics = o
        .metrics
        .or(file.metrics.listen)
        .map(|m| metrics_addr(&m))
        .transpose()?;
    Ok(SensorConfig {
        listen,
        audit_log: o.audit_log.or(file.audit.file),
        metrics,
        // An empty token means none; `ScrapeToken` treats it so.
        metrics_token: o.metrics_token.or(file.metrics.token),
        live,
        hep: list(o.hep, c.hep),
        hep_policy,
        pcaps: if o.pcap.is_empty() { c.pcap } else { o.pcap },
        tls_keylogs: list(o.tls_keylog, c.tls_keylog),
        tls_keylog_socket: o.tls_keylog_socket.or(c.tls_keylog_socket),
        speed,
        repeat: o.repeat || c.repeat,
        queue_batches: c.queue_batches.unwrap_or(DEFAULT_QUEUE_BATCHES),
        pipeline,
        manager,
    })
}

/// The command line's list if it gives one, else the file's.
fn list<T>(flags: Vec<T>, file: Option<OneOrMany<T>>) -> Vec<T> {
    if flags.is_empty() {
        file.map(OneOrMany::into_vec).unwrap_or_default()
    } else {
        flags
    }
}

/// The engine's, decoders' and rewind's settings: `[calls]`, `[codecs]`, `[correlation]`.
fn pipeline_config(
    file: &FileConfig,
    o: &Overrides,
    sensor_id: Option<i64>,
) -> Result<PipelineConfig, ConfigError> {
    let mut pipeline = PipelineConfig {
        sensor_id,
        ..PipelineConfig::default()
    };
    let g726_order = match (o.g726_order, &file.codecs.g726_order) {
        (Some(order), _) => order,
        (None, Some(text)) => text
            .parse()
            .map_err(|e: String| invalid(format!("[codecs] g726_order: {e}")))?,
        (None, None) => G726Order::Auto,
    };
    pipeline.decoder = DecoderOptions { g726_order };
    let engine = &mut pipeline.engine;
    engine.rtp_only_calls = o.rtp_without_sip || file.calls.rtp_without_sip == Some(true);
    for spec in file.codecs.payload_types.iter().flatten() {
        let f = payload_format("[codecs] payload_types", spec)?;
        engine.rtp_only_formats.push(f);
    }
    for spec in &o.codecs {
        let f = payload_format("--codec", spec)?;
        engine.rtp_only_formats.retain(|k| k.pt != f.pt);
        engine.rtp_only_formats.push(f);
    }
    engine.correlation = correlation(&file.correlation, &o.correlation)?;
    let c = &file.calls;
    if let Some(s) = c.idle_timeout_s {
        engine.idle_timeout_ns = secs(s);
    }
    if let Some(s) = c.unanswered_timeout_s {
        engine.unanswered_timeout_ns = (s > 0).then(|| secs(s));
    }
    if let Some(s) = c.linger_s {
        engine.linger_ns = secs(s);
    }
    if let Some(n) = c.max_calls {
        engine.max_calls = n;
    }
    if let Some(s) = c.hep_max_clock_skew_s {
        engine.hep_max_skew_ns = Some(secs(s));
    }
    if let Some(n) = c.sip_log_messages {
        engine.sip_log_messages = n;
    }
    if let Some(kb) = c.sip_log_call_kb {
        engine.sip_log_call_bytes = kb.saturating_mul(1 << 10);
    }
    if let Some(mb) = c.sip_log_mb {
        engine.sip_log_total_bytes = mb.saturating_mul(1 << 20);
    }
    if let Some(s) = c.rewind_s {
        pipeline.rewind_ns = secs(s);
    }
    if let Some(mb) = c.rewind_budget_mb {
        pipeline.rewind_budget_bytes = mb.saturating_mul(1 << 20);
    }
    if let Some(mb) = c.rewind_call_mb {
        pipeline.rewind_call_bytes = mb.saturating_mul(1 << 20);
    }
    Ok(pipeline)
}

/// One capture per interface, all with the same filter, snaplen and ring size.
fn live_configs(
    interfaces: Vec<String>,
    filter: Option<String>,
    snaplen: Option<u32>,
    buffer_mb: Option<u32>,
    promiscuous: bool,
) -> Result<Vec<LiveConfig>, ConfigError> {
    let filter = filter.filter(|f| !f.trim().is_empty());
    let buffer_mb = buffer_mb.unwrap_or(LiveConfig::DEFAULT_BUFFER_MB);
    // The kernel takes the ring size as a signed 32-bit byte count.
    if buffer_mb == 0 || buffer_mb > 2047 {
        return Err(invalid(format!(
            "--capture-buffer-mb ([capture] buffer_mb) must be between 1 and 2047 (MiB), \
             not {buffer_mb}"
        )));
    }
    let snaplen = snaplen.unwrap_or(LiveConfig::DEFAULT_SNAPLEN);
    if !(64..=262_144).contains(&snaplen) {
        return Err(invalid(format!(
            "--snaplen ([capture] snaplen) must be between 64 and 262144 bytes, not {snaplen}"
        )));
    }
    Ok(interfaces
        .into_iter()
        .map(|interface| LiveConfig {
            filter: filter.clone(),
            snaplen,
            buffer_bytes: buffer_mb << 20,
            promiscuous,
            ..LiveConfig::new(interface)
        })
        .collect())
}

/// The listener limits: totals from [manager], the rest from [listen].
fn listen_limits(
    l: &ListenSection,
    pipeline: &PipelineConfig,
) -> Result<ListenLimits, ConfigError> {
    let d = ListenLimits::default();
    let limits = ListenLimits {
        max_listeners: pipeline.max_listeners,
        max_per_call: pipeline.max_listeners_per_call,
        max_per_client_per_call: l
            .max_per_client_per_call
            .unwrap_or(d.max_per_client_per_call),
        queue_bytes: l
            .queue_kb
            .map_or(d.queue_bytes, |kb| kb.saturating_mul(1024)),
        memory_bytes: l
            .memory_mb
            .map_or(d.memory_bytes, |mb| mb.saturating_mul(1 << 20)),
    };
    if limits.queue_bytes < 64 * 1024 {
        return Err(invalid(
            "[listen] queue_kb must be at least 64 (one second of 48 kHz stereo is 188 KiB)",
        ));
    }
    if limits.memory_bytes < limits.queue_bytes {
        return Err(invalid(
            "[listen] memory_mb must hold at least one listener's queue_kb",
        ));
    }
    Ok(limits)
}

/// The Manager API token: the first given of the command line's (or EARSHOT_TOKEN's) and the
/// file's, each a token or a token file; trimmed, empty meaning none.
fn manager_token(
    tokens: [Option<String>; 2],
    files: [Option<&Path>; 2],
) -> Result<Option<String>, ConfigError> {
    let [cli, file] = tokens;
    let [cli_file, file_file] = files;
    let from_file = |path: &Path| -> Result<Option<String>, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::TokenFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let token = server::normalise_token(text.lines().next().map(str::to_string));
        if token.is_none() {
            return Err(invalid(format!(
                "the token file {} is empty: write the token on its first line",
                path.display()
            )));
        }
        Ok(token)
    };
    if let Some(t) = cli {
        return Ok(server::normalise_token(Some(t)));
    }
    if let Some(path) = cli_file {
        return from_file(path);
    }
    if let Some(t) = file {
        return Ok(server::normalise_token(Some(t)));
    }
    file_file.map(from_file).transpose().map(Option::flatten)
}

/// `ADDR:PORT`, or a bare port on loopback: metrics are only counts, but exposing them beyond
/// the host should be a decision, not a default.
pub fn metrics_addr(text: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(port) = text.trim().parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.trim().parse().map_err(|_| {
        invalid(format!(
            "metrics address {text:?}: expected ADDR:PORT (e.g. 127.0.0.1:9105) or a port"
        ))
    })
}

/// The engine's correlation settings from the file's section and the command line.
pub fn correlation(
    file: &CorrelationSection,
    o: &CorrelationOverrides,
) -> Result<Correlation, ConfigError> {
    let mut c = Correlation {
        enabled: file.enabled.unwrap_or(true) && !o.no_correlation,
        headers: file.headers.clone().unwrap_or_default(),
        ..Correlation::default()
    };
    c.headers.extend(o.headers.iter().cloned());
    c.secret = o
        .secret
        .as_ref()
        .or(file.header_secret.as_ref())
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec());
    if let Some(n) = file.max_keys {
        c.max_keys = n;
    }
    let regex = match (&o.regex, &file.regex_header, &file.regex) {
        (Some(spec), _, _) => {
            let (h, re) = spec.split_once(':').ok_or_else(|| {
                invalid(format!("--correlate-regex {spec:?}: expected HEADER:REGEX"))
            })?;
            Some((h.trim().to_owned(), re.to_owned()))
        }
        (None, Some(h), Some(re)) => Some((h.clone(), re.clone())),
        (None, None, None) => None,
        (None, _, _) => return Err(invalid("[correlation] regex_header and regex go together")),
    };
    if let Some((h, re)) = regex {
        c.regex = Some(Correlation::header_regex(&h, &re)?);
    }
    c.validate()?;
    Ok(c)
}

/// `PT=NAME/RATE[/CHANNELS]`: a payload type named by hand, in the rtpmap syntax with `=` after
/// the payload type, for streams no SDP on the wire describes (`extract --codec`, the sensor's
/// `--codec` and `[codecs] payload_types`). `option` names where it came from in the error.
pub fn payload_format(option: &str, spec: &str) -> Result<PayloadFormat, ConfigError> {
    let usage = || {
        invalid(format!(
            "{option} {spec}: expected PT=NAME/RATE[/CHANNELS] as in an SDP rtpmap, e.g. 99=opus/48000/2 or 96=L16/16000"
        ))
    };
    let (pt, map) = spec.split_once('=').ok_or_else(usage)?;
    let pt: u8 = pt.trim().parse().map_err(|_| usage())?;
    if pt > 127 {
        return Err(usage());
    }
    let mut parts = map.split('/');
    let name = parts
        .next()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(usage)?;
    let rate: u32 = parts
        .next()
        .and_then(|r| r.trim().parse().ok())
        .filter(|&r| r > 0)
        .ok_or_else(usage)?;
    let channels: u8 = match parts.next() {
        Some(c) => c.trim().parse().ok().filter(|&c| c > 0).ok_or_else(usage)?,
        None => 0,
    };
    if parts.next().is_some() {
        return Err(usage());
    }
    Ok(PayloadFormat {
        pt,
        encoding: name.to_owned(),
        clock_rate: rate,
        channels,
        encrypted: false,
        fmtp: None,
    })
}

/// Seconds from the file as engine nanoseconds, saturating rather than wrapping.
fn secs(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX / SECOND)
        .saturating_mul(SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).expect("valid TOML of the sensor's keys")
    }

    /// The message of the error `resolve` gives (`SensorConfig` is not `Debug`: it holds a
    /// TLS configuration with keys).
    fn error(f: FileConfig, o: Overrides) -> String {
        match resolve(f, o) {
            Ok(_) => panic!("accepted a configuration that should fail"),
            Err(e) => e.to_string(),
        }
    }

    fn resolved(f: FileConfig, o: Overrides) -> SensorConfig {
        resolve(f, o).unwrap_or_else(|e| panic!("refused: {e}"))
    }

    fn scratch(name: &str, content: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("earshot-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write");
        path
    }

    #[test]
    fn nothing_given_means_the_documented_defaults() {
        let c = resolved(FileConfig::default(), Overrides::default());
        assert_eq!(c.manager.listen, DEFAULT_MANAGER);
        assert_eq!(c.manager.allow, ManagerConfig::loopback_only());
        assert_eq!(c.manager.token, None);
        assert_eq!(c.manager.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(c.queue_batches, DEFAULT_QUEUE_BATCHES);
        assert_eq!(c.speed, Speed::Times(1.0));
        assert!(c.has_no_source());
        assert!(c.manager.tls.is_none());
        assert_eq!(c.metrics, None);
    }

    #[test]
    fn the_file_alone() {
        let c = resolved(
            file(
                r#"
                [sensor]
                id = 7
                [capture]
                interface = "eth0"
                filter = "udp"
                snaplen = 9216
                buffer_mb = 8
                promiscuous = false
                hep = ["127.0.0.1:9060", "127.0.0.1:9061"]
                pcap = ["a.pcap"]
                speed = "max"
                loop = true
                tls_keylog = "/tmp/keys.log"
                queue_batches = 16
                [calls]
                idle_timeout_s = 5
                unanswered_timeout_s = 0
                max_calls = 10
                [manager]
                listen = "0.0.0.0:15029"
                token = "  s3cret  "
                allow = ["10.0.0.0/8"]
                max_connections = 100
                [metrics]
                listen = "9105"
                [hep]
                auth_key = "k"
                [codecs]
                g726_order = "aal2"
                payload_types = ["111=opus/48000/2"]
                "#,
            ),
            Overrides::default(),
        );
        assert_eq!(c.manager.sensor_id, Some(7));
        assert_eq!(c.pipeline.sensor_id, Some(7));
        assert_eq!(c.live.len(), 1);
        let live = &c.live[0];
        assert_eq!(live.interface, "eth0");
        assert_eq!(live.filter.as_deref(), Some("udp"));
        assert_eq!((live.snaplen, live.buffer_bytes), (9216, 8 << 20));
        assert!(!live.promiscuous);
        assert_eq!(c.hep.len(), 2);
        assert_eq!(c.pcaps, [PathBuf::from("a.pcap")]);
        assert_eq!(c.speed, Speed::Max);
        assert!(c.repeat);
        assert_eq!(c.tls_keylogs, [PathBuf::from("/tmp/keys.log")]);
        assert_eq!(c.queue_batches, 16);
        assert_eq!(c.pipeline.engine.idle_timeout_ns, 5 * SECOND);
        assert_eq!(c.pipeline.engine.unanswered_timeout_ns, None);
        assert_eq!(c.pipeline.engine.max_calls, 10);
        assert_eq!(c.manager.listen, "0.0.0.0:15029".parse().expect("addr"));
        assert_eq!(
            c.manager.token.as_deref(),
            Some("s3cret"),
            "tokens are trimmed"
        );
        assert_eq!(
            c.manager.allow,
            ["10.0.0.0/8".parse::<IpNet>().expect("net")]
        );
        assert_eq!(c.manager.max_connections, 100);
        assert_eq!(c.metrics, Some("127.0.0.1:9105".parse().expect("addr")));
        assert_eq!(c.hep_policy.auth_key.as_deref(), Some(&b"k"[..]));
        assert_eq!(c.pipeline.decoder.g726_order, G726Order::Aal2);
        assert_eq!(c.pipeline.engine.rtp_only_formats.len(), 1);
        assert!(!c.has_no_source());
    }

    #[test]
    fn flags_override_the_file_and_lists_replace_it() {
        let f = file(
            r#"
            [sensor]
            id = 1
            [capture]
            interface = ["eth0", "eth1"]
            snaplen = 2000
            speed = "2"
            [manager]
            listen = "127.0.0.1:15029"
            token = "from-file"
            [codecs]
            payload_types = ["96=AMR/8000", "97=L16/16000"]
            [correlation]
            headers = ["X-Orig"]
            "#,
        );
        let o = Overrides {
            interface: vec!["lo".into()],
            snaplen: Some(65535),
            speed: Some("max".into()),
            manager: Some("127.0.0.1:0".parse().expect("addr")),
            sensor_id: Some(2),
            token: Some("from-flag".into()),
            codecs: vec!["96=AMR-WB/16000".into()],
            correlation: CorrelationOverrides {
                headers: vec!["X-Other".into()],
                ..CorrelationOverrides::default()
            },
            ..Overrides::default()
        };
        let c = resolved(f, o);
        let interfaces: Vec<_> = c.live.iter().map(|l| l.interface.as_str()).collect();
        assert_eq!(interfaces, ["lo"], "a flag's list replaces the file's");
        assert_eq!(c.live[0].snaplen, 65535);
        assert_eq!(c.speed, Speed::Max);
        assert_eq!(c.manager.listen.port(), 0);
        assert_eq!(c.manager.sensor_id, Some(2));
        assert_eq!(c.manager.token.as_deref(), Some("from-flag"));
        // --codec adds to the file's payload types; its payload type replaces the file's.
        let formats: Vec<_> = c
            .pipeline
            .engine
            .rtp_only_formats
            .iter()
            .map(|f| (f.pt, f.encoding.as_str()))
            .collect();
        assert_eq!(formats, [(97, "L16"), (96, "AMR-WB")]);
        assert_eq!(c.pipeline.engine.correlation.headers, ["X-Orig", "X-Other"]);
    }

    #[test]
    fn the_token_comes_from_the_first_given_of_flag_flag_file_file_token_file() {
        let path = scratch("token", "  from-token-file  \nsecond line\n");
        let f = || {
            file(&format!(
                "[manager]\ntoken_file = {:?}",
                path.display().to_string()
            ))
        };
        let c = resolved(f(), Overrides::default());
        assert_eq!(c.manager.token.as_deref(), Some("from-token-file"));
        let o = Overrides {
            token: Some("flag".into()),
            ..Overrides::default()
        };
        assert_eq!(resolved(f(), o).manager.token.as_deref(), Some("flag"));
        let empty = scratch("empty-token", "\n");
        let o = Overrides {
            token_file: Some(empty.clone()),
            ..Overrides::default()
        };
        let e = error(FileConfig::default(), o);
        assert!(
            e.contains("is empty: write the token on its first line"),
            "{e}"
        );
        let o = Overrides {
            token_file: Some(PathBuf::from("/nonexistent/earshot-token")),
            ..Overrides::default()
        };
        let e = error(FileConfig::default(), o);
        assert!(
            e.starts_with("cannot read the token file /nonexistent/earshot-token"),
            "{e}"
        );
    }

    #[test]
    fn each_invalid_value_is_refused_with_what_to_do() {
        let cases: &[(&str, &str)] = &[
            (
                "[manager]\nmax_connections = 1",
                "[manager] max_connections must be at least 2, not 1",
            ),
            ("[manager]\nlisten = \"0.0.0.0:5029\"", "without a token"),
            (
                "[manager]\ntls_cert = \"c.pem\"",
                "TLS needs both a certificate and a key",
            ),
            (
                "[capture]\nbuffer_mb = 0",
                "must be between 1 and 2047 (MiB), not 0",
            ),
            (
                "[capture]\nbuffer_mb = 4096",
                "must be between 1 and 2047 (MiB), not 4096",
            ),
            (
                "[capture]\nsnaplen = 10",
                "must be between 64 and 262144 bytes, not 10",
            ),
            ("[capture]\nspeed = \"fast\"", "fast"),
            (
                "[listen]\nqueue_kb = 8",
                "[listen] queue_kb must be at least 64",
            ),
            (
                "[listen]\nqueue_kb = 4096\nmemory_mb = 1",
                "[listen] memory_mb must hold",
            ),
            (
                "[metrics]\nlisten = \"nowhere\"",
                "expected ADDR:PORT (e.g. 127.0.0.1:9105) or a port",
            ),
            (
                "[codecs]\ng726_order = \"sideways\"",
                "[codecs] g726_order: ",
            ),
            (
                "[codecs]\npayload_types = [\"96\"]",
                "[codecs] payload_types 96: expected PT=NAME/RATE",
            ),
            (
                "[correlation]\nregex = \"x\"",
                "[correlation] regex_header and regex go together",
            ),
        ];
        for (text, expected) in cases {
            let e = error(file(text), Overrides::default());
            assert!(e.contains(expected), "{text:?}: {e:?} lacks {expected:?}");
        }
        let o = Overrides {
            correlation: CorrelationOverrides {
                regex: Some("no-colon".into()),
                ..CorrelationOverrides::default()
            },
            ..Overrides::default()
        };
        let e = error(FileConfig::default(), o);
        assert!(e.contains("expected HEADER:REGEX"), "{e}");
        let o = Overrides {
            tls_key: Some("k.pem".into()),
            ..Overrides::default()
        };
        let e = error(FileConfig::default(), o);
        assert!(e.contains("set tls_cert and tls_key"), "{e}");
    }

    #[test]
    fn a_token_makes_an_api_beyond_loopback_acceptable() {
        let o = Overrides {
            manager: Some("0.0.0.0:0".parse().expect("addr")),
            token: Some("t".into()),
            ..Overrides::default()
        };
        assert!(resolve(FileConfig::default(), o).is_ok());
        let blank = Overrides {
            manager: Some("0.0.0.0:0".parse().expect("addr")),
            token: Some("   ".into()),
            ..Overrides::default()
        };
        let e = error(FileConfig::default(), blank);
        assert!(e.contains("without a token"), "a blank token is none: {e}");
    }

    #[test]
    fn unknown_keys_and_unreadable_files_name_the_file() {
        let path = scratch("typo.toml", "[manager]\ntokn = \"x\"\n");
        let e = FileConfig::load(&path).map(|_| ()).unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert!(e.contains("unknown field `tokn`"), "{e}");
        let missing = Path::new("/nonexistent/sensor.toml");
        let e = FileConfig::load(missing)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read /nonexistent/sensor.toml: "),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_file_resolves() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/sensor.toml");
        let f = FileConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let c = resolved(f, Overrides::default());
        assert_eq!(c.manager.listen, DEFAULT_MANAGER);
    }

    #[test]
    fn payload_types_as_in_an_rtpmap() {
        let f = payload_format("--codec", "99=opus/48000/2").expect("valid");
        assert_eq!(
            (f.pt, f.encoding.as_str(), f.clock_rate, f.channels),
            (99, "opus", 48000, 2)
        );
        let l16 = payload_format("--codec", "96=L16/16000").expect("valid");
        assert_eq!(l16.channels, 0);
        for bad in [
            "",
            "96",
            "96=",
            "96=/8000",
            "96=AMR",
            "96=AMR/0",
            "200=AMR/8000",
            "96=AMR/8000/1/2",
        ] {
            let e = payload_format("--codec", bad)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(e.contains("PT=NAME/RATE"), "{bad}: {e}");
        }
    }
}
