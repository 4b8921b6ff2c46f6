//! `earshot sensor`: capture, track calls, and serve the Manager API.

use anyhow::{bail, Context, Result};
use earshot_audio::{DecoderOptions, G726Order};
use earshot_sensor::admission::ListenLimits;
use earshot_sensor::audit::AuditLog;
use earshot_sensor::hep::HepListener;
use earshot_sensor::hep_policy::HepPolicy;
use earshot_sensor::live::{self, LiveConfig};
use earshot_sensor::metrics::ScrapeToken;
use earshot_sensor::pipeline::{self, PipelineConfig};
use earshot_sensor::replay::{self, ReplayConfig, Speed};
use earshot_sensor::server::{self, ManagerConfig};
use earshot_sensor::{Control, FrameSender, SensorCounters, Shared, StopFlag};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Watch SIP and RTP, track calls, and answer on the Manager API (TCP, default 127.0.0.1:5029).
///
/// Sources, any number of each, all at once:
///   --interface IF  live capture through libpcap (loaded at run time: needs the libpcap
///                   runtime, e.g. `apt-get install libpcap0.8`, and CAP_NET_RAW: run as root
///                   or `setcap cap_net_raw+ep $(which earshot)`); --filter applies a BPF
///                   filter (tcpdump syntax) to every interface
///   --hep ADDR      HEP v1/v2/v3 over UDP from heplify, Kamailio, OpenSIPS, FreeSWITCH...
///                   (from loopback only unless --hep-allow lists the agents' addresses)
///   --pcap FILE     a capture file replayed as if live (at --speed, optionally --loop)
/// SIP over TLS is read with the secrets its endpoints log (--tls-keylog FILE, the
/// SSLKEYLOGFILE format): the file is followed as it grows, and connections seen before their
/// secrets were written are read once they are.
/// Every setting can come from a TOML file (--config; see dist/sensor.toml for every key,
/// commented); command-line options override it.
///
/// Examples:
///   earshot sensor --interface eth0 --filter 'udp or tcp port 5060'
///   earshot sensor --interface eth1 --interface eth2 --hep 0.0.0.0:9060 --hep-allow 10.0.0.0/24
///   earshot sensor --pcap call.pcap --loop
///   earshot sensor --pcap call.pcap --speed max --manager 127.0.0.1:15029
///   earshot sensor --interface eth0 --tls-keylog /var/log/pbx/sslkeys.log
///   echo listcalls | nc 127.0.0.1 5029
#[derive(clap::Args, Debug, Default, Clone)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Network interface to capture on, e.g. eth0, or any (repeatable).
    #[arg(long, value_name = "IF")]
    interface: Vec<String>,
    /// BPF capture filter for the interfaces (tcpdump syntax; default: all traffic).
    #[arg(long, value_name = "BPF")]
    filter: Option<String>,
    /// Bytes kept of each captured packet (default 1600: RTP and SIP over UDP, with VLAN tags
    /// and tunnel headers). SIP over TCP whose segments are larger, and jumbo frames, need
    /// more: 9216 for jumbo frames, 65535 to keep everything. [capture] snaplen.
    #[arg(long, value_name = "BYTES")]
    snaplen: Option<u32>,
    /// Kernel capture ring per interface, in MiB (default 64: about 220,000 VoIP packets, a
    /// few seconds at carrier rates). [capture] buffer_mb.
    #[arg(long = "capture-buffer-mb", value_name = "MIB")]
    capture_buffer_mb: Option<u32>,
    /// UDP address to receive HEP on, e.g. 0.0.0.0:9060 (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    hep: Vec<SocketAddr>,
    /// Source range allowed to send HEP (repeatable; default: loopback only).
    #[arg(long, value_name = "CIDR")]
    hep_allow: Vec<IpNet>,
    /// Accept only HEP3 datagrams carrying this auth key (chunk 14; HEP v1/v2 have none).
    #[arg(
        long,
        value_name = "KEY",
        env = "EARSHOT_HEP_AUTH_KEY",
        hide_env_values = true
    )]
    hep_auth_key: Option<String>,
    /// Capture file to replay as live traffic (repeatable).
    #[arg(long, value_name = "FILE")]
    pcap: Vec<PathBuf>,
    /// Replay pace: 1 = as captured, 2 = twice as fast, max = as fast as possible.
    #[arg(long, value_name = "FACTOR|max")]
    speed: Option<String>,
    /// Start the capture files again when they end, forever.
    #[arg(long = "loop")]
    repeat: bool,
    /// A TLS key log (the SSLKEYLOGFILE format an SBC, a PBX, OpenSSL or Python's ssl writes)
    /// with the secrets of SIP-over-TLS connections, followed as it grows (polled every
    /// 200 ms; waited for if it does not exist yet; read again from the start if it shrinks).
    /// Repeatable. [capture] tls_keylog.
    #[arg(long = "tls-keylog", value_name = "FILE")]
    tls_keylog: Vec<PathBuf>,
    /// A Unix socket key log writers connect to instead of sharing a file (a PBX's or SBC's
    /// key log callback, or `socat - UNIX-CONNECT:PATH`): each sends SSLKEYLOGFILE lines.
    /// Only the sensor's user may connect (mode 0600); at most 16 writers at once; a socket
    /// left at PATH by an earlier sensor is replaced. [capture] tls_keylog_socket.
    #[arg(long = "tls-keylog-socket", value_name = "PATH")]
    tls_keylog_socket: Option<PathBuf>,
    /// Where the Manager API listens.
    #[arg(long, value_name = "ADDR:PORT")]
    manager: Option<SocketAddr>,
    /// Sensor id reported in listcalls (id_sensor) and everywhere a sensor id appears.
    #[arg(long, value_name = "N")]
    sensor_id: Option<i64>,
    /// Shared secret clients must send as a first line `auth <token>` (surrounding whitespace
    /// is not part of it). Prefer EARSHOT_TOKEN or --token-file: a command line is visible in ps.
    #[arg(long, value_name = "T", env = "EARSHOT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the token (its first line; re-read on SIGHUP). --token wins over it.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Source range allowed to use the Manager API (repeatable; default: loopback only).
    #[arg(long, value_name = "CIDR")]
    allow: Vec<IpNet>,
    /// Serve the Manager API over TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP at /metrics on this address (a bare PORT means
    /// 127.0.0.1:PORT). Off unless given. See docs/metrics.md.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<String>,
    /// Bearer token /metrics requires (`Authorization: Bearer T`), from any address; without
    /// one, /metrics answers loopback clients only.
    #[arg(
        long,
        value_name = "T",
        env = "EARSHOT_METRICS_TOKEN",
        hide_env_values = true
    )]
    metrics_token: Option<String>,
    /// Append a JSON line to FILE for every listener of the Manager API (who, from where,
    /// which call, start, stop, bytes) and every refused one. See docs/security.md.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Bit order of G.726 sent under its RFC 3551 name (G726-32...): auto (detected per stream
    /// at 16, 24 and 40 kbit/s; 32 kbit/s keeps the named order), rfc3551, or aal2 (devices
    /// that pack it like AAL2-G726, e.g. baresip). Default: [codecs] g726_order, else auto.
    #[arg(long, value_name = "ORDER")]
    g726_order: Option<G726Order>,
    /// Make a call of every RTP stream no SIP describes (signalling on another interface,
    /// SIP over TLS, a mirror of media ports only), so it is listed and can be heard. Its
    /// callid starts with "rtp-only "; it ends 10 s after its last packet. Default:
    /// [calls] rtp_without_sip, else off (VoIPmonitor lists SIP calls only).
    #[arg(long)]
    rtp_without_sip: bool,
    /// What a dynamic payload type carries in streams without SIP, as in an SDP rtpmap:
    /// PT=NAME/RATE[/CHANNELS], e.g. 111=opus/48000/2 (repeatable; with [codecs]
    /// payload_types). Static types (0 PCMU, 8 PCMA, 9 G722, 18 G729...) need none.
    #[arg(long = "codec", value_name = "PT=NAME/RATE[/CH]")]
    codecs: Vec<String>,
    #[command(flatten)]
    correlation: crate::correlate::CorrelationArgs,
}

impl Args {
    /// The settings of a configuration file alone, without command-line options.
    pub fn with_config(path: &std::path::Path) -> Args {
        Args {
            config: Some(path.to_path_buf()),
            ..Args::default()
        }
    }
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
    pub correlation: crate::correlate::CorrelationSection,
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

/// `ADDR:PORT`, or a bare port on loopback: metrics are only counts, but exposing them beyond
/// the host should be a decision, not a default.
pub fn metrics_addr(text: &str) -> Result<SocketAddr> {
    if let Ok(port) = text.trim().parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "metrics address {text:?}: expected ADDR:PORT (e.g. 127.0.0.1:9105) or a port"
        )
    })
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

pub fn load_config(path: &std::path::Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Everything the sensor needs, after merging the file and the command line.
pub struct Settings {
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
    pub queue_batches: usize,
    pub pipeline: PipelineConfig,
    pub manager: ManagerConfig,
    pub metrics: Option<SocketAddr>,
    pub metrics_token: Option<String>,
    pub listen: ListenLimits,
    pub audit_log: Option<PathBuf>,
}

const SECOND: i64 = 1_000_000_000;

pub fn settings(args: Args) -> Result<Settings> {
    let file = match &args.config {
        Some(p) => load_config(p)?,
        None => FileConfig::default(),
    };
    let speed_text = args
        .speed
        .or(file.capture.speed)
        .unwrap_or_else(|| "1".into());
    let speed: Speed = speed_text.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let sensor_id = args.sensor_id.or(file.sensor.id);
    let mut pipeline = PipelineConfig {
        sensor_id,
        ..PipelineConfig::default()
    };
    let g726_order = match (args.g726_order, &file.codecs.g726_order) {
        (Some(o), _) => o,
        (None, Some(text)) => text
            .parse()
            .map_err(|e: String| anyhow::anyhow!("[codecs] g726_order: {e}"))?,
        (None, None) => G726Order::Auto,
    };
    pipeline.decoder = DecoderOptions { g726_order };
    pipeline.engine.rtp_only_calls =
        args.rtp_without_sip || file.calls.rtp_without_sip == Some(true);
    let from_file = file.codecs.payload_types.iter().flatten();
    for spec in from_file {
        let f = crate::codec_spec::parse("[codecs] payload_types", spec)?;
        pipeline.engine.rtp_only_formats.push(f);
    }
    for spec in &args.codecs {
        let f = crate::codec_spec::parse("--codec", spec)?;
        pipeline.engine.rtp_only_formats.retain(|k| k.pt != f.pt);
        pipeline.engine.rtp_only_formats.push(f);
    }
    pipeline.engine.correlation = crate::correlate::build(&file.correlation, &args.correlation)?;
    let c = &file.calls;
    if let Some(s) = c.idle_timeout_s {
        pipeline.engine.idle_timeout_ns = secs(s);
    }
    if let Some(s) = c.unanswered_timeout_s {
        pipeline.engine.unanswered_timeout_ns = (s > 0).then(|| secs(s));
    }
    if let Some(s) = c.linger_s {
        pipeline.engine.linger_ns = secs(s);
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
    if let Some(n) = c.max_calls {
        pipeline.engine.max_calls = n;
    }
    if let Some(s) = c.hep_max_clock_skew_s {
        pipeline.engine.hep_max_skew_ns = Some(secs(s));
    }
    if let Some(n) = c.sip_log_messages {
        pipeline.engine.sip_log_messages = n;
    }
    if let Some(kb) = c.sip_log_call_kb {
        pipeline.engine.sip_log_call_bytes = kb.saturating_mul(1 << 10);
    }
    if let Some(mb) = c.sip_log_mb {
        pipeline.engine.sip_log_total_bytes = mb.saturating_mul(1 << 20);
    }
    let m = file.manager;
    if let Some(n) = m.max_listeners {
        pipeline.max_listeners = n;
    }
    if let Some(n) = m.max_listeners_per_call {
        pipeline.max_listeners_per_call = n;
    }
    let listen = listen_limits(&file.listen, &pipeline)?;
    let allow = if !args.allow.is_empty() {
        args.allow
    } else {
        m.allow.unwrap_or_else(ManagerConfig::loopback_only)
    };
    let tls = match (args.tls_cert.or(m.tls_cert), args.tls_key.or(m.tls_key)) {
        (Some(cert), Some(key)) => Some(earshot_tls::server_config(&cert, &key)?),
        (None, None) => None,
        _ => bail!("TLS needs both a certificate and a key: set tls_cert and tls_key"),
    };
    let token = manager_token(
        [args.token, m.token],
        [args.token_file.as_deref(), m.token_file.as_deref()],
    )?;
    let manager = ManagerConfig {
        tls,
        listen: args
            .manager
            .or(m.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5029))),
        allow,
        token,
        max_connections: m.max_connections.unwrap_or(2048),
        sensor_id,
    };
    if manager.max_connections < 2 {
        bail!(
            "[manager] max_connections must be at least 2, not {}",
            manager.max_connections
        );
    }
    manager.check().map_err(anyhow::Error::msg)?;
    // A list given on the command line replaces the file's list rather than adding to it, as
    // for --pcap: the command line is what the operator means right now.
    let interfaces = if args.interface.is_empty() {
        file.capture
            .interface
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
    } else {
        args.interface
    };
    let filter = args
        .filter
        .or(file.capture.filter)
        .filter(|f| !f.trim().is_empty());
    let buffer_mb = args
        .capture_buffer_mb
        .or(file.capture.buffer_mb)
        .unwrap_or(LiveConfig::DEFAULT_BUFFER_MB);
    if buffer_mb == 0 || buffer_mb > 2047 {
        bail!(
            "--capture-buffer-mb ([capture] buffer_mb) must be between 1 and 2047 (MiB), \
             not {buffer_mb}"
        );
    }
    let promiscuous = file.capture.promiscuous.unwrap_or(true);
    let snaplen = args
        .snaplen
        .or(file.capture.snaplen)
        .unwrap_or(LiveConfig::DEFAULT_SNAPLEN);
    if !(64..=262_144).contains(&snaplen) {
        bail!("--snaplen ([capture] snaplen) must be between 64 and 262144 bytes, not {snaplen}");
    }
    let live = interfaces
        .into_iter()
        .map(|interface| LiveConfig {
            filter: filter.clone(),
            snaplen,
            buffer_bytes: buffer_mb << 20,
            promiscuous,
            ..LiveConfig::new(interface)
        })
        .collect();
    let hep = if args.hep.is_empty() {
        file.capture
            .hep
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
    } else {
        args.hep
    };
    let hep_policy = HepPolicy {
        allow: if args.hep_allow.is_empty() {
            file.hep.allow.unwrap_or_else(|| HepPolicy::default().allow)
        } else {
            args.hep_allow
        },
        auth_key: server::normalise_token(args.hep_auth_key.or(file.hep.auth_key))
            .map(String::into_bytes),
    };
    let mut pcaps = args.pcap;
    if pcaps.is_empty() {
        pcaps = file.capture.pcap;
    }
    let tls_keylogs = if args.tls_keylog.is_empty() {
        file.capture
            .tls_keylog
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
    } else {
        args.tls_keylog
    };
    let metrics = args
        .metrics
        .or(file.metrics.listen)
        .map(|m| metrics_addr(&m))
        .transpose()?;
    // An empty token means none; `ScrapeToken` treats it so.
    let metrics_token = args.metrics_token.or(file.metrics.token);
    Ok(Settings {
        listen,
        audit_log: args.audit_log.or(file.audit.file),
        metrics,
        metrics_token,
        live,
        hep,
        hep_policy,
        pcaps,
        tls_keylogs,
        tls_keylog_socket: args.tls_keylog_socket.or(file.capture.tls_keylog_socket),
        speed,
        repeat: args.repeat || file.capture.repeat,
        queue_batches: file.capture.queue_batches.unwrap_or(4096),
        pipeline,
        manager,
    })
}

/// The listener limits: totals from [manager], the rest from [listen].
fn listen_limits(l: &ListenSection, pipeline: &PipelineConfig) -> Result<ListenLimits> {
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
        bail!("[listen] queue_kb must be at least 64 (one second of 48 kHz stereo is 188 KiB)");
    }
    if limits.memory_bytes < limits.queue_bytes {
        bail!("[listen] memory_mb must hold at least one listener's queue_kb");
    }
    Ok(limits)
}

/// The Manager API token: the first given of the command line's (or EARSHOT_TOKEN's) and the
/// file's, each a token or a token file; trimmed, empty meaning none.
fn manager_token(
    tokens: [Option<String>; 2],
    files: [Option<&std::path::Path>; 2],
) -> Result<Option<String>> {
    let [cli, file] = tokens;
    let [cli_file, file_file] = files;
    let from_file = |path: &std::path::Path| -> Result<Option<String>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?;
        let first = text.lines().next().map(str::to_string);
        let token = server::normalise_token(first);
        if token.is_none() {
            bail!(
                "the token file {} is empty: write the token on its first line",
                path.display()
            );
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

fn secs(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX / SECOND)
        .saturating_mul(SECOND)
}

pub fn run(args: Args) -> Result<()> {
    let settings = settings(args.clone())?;
    if settings.pcaps.is_empty() && settings.live.is_empty() && settings.hep.is_empty() {
        bail!(
            "no capture source: give --interface IF, --hep ADDR:PORT or --pcap FILE \
             (or [capture] interface, hep or pcap in the configuration file)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("earshot-manager")
        .build()?;
    runtime.block_on(serve(settings, args))
}

async fn serve(settings: Settings, args: Args) -> Result<()> {
    let counters = Arc::new(SensorCounters::default());
    let audit = match &settings.audit_log {
        Some(path) => AuditLog::open(path, counters.clone())?,
        None => AuditLog::disabled(),
    };
    let shared = Shared::with(counters.clone(), settings.listen, audit);
    let (frame_tx, frame_rx) = crossbeam_channel::bounded(settings.queue_batches);
    let (control_tx, control_rx) = crossbeam_channel::bounded(1024);
    let pipeline = pipeline::spawn(
        settings.pipeline.clone(),
        frame_rx,
        control_rx,
        shared.clone(),
    )?;
    let stop = StopFlag::default();
    let keylog_socket = settings
        .tls_keylog_socket
        .as_deref()
        .map(|p| {
            earshot_sensor::keylog_watch::KeyLogSocket::bind(p).with_context(|| {
                format!(
                    "cannot listen for key log writers at {} (--tls-keylog-socket): check that its directory exists and the sensor may write there",
                    p.display()
                )
            })
        })
        .transpose()?;
    if !settings.tls_keylogs.is_empty() || keylog_socket.is_some() {
        earshot_sensor::keylog_watch::spawn(
            settings.tls_keylogs.clone(),
            keylog_socket,
            control_tx.clone(),
            stop.clone(),
        )?;
    }
    let sender = FrameSender::new(frame_tx, counters.clone());
    let mut sources = Vec::new();
    // Interfaces and HEP sockets are opened before anything else starts, so a missing
    // permission, interface, filter error or busy port stops the sensor with a clear message.
    // (All interfaces open before any capture thread starts.)
    // (It logs each interface's ring as the kernel set it up.)
    sources.extend(live::spawn_all(&settings.live, &sender, &stop)?);
    let mut heps = Vec::new();
    for addr in &settings.hep {
        heps.push(HepListener::bind(*addr)?.with_policy(settings.hep_policy.clone()));
    }
    for listener in heps {
        let addr = listener.local_addr();
        sources.push(listener.spawn(sender.clone(), stop.clone())?);
        tracing::info!(%addr, "HEP listener started");
    }
    for path in &settings.pcaps {
        // Fail early with a clear message rather than from a background thread.
        earshot_wire::CaptureReader::open(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let cfg = ReplayConfig {
            path: path.clone(),
            speed: settings.speed,
            repeat: settings.repeat,
        };
        let (out, stop) = (sender.clone(), stop.clone());
        sources.push(
            std::thread::Builder::new()
                .name("earshot-replay".into())
                .spawn(move || {
                    if let Err(e) = replay::run(&cfg, &out, &stop) {
                        tracing::error!("{}: {e}", cfg.path.display());
                    }
                })?,
        );
    }
    let metrics_token = ScrapeToken::new(settings.metrics_token.clone());
    let manager = server::start(settings.manager.clone(), shared.clone(), control_tx.clone())
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the Manager API",
                settings.manager.listen
            )
        })?;
    // Handlers go in before the log line: a supervisor (or a test) that signals the sensor as soon
    // as it reads "listening" must not kill it with the default action.
    let stopped = crate::signals::until_stop(|| reload(&args, &manager, &metrics_token));
    tracing::info!(addr = %manager.local_addr, "manager API listening");
    if let Some(addr) = settings.metrics {
        let bound = earshot_sensor::metrics::start(
            addr,
            metrics_token.clone(),
            shared.clone(),
            manager.counters.clone(),
        )
        .await
        .with_context(|| format!("cannot listen on {addr} for metrics"))?;
        tracing::info!(addr = %bound, "metrics on http://{bound}/metrics");
        if !bound.ip().is_loopback() && metrics_token.get().is_none() {
            tracing::warn!(
                "/metrics answers loopback clients only: set --metrics-token (or [metrics] token) for a Prometheus on another host"
            );
        }
    }
    stopped.await;
    tracing::info!("shutting down: ending streams");
    stop.stop();
    let _ = control_tx.send(Control::Shutdown);
    // The pipeline ends every listener with a `server_shutdown` frame; wait until it and the
    // stream connections are done, but never long: the service must be gone within 2 s.
    let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
    while (!pipeline.is_finished() || manager.open_connections() > 0)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(sender);
    drop(sources);
    tracing::info!("stopped");
    Ok(())
}

/// Time given to listeners to receive their end frame after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// SIGHUP: re-reads the configuration and swaps who may connect (allow-list, token, TLS
/// certificate, the metrics token). Open connections and streams are untouched. A bad file
/// keeps the old settings, and so does one that would leave the address actually bound (a
/// reload cannot move the socket) beyond loopback without a token.
fn reload(args: &Args, manager: &server::Manager, metrics_token: &ScrapeToken) {
    let Some(path) = &args.config else {
        tracing::warn!("SIGHUP: nothing to reload, the sensor was started without --config");
        return;
    };
    let checked = settings(args.clone()).and_then(|new| {
        server::check_token_rule(manager.local_addr, new.manager.token.as_deref()).map_err(
            |e| anyhow::anyhow!("reload refused, the Manager API stays bound where it is: {e}"),
        )?;
        Ok(new)
    });
    match checked {
        Ok(new) => {
            let access = server::Access::of(&new.manager);
            tracing::info!(
                config = %path.display(),
                allow = ?access.allow,
                token = access.token.is_some(),
                tls = access.tls.is_some(),
                "configuration reloaded: new access rules apply to new connections"
            );
            if new.manager.listen != manager.local_addr && new.manager.listen.port() != 0 {
                tracing::warn!(
                    listen = %new.manager.listen,
                    "[manager] listen changed: restart the sensor to move the Manager API"
                );
            }
            manager.access.replace(access);
            metrics_token.replace(new.metrics_token);
        }
        Err(e) => tracing::error!(
            config = %path.display(),
            "reload failed, keeping the running configuration: {e:#}"
        ),
    }
}
