//! Starting a resolved [`SensorConfig`]: every thread and task the sensor runs, and the handle
//! that reloads and stops them. The caller owns the Tokio runtime and the signals (the CLI's
//! `earshot sensor`); this module opens what it is given, in an order that makes a mistake
//! fail at start with a clear message rather than later in a background thread.

use crate::audit::AuditLog;
use crate::config::SensorConfig;
use crate::hep::{HepError, HepListener};
use crate::keylog_watch::{self, KeyLogSocket};
use crate::live::{self, LiveError};
use crate::metrics::ScrapeToken;
use crate::replay::{self, ReplayConfig};
use crate::server::{self, Access, AccessHandle, Manager};
use crate::{pipeline, Control, FrameSender, SensorCounters, Shared, StopFlag};
use crossbeam_channel::Sender;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Time given to listeners to receive their end frame on shutdown: a service manager expects
/// the sensor gone within 2 s.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Why the sensor could not start. The messages say what to check.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "no capture source: give --interface IF, --hep ADDR:PORT or --pcap FILE \
         (or [capture] interface, hep or pcap in the configuration file)"
    )]
    NoSource,
    /// The audit log (its message names the file), or a thread that could not be spawned.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(
        "cannot listen for key log writers at {path} (--tls-keylog-socket): check that its \
         directory exists and the sensor may write there: {cause}"
    )]
    KeyLogSocket { path: String, cause: std::io::Error },
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Hep(#[from] HepError),
    #[error("{0}")]
    Pcap(String),
    #[error("cannot listen on {addr} for the Manager API: {cause}")]
    Manager {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("cannot listen on {addr} for metrics: {cause}")]
    Metrics {
        addr: SocketAddr,
        cause: std::io::Error,
    },
}

/// Why a reload was refused; the running configuration stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("reload refused, the Manager API stays bound where it is: {0}")]
    Exposed(String),
}

/// The running sensor.
pub struct Sensor;

impl Sensor {
    /// Starts everything `config` describes: the pipeline thread, the key log watcher, one
    /// thread per interface, HEP socket and capture file, the Manager API and, if asked, the
    /// metrics server. Must be called inside a Tokio runtime (the servers are tasks on it).
    pub async fn start(config: SensorConfig) -> Result<SensorHandle, StartError> {
        if config.has_no_source() {
            return Err(StartError::NoSource);
        }
        let counters = Arc::new(SensorCounters::default());
        let audit = match &config.audit_log {
            Some(path) => AuditLog::open(path, counters.clone())?,
            None => AuditLog::disabled(),
        };
        let shared = Shared::with(counters.clone(), config.listen, audit);
        let (frame_tx, frame_rx) = crossbeam_channel::bounded(config.queue_batches);
        let (control_tx, control_rx) = crossbeam_channel::bounded(1024);
        let pipeline = pipeline::spawn(
            config.pipeline.clone(),
            frame_rx,
            control_rx,
            shared.clone(),
        )?;
        let stop = StopFlag::default();
        start_keylogs(&config, &control_tx, &stop)?;
        let sender = FrameSender::new(frame_tx, counters);
        let sources = start_sources(&config, &sender, &stop)?;
        let metrics_token = ScrapeToken::new(config.metrics_token.clone());
        let addr = config.manager.listen;
        let manager = server::start(config.manager.clone(), shared.clone(), control_tx.clone())
            .await
            .map_err(|cause| StartError::Manager { addr, cause })?;
        tracing::info!(addr = %manager.local_addr, "manager API listening");
        let metrics_addr = match config.metrics {
            Some(addr) => Some(start_metrics(addr, &metrics_token, &shared, &manager).await?),
            None => None,
        };
        Ok(SensorHandle {
            local_addr: manager.local_addr,
            metrics_addr,
            reloader: Reloader {
                local_addr: manager.local_addr,
                access: manager.access.clone(),
                metrics_token,
            },
            manager,
            stop,
            control: control_tx,
            pipeline,
            sender,
            sources,
        })
    }
}

/// The key log files and socket, followed by one thread that feeds secrets to the pipeline.
fn start_keylogs(
    config: &SensorConfig,
    control: &Sender<Control>,
    stop: &StopFlag,
) -> Result<(), StartError> {
    let socket = config
        .tls_keylog_socket
        .as_deref()
        .map(|p| {
            KeyLogSocket::bind(p).map_err(|cause| StartError::KeyLogSocket {
                path: p.display().to_string(),
                cause,
            })
        })
        .transpose()?;
    if !config.tls_keylogs.is_empty() || socket.is_some() {
        keylog_watch::spawn(
            config.tls_keylogs.clone(),
            socket,
            control.clone(),
            stop.clone(),
        )?;
    }
    Ok(())
}

/// Interfaces and HEP sockets are opened before any of their threads starts, so a missing
/// permission, interface, filter error or busy port stops the sensor with a clear message
/// (`live::spawn_all` logs each interface's ring as the kernel set it up); capture files are
/// opened once here for the same reason.
fn start_sources(
    config: &SensorConfig,
    sender: &FrameSender,
    stop: &StopFlag,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let mut sources = live::spawn_all(&config.live, sender, stop)?;
    let mut heps = Vec::with_capacity(config.hep.len());
    for addr in &config.hep {
        heps.push(HepListener::bind(*addr)?.with_policy(config.hep_policy.clone()));
    }
    for listener in heps {
        let addr = listener.local_addr();
        sources.push(listener.spawn(sender.clone(), stop.clone())?);
        tracing::info!(%addr, "HEP listener started");
    }
    for path in &config.pcaps {
        earshot_wire::CaptureReader::open(path).map_err(|e| StartError::Pcap(e.to_string()))?;
        let cfg = ReplayConfig {
            path: path.clone(),
            speed: config.speed,
            repeat: config.repeat,
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
    Ok(sources)
}

async fn start_metrics(
    addr: SocketAddr,
    token: &Arc<ScrapeToken>,
    shared: &Arc<Shared>,
    manager: &Manager,
) -> Result<SocketAddr, StartError> {
    let bound = crate::metrics::start(
        addr,
        token.clone(),
        shared.clone(),
        manager.counters.clone(),
    )
    .await
    .map_err(|cause| StartError::Metrics { addr, cause })?;
    tracing::info!(addr = %bound, "metrics on http://{bound}/metrics");
    if !bound.ip().is_loopback() && token.get().is_none() {
        tracing::warn!(
            "/metrics answers loopback clients only: set --metrics-token (or [metrics] token) for a Prometheus on another host"
        );
    }
    Ok(bound)
}

/// A started sensor: where it listens, how to reload it and how to stop it.
pub struct SensorHandle {
    /// The Manager API's bound address (the real port when the configuration said 0).
    pub local_addr: SocketAddr,
    /// The metrics server's bound address, when one was asked for.
    pub metrics_addr: Option<SocketAddr>,
    reloader: Reloader,
    manager: Manager,
    stop: StopFlag,
    control: Sender<Control>,
    pipeline: JoinHandle<()>,
    sender: FrameSender,
    sources: Vec<JoinHandle<()>>,
}

impl SensorHandle {
    /// See [`Reloader::reload`].
    pub fn reload(&self, new: &SensorConfig) -> Result<(), ReloadError> {
        self.reloader.reload(new)
    }

    /// A cheap handle that reloads this sensor, for a signal handler installed before it
    /// started.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Stops the sources, ends every listener with a `server_shutdown` frame and waits, at most
    /// [`SHUTDOWN_GRACE`], for the pipeline and the stream connections to finish.
    pub async fn shutdown(self) {
        self.stop.stop();
        let _ = self.control.send(Control::Shutdown);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while (!self.pipeline.is_finished() || self.manager.open_connections() > 0)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The source threads see the stop flag within their read timeouts; they are not joined,
        // so that a capture stuck in the kernel cannot hold the exit.
        drop(self.sender);
        drop(self.sources);
    }
}

/// What a reload may change while connections and streams carry on: who may connect (allow
/// list, token, TLS certificate) and the metrics token. Open connections are untouched.
#[derive(Clone)]
pub struct Reloader {
    local_addr: SocketAddr,
    access: AccessHandle,
    metrics_token: Arc<ScrapeToken>,
}

impl Reloader {
    /// Applies `new`'s access rules to new connections. Refused when they would leave the
    /// address actually bound (a reload cannot move the socket) beyond loopback without a
    /// token. A changed `[manager] listen` is logged: it needs a restart.
    pub fn reload(&self, new: &SensorConfig) -> Result<(), ReloadError> {
        server::check_token_rule(self.local_addr, new.manager.token.as_deref())
            .map_err(ReloadError::Exposed)?;
        let access = Access::of(&new.manager);
        tracing::info!(
            allow = ?access.allow,
            token = access.token.is_some(),
            tls = access.tls.is_some(),
            "configuration reloaded: new access rules apply to new connections"
        );
        if new.manager.listen != self.local_addr && new.manager.listen.port() != 0 {
            tracing::warn!(
                listen = %new.manager.listen,
                "[manager] listen changed: restart the sensor to move the Manager API"
            );
        }
        self.access.replace(access);
        self.metrics_token.replace(new.metrics_token.clone());
        Ok(())
    }
}
