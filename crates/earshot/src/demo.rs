//! `earshot demo`: a sensor with built-in live calls and the web player, in one process, on
//! loopback only.

use crate::demo_traffic;
use anyhow::{bail, Context, Result};
use earshot_player::{auth, Config, Db, Role, Sensor, SensorKind};
use earshot_sensor::pipeline::{self, PipelineConfig};
use earshot_sensor::server::{self, ManagerConfig};
use earshot_sensor::{Control, FrameSender, SensorCounters, Shared, StopFlag};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Try earshot in one command: live demo calls to listen to in the browser.
///
/// Starts, in this one process and on loopback only:
///   - a sensor fed with built-in live calls instead of a capture: five calls at a time, in
///     G.711 A-law, G.722, Opus, G.711 µ-law and AMR-WB, each a short conversation between two
///     synthetic voices (the caller on the left, the called party on the right), replayed
///     as new calls (new Call-ID, new callreference) every 40 s;
///   - the web player, with a database in a temporary directory (deleted on exit), the sensor
///     registered, and a user `demo` whose random password is printed once.
///
/// It prints one line to open, e.g.
///   earshot demo: open http://127.0.0.1:8080/  user: demo  password: 3f9c...  manager: 127.0.0.1:5029
/// Log in there, pick a call, press listen. Ctrl-C stops everything.
/// The Manager API answers other tools too: `earshot calls --manager 127.0.0.1:5029`.
///
/// Examples:
///   earshot demo
///   earshot demo --open                                   # also open the browser
///   earshot demo --listen 127.0.0.1:0 --manager 127.0.0.1:0  # any free ports
///   earshot demo --embed-example   # also a dashboard on another origin (docs/api.md)
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Address of the web player (loopback; port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the sensor's Manager API (loopback; port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:5029")]
    manager: SocketAddr,
    /// Open the player in the web browser (when there is one; never fails).
    #[arg(long)]
    open: bool,
    /// Also serve an example dashboard on another origin (--embed-listen) that lists the calls
    /// and embeds live listening with listen tokens minted by its backend (docs/api.md).
    #[arg(long)]
    embed_example: bool,
    /// Address of the example dashboard (loopback; port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8081")]
    embed_listen: SocketAddr,
}

pub fn run(args: Args) -> Result<()> {
    for (what, addr) in [
        ("--listen", args.listen),
        ("--manager", args.manager),
        ("--embed-listen", args.embed_listen),
    ] {
        if !addr.ip().is_loopback() {
            bail!(
                "{what} {addr}: the demo only listens on loopback; use 127.0.0.1 \
                 (run `earshot sensor` and `earshot player` to serve a network)"
            );
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let dir = TempDir::create()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("earshot-demo")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(args, &dir.0));
    drop(runtime);
    drop(dir);
    result
}

/// A directory removed when dropped (also on error paths).
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> Result<Self> {
        let (token, _) = auth::new_tokens()?;
        let path = std::env::temp_dir().join(format!("earshot-demo-{}", &token[..12]));
        std::fs::create_dir(&path)
            .with_context(|| format!("cannot create the directory {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn serve(args: Args, dir: &Path) -> Result<()> {
    // The sensor: pipeline, Manager API, and the demo traffic as its only source.
    let counters = Arc::new(SensorCounters::default());
    let shared = Shared::new(counters.clone());
    let (frame_tx, frame_rx) = crossbeam_channel::bounded(1024);
    let (control_tx, control_rx) = crossbeam_channel::bounded(1024);
    let pipeline = pipeline::spawn(
        PipelineConfig::default(),
        frame_rx,
        control_rx,
        shared.clone(),
    )?;
    let manager_cfg = ManagerConfig {
        listen: args.manager,
        allow: ManagerConfig::loopback_only(),
        token: None,
        max_connections: 256,
        sensor_id: None,
        tls: None,
    };
    let manager = server::start(manager_cfg, shared, control_tx.clone())
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the Manager API (in use? pick another with \
                 --manager 127.0.0.1:PORT, or 127.0.0.1:0 for any free port)",
                args.manager
            )
        })?;
    let stop = StopFlag::default();
    let sender = FrameSender::new(frame_tx, counters);
    let traffic = {
        let (out, stop) = (sender.clone(), stop.clone());
        std::thread::Builder::new()
            .name("earshot-demo-traffic".into())
            .spawn(move || {
                if let Err(e) = demo_traffic::run(&out, &stop) {
                    eprintln!("earshot demo: the demo traffic stopped: {e:#}");
                }
            })?
    };

    // The player, with its database, user and sensor.
    let database_url = format!("sqlite://{}?mode=rwc", dir.join("demo.db").display());
    let password = {
        let (token, _) = auth::new_tokens()?;
        token[..16].to_string()
    };
    let db = Db::open(&database_url)
        .await
        .with_context(|| format!("cannot create the demo database {database_url}"))?;
    db.add_user("demo", &auth::hash_password(&password)?, Role::Admin)
        .await?;
    db.add_sensor(&Sensor {
        id_sensor: 1,
        name: "demo".into(),
        host: manager.local_addr.ip().to_string(),
        port: manager.local_addr.port(),
        token: None,
        tls: false,
        kind: SensorKind::Earshot,
    })
    .await?;
    // The example dashboard: its port is taken now, so its origin can be allowed.
    let embed = match args.embed_example {
        false => None,
        true => {
            let listener = tokio::net::TcpListener::bind(args.embed_listen)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen on {} for the embedding example (in use? pick another with --embed-listen 127.0.0.1:PORT)",
                        args.embed_listen
                    )
                })?;
            let key = earshot_player::tokens::new_key()?;
            db.add_api_key(
                crate::embed_example::KEY_NAME,
                &auth::token_hash(&key),
                Role::Listener,
                None,
                None,
            )
            .await?;
            Some((listener, key))
        }
    };
    drop(db);
    let web = free_addr(args.listen).with_context(|| {
        format!(
            "cannot listen on {} for the web player (in use? pick another with \
             --listen 127.0.0.1:PORT, or 127.0.0.1:0 for any free port)",
            args.listen
        )
    })?;
    let config = Config {
        listen: web.to_string(),
        database_url,
        default_sensor: None,
        secure_cookie: false,
        sensor_ca: None,
        tls: None,
        proxy_auth: None,
        metrics_token: None,
        limits: Default::default(),
        embed: earshot_player::config::Embed {
            allowed_origins: match &embed {
                Some((l, _)) => vec![format!("http://{}", l.local_addr()?)],
                None => Vec::new(),
            },
            ..Default::default()
        },
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The demo's configuration never changes: nothing is ever sent on the reload channel.
    let (_no_reloads, reloads) = tokio::sync::mpsc::unbounded_channel();
    let player = tokio::spawn(earshot_player::serve(
        config,
        async move {
            let _ = stop_rx.await;
        },
        reloads,
    ));
    wait_listening(web).await;
    // Before the banner, so a signal sent on seeing it finds the handlers in place.
    let stop_signal = crate::signals::until_stop_or_hangup();
    // Before the banner: tools (and the tests) read up to the banner line, then stop reading.
    if let Some((listener, key)) = embed {
        let origin = crate::embed_example::spawn(listener, web, key)?;
        println!(
            "embedding example: a dashboard on another origin at {origin}/ (API key {})",
            crate::embed_example::KEY_NAME
        );
    }
    let url = format!("http://{web}/");
    println!(
        "earshot demo: open {url}  user: demo  password: {password}  manager: {}",
        manager.local_addr
    );
    let _ = std::io::stdout().flush();
    if args.open {
        open_browser(&url);
    }

    let result = tokio::select! {
        _ = stop_signal => Ok(()),
        r = player => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::new(e)),
            Err(e) => Err(anyhow::anyhow!("the web player stopped: {e}")),
        },
    };
    let _ = stop_tx.send(());
    stop.stop();
    let _ = control_tx.send(Control::Shutdown);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !(pipeline.is_finished() && traffic.is_finished()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(sender);
    result
}

/// The address to serve on: `addr` itself, or with port 0 a free port found by binding.
/// (The player binds by name, so the port is released and taken again right away: another
/// program could grab it in between, and then the player reports the address in use.)
fn free_addr(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let probe = std::net::TcpListener::bind(addr)?;
    probe.local_addr()
}

/// Waits (at most 5 s) until the web player accepts connections, so that the printed URL works.
async fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens `url` with the desktop's opener, if there is one; says so when there is none.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let headless = cfg!(all(unix, not(target_os = "macos")))
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none();
    let spawned = !headless
        && std::process::Command::new(opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok();
    if !spawned {
        eprintln!("earshot demo: no browser to open here; open {url} yourself");
    }
}
