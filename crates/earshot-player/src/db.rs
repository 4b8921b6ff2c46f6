//! The player's database: sensors, users, sessions and the audit log.
//!
//! One code path for SQLite, PostgreSQL and MySQL through `sqlx::AnyPool`. The SQL is kept
//! portable (BIGINT/INTEGER/VARCHAR, no RETURNING, no AUTOINCREMENT; the schema is
//! versioned, `migrations/`): generated ids are random positive 63-bit numbers made here, because every
//! engine spells auto-increment and "give me the new id" differently. Placeholders are written
//! `?` and rewritten to `$n` for PostgreSQL.

use crate::error::DbError;
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SensorKind {
    /// `earshot sensor`: pushes audio with `stream`.
    Earshot,
    /// A VoIPmonitor sniffer: polled with `listen` / `readaudio`.
    Voipmonitor,
}

impl SensorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SensorKind::Earshot => "earshot",
            SensorKind::Voipmonitor => "voipmonitor",
        }
    }
}

impl FromStr for SensorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "earshot" => Ok(SensorKind::Earshot),
            "voipmonitor" => Ok(SensorKind::Voipmonitor),
            other => Err(format!(
                "unknown sensor kind {other:?}: use earshot or voipmonitor"
            )),
        }
    }
}

/// A sensor the player may connect to. The token never leaves the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sensor {
    pub id_sensor: i64,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub token: Option<String>,
    pub tls: bool,
    pub kind: SensorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees the call list.
    Viewer,
    /// Also listens to calls.
    Listener,
    /// Also manages sensors, users and reads the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Listener => "listener",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "listener" => Ok(Role::Listener),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: use viewer, listener or admin"
            )),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub role: Role,
}

/// A logged-in session, joined with its user.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: i64,
    pub user_name: String,
    pub role: Role,
    pub csrf: String,
    pub expires: i64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub user_name: String,
    pub source_ip: Option<String>,
    pub id_sensor: Option<i64>,
    pub callreference: String,
    pub callid: Option<String>,
    pub caller: Option<String>,
    pub called: Option<String>,
    /// Unix seconds.
    pub started: i64,
    /// Unix seconds; `None` while listening (or when the player stopped without closing it).
    pub stopped: Option<i64>,
    /// How: `websocket` (/api/listen) or `chunk` (/api/chunk). `None` on rows of older players.
    pub via: Option<String>,
    /// `listened`, `refused` (the player said no) or `failed` (the sensor or the player could
    /// not start it). `None` on rows of older players, which only recorded listening.
    pub outcome: Option<String>,
    /// Why it was refused or failed, in the words the user was given.
    pub reason: Option<String>,
    /// The API key whose listen token started the session (embedded players); `None` for a
    /// logged-in user.
    pub api_key: Option<String>,
    /// The person the dashboard named when it minted the token (as the dashboard knows them).
    pub end_user: Option<String>,
}

/// A backend's API key (the key itself is shown once and never stored).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The sensors it may see and listen to; `None`: every sensor.
    pub sensors: Option<Vec<i64>>,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds; `None`: never.
    pub expires: Option<i64>,
}

impl ApiKey {
    pub fn allows_sensor(&self, id: i64) -> bool {
        self.sensors.as_ref().is_none_or(|s| s.contains(&id))
    }

    pub fn expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// The sensor list as stored: `1,2,3`.
fn sensors_text(sensors: &Option<Vec<i64>>) -> Option<String> {
    sensors
        .as_ref()
        .map(|v| v.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
}

fn sensors_from(text: Option<String>) -> Result<Option<Vec<i64>>, DbError> {
    let Some(text) = text else { return Ok(None) };
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| DbError::Invalid(format!("API key sensor list {text:?}")))
        })
        .collect::<Result<Vec<i64>, _>>()
        .map(Some)
}

/// Values of [`AuditRow::outcome`].
pub const LISTENED: &str = "listened";
pub const REFUSED: &str = "refused";
pub const FAILED: &str = "failed";

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    postgres: bool,
}

/// The versioned schema (`migrations/`, applied in order and recorded in `_sqlx_migrations`;
/// sqlx takes a database lock while it migrates, so players sharing a database can start
/// together).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Audit columns added before versioned migrations began (they are in 0001_initial.sql),
/// created on databases older than that, which 0001's `IF NOT EXISTS` leaves as they are. Plain
/// `ALTER TABLE … ADD COLUMN` with a nullable type is understood alike by SQLite, PostgreSQL
/// and MySQL, and old rows read as NULL.
const AUDIT_ADDED: [(&str, &str); 3] = [
    ("via", "VARCHAR(16)"),
    ("outcome", "VARCHAR(16)"),
    ("reason", "VARCHAR(255)"),
];

/// The longest reason stored (the column's width, in characters).
pub const MAX_REASON: usize = 255;

/// A random positive 63-bit id.
pub fn random_id() -> i64 {
    let mut b = [0u8; 8];
    // getrandom only fails when the OS has no randomness source at all; a clock-based value
    // still gives distinct ids in that unlikely case.
    if getrandom::fill(&mut b).is_err() {
        b = now_nanos().to_le_bytes();
    }
    (u64::from_le_bytes(b) >> 1) as i64
}

/// The wall clock, ns since the Unix epoch: the player's one reading of it.
pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A reason cut to the column's width, at a character boundary.
fn clip_reason(reason: &str) -> String {
    reason.chars().take(MAX_REASON).collect()
}

/// `sqlite://FILE` with `mode=rwc` added when the URL names no mode: without it SQLite refuses
/// to create the file, with a bare "unable to open database file". An explicit mode (`ro`,
/// `rw`, `memory`) and in-memory databases are left as they are.
pub fn sqlite_creating(url: &str) -> std::borrow::Cow<'_, str> {
    let is_sqlite = url.starts_with("sqlite:");
    let has_mode = url
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("mode=")));
    if !is_sqlite || has_mode || url.contains(":memory:") {
        return url.into();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc").into()
}

/// The URL as it may be shown: `user:password@` becomes `user:…@`.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:…@{host}"),
        None => url.to_string(),
    }
}

fn open_error(url: &str, e: &sqlx::Error) -> DbError {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let hint = if url.starts_with("sqlite:") {
        "check that the file's directory exists and is writable by this user \
         (the URL form is sqlite://PATH, e.g. sqlite://earshot.db)"
    } else {
        "check that the database server is running and reachable, and that the user, password \
         and database name in the URL are right (the database must exist; earshot creates its tables)"
    };
    DbError::Open {
        url: redacted_url(url),
        cause: cause.to_string(),
        hint,
    }
}

pub fn now_secs() -> i64 {
    (now_nanos() / 1_000_000_000) as i64
}

fn text_col(row: &AnyRow, col: &str) -> Result<String, DbError> {
    Ok(row.try_get::<String, _>(col)?)
}

fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>, DbError> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

fn int_col(row: &AnyRow, col: &str) -> Result<i64, DbError> {
    Ok(row.try_get::<i64, _>(col)?)
}

impl Db {
    /// Connects and creates the tables that do not exist yet.
    /// A SQLite file that does not exist yet is created (as with the default URL), whether or
    /// not the URL says `?mode=rwc`.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let postgres = url.starts_with("postgres:") || url.starts_with("postgresql:");
        let url = &sqlite_creating(url);
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect(url)
            .await
            .map_err(|e| open_error(url, &e))?;
        let db = Db { pool, postgres };
        db.migrate().await?;
        Ok(db)
    }

    /// Brings the schema to the newest version. A database from before versioned migrations
    /// gets the columns it may lack first, so that it is exactly version 1 when 0001 records it.
    async fn migrate(&self) -> Result<(), DbError> {
        if self.table_exists("audit").await {
            self.add_missing_audit_columns().await?;
        }
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn table_exists(&self, table: &str) -> bool {
        let probe = format!("SELECT 1 FROM {table} WHERE 1 = 0");
        sqlx::query(&probe).fetch_all(&self.pool).await.is_ok()
    }

    /// Engines disagree on how to ask whether a column exists; selecting it works everywhere.
    async fn add_missing_audit_columns(&self) -> Result<(), DbError> {
        for (col, ty) in AUDIT_ADDED {
            let probe = format!("SELECT {col} FROM audit WHERE 1 = 0");
            if sqlx::query(&probe).fetch_all(&self.pool).await.is_ok() {
                continue;
            }
            let add = format!("ALTER TABLE audit ADD COLUMN {col} {ty}");
            if let Err(e) = sqlx::query(&add).execute(&self.pool).await {
                // Another player sharing the database may have added it meanwhile.
                if sqlx::query(&probe).fetch_all(&self.pool).await.is_err() {
                    return Err(e.into());
                }
            }
            tracing::info!("audit table: added column {col}");
        }
        Ok(())
    }

    /// `?` placeholders as the connected engine wants them.
    fn q(&self, sql: &str) -> String {
        if !self.postgres {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }

    // ---- sensors ----

    fn sensor_from(row: &AnyRow) -> Result<Sensor, DbError> {
        let port = int_col(row, "port")?;
        let kind = text_col(row, "kind")?;
        Ok(Sensor {
            id_sensor: int_col(row, "id_sensor")?,
            name: text_col(row, "name")?,
            host: text_col(row, "host")?,
            port: u16::try_from(port)
                .map_err(|_| DbError::Invalid(format!("sensor port {port}")))?,
            token: opt_text(row, "token")?,
            tls: int_col(row, "tls")? != 0,
            kind: kind.parse().map_err(DbError::Invalid)?,
        })
    }

    pub async fn sensors(&self) -> Result<Vec<Sensor>, DbError> {
        let rows = sqlx::query(
            "SELECT id_sensor, name, host, port, token, tls, kind FROM sensors ORDER BY id_sensor",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::sensor_from).collect()
    }

    pub async fn sensor(&self, id: i64) -> Result<Option<Sensor>, DbError> {
        let sql = self.q(
            "SELECT id_sensor, name, host, port, token, tls, kind FROM sensors WHERE id_sensor = ?",
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::sensor_from).transpose()
    }

    pub async fn add_sensor(&self, s: &Sensor) -> Result<(), DbError> {
        if self.sensor(s.id_sensor).await?.is_some() {
            return Err(DbError::Conflict(format!(
                "sensor {} already exists: remove it first or pick another id",
                s.id_sensor
            )));
        }
        let sql = self.q(
            "INSERT INTO sensors (id_sensor, name, host, port, token, tls, kind) VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        sqlx::query(&sql)
            .bind(s.id_sensor)
            .bind(s.name.clone())
            .bind(s.host.clone())
            .bind(i64::from(s.port))
            .bind(s.token.clone())
            .bind(i64::from(s.tls))
            .bind(s.kind.as_str().to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether a sensor was removed.
    pub async fn remove_sensor(&self, id: i64) -> Result<bool, DbError> {
        let sql = self.q("DELETE FROM sensors WHERE id_sensor = ?");
        let r = sqlx::query(&sql).bind(id).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }

    // ---- users ----

    fn user_from(row: &AnyRow) -> Result<User, DbError> {
        Ok(User {
            id: int_col(row, "id")?,
            name: text_col(row, "name")?,
            password_hash: text_col(row, "password_hash")?,
            role: text_col(row, "role")?.parse().map_err(DbError::Invalid)?,
        })
    }

    pub async fn users(&self) -> Result<Vec<User>, DbError> {
        let rows = sqlx::query("SELECT id, name, password_hash, role FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::user_from).collect()
    }

    pub async fn user(&self, name: &str) -> Result<Option<User>, DbError> {
        let sql = self.q("SELECT id, name, password_hash, role FROM users WHERE name = ?");
        let row = sqlx::query(&sql)
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::user_from).transpose()
    }

    pub async fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<i64, DbError> {
        if self.user(name).await?.is_some() {
            return Err(DbError::Conflict(format!(
                "user {name} already exists: use `earshot users passwd {name}` to change the password"
            )));
        }
        let id = random_id();
        let sql = self.q("INSERT INTO users (id, name, password_hash, role) VALUES (?, ?, ?, ?)");
        sqlx::query(&sql)
            .bind(id)
            .bind(name.to_string())
            .bind(password_hash.to_string())
            .bind(role.as_str().to_string())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// Whether the user exists. Their sessions end: a new password logs everyone out.
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, DbError> {
        let Some(user) = self.user(name).await? else {
            return Ok(false);
        };
        let sql = self.q("UPDATE users SET password_hash = ? WHERE id = ?");
        sqlx::query(&sql)
            .bind(password_hash.to_string())
            .bind(user.id)
            .execute(&self.pool)
            .await?;
        self.end_sessions_of(user.id).await?;
        Ok(true)
    }

    pub async fn remove_user(&self, name: &str) -> Result<bool, DbError> {
        let Some(user) = self.user(name).await? else {
            return Ok(false);
        };
        self.end_sessions_of(user.id).await?;
        let sql = self.q("DELETE FROM users WHERE id = ?");
        sqlx::query(&sql).bind(user.id).execute(&self.pool).await?;
        Ok(true)
    }

    // ---- sessions ----

    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        expires: i64,
    ) -> Result<(), DbError> {
        // Expired sessions are swept here rather than by a timer: logins are rare and cheap.
        let sweep = self.q("DELETE FROM sessions WHERE expires < ?");
        sqlx::query(&sweep)
            .bind(now_secs())
            .execute(&self.pool)
            .await?;
        let sql =
            self.q("INSERT INTO sessions (token_hash, user_id, csrf, expires) VALUES (?, ?, ?, ?)");
        sqlx::query(&sql)
            .bind(token_hash.to_string())
            .bind(user_id)
            .bind(csrf.to_string())
            .bind(expires)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The live (unexpired) session with this token hash.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>, DbError> {
        let sql = self.q(
            "SELECT s.user_id, s.csrf, s.expires, u.name, u.role FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires >= ?",
        );
        let row = sqlx::query(&sql)
            .bind(token_hash.to_string())
            .bind(now_secs())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Session {
            user_id: int_col(&row, "user_id")?,
            user_name: text_col(&row, "name")?,
            role: text_col(&row, "role")?.parse().map_err(DbError::Invalid)?,
            csrf: text_col(&row, "csrf")?,
            expires: int_col(&row, "expires")?,
        }))
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<(), DbError> {
        let sql = self.q("DELETE FROM sessions WHERE token_hash = ?");
        sqlx::query(&sql)
            .bind(token_hash.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn end_sessions_of(&self, user_id: i64) -> Result<(), DbError> {
        let sql = self.q("DELETE FROM sessions WHERE user_id = ?");
        sqlx::query(&sql).bind(user_id).execute(&self.pool).await?;
        Ok(())
    }

    // ---- audit ----

    /// Records the start of a listening session; returns the row id for [`Db::audit_stop`].
    pub async fn audit_start(&self, row: &AuditRow) -> Result<i64, DbError> {
        let id = random_id();
        let sql = self.q(
            "INSERT INTO audit (id, user_name, source_ip, id_sensor, callreference, callid, caller, called, started, stopped, via, outcome, reason, api_key, end_user) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(row.user_name.clone())
            .bind(row.source_ip.clone())
            .bind(row.id_sensor)
            .bind(row.callreference.clone())
            .bind(row.callid.clone())
            .bind(row.caller.clone())
            .bind(row.called.clone())
            .bind(row.started)
            .bind(row.stopped)
            .bind(row.via.clone())
            .bind(row.outcome.clone())
            .bind(row.reason.as_deref().map(clip_reason))
            .bind(row.api_key.clone())
            .bind(row.end_user.as_deref().map(clip_reason))
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn audit_stop(&self, id: i64, stopped: i64) -> Result<(), DbError> {
        let sql = self.q("UPDATE audit SET stopped = ? WHERE id = ?");
        sqlx::query(&sql)
            .bind(stopped)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The most recent rows first.
    pub async fn audit(&self, limit: i64) -> Result<Vec<AuditRow>, DbError> {
        let sql = self.q(
            "SELECT id, user_name, source_ip, id_sensor, callreference, callid, caller, called, started, stopped, via, outcome, reason, api_key, end_user \
             FROM audit ORDER BY started DESC, id DESC LIMIT ?",
        );
        let rows = sqlx::query(&sql)
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: int_col(r, "id")?,
                    user_name: text_col(r, "user_name")?,
                    source_ip: opt_text(r, "source_ip")?,
                    id_sensor: r.try_get::<Option<i64>, _>("id_sensor")?,
                    callreference: text_col(r, "callreference")?,
                    callid: opt_text(r, "callid")?,
                    caller: opt_text(r, "caller")?,
                    called: opt_text(r, "called")?,
                    started: int_col(r, "started")?,
                    stopped: r.try_get::<Option<i64>, _>("stopped")?,
                    via: opt_text(r, "via")?,
                    outcome: opt_text(r, "outcome")?,
                    reason: opt_text(r, "reason")?,
                    api_key: opt_text(r, "api_key")?,
                    end_user: opt_text(r, "end_user")?,
                })
            })
            .collect()
    }

    // ---- API keys, listen tokens ----

    fn api_key_from(row: &AnyRow) -> Result<ApiKey, DbError> {
        Ok(ApiKey {
            id: int_col(row, "id")?,
            name: text_col(row, "name")?,
            role: text_col(row, "role")?.parse().map_err(DbError::Invalid)?,
            sensors: sensors_from(opt_text(row, "sensors")?)?,
            created: int_col(row, "created")?,
            expires: row.try_get::<Option<i64>, _>("expires")?,
        })
    }

    const API_KEY_COLUMNS: &str = "id, name, role, sensors, created, expires";

    pub async fn add_api_key(
        &self,
        name: &str,
        key_hash: &str,
        role: Role,
        sensors: Option<Vec<i64>>,
        expires: Option<i64>,
    ) -> Result<ApiKey, DbError> {
        if self.api_key_named(name).await?.is_some() {
            return Err(DbError::Conflict(format!(
                "an API key named {name} exists already: revoke it first (`earshot keys revoke {name}`) or pick another name"
            )));
        }
        let key = ApiKey {
            id: random_id(),
            name: name.to_string(),
            role,
            sensors,
            created: now_secs(),
            expires,
        };
        let sql = self.q(
            "INSERT INTO api_keys (id, name, key_hash, role, sensors, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        sqlx::query(&sql)
            .bind(key.id)
            .bind(key.name.clone())
            .bind(key_hash.to_string())
            .bind(role.as_str().to_string())
            .bind(sensors_text(&key.sensors))
            .bind(key.created)
            .bind(key.expires)
            .execute(&self.pool)
            .await?;
        Ok(key)
    }

    /// The key with this hash, read from the database on every request (never cached), so that
    /// a key revoked through any player sharing the database is refused at once by all.
    /// The lookup is by the SHA-256 of what the client sent: a timing difference in the index
    /// search tells an attacker about hashes, not about keys.
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, DbError> {
        let sql = self.q(&format!(
            "SELECT {} FROM api_keys WHERE key_hash = ?",
            Self::API_KEY_COLUMNS
        ));
        let row = sqlx::query(&sql)
            .bind(key_hash.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::api_key_from).transpose()
    }

    pub async fn api_key_by_id(&self, id: i64) -> Result<Option<ApiKey>, DbError> {
        let sql = self.q(&format!(
            "SELECT {} FROM api_keys WHERE id = ?",
            Self::API_KEY_COLUMNS
        ));
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::api_key_from).transpose()
    }

    pub async fn api_key_named(&self, name: &str) -> Result<Option<ApiKey>, DbError> {
        let sql = self.q(&format!(
            "SELECT {} FROM api_keys WHERE name = ?",
            Self::API_KEY_COLUMNS
        ));
        let row = sqlx::query(&sql)
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::api_key_from).transpose()
    }

    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, DbError> {
        let sql = format!(
            "SELECT {} FROM api_keys ORDER BY name",
            Self::API_KEY_COLUMNS
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(Self::api_key_from).collect()
    }

    /// Whether a key was revoked (deleted: nothing of it is needed any more; the audit rows
    /// keep its name).
    pub async fn revoke_api_key(&self, name: &str) -> Result<bool, DbError> {
        let sql = self.q("DELETE FROM api_keys WHERE name = ?");
        let r = sqlx::query(&sql)
            .bind(name.to_string())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The secret named `name`, created (32 random bytes, hex) by the first player that asks.
    /// Two players asking at once both insert; the primary key lets one win, and both then
    /// read the winner's, so every player sharing the database signs with the same secret.
    pub async fn shared_secret(&self, name: &str) -> Result<String, DbError> {
        let select = self.q("SELECT secret FROM player_secrets WHERE name = ?");
        let read = || async {
            let row = sqlx::query(&select)
                .bind(name.to_string())
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(|r| text_col(r, "secret")).transpose()
        };
        if let Some(s) = read().await? {
            return Ok(s);
        }
        let fresh = crate::auth::random_hex(32).map_err(|e| DbError::Invalid(e.to_string()))?;
        let insert = self.q("INSERT INTO player_secrets (name, secret) VALUES (?, ?)");
        let inserted = sqlx::query(&insert)
            .bind(name.to_string())
            .bind(fresh)
            .execute(&self.pool)
            .await;
        match (inserted, read().await?) {
            (_, Some(s)) => Ok(s),
            (Err(e), None) => Err(e.into()),
            (Ok(_), None) => Err(DbError::Invalid(format!(
                "the secret {name} was written but cannot be read back"
            ))),
        }
    }

    /// Records that the listen token with this nonce started a session. False when it had
    /// already (on this player or another): a token serves one session. Expired records are
    /// purged first; their tokens are refused for their expiry anyway.
    pub async fn use_listen_token(&self, nonce: &str, expires: i64) -> Result<bool, DbError> {
        let purge = self.q("DELETE FROM used_listen_tokens WHERE expires < ?");
        sqlx::query(&purge)
            .bind(now_secs())
            .execute(&self.pool)
            .await?;
        let insert = self.q("INSERT INTO used_listen_tokens (nonce, expires) VALUES (?, ?)");
        let inserted = sqlx::query(&insert)
            .bind(nonce.to_string())
            .bind(expires)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(e) => {
                // A unique violation is spelt differently by each engine; the row being
                // there is the same everywhere.
                let probe = self.q("SELECT nonce FROM used_listen_tokens WHERE nonce = ?");
                let found = sqlx::query(&probe)
                    .bind(nonce.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                if found.is_some() {
                    Ok(false)
                } else {
                    Err(e.into())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_url_without_a_mode_creates_its_file() {
        assert_eq!(sqlite_creating("sqlite://a.db"), "sqlite://a.db?mode=rwc");
        assert_eq!(
            sqlite_creating("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        for kept in [
            "sqlite://a.db?mode=ro",
            "sqlite://a.db?cache=shared&mode=rw",
            "sqlite::memory:",
            "postgres://u:p@h/db",
        ] {
            assert_eq!(sqlite_creating(kept), kept);
        }
    }

    #[test]
    fn a_shown_url_has_no_password() {
        assert_eq!(
            redacted_url("postgres://earshot:s3cret@db.example/earshot"),
            "postgres://earshot:…@db.example/earshot"
        );
        assert_eq!(redacted_url("sqlite://earshot.db"), "sqlite://earshot.db");
    }

    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("earshot-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    }

    #[tokio::test]
    async fn a_new_sqlite_file_is_created_without_mode_rwc() {
        let dir = scratch_dir("create");
        let file = dir.join("new.db");
        let db = Db::open(&format!("sqlite://{}", file.display())).await;
        assert!(db.is_ok(), "{:?}", db.err());
        assert!(file.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_database_that_cannot_be_opened_says_so_once_and_what_to_check() {
        let dir = scratch_dir("missing");
        let url = format!("sqlite://{}/no/such/dir/x.db", dir.display());
        let err = match Db::open(&url).await {
            Ok(_) => panic!("opened a file in a directory that does not exist"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.starts_with("cannot open the database sqlite://"),
            "{err}"
        );
        assert_eq!(
            err.matches("unable to open database file").count(),
            1,
            "{err}"
        );
        assert!(err.contains("directory exists and is writable"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The schema of a player from before versioned migrations and before the audit log had
    /// `via`, `outcome` and `reason`: what an upgrade meets in the field.
    const OLD_SCHEMA: [&str; 4] = [
        "CREATE TABLE sensors (id_sensor INTEGER NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL,
            host VARCHAR(255) NOT NULL, port INTEGER NOT NULL, token VARCHAR(255),
            tls INTEGER NOT NULL, kind VARCHAR(16) NOT NULL)",
        "CREATE TABLE users (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL UNIQUE,
            password_hash VARCHAR(255) NOT NULL, role VARCHAR(16) NOT NULL)",
        "CREATE TABLE sessions (token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
            user_id BIGINT NOT NULL, csrf VARCHAR(64) NOT NULL, expires BIGINT NOT NULL)",
        "CREATE TABLE audit (id BIGINT NOT NULL PRIMARY KEY, user_name VARCHAR(255) NOT NULL,
            source_ip VARCHAR(64), id_sensor BIGINT, callreference VARCHAR(64) NOT NULL,
            callid VARCHAR(255), caller VARCHAR(255), called VARCHAR(255),
            started BIGINT NOT NULL, stopped BIGINT)",
    ];

    async fn old_database(url: &str) -> AnyPool {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .expect("create the old database");
        for stmt in OLD_SCHEMA {
            sqlx::query(stmt).execute(&pool).await.expect("old schema");
        }
        sqlx::query("INSERT INTO sensors VALUES (7, 'edge', '10.0.0.7', 5029, NULL, 0, 'earshot')")
            .execute(&pool)
            .await
            .expect("old sensor");
        sqlx::query(
            "INSERT INTO audit VALUES (11, 'alice', '127.0.0.1', 7, '0x1', 'c@x', '100', '200', 5, 9)",
        )
        .execute(&pool)
        .await
        .expect("old audit row");
        pool
    }

    async fn applied_versions(db: &Db) -> Vec<i64> {
        sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&db.pool)
            .await
            .expect("the migrations table")
            .iter()
            .map(|r| r.try_get::<i64, _>("version").expect("version"))
            .collect()
    }

    #[tokio::test]
    async fn a_database_from_before_migrations_is_upgraded_in_place_and_keeps_its_rows() {
        let dir = scratch_dir("upgrade");
        let url = format!("sqlite://{}?mode=rwc", dir.join("old.db").display());
        old_database(&url).await.close().await;

        let db = Db::open(&url).await.expect("upgrade");
        assert_eq!(applied_versions(&db).await, vec![1, 2]);
        let sensors = db.sensors().await.expect("sensors");
        assert_eq!(sensors.len(), 1);
        assert_eq!(
            (sensors[0].id_sensor, sensors[0].name.as_str()),
            (7, "edge")
        );
        let audit = db.audit(10).await.expect("audit");
        assert_eq!(audit.len(), 1);
        assert_eq!(
            (audit[0].user_name.as_str(), audit[0].outcome.as_deref()),
            ("alice", None)
        );
        drop(db);

        // Opening again changes nothing and applies nothing twice.
        let db = Db::open(&url).await.expect("reopen");
        assert_eq!(applied_versions(&db).await, vec![1, 2]);
        assert_eq!(db.sensors().await.expect("sensors").len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_database_a_newer_player_migrated_is_refused_with_what_to_do() {
        let dir = scratch_dir("newer");
        let url = format!("sqlite://{}", dir.join("newer.db").display());
        let db = Db::open(&url).await.expect("new database");
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (999, 'from the future', TRUE, X'00', 0)",
        )
        .execute(&db.pool)
        .await
        .expect("a newer player's migration");
        drop(db);
        let err = match Db::open(&url).await {
            Ok(_) => panic!("opened a database from a newer player"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("newer earshot player"), "{err}");
        assert!(err.contains("999"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
