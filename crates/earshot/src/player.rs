//! `earshot player` (the browser player's web server) and its administration commands:
//! `earshot sensors`, `earshot users`, `earshot keys`, `earshot audit`.

use anyhow::{anyhow, bail, Context, Result};
use earshot_player::{auth, Config, Db, FileConfig, Overrides, Role, Sensor, SensorKind};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// Where the player's database is: `--database`, else the `--config` file's `[database] url`,
/// else `sqlite://earshot.db?mode=rwc`.
#[derive(clap::Args, Debug, Clone)]
pub struct DbArgs {
    /// The player's TOML configuration file.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Database URL: sqlite://FILE (created if missing), postgres://…, mysql://…
    #[arg(long, value_name = "URL", global = true, env = "EARSHOT_DATABASE")]
    database: Option<String>,
}

impl DbArgs {
    fn file(&self) -> Result<FileConfig> {
        Ok(match &self.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        })
    }

    fn resolve(&self, mut o: Overrides) -> Result<Config> {
        o.database = self.database.clone();
        Ok(Config::resolve(self.file()?, o)?)
    }

    async fn open(&self) -> Result<Db> {
        let config = self.resolve(Overrides::default())?;
        // The error names the URL (without its password) and what to check.
        Ok(Db::open(&config.database_url).await?)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Serve the browser player: log in, see the calls of every sensor, listen to them.
///
/// Examples:
///   earshot users add alice --role admin          # first, create a user
///   earshot player --manager 127.0.0.1:5029       # then open http://127.0.0.1:8080/
///   earshot player --config /etc/earshot/player.toml
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct PlayerArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address of the web server.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// The default sensor's Manager API (used when a request names no sensor id).
    #[arg(long, value_name = "HOST:PORT")]
    manager: Option<String>,
    /// The default sensor's token.
    #[arg(long, value_name = "T", env = "EARSHOT_TOKEN")]
    token: Option<String>,
    /// PEM certificates (a CA, or a sensor's own certificate) trusted for sensors registered
    /// with TLS (`earshot sensors add … --tls`).
    #[arg(long, value_name = "FILE")]
    sensor_ca: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key; sets Secure cookies).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Token Prometheus must send (`Authorization: Bearer T`) to read /metrics; without one,
    /// /metrics answers loopback clients only.
    #[arg(long, value_name = "T", env = "EARSHOT_METRICS_TOKEN")]
    metrics_token: Option<String>,
}

pub fn player(args: PlayerArgs) -> Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        manager: args.manager,
        token: args.token,
        database: None,
        sensor_ca: args.sensor_ca,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        metrics_token: args.metrics_token,
    };
    let config = args.db.resolve(overrides.clone())?;
    runtime()?.block_on(async {
        let (reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
        let db = args.db.clone();
        // SIGHUP: the file is read again with the same command-line overrides; a bad file
        // keeps the running configuration.
        let reload = move || match db.resolve(overrides.clone()) {
            Ok(config) => {
                let default = config.default_sensor.as_ref();
                let default = default.map(|s| format!("{}:{}", s.host, s.port));
                tracing::info!(default_sensor = ?default, "configuration reloaded");
                let _ = reload_tx.send(config);
            }
            Err(e) => {
                tracing::error!("reload failed, keeping the running configuration: {e:#}")
            }
        };
        let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
        let stopped = stopping.clone();
        // Installed now, before `serve` announces its address, so a signal sent on seeing that
        // announcement is handled rather than killing the process.
        let signal = crate::signals::until_stop(reload);
        let shutdown = async move {
            signal.await;
            tracing::info!("shutting down");
            stopped.notify_one();
        };
        // Graceful shutdown waits for open requests; a listening browser's WebSocket may never
        // end, so the process leaves after a bounded grace whatever is still open.
        tokio::select! {
            r = earshot_player::serve(config, shutdown, reloads) => r?,
            () = async {
                stopping.notified().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => tracing::info!("open connections closed after {SHUTDOWN_GRACE:?}"),
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// Time open requests (listening WebSockets) get after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Manage the sensors the player may connect to.
///
/// Examples:
///   earshot sensors add --id 1 --name pbx1 --host 10.0.0.5 --port 5029 --token s3cret
///   earshot sensors add --id 2 --name legacy --host 10.0.0.6 --port 5029 --kind voipmonitor
///   earshot sensors list
///   earshot sensors remove --id 2
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SensorsArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    command: SensorsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum SensorsCommand {
    /// Register a sensor.
    Add {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        name: String,
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 5029)]
        port: u16,
        #[arg(long)]
        token: Option<String>,
        #[arg(long, default_value = "earshot", value_parser = ["earshot", "voipmonitor"])]
        kind: String,
        /// The sensor's Manager API speaks TLS (`earshot sensor --tls-cert`); the player checks
        /// its certificate against `--sensor-ca` / [sensors] tls_ca.
        #[arg(long)]
        tls: bool,
    },
    /// List the registered sensors (tokens are not shown).
    List,
    /// Remove a sensor.
    Remove {
        #[arg(long)]
        id: i64,
    },
}

pub fn sensors(args: SensorsArgs) -> Result<()> {
    runtime()?.block_on(async {
        let db = args.db.open().await?;
        match args.command {
            SensorsCommand::Add {
                id,
                name,
                host,
                port,
                token,
                kind,
                tls,
            } => {
                let kind: SensorKind = kind.parse().map_err(|e: String| anyhow!(e))?;
                let s = Sensor {
                    id_sensor: id,
                    name,
                    host,
                    port,
                    token: earshot_player::config::normalize_token(token),
                    tls,
                    kind,
                };
                earshot_player::api::validate_sensor(&s).map_err(|e| anyhow!(e))?;
                db.add_sensor(&s).await?;
                println!("sensor {id} added");
            }
            SensorsCommand::List => {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "{:>6}  {:<20} {:<30} {:<12} {:<4} TOKEN",
                    "ID", "NAME", "ADDRESS", "KIND", "TLS"
                )?;
                for s in db.sensors().await? {
                    writeln!(
                        out,
                        "{:>6}  {:<20} {:<30} {:<12} {:<4} {}",
                        s.id_sensor,
                        s.name,
                        format!("{}:{}", s.host, s.port),
                        s.kind.as_str(),
                        if s.tls { "yes" } else { "no" },
                        if s.token.is_some() { "set" } else { "-" }
                    )?;
                }
            }
            SensorsCommand::Remove { id } => {
                if !db.remove_sensor(id).await? {
                    bail!("sensor {id} is not registered (see `earshot sensors list`)");
                }
                println!("sensor {id} removed");
            }
        }
        Ok(())
    })
}

/// Manage the player's users. Roles: viewer (sees calls), listener (also listens), admin
/// (also manages sensors and users, reads the audit log).
///
/// Examples:
///   earshot users add alice --role admin                       # asks for the password
///   echo 'secret' | earshot users add bob --role listener --password-stdin
///   earshot users passwd bob
///   earshot users list
///   earshot users remove bob
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct UsersArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(clap::Subcommand, Debug)]
enum UsersCommand {
    /// Create a user.
    Add {
        name: String,
        #[arg(long, value_parser = ["viewer", "listener", "admin"])]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and roles.
    List,
    /// Set a user's password (their sessions end).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user (their sessions end).
    Remove { name: String },
}

/// The password from stdin's first line, or asked for on the terminal.
fn read_password(from_stdin: bool) -> Result<String> {
    let stdin = std::io::stdin();
    if !from_stdin {
        if !stdin.is_terminal() {
            bail!("no terminal to ask for the password: pass --password-stdin and pipe it in");
        }
        eprint!("Password (shown as you type): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        bail!("the password is empty: give one with at least 1 character");
    }
    Ok(pw)
}

pub fn users(args: UsersArgs) -> Result<()> {
    runtime()?.block_on(async {
        let db = args.db.open().await?;
        match args.command {
            UsersCommand::Add {
                name,
                role,
                password_stdin,
            } => {
                let role: Role = role.parse().map_err(|e: String| anyhow!(e))?;
                if name.is_empty() || name.len() > 255 {
                    bail!("the user name must be 1-255 characters");
                }
                let hash = auth::hash_password(&read_password(password_stdin)?)?;
                db.add_user(&name, &hash, role).await?;
                println!("user {name} added as {}", role.as_str());
            }
            UsersCommand::List => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{:<30} ROLE", "NAME")?;
                for u in db.users().await? {
                    writeln!(out, "{:<30} {}", u.name, u.role.as_str())?;
                }
            }
            UsersCommand::Passwd {
                name,
                password_stdin,
            } => {
                let hash = auth::hash_password(&read_password(password_stdin)?)?;
                if !db.set_password(&name, &hash).await? {
                    bail!("no user {name} (see `earshot users list`)");
                }
                println!("password of {name} changed");
            }
            UsersCommand::Remove { name } => {
                if !db.remove_user(&name).await? {
                    bail!("no user {name} (see `earshot users list`)");
                }
                println!("user {name} removed");
            }
        }
        Ok(())
    })
}

/// Manage API keys: what other systems' backends (a dashboard embedding live listening)
/// authenticate with on the player's /api/v1 (`Authorization: Bearer esk_…`, docs/api.md).
/// The key is shown once, when it is made; only its SHA-256 is stored.
///
/// Examples:
///   earshot keys add helpdesk --role listener --sensors 1,2 --expires 90d
///   earshot keys add reports --role viewer
///   earshot keys list
///   earshot keys revoke helpdesk
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct KeysArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(clap::Subcommand, Debug)]
enum KeysCommand {
    /// Create a key and print it (once: it cannot be shown again).
    Add {
        name: String,
        /// viewer: list calls; listener: also mint listen tokens; admin: also sees sensor errors in full.
        #[arg(long, value_parser = ["viewer", "listener", "admin"])]
        role: String,
        /// Only these sensors (ids, comma-separated); default: every sensor.
        #[arg(long, value_delimiter = ',', value_name = "ID,ID")]
        sensors: Option<Vec<i64>>,
        /// When it stops working: a number of days (`90d`), hours (`12h`), or Unix seconds.
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
    },
    /// List the keys (never the keys themselves).
    List,
    /// Revoke a key: refused at once by every player sharing the database.
    Revoke { name: String },
}

/// `90d`, `12h`, `30m` from now, or an absolute Unix time.
fn expiry(text: &str, now: i64) -> Result<i64> {
    let t = text.trim();
    let unit = |suffix: char, secs: i64| -> Option<i64> {
        let n: i64 = t.strip_suffix(suffix)?.parse().ok()?;
        (n > 0).then(|| now.saturating_add(n.saturating_mul(secs)))
    };
    let at = unit('d', 86_400)
        .or_else(|| unit('h', 3_600))
        .or_else(|| unit('m', 60))
        .or_else(|| t.parse::<i64>().ok())
        .ok_or_else(|| {
            anyhow!("--expires {text}: give days (90d), hours (12h), minutes (30m) or Unix seconds")
        })?;
    if at <= now {
        bail!("--expires {text} is in the past: give a time to come");
    }
    Ok(at)
}

pub fn keys(args: KeysArgs) -> Result<()> {
    runtime()?.block_on(async {
        let db = args.db.open().await?;
        match args.command {
            KeysCommand::Add {
                name,
                role,
                sensors,
                expires,
            } => {
                let role: Role = role.parse().map_err(|e: String| anyhow!(e))?;
                earshot_player::api::validate_key_name(&name).map_err(|e| anyhow!(e))?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let expires = expires.as_deref().map(|e| expiry(e, now)).transpose()?;
                let key = earshot_player::tokens::new_key()?;
                let made = db
                    .add_api_key(&name, &auth::token_hash(&key), role, sensors, expires)
                    .await?;
                eprintln!(
                    "API key {} added as {} (copy it now: it is not shown again):",
                    made.name,
                    made.role.as_str()
                );
                println!("{key}");
            }
            KeysCommand::List => {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "{:<30} {:<9} {:<16} {:<19}  EXPIRES",
                    "NAME", "ROLE", "SENSORS", "CREATED"
                )?;
                for k in db.api_keys().await? {
                    let sensors = match &k.sensors {
                        None => "all".to_string(),
                        Some(v) => v.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
                    };
                    writeln!(
                        out,
                        "{:<30} {:<9} {:<16} {:<19}  {}",
                        k.name,
                        k.role.as_str(),
                        sensors,
                        time_text(k.created),
                        k.expires.map(time_text).unwrap_or_else(|| "never".into())
                    )?;
                }
            }
            KeysCommand::Revoke { name } => {
                if !db.revoke_api_key(&name).await? {
                    bail!("no API key {name} (see `earshot keys list`)");
                }
                println!("API key {name} revoked");
            }
        }
        Ok(())
    })
}

/// Show who listened to which call, most recent first.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    db: DbArgs,
    /// How many rows.
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn time_text(secs: i64) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(f).ok())
        .unwrap_or_else(|| secs.to_string())
}

pub fn audit(args: AuditArgs) -> Result<()> {
    runtime()?.block_on(async {
        let db = args.db.open().await?;
        let rows = db.audit(args.limit).await?;
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
            return Ok(());
        }
        writeln!(
            out,
            "{:<19}  {:<19}  {:<16} {:<16} {:<15} {:>6} {:<14} {:<16} {:<16} CALL-ID",
            "STARTED", "STOPPED", "USER", "API KEY", "FROM", "SENSOR", "REF", "CALLER", "CALLED"
        )?;
        let dash = || "-".to_string();
        for r in rows {
            writeln!(
                out,
                "{:<19}  {:<19}  {:<16} {:<16} {:<15} {:>6} {:<14} {:<16} {:<16} {}",
                time_text(r.started),
                r.stopped.map(time_text).unwrap_or_else(dash),
                r.user_name,
                r.api_key.unwrap_or_else(dash),
                r.source_ip.unwrap_or_else(dash),
                r.id_sensor.map(|i| i.to_string()).unwrap_or_else(dash),
                r.callreference,
                r.caller.unwrap_or_else(dash),
                r.called.unwrap_or_else(dash),
                r.callid.unwrap_or_else(dash),
            )?;
        }
        Ok(())
    })
}
