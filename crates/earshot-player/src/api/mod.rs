//! The HTTP API and the WebSocket relay, one module per concern, each with its own `Router`
//! merged into [`router`]: `session` (login, logout, me), `sensors` (the registry), `calls`
//! (the call list and the pages' streams), `listen` (the WebSocket relay), `chunk`
//! (ChunkPlayer's WAV polling) and `audit`. What they share lives here: the state, the
//! security headers, and the role checks as extractors ([`Viewer`], [`Admin`], …), so that a
//! handler cannot run without the check it names.

use crate::auth::{self, HashPool};
use crate::callview::CallView;
use crate::config::{Config, ProxyAuth};
use crate::db::{
    now_secs, AuditRow, Db, Role, Sensor, SensorKind, Session, FAILED, LISTENED, REFUSED,
};
use crate::directory::Directory;
pub use crate::directory::LIST_TIMEOUT;
use crate::error::{ApiError, ManagerError};
use crate::limiter::{retry_seconds, KeyRate, LoginLimiter};
use crate::lock;
use crate::manager::{self, ReadAudio, StreamConn};
use crate::metrics::{bump, PlayerMetrics};
use crate::web;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use earshot_manager::stream_proto::{encode_frame, AudioFrame, EndFrame, EndReason, Frame};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod audit;
mod calls;
mod chunk;
mod keys;
mod ladder;
mod listen;
mod quality;
mod sensors;
mod session;
mod v1;

pub use self::calls::CallsQuery;
pub use self::chunk::wav_8k_mono;
pub use self::keys::validate_key_name;
pub use self::listen::ListenQuery;
pub use self::sensors::validate_sensor;
use self::{listen::*, session::*};

pub const SESSION_COOKIE: &str = "earshot_session";
/// How long a login lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;
/// How long one WebSocket send to a browser may wait before the session is dropped.
pub const BROWSER_SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often VoIPmonitor sensors are polled with `readaudio`.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How long a login waits for a free password-hashing thread before it is told to retry.
pub const HASH_WAIT: Duration = Duration::from_secs(10);
/// The longest user name and password a login may send (bytes); longer is refused unread.
pub const MAX_NAME: usize = 255;
pub const MAX_PASSWORD: usize = 1024;
/// `/api/chunk` sessions open at once, all users together.
pub const MAX_CHUNK_SESSIONS: usize = 1024;
/// Request bodies larger than this are refused (the API only takes small JSON).
pub const MAX_BODY: usize = 64 * 1024;
/// A listening WebSocket is pinged this often; the browser answers by itself.
pub const WS_PING_INTERVAL: Duration = Duration::from_secs(20);
/// A listening WebSocket from which nothing (not even a pong) came for this long is closed.
pub const WS_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct AppState {
    pub db: Db,
    /// Replaced as a whole on reload (SIGHUP); requests read it once.
    config: arc_swap::ArcSwap<Config>,
    /// `/api/chunk` sessions, one per user, sensor, call and listen id: the first request
    /// sends `listen` and opens the audit row, the last (or the idle sweep) closes both.
    chunks: Mutex<HashMap<ChunkKey, ChunkSession>>,
    /// Listening sessions per (user, sensor, call), for `[listening] max_per_user_per_call`.
    listening: Arc<Mutex<HashMap<ListenKey, usize>>>,
    /// Failed logins per user and address (sized at start: `[login]` needs a restart).
    limiter: Mutex<LoginLimiter>,
    /// The threads that check passwords.
    hashes: HashPool,
    pub metrics: PlayerMetrics,
    /// Every sensor's calls, followed by one feed per sensor and shared by all pages.
    pub directory: Directory,
    /// Sensor streams shared by the browsers listening to the same call from now.
    pub relays: Arc<crate::relay::Relays>,
    /// The sensor list the call lists were made from lately: a hundred pages' streams read it
    /// twice a second each, the database once a second at most.
    recent_sensors: Mutex<Option<(std::time::Instant, Vec<Sensor>)>>,
    /// `/api/v1` requests per API key in the current minute (`[embed] requests_per_minute`).
    key_rate: Mutex<KeyRate>,
    /// The listen tokens' HMAC secret, read from the database once: it never changes, and
    /// every player sharing the database reads the same one.
    signing_secret: tokio::sync::OnceCell<Vec<u8>>,
}

/// API keys whose request rate is remembered at most (more keys than that would be a
/// registry nobody manages; the oldest windows are forgotten first).
const MAX_RATED_KEYS: usize = 10_000;

/// How long [`AppState::listed_sensors`] reuses the registry it read.
const SENSORS_FRESH: Duration = Duration::from_secs(1);

/// (user id, sensor id, normalised call reference).
type ListenKey = (i64, i64, String);
/// (user id, sensor id, normalised call reference, the client's listen id).
type ChunkKey = (i64, i64, String, String);

struct ChunkSession {
    sensor: Sensor,
    callref: String,
    /// The id the sensor knows this session by: per user, so two users polling with the
    /// same listen id neither share audio nor an audit row.
    sensor_listen_id: String,
    audit_id: i64,
    last_poll: std::time::Instant,
    _slot: ListenSlot,
}

/// One listening session counted against its user's cap on its call, until dropped.
pub struct ListenSlot {
    key: ListenKey,
    table: Arc<Mutex<HashMap<ListenKey, usize>>>,
}

impl Drop for ListenSlot {
    fn drop(&mut self) {
        let mut table = match self.table.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(n) = table.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                table.remove(&self.key);
            }
        }
    }
}

impl AppState {
    pub fn new(config: Config, db: Db) -> Arc<AppState> {
        let l = &config.limits;
        let limiter = LoginLimiter::new(
            l.max_failures_per_user,
            l.max_failures_per_address,
            l.lockout,
        );
        let hashes = HashPool::new(l.concurrent_hashes);
        Arc::new(AppState {
            db,
            config: arc_swap::ArcSwap::from_pointee(config),
            chunks: Mutex::new(HashMap::new()),
            listening: Arc::new(Mutex::new(HashMap::new())),
            limiter: Mutex::new(limiter),
            hashes,
            metrics: PlayerMetrics::default(),
            directory: Directory::default(),
            relays: Arc::default(),
            recent_sensors: Mutex::new(None),
            key_rate: Mutex::new(KeyRate::new(MAX_RATED_KEYS)),
            signing_secret: tokio::sync::OnceCell::new(),
        })
    }

    /// Counts one `/api/v1` request of `key`; 429 with Retry-After once over its rate.
    fn count_key_request(&self, key: &crate::db::ApiKey) -> Result<(), ApiError> {
        let limit = self.config().embed.requests_per_minute;
        let counted = lock(&self.key_rate).hit(key.id, limit, std::time::Instant::now());
        counted.map_err(|wait| {
            self.metrics.refused("key_rate");
            ApiError::TooMany {
                message: format!(
                    "the API key {} made its {limit} requests of this minute ([embed] requests_per_minute): wait for Retry-After, and cache what you can",
                    key.name
                ),
                retry_after: retry_seconds(wait),
            }
        })
    }

    /// The secret listen tokens are signed with (created in the database by the first player).
    async fn signing_secret(&self) -> Result<Vec<u8>, ApiError> {
        let secret = self
            .signing_secret
            .get_or_try_init(|| async {
                let s = self.db.shared_secret(crate::tokens::SECRET_NAME).await?;
                Ok::<_, ApiError>(s.into_bytes())
            })
            .await?;
        Ok(secret.clone())
    }

    /// A slot for one more listening session of `user` on this call, unless they hold the
    /// configured maximum already.
    fn listen_slot(
        &self,
        user_id: i64,
        sensor: i64,
        callref: &str,
    ) -> Result<ListenSlot, ApiError> {
        let max = self.config().limits.max_per_user_per_call;
        let key = (user_id, sensor, manager::normalize_ref(callref));
        let mut table = lock(&self.listening);
        let n = table.entry(key.clone()).or_insert(0);
        if *n >= max {
            bump(&self.metrics.listen_cap_refusals);
            return Err(ApiError::TooMany {
                message: format!(
                    "you are already listening to this call {max} times (the limit per user, [listening] max_per_user_per_call): close another player window or tab first"
                ),
                retry_after: 5,
            });
        }
        *n += 1;
        Ok(ListenSlot {
            key,
            table: self.listening.clone(),
        })
    }

    /// Ends the `/api/chunk` sessions nobody polled within `[listening] chunk_idle_seconds`:
    /// their audit rows get their stop time and the sensor its `listen_stop`.
    pub async fn sweep_chunks(&self) {
        let idle = self.config().limits.chunk_idle;
        let now = std::time::Instant::now();
        let ended: Vec<ChunkSession> = {
            let mut chunks = lock(&self.chunks);
            let stale: Vec<ChunkKey> = chunks
                .iter()
                .filter(|(_, c)| now.saturating_duration_since(c.last_poll) >= idle)
                .map(|(k, _)| k.clone())
                .collect();
            stale.iter().filter_map(|k| chunks.remove(k)).collect()
        };
        for c in ended {
            bump(&self.metrics.chunk_idle_ends);
            self.end_chunk(c).await;
        }
    }

    async fn end_chunk(&self, c: ChunkSession) {
        if let Err(e) = self.db.audit_stop(c.audit_id, now_secs()).await {
            tracing::error!("audit stop failed: {e}");
        }
        let _ = manager::listen_stop(&c.sensor, &c.callref, &c.sensor_listen_id).await;
    }

    /// Records a listening attempt that did not happen, with why. Only for users who are
    /// logged in: an anonymous flood must not be able to fill the database.
    async fn audit_attempt(&self, mut row: AuditRow, outcome: &str, reason: &str) {
        row.outcome = Some(outcome.into());
        row.reason = Some(reason.into());
        row.started = now_secs();
        row.stopped = Some(row.started);
        // The column is 64 wide; a refused reference may be anything the client sent.
        row.callreference = row.callreference.chars().take(64).collect();
        if let Err(e) = self.db.audit_start(&row).await {
            tracing::error!("audit insert failed: {e}");
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Swaps the configuration for the requests that follow; running ones finish with theirs.
    /// The listen address and the database are fixed at start: a change is logged and ignored.
    pub fn replace_config(&self, new: Config) {
        let old = self.config();
        if new.listen != old.listen || new.database_url != old.database_url {
            tracing::warn!("listen address or database changed: restart the player to apply");
        }
        let new = Config {
            listen: old.listen.clone(),
            database_url: old.database_url.clone(),
            ..new
        };
        self.config.store(Arc::new(new));
        // The default sensor may have changed: the next call list reads the registry again.
        *lock(&self.recent_sensors) = None;
    }

    /// Every sensor the player may talk to: the registry, plus the configured default unless
    /// the registry has a sensor with its id, or the same sensor (address and credentials)
    /// under another id: listing it twice would show every call twice.
    pub async fn all_sensors(&self) -> Result<Vec<Sensor>, ApiError> {
        let mut list = self.db.sensors().await?;
        if let Some(d) = &self.config().default_sensor {
            let registered = |s: &Sensor| {
                s.id_sensor == d.id_sensor
                    || (s.port == d.port
                        && s.host.eq_ignore_ascii_case(&d.host)
                        && s.token == d.token
                        && s.tls == d.tls
                        && s.kind == d.kind)
            };
            if !list.iter().any(registered) {
                list.insert(0, d.clone());
            }
        }
        Ok(list)
    }

    /// [`AppState::all_sensors`], read from the database at most once per [`SENSORS_FRESH`]
    /// (a sensor added or removed shows in the call lists within that time).
    pub async fn listed_sensors(&self) -> Result<Vec<Sensor>, ApiError> {
        if let Some((at, list)) = lock(&self.recent_sensors).as_ref() {
            if at.elapsed() < SENSORS_FRESH {
                return Ok(list.clone());
            }
        }
        let list = self.all_sensors().await?;
        *lock(&self.recent_sensors) = Some((std::time::Instant::now(), list.clone()));
        Ok(list)
    }

    /// The sensor a request names, or the default one when it names none. Never anything else:
    /// the player is not an open proxy.
    pub async fn sensor(&self, id: Option<i64>) -> Result<Sensor, ApiError> {
        match id {
            None => self.config().default_sensor.clone().ok_or_else(|| {
                ApiError::BadRequest(
                    "no sensor_id given and no default sensor configured ([manager] host/port): name a sensor_id".into(),
                )
            }),
            Some(id) => {
                if let Some(s) = self.db.sensor(id).await? {
                    return Ok(s);
                }
                match &self.config().default_sensor {
                    Some(d) if d.id_sensor == id => Ok(d.clone()),
                    _ => Err(ApiError::NotFound(format!(
                        "sensor {id} is not registered: an admin adds it with `earshot sensors add --id {id} …`"
                    ))),
                }
            }
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/api/chunkplayer/index.html", get(web::index))
        .route("/app.js", get(web::app_js))
        .route("/legs.js", get(web::legs_js))
        .route("/quality-chart.js", get(web::quality_chart_js))
        .route("/player-worklet.js", get(web::worklet_js))
        .route("/earshot-player.js", get(web::player_js))
        .route("/ladder.js", get(web::ladder_js))
        .route("/style.css", get(web::style_css))
        .route("/favicon.svg", get(web::favicon))
        .route("/favicon.ico", get(web::favicon))
        .route("/embed-example.html", get(web::embed_example))
        .route("/embed-example.js", get(web::embed_example_js))
        .route("/metrics", get(metrics))
        // Each concern's routes; their handlers take the role they need as an extractor.
        .merge(session::routes())
        .merge(sensors::routes())
        .merge(calls::routes())
        .merge(quality::routes())
        .merge(listen::routes())
        .merge(ladder::routes())
        .merge(chunk::routes())
        .merge(audit::routes())
        .merge(v1::routes())
        .merge(keys::routes())
        .fallback(|| async { ApiError::NotFound("no such page or API endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard_response,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Every response: answered within the request time limit, with the security headers, and
/// with CORS for the origins `[embed] allowed_origins` lists (nothing else is allowed).
async fn guard_response(
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_string();
    let api = path.starts_with("/api/") || path == "/metrics";
    let config = st.config();
    let cors_origin = cors_origin(&config, &path, req.headers());
    if req.method() == axum::http::Method::OPTIONS && cross_origin_path(&path) {
        return preflight(&config, cors_origin.as_deref());
    }
    let limit = config.limits.request_timeout;
    // Bounds a body trickled in byte by byte too: the handler is still reading it.
    let mut resp = match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            bump(&st.metrics.request_timeouts);
            ApiError::Timeout(format!(
                "the request was not completed within {} s: send it again",
                limit.as_secs()
            ))
            .into_response()
        }
    };
    let ancestors = frame_ancestors(&config);
    security_headers(resp.headers_mut(), &ancestors, api);
    if cross_origin_path(&path) {
        allow_origin(resp.headers_mut(), cors_origin.as_deref());
    }
    resp
}

/// What pages of other origins may fetch: the versioned API (their backends need no CORS, but
/// a dashboard may call it from the browser with a key of its own), and the element's module
/// and its AudioWorklet, which browsers fetch in CORS mode when the page is elsewhere.
/// Nothing that works with the session cookie: no credentials are ever allowed cross-origin.
fn cross_origin_path(path: &str) -> bool {
    path.starts_with("/api/v1/") || path == "/earshot-player.js" || path == "/player-worklet.js"
}

/// The request's `Origin` when `[embed] allowed_origins` lists it and the path may be fetched
/// cross-origin.
fn cors_origin(config: &Config, path: &str, headers: &HeaderMap) -> Option<String> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    (cross_origin_path(path) && config.embed.allows(origin)).then(|| origin.to_string())
}

fn allow_origin(h: &mut HeaderMap, origin: Option<&str>) {
    // Caches must keep one answer per origin: the header differs by who asks.
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(v) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
}

/// The answer to a CORS preflight: the methods and headers `/api/v1` takes, for an allowed
/// origin; a refusal that says what to configure otherwise (a browser then blocks the call).
fn preflight(config: &Config, origin: Option<&str>) -> Response {
    let mut resp = match origin {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => ApiError::Forbidden(
            "this origin may not call the player from the browser: the player's admin adds it to [embed] allowed_origins".into(),
        )
        .into_response(),
    };
    let h = resp.headers_mut();
    allow_origin(h, origin);
    if origin.is_some() {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    security_headers(h, &frame_ancestors(config), true);
    resp
}

/// `[http] frame_ancestors` plus the dashboards of `[embed] allowed_origins`: the pages that
/// may frame the player. `'none'` stays alone (CSP ignores it next to sources).
pub fn frame_ancestors(config: &Config) -> String {
    let base = config.limits.frame_ancestors.trim();
    if base == "'none'" || config.embed.allowed_origins.is_empty() {
        return base.to_string();
    }
    let mut out = base.to_string();
    for o in &config.embed.allowed_origins {
        if !out
            .split_ascii_whitespace()
            .any(|s| s.eq_ignore_ascii_case(o))
        {
            out.push(' ');
            out.push_str(o);
        }
    }
    out
}

/// The page's content security policy, with `frame_ancestors` (`[http] frame_ancestors`,
/// checked when the configuration is read) as the pages allowed to embed the player. Styles
/// may be inline: the `<earshot-player>` component styles its shadow DOM with a `<style>`.
pub fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors {frame_ancestors}"
    )
}

fn security_headers(h: &mut HeaderMap, frame_ancestors: &str, api: bool) {
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(frame_ancestors)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if api {
        // Calls, audit rows and audio are nobody's to keep: not the browser's, not a proxy's.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// A request from a logged-in user whose role is at least `MIN` (0 viewer, 1 listener, 2
/// admin) and, with `WRITE`, carrying the session's CSRF token. The check is an extractor so
/// that no handler can forget it: a handler that takes one of these cannot run unless it
/// passed, and a handler without one is visibly public.
pub struct Authed<const MIN: u8, const WRITE: bool> {
    pub session: Session,
    /// The session token's hash (what logout ends).
    pub hash: String,
}

/// Sees the call list.
pub type Viewer = Authed<0, false>;
/// Any logged-in user changing their own state (logout).
pub type ViewerWrite = Authed<0, true>;
/// Reads the audit log.
pub type Admin = Authed<2, false>;
/// Changes the registry.
pub type AdminWrite = Authed<2, true>;

impl<const MIN: u8, const WRITE: bool> FromRequestParts<Arc<AppState>> for Authed<MIN, WRITE> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        let min = match MIN {
            0 => Role::Viewer,
            1 => Role::Listener,
            _ => Role::Admin,
        };
        let (session, hash) = require(st, &parts.headers, min, WRITE).await?;
        Ok(Authed { session, hash })
    }
}

/// The client's address, when the server was started with connect info (tests in-process may not).
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let ext = &parts.extensions;
        let peer = ext
            .get::<ConnectInfo<crate::https::PeerAddr>>()
            .map(|c| c.0 .0)
            .or_else(|| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0));
        Ok(ClientIp(peer.map(|a| a.ip().to_string())))
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The caller's session, checked for role and (on state-changing requests) for the CSRF header.
async fn require(
    state: &AppState,
    headers: &HeaderMap,
    min: Role,
    state_changing: bool,
) -> Result<(Session, String), ApiError> {
    let refuse = |reason: &str| state.metrics.refused(reason);
    let token = cookie(headers, SESSION_COOKIE).ok_or_else(|| {
        refuse("no_session");
        ApiError::Unauthorized("log in first".into())
    })?;
    let hash = auth::token_hash(&token);
    let session = state.db.session(&hash).await?.ok_or_else(|| {
        refuse("expired");
        ApiError::Unauthorized("your session has expired: log in again".into())
    })?;
    if state_changing {
        let sent = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !earshot_manager::framing::token_matches(session.csrf.as_bytes(), sent.as_bytes()) {
            refuse("csrf");
            return Err(ApiError::Forbidden(
                "missing or wrong X-CSRF-Token header: reload the page".into(),
            ));
        }
    }
    if session.role < min {
        refuse("role");
        return Err(ApiError::Forbidden(format!(
            "your role ({}) does not allow this; it needs {} or higher: ask an admin",
            session.role.as_str(),
            min.as_str()
        )));
    }
    Ok((session, hash))
}

/// The refusal a role too low for `min` gets (the same words as [`require`]'s).
fn role_refusal(st: &AppState, session: &Session, min: Role) -> Result<(), ApiError> {
    if session.role >= min {
        return Ok(());
    }
    st.metrics.refused("role");
    Err(ApiError::Forbidden(format!(
        "your role ({}) does not allow this; it needs {} or higher: ask an admin",
        session.role.as_str(),
        min.as_str()
    )))
}

/// What a sensor error says to this user: everything to admins, no addresses or far-end
/// bytes to anyone else.
fn sensor_message(e: &ManagerError, admin: bool) -> String {
    if admin {
        e.to_string()
    } else {
        e.public_message()
    }
}

/// A sensor error as an API error for this user (see [`sensor_message`]).
fn sensor_error(e: ManagerError, admin: bool) -> ApiError {
    match e {
        ManagerError::CallNotFound => ApiError::NotFound(e.to_string()),
        other => ApiError::Upstream(sensor_message(&other, admin)),
    }
}

/// Prometheus metrics; see `crate::metrics` for who may read them.
async fn metrics(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
) -> Result<Response, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let client = ip.and_then(|i| i.parse().ok());
    let config = st.config();
    let token = config.metrics_token.as_deref();
    if !earshot_metrics::scrape_allowed(token, authorization, client) {
        bump(&st.metrics.metrics_refusals);
        let reason = earshot_metrics::refusal_reason(token.is_some());
        return Err(ApiError::Forbidden(reason.into()));
    }
    Ok((
        [(header::CONTENT_TYPE, earshot_metrics::CONTENT_TYPE)],
        st.metrics.render(&st.relays),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut m = HeaderMap::new();
        m.insert(
            header::COOKIE,
            "a=1; earshot_session=tok; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&m, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&m, "c"), None);
    }
}
