//! `earshot sensor`: the command line and the signals. The configuration (file schema, merge,
//! checks) is `earshot_sensor::config`, the start-up of every thread `earshot_sensor::start`.

use anyhow::Result;
use earshot_audio::G726Order;
use earshot_sensor::config::{self, FileConfig, Overrides, SensorConfig};
use earshot_sensor::{Reloader, Sensor};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

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
    /// What the command line sets over the file.
    fn overrides(&self) -> Overrides {
        let a = self.clone();
        Overrides {
            interface: a.interface,
            filter: a.filter,
            snaplen: a.snaplen,
            capture_buffer_mb: a.capture_buffer_mb,
            hep: a.hep,
            hep_allow: a.hep_allow,
            hep_auth_key: a.hep_auth_key,
            pcap: a.pcap,
            speed: a.speed,
            repeat: a.repeat,
            tls_keylog: a.tls_keylog,
            tls_keylog_socket: a.tls_keylog_socket,
            manager: a.manager,
            sensor_id: a.sensor_id,
            token: a.token,
            token_file: a.token_file,
            allow: a.allow,
            tls_cert: a.tls_cert,
            tls_key: a.tls_key,
            metrics: a.metrics,
            metrics_token: a.metrics_token,
            audit_log: a.audit_log,
            g726_order: a.g726_order,
            rtp_without_sip: a.rtp_without_sip,
            codecs: a.codecs,
            correlation: a.correlation.overrides(),
        }
    }

    /// The file (if any) and the command line, resolved; called again on each SIGHUP.
    fn resolve(&self) -> Result<SensorConfig> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Ok(config::resolve(file, self.overrides())?)
    }
}

pub fn run(args: Args) -> Result<()> {
    let config = args.resolve()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("earshot-manager")
        .build()?;
    runtime.block_on(serve(config, args))
}

async fn serve(config: SensorConfig, args: Args) -> Result<()> {
    // Handlers go in before the sensor starts (and logs "listening"): a supervisor (or a test)
    // that signals the sensor as soon as it reads that must not kill it with the default
    // action. Signals wait in their queue until `stopped` is polled, after the reloader is set.
    let running: Arc<OnceLock<Reloader>> = Arc::default();
    let stopped = crate::signals::until_stop({
        let running = running.clone();
        move || match running.get() {
            Some(reloader) => reload(&args, reloader),
            None => tracing::warn!("SIGHUP before the sensor started: nothing to reload yet"),
        }
    });
    let sensor = Sensor::start(config).await?;
    let _ = running.set(sensor.reloader());
    stopped.await;
    tracing::info!("shutting down: ending streams");
    sensor.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: re-reads the configuration and swaps who may connect (allow-list, token, TLS
/// certificate, the metrics token). A bad file keeps the old settings, and so does one the
/// running sensor refuses (see `Reloader::reload`).
fn reload(args: &Args, reloader: &Reloader) {
    let Some(path) = &args.config else {
        tracing::warn!("SIGHUP: nothing to reload, the sensor was started without --config");
        return;
    };
    // The reloader logs what it applied ("configuration reloaded").
    if let Err(e) = args.resolve().and_then(|new| Ok(reloader.reload(&new)?)) {
        tracing::error!(
            config = %path.display(),
            "reload failed, keeping the running configuration: {e:#}"
        );
    }
}
