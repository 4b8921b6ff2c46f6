//! The HTTP API and the WebSocket relay.

use crate::auth::{self, HashPool};
use crate::callview::CallView;
use crate::config::{Config, ProxyAuth};
use crate::db::{
    now_secs, AuditRow, Db, Role, Sensor, SensorKind, Session, FAILED, LISTENED, REFUSED,
};
use crate::directory::Directory;
use crate::error::{ApiError, ManagerError};
use crate::limiter::{retry_seconds, LoginLimiter};
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

pub const SESSION_COOKIE: &str = "earshot_session";
/// How long a login lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;
/// Time limit for one sensor's `listcalls` in `/api/calls`.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(3);
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
    config: std::sync::RwLock<Arc<Config>>,
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
    /// The sensor list the call lists were made from lately: a hundred pages' streams read it
    /// twice a second each, the database once a second at most.
    recent_sensors: Mutex<Option<(std::time::Instant, Vec<Sensor>)>>,
}

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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing held under these locks can be left half-updated by a panic worth refusing for.
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
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
            config: std::sync::RwLock::new(Arc::new(config)),
            chunks: Mutex::new(HashMap::new()),
            listening: Arc::new(Mutex::new(HashMap::new())),
            limiter: Mutex::new(limiter),
            hashes,
            metrics: PlayerMetrics::default(),
            directory: Directory::default(),
            recent_sensors: Mutex::new(None),
        })
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
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
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
        match self.config.write() {
            Ok(mut c) => *c = Arc::new(new),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(new),
        }
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
        .route("/player-worklet.js", get(web::worklet_js))
        .route("/earshot-player.js", get(web::player_js))
        .route("/style.css", get(web::style_css))
        .route("/favicon.svg", get(web::favicon))
        .route("/favicon.ico", get(web::favicon))
        .route("/embed-example.html", get(web::embed_example))
        .route("/embed-example.js", get(web::embed_example_js))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/sensors", get(list_sensors).post(add_sensor))
        .route("/api/sensors/{id}", delete(remove_sensor))
        .route("/api/calls", get(calls))
        .route("/api/calls/stream", get(calls_stream))
        .route("/api/listen", get(listen))
        .route("/api/chunk", get(chunk))
        .route("/api/audit", get(audit))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound("no such page or API endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard_response,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Every response: answered within the request time limit, and with the security headers.
async fn guard_response(
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let api = path.starts_with("/api/") || path == "/metrics";
    let config = st.config();
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
    security_headers(resp.headers_mut(), &config.limits.frame_ancestors, api);
    resp
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

#[derive(Deserialize)]
struct LoginBody {
    name: String,
    password: String,
}

async fn login(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ClientIp(peer): ClientIp,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|_| ApiError::BadRequest("send JSON {\"name\": …, \"password\": …}".into()))?;
    // Names never have surrounding spaces (the CLI and the proxy header trim them too);
    // passwords are taken exactly as typed.
    let name = body.name.trim();
    if name.is_empty() || name.len() > MAX_NAME || body.password.len() > MAX_PASSWORD {
        return Err(ApiError::BadRequest(format!(
            "the user name must be 1-{MAX_NAME} bytes and the password at most {MAX_PASSWORD}"
        )));
    }
    let address = source_ip(&st, peer, &headers);
    st.login_allowed(name, address.as_deref())?;
    let user = st.db.user(name).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| auth::DUMMY_HASH.to_string());
    // argon2 takes 19 MiB and tens of milliseconds of CPU: only on the pool's few threads.
    let slot = st.hashes.slot(HASH_WAIT).await.map_err(|_| {
        bump(&st.metrics.login_busy);
        ApiError::Unavailable {
            message: "the player is busy checking other logins: try again in a few seconds".into(),
            retry_after: 2,
        }
    })?;
    // Again: failures may have locked this user out while the login waited for a thread.
    st.login_allowed(name, address.as_deref())?;
    let ok = slot.verify(body.password, hash).await.unwrap_or(false);
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            bump(&st.metrics.login_failures);
            lock(&st.limiter).failed(name, address.as_deref(), std::time::Instant::now());
            return Err(ApiError::Unauthorized("wrong user name or password".into()));
        }
    };
    lock(&st.limiter).succeeded(name);
    bump(&st.metrics.logins);
    start_session(&st, &user).await
}

impl AppState {
    /// Refuses a login for a name or address that failed too often lately (HTTP 429).
    fn login_allowed(&self, name: &str, address: Option<&str>) -> Result<(), ApiError> {
        let checked = lock(&self.limiter).check(name, address, std::time::Instant::now());
        checked.map_err(|locked| {
            bump(&self.metrics.login_locked);
            let secs = retry_seconds(locked.retry_after);
            ApiError::TooMany {
                message: format!(
                    "too many failed logins for this user or from this address: try again in {secs} s"
                ),
                retry_after: secs,
            }
        })
    }
}

/// A new session for `user`: the cookie, and the CSRF token in the body.
async fn start_session(st: &AppState, user: &crate::db::User) -> Result<Response, ApiError> {
    let (token, csrf) = auth::new_tokens().map_err(|e| ApiError::Internal(e.to_string()))?;
    st.db
        .create_session(
            &auth::token_hash(&token),
            user.id,
            &csrf,
            now_secs() + SESSION_SECONDS,
        )
        .await?;
    let secure = if st.config().secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let set = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}"
    );
    let mut resp =
        Json(json!({"name": user.name, "role": user.role, "csrf": csrf})).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&set).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(resp)
}

async fn logout(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (_, hash) = require(&st, &headers, Role::Viewer, true).await?;
    st.db.end_session(&hash).await?;
    let mut resp = Json(json!({"ok": true})).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("earshot_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

/// Who is logged in. Behind a trusted reverse proxy that names the user, this is also where
/// the session starts: the page asks here first, so single sign-on needs no login form.
async fn me(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ClientIp(peer): ClientIp,
) -> Result<Response, ApiError> {
    let current = require(&st, &headers, Role::Viewer, false).await;
    let Some(name) = proxy_user(&st, peer.as_deref(), &headers) else {
        let (s, _) = current?;
        return Ok(
            Json(json!({"name": s.user_name, "role": s.role, "csrf": s.csrf})).into_response(),
        );
    };
    match current {
        Ok((s, _)) if s.user_name == name => {
            Ok(Json(json!({"name": s.user_name, "role": s.role, "csrf": s.csrf})).into_response())
        }
        other => {
            // The proxy now names someone else (or nobody was logged in): its word wins.
            if let Ok((_, hash)) = other {
                st.db.end_session(&hash).await?;
            }
            let user = st.db.user(&name).await?.ok_or_else(|| {
                ApiError::Forbidden(format!(
                    "the proxy says you are {name:?}, but the player has no such user: an admin adds it with `earshot users add {name} --role viewer`"
                ))
            })?;
            tracing::info!("session for {name} from the reverse proxy's header");
            start_session(&st, &user).await
        }
    }
}

/// The user named by a trusted reverse proxy's header, if this request came from one.
fn proxy_user(st: &AppState, peer: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let config = st.config();
    let proxy = config.proxy_auth.as_ref()?;
    if !from_trusted_proxy(proxy, peer) {
        return None;
    }
    let name = headers.get(proxy.header.as_str())?.to_str().ok()?.trim();
    (!name.is_empty() && name.len() <= 255).then(|| name.to_string())
}

/// Takes the proxy settings from the caller, so that a reload between two reads cannot make
/// one request trust the header under one configuration and the address under another.
fn from_trusted_proxy(proxy: &ProxyAuth, peer: Option<&str>) -> bool {
    let Some(ip) = peer.and_then(|p| p.parse::<std::net::IpAddr>().ok()) else {
        return false;
    };
    proxy.trusted.iter().any(|net| net.contains(&ip))
}

/// The address the audit records: behind a trusted proxy, the client its `X-Forwarded-For`
/// names (the last hop, the one the proxy itself added); otherwise the connection's peer.
fn source_ip(st: &AppState, peer: Option<String>, headers: &HeaderMap) -> Option<String> {
    let config = st.config();
    let trusted = config
        .proxy_auth
        .as_ref()
        .is_some_and(|proxy| from_trusted_proxy(proxy, peer.as_deref()));
    if trusted {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| v.parse::<std::net::IpAddr>().is_ok())
            .map(str::to_string);
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer
}

async fn list_sensors(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (session, _) = require(&st, &headers, Role::Viewer, false).await?;
    let sensors = st.all_sensors().await?;
    let registered: HashSet<i64> = st.db.sensors().await?.iter().map(|s| s.id_sensor).collect();
    let checks = sensors
        .iter()
        .map(|s| manager::online(s, Duration::from_secs(1)));
    let online = futures_util::future::join_all(checks).await;
    let list: Vec<Value> = sensors
        .iter()
        .zip(online)
        .map(|(s, on)| {
            let mut v =
                json!({"id_sensor": s.id_sensor, "name": s.name, "kind": s.kind, "online": on});
            // Where sensors live is for admins; the token itself never leaves the backend.
            if session.role >= Role::Admin {
                v["host"] = json!(s.host);
                v["port"] = json!(s.port);
                v["tls"] = json!(s.tls);
                v["token"] = json!(s.token.is_some());
                v["registered"] = json!(registered.contains(&s.id_sensor));
            }
            v
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

#[derive(Deserialize)]
struct NewSensor {
    id_sensor: i64,
    name: String,
    host: String,
    port: u16,
    token: Option<String>,
    #[serde(default)]
    tls: bool,
    kind: Option<String>,
}

/// Checks the fields of a sensor being registered (CLI and API share it).
pub fn validate_sensor(s: &Sensor) -> Result<(), String> {
    if s.host.is_empty() || s.host.len() > 255 || s.host.contains(char::is_whitespace) {
        return Err("host must be a host name or address without spaces".into());
    }
    if s.port == 0 {
        return Err("port must be 1-65535".into());
    }
    if s.name.is_empty() || s.name.len() > 255 {
        return Err("name must be 1-255 characters".into());
    }
    if s.token.as_deref().is_some_and(|t| t.contains(['\r', '\n'])) {
        return Err("the token must be one line".into());
    }
    Ok(())
}

async fn add_sensor(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<NewSensor>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require(&st, &headers, Role::Admin, true).await?;
    let Json(b) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "send JSON {{id_sensor, name, host, port, token?, tls?, kind?}}: {e}"
        ))
    })?;
    let kind = match b.kind.as_deref() {
        None => SensorKind::Earshot,
        Some(k) => k.parse().map_err(ApiError::BadRequest)?,
    };
    let s = Sensor {
        id_sensor: b.id_sensor,
        name: b.name,
        host: b.host,
        port: b.port,
        token: crate::config::normalize_token(b.token),
        tls: b.tls,
        kind,
    };
    validate_sensor(&s).map_err(ApiError::BadRequest)?;
    st.db.add_sensor(&s).await?;
    *lock(&st.recent_sensors) = None;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id_sensor": s.id_sensor, "name": s.name, "kind": s.kind})),
    ))
}

async fn remove_sensor(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    require(&st, &headers, Role::Admin, true).await?;
    *lock(&st.recent_sensors) = None;
    if !st.db.remove_sensor(id).await? {
        return Err(ApiError::NotFound(format!("sensor {id} is not registered")));
    }
    Ok(Json(json!({"removed": id})))
}

#[derive(Deserialize)]
pub struct CallsQuery {
    /// Only calls whose numbers, Call-ID, reference, state or codecs contain this
    /// (case-insensitive).
    q: Option<String>,
    /// The first call to return, of those that pass `q` (default 0).
    offset: Option<usize>,
    /// At most this many calls (default: all).
    limit: Option<usize>,
}

#[derive(Serialize)]
struct SensorErrorView {
    sensor_id: i64,
    error: String,
}

#[derive(Serialize)]
struct CallsReply {
    calls: Vec<CallView>,
    /// Calls that pass `q`, before `offset` and `limit`.
    total: usize,
    errors: Vec<SensorErrorView>,
}

async fn calls(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<CallsQuery>,
) -> Result<Json<CallsReply>, ApiError> {
    let (session, _) = require(&st, &headers, Role::Viewer, false).await?;
    let admin = session.role >= Role::Admin;
    bump(&st.metrics.call_list_requests);
    let sensors = st.listed_sensors().await?;
    // From the directory: no sensor is asked anything for this page. A sensor whose feed has
    // just started (or is reconnecting) is waited for, within the same limit a direct request
    // had; one dead sensor does not hold up the others' calls.
    let query = crate::directory::WindowQuery {
        q: q.q.as_deref().unwrap_or("").trim().to_ascii_lowercase(),
        offset: q.offset.unwrap_or(0),
        limit: q.limit.unwrap_or(usize::MAX),
    };
    let win = st.directory.window(&sensors, &query, LIST_TIMEOUT).await;
    let total = win.total;
    let calls = win.rows.iter().map(|r| (*r.call).clone()).collect();
    for _ in &win.errors {
        bump(&st.metrics.sensor_errors);
    }
    let errors = win
        .errors
        .iter()
        .map(|(sensor_id, e)| SensorErrorView {
            sensor_id: *sensor_id,
            error: sensor_message(e, admin),
        })
        .collect();
    Ok(Json(CallsReply {
        calls,
        total,
        errors,
    }))
}

/// Rows a page may ask for at once on the stream (a screen or two of a virtual list).
const MAX_WINDOW: usize = 1_000;
/// How often a page's window is looked at: a change reaches the page within this (plus the
/// sensor's own once-a-second rate limit on numbers).
const STREAM_EVERY: Duration = Duration::from_millis(500);
/// How often a stream checks that its session is still valid (logout, expiry, a removed user).
const STREAM_SESSION_CHECK: Duration = Duration::from_secs(10);

/// `GET /api/calls/stream?q=&offset=&limit=`: Server-Sent Events, one `window` event when the
/// page's window changed: the rows' keys in order (`order`), the rows that are new or changed
/// since the last event (`upsert`, each call with its `key`), the keys that left (`remove`),
/// `total` (calls passing `q`) and `errors`. The first event has every row. A page changes
/// what it shows (scrolling, the filter) by opening a new stream.
async fn calls_stream(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<CallsQuery>,
) -> Result<Response, ApiError> {
    let (session, _) = require(&st, &headers, Role::Viewer, false).await?;
    bump(&st.metrics.call_list_requests);
    let query = crate::directory::WindowQuery {
        q: q.q.as_deref().unwrap_or("").trim().to_ascii_lowercase(),
        offset: q.offset.unwrap_or(0),
        limit: q.limit.unwrap_or(100).min(MAX_WINDOW),
    };
    let page = PageStream {
        st,
        headers,
        admin: session.role >= Role::Admin,
        query,
        sent: HashMap::new(),
        last: None,
        last_head: None,
        checked: std::time::Instant::now(),
        first: true,
    };
    let events = futures_util::stream::unfold(page, |mut page| async move {
        let event = page.next().await?;
        Some((Ok::<_, Infallible>(event), page))
    });
    Ok(axum::response::sse::Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response())
}

/// One page's stream: what it was sent, to send only what changed.
struct PageStream {
    st: Arc<AppState>,
    headers: HeaderMap,
    admin: bool,
    query: crate::directory::WindowQuery,
    /// Key → rev of every row the page holds.
    sent: HashMap<String, u64>,
    last: Option<Arc<crate::directory::Window>>,
    /// The order, total and errors last sent: a window that differs only in rows the page
    /// already has is not sent again.
    last_head: Option<Value>,
    checked: std::time::Instant,
    first: bool,
}

#[derive(Serialize)]
struct WindowRow<'a> {
    key: &'a str,
    #[serde(flatten)]
    call: &'a CallView,
}

impl PageStream {
    /// The next event; `None` ends the stream (the session is gone).
    async fn next(&mut self) -> Option<axum::response::sse::Event> {
        loop {
            if !self.first {
                tokio::time::sleep(STREAM_EVERY).await;
            }
            self.first = false;
            if self.checked.elapsed() >= STREAM_SESSION_CHECK {
                self.checked = std::time::Instant::now();
                require(&self.st, &self.headers, Role::Viewer, false)
                    .await
                    .ok()?;
            }
            let sensors = self.st.listed_sensors().await.ok()?;
            let win = self
                .st
                .directory
                .window(&sensors, &self.query, LIST_TIMEOUT)
                .await;
            if self.last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &win)) {
                continue;
            }
            if let Some(event) = self.diff(&win) {
                self.last = Some(win);
                return Some(event);
            }
            self.last = Some(win);
        }
    }

    /// The event for `win` against what the page holds, or `None` when it would say nothing.
    fn diff(&mut self, win: &crate::directory::Window) -> Option<axum::response::sse::Event> {
        let order: Vec<&str> = win.rows.iter().map(|r| r.key.as_str()).collect();
        let errors: Vec<SensorErrorView> = win
            .errors
            .iter()
            .map(|(sensor_id, e)| SensorErrorView {
                sensor_id: *sensor_id,
                error: sensor_message(e, self.admin),
            })
            .collect();
        let head = json!({"total": win.total, "offset": self.query.offset, "order": order, "errors": errors});
        let upsert: Vec<WindowRow> = win
            .rows
            .iter()
            .filter(|r| self.sent.get(&r.key) != Some(&r.rev))
            .map(|r| WindowRow {
                key: &r.key,
                call: &r.call,
            })
            .collect();
        let keep: HashSet<&str> = order.iter().copied().collect();
        let remove: Vec<String> = self
            .sent
            .keys()
            .filter(|k| !keep.contains(k.as_str()))
            .cloned()
            .collect();
        if upsert.is_empty() && remove.is_empty() && self.last_head.as_ref() == Some(&head) {
            return None;
        }
        let mut body = head.clone();
        body["upsert"] = json!(upsert);
        body["remove"] = json!(remove);
        for k in &remove {
            self.sent.remove(k);
        }
        for r in &win.rows {
            self.sent.insert(r.key.clone(), r.rev);
        }
        self.last_head = Some(head);
        Some(
            axum::response::sse::Event::default()
                .event("window")
                .data(body.to_string()),
        )
    }
}

#[derive(Deserialize)]
pub struct ListenQuery {
    sensor_id: Option<i64>,
    callref: Option<String>,
    rate: Option<u32>,
    channels: Option<u8>,
    from: Option<String>,
    listen_id: Option<String>,
}

fn callref_of(q: &ListenQuery) -> Result<String, ApiError> {
    let r = q.callref.as_deref().ok_or_else(|| {
        ApiError::BadRequest("callref is missing: pick a call from the list".into())
    })?;
    if !manager::valid_callref(r) {
        return Err(ApiError::BadRequest(format!(
            "callref {r:?} is not a call reference (hex, as the call list shows it)"
        )));
    }
    Ok(r.to_string())
}

/// The `stream` options, validated so nothing but known values reaches the sensor.
fn stream_options(q: &ListenQuery) -> Result<String, ApiError> {
    let rate = q.rate.unwrap_or(8000);
    if !matches!(rate, 8000 | 16000 | 48000) {
        return Err(ApiError::BadRequest(
            "rate must be 8000, 16000 or 48000".into(),
        ));
    }
    let channels = q.channels.unwrap_or(1);
    if !matches!(channels, 1 | 2) {
        return Err(ApiError::BadRequest("channels must be 1 or 2".into()));
    }
    let from = q.from.as_deref().unwrap_or("now");
    let from_ok = matches!(from, "now" | "start")
        || from.strip_prefix('-').is_some_and(|n| {
            !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit())
        });
    if !from_ok {
        return Err(ApiError::BadRequest(
            "from must be now, start or -SECONDS (e.g. -30)".into(),
        ));
    }
    Ok(format!("rate={rate} channels={channels} from={from}"))
}

/// Browsers always send Origin on WebSocket requests; a page from another site must not be
/// able to open a listening session with the user's cookie.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser (curl, scripts): no cross-site risk, and the cookie is still required.
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

async fn listen(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    Query(q): Query<ListenQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let checked = match require(&st, &headers, Role::Viewer, false).await {
        Err(e) => Err((None, e)),
        Ok((session, _)) => match check_listen(&st, &headers, &q, &session).await {
            Ok(c) => Ok((session, c)),
            Err(e) => Err((Some(session), e)),
        },
    };
    let attempt = |session: &Session| AuditRow {
        user_name: session.user_name.clone(),
        source_ip: source_ip(&st, ip.clone(), &headers),
        id_sensor: q.sensor_id,
        callreference: q.callref.clone().unwrap_or_default(),
        via: Some("websocket".into()),
        ..AuditRow::default()
    };
    let (session, (sensor, callref, options, slot)) = match checked {
        Ok(c) => c,
        Err((session, e)) => {
            if let Some(session) = &session {
                st.audit_attempt(attempt(session), REFUSED, &e.to_string())
                    .await;
            }
            let Ok(ws) = ws else { return Err(e) };
            // A browser cannot read the body of a refused upgrade: accept it, say why in the
            // page's own terms, and close, so the page shows the reason instead of retrying.
            let text = e.to_string();
            return Ok(ws.on_upgrade(move |mut socket| async move {
                send_error(&mut socket, &text, false).await
            }));
        }
    };
    let Ok(ws) = ws else {
        return Err(ApiError::BadRequest(
            "/api/listen needs a WebSocket connection".into(),
        ));
    };
    let mut audit = attempt(&session);
    audit.id_sensor = Some(sensor.id_sensor);
    audit.callreference = callref.clone();
    let session = RelaySession {
        sensor,
        callref,
        options,
        audit,
        admin: session.role >= Role::Admin,
        _slot: slot,
    };
    Ok(ws.on_upgrade(move |socket| relay(st, socket, session)))
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

/// Everything a listening session needs before it may start: a listener's role, the
/// player's own origin, a known sensor, a valid call reference and stream options, and room
/// under the user's cap on the call.
async fn check_listen(
    st: &AppState,
    headers: &HeaderMap,
    q: &ListenQuery,
    session: &Session,
) -> Result<(Sensor, String, String, ListenSlot), ApiError> {
    role_refusal(st, session, Role::Listener)?;
    if !same_origin(headers) {
        return Err(ApiError::Forbidden(
            "this page's origin may not open listening sessions: open the player from its own address".into(),
        ));
    }
    let sensor = st.sensor(q.sensor_id).await?;
    let callref = callref_of(q)?;
    let options = stream_options(q)?;
    let slot = st.listen_slot(session.user_id, sensor.id_sensor, &callref)?;
    Ok((sensor, callref, options, slot))
}

/// Tells the page why the session ends; `retry` says whether reconnecting may help, so the
/// page neither hammers a sensor that refuses it nor gives up on one that restarts.
async fn send_error(socket: &mut WebSocket, message: &str, retry: bool) {
    let text = json!({"type": "error", "error": message, "retry": retry}).to_string();
    let _ = socket.send(Message::Text(text.into())).await;
    let _ = socket.send(Message::Close(None)).await;
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

/// A listening session accepted by [`listen`], waiting for its WebSocket.
struct RelaySession {
    sensor: Sensor,
    callref: String,
    options: String,
    audit: AuditRow,
    admin: bool,
    /// Held for as long as the session lasts.
    _slot: ListenSlot,
}

/// One listening session: sensor frames to the browser until either side ends.
async fn relay(st: Arc<AppState>, mut socket: WebSocket, session: RelaySession) {
    let RelaySession {
        sensor,
        callref,
        options,
        mut audit,
        admin,
        _slot,
    } = session;
    let source = match sensor.kind {
        SensorKind::Earshot => StreamConn::open(&sensor, &callref, &options)
            .await
            .map(Source::Stream),
        SensorKind::Voipmonitor => Poller::open(&sensor, &callref).await.map(Source::Poll),
    };
    let mut source = match source {
        Ok(s) => s,
        Err(e) => {
            bump(&st.metrics.listen_failures);
            st.audit_attempt(audit, FAILED, &e.to_string()).await;
            return send_error(&mut socket, &sensor_message(&e, admin), e.retryable()).await;
        }
    };
    let header = source.header();
    let text_of = |k: &str| header.get(k).and_then(Value::as_str).map(str::to_string);
    audit.callid = text_of("callid");
    audit.caller = text_of("caller");
    audit.called = text_of("called");
    audit.started = now_secs();
    audit.outcome = Some(LISTENED.into());
    let audit_id = match st.db.audit_start(&audit).await {
        Ok(id) => id,
        Err(e) => {
            // No audit, no listening: the log is the point of the audit.
            tracing::error!("audit insert failed: {e}");
            bump(&st.metrics.listen_failures);
            source.stop().await;
            return send_error(
                &mut socket,
                "the player cannot write its audit log; see its log",
                false,
            )
            .await;
        }
    };
    let mut first = serde_json::Map::new();
    first.insert("type".into(), json!("header"));
    first.extend(header);
    let counted = st.metrics.session();
    let (mut tx, mut rx) = socket.split();
    // A browser that vanished without a close (a dead link) is found by its silence: it
    // answers pings by itself, so nothing heard for WS_IDLE_TIMEOUT means nobody is there.
    // The first ping one interval from now, not at once: a healthy session sees few.
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + WS_PING_INTERVAL,
        WS_PING_INTERVAL,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = std::time::Instant::now();
    if tx
        .send(Message::Text(Value::Object(first).to_string().into()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                frame = source.next_frame() => match frame {
                    Ok(Some(f)) => {
                        let end = f.first() == Some(&earshot_manager::stream_proto::KIND_END);
                        let (arrived, len) = (std::time::Instant::now(), f.len() as u64);
                        // A browser that stops reading (a frozen tab, a dead link) must not hold
                        // the sensor connection open forever: give up on it after a while.
                        let sent = tokio::time::timeout(BROWSER_SEND_TIMEOUT, tx.send(Message::Binary(f.into()))).await;
                        if !matches!(sent, Ok(Ok(()))) {
                            break;
                        }
                        st.metrics.relay_latency.observe(arrived.elapsed());
                        bump(&st.metrics.relay_frames);
                        st.metrics.relay_bytes.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                        if end {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let text = json!({"type": "error", "error": sensor_message(&e, admin), "retry": e.retryable()}).to_string();
                        let _ = tokio::time::timeout(BROWSER_SEND_TIMEOUT, tx.send(Message::Text(text.into()))).await;
                        break;
                    }
                },
                msg = rx.next() => match msg {
                    // The page has nothing to say; anything but a close is ignored.
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => heard = std::time::Instant::now(),
                },
                _ = ping.tick() => {
                    if heard.elapsed() >= WS_IDLE_TIMEOUT {
                        break;
                    }
                    let sent = tokio::time::timeout(BROWSER_SEND_TIMEOUT, tx.send(Message::Ping(Vec::new().into()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                }
            }
        }
    }
    let _ = tokio::time::timeout(BROWSER_SEND_TIMEOUT, tx.send(Message::Close(None))).await;
    source.stop().await;
    drop(counted);
    if let Err(e) = st.db.audit_stop(audit_id, now_secs()).await {
        tracing::error!("audit stop failed: {e}");
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
        st.metrics.render(),
    )
        .into_response())
}

enum Source {
    Stream(StreamConn),
    Poll(Poller),
}

impl Source {
    fn header(&self) -> serde_json::Map<String, Value> {
        match self {
            Source::Stream(s) => s.header.clone(),
            Source::Poll(p) => p.header.clone(),
        }
    }

    async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ManagerError> {
        match self {
            Source::Stream(s) => s.next_frame().await,
            Source::Poll(p) => p.next_frame().await,
        }
    }

    async fn stop(&mut self) {
        if let Source::Poll(p) = self {
            p.stop().await;
        }
    }
}

/// VoIPmonitor sensors have no `stream`: poll `readaudio` and dress the PCM as stream frames,
/// so the browser code is the same for both kinds.
struct Poller {
    sensor: Sensor,
    callref: String,
    listen_id: String,
    header: serde_json::Map<String, Value>,
    seq: u32,
    /// Half a sample left over from a reply of odd length.
    carry: Option<u8>,
    ended: bool,
    ticker: tokio::time::Interval,
}

impl Poller {
    async fn open(sensor: &Sensor, callref: &str) -> Result<Poller, ManagerError> {
        let listen_id = format!("earshot-player-{:x}", crate::db::random_id());
        manager::listen(sensor, callref, &listen_id).await?;
        // Best effort: the call list gives the Call-ID and parties for the header and audit.
        let call = manager::find_call(sensor, callref).await.ok().flatten();
        let field =
            |f: fn(&CallView) -> &Value| call.as_ref().map_or(Value::Null, |c| f(c).clone());
        let header = json!({
            "version": 1, "callreference": callref, "callid": field(|c| &c.callid),
            "caller": field(|c| &c.caller), "called": field(|c| &c.called),
            "format": "s16le", "rate": 8000, "channels": 1, "from": "now",
        });
        let header = match header {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        Ok(Poller {
            sensor: sensor.clone(),
            callref: callref.to_string(),
            listen_id,
            header,
            seq: 0,
            carry: None,
            ended: false,
            ticker: tokio::time::interval(POLL_INTERVAL),
        })
    }

    async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ManagerError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            self.ticker.tick().await;
            match manager::read_audio(&self.sensor, &self.callref, &self.listen_id).await? {
                ReadAudio::Wait => continue,
                ReadAudio::Gone(why) => {
                    self.ended = true;
                    let end = Frame::End(EndFrame {
                        reason: EndReason::CallEnded,
                        detail: Some(why),
                    });
                    let mut out = Vec::new();
                    encode_frame(&end, &mut out)
                        .map_err(|e| ManagerError::Protocol(e.to_string()))?;
                    return Ok(Some(out));
                }
                ReadAudio::Pcm(bytes) => {
                    let mut all = Vec::with_capacity(bytes.len() + 1);
                    all.extend(self.carry.take());
                    all.extend_from_slice(&bytes);
                    if all.len() % 2 == 1 {
                        self.carry = all.pop();
                    }
                    if all.is_empty() {
                        continue;
                    }
                    let samples: Vec<i16> = all
                        .chunks_exact(2)
                        .map(|c| i16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    // VoIPmonitor gives no capture time: the poll's wall clock, minus the
                    // audio's length, is the best estimate of the first sample's.
                    let dur_ns = samples.len() as i64 * 1_000_000_000 / 8000;
                    let now_ns = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos() as i64)
                        .unwrap_or(0);
                    let frame = Frame::Audio(AudioFrame {
                        seq: self.seq,
                        capture_ts_ns: now_ns - dur_ns,
                        rate: 8000,
                        channels: 1,
                        samples,
                    });
                    self.seq = self.seq.wrapping_add(1);
                    let mut out = Vec::new();
                    encode_frame(&frame, &mut out)
                        .map_err(|e| ManagerError::Protocol(e.to_string()))?;
                    return Ok(Some(out));
                }
            }
        }
    }

    async fn stop(&mut self) {
        let _ = manager::listen_stop(&self.sensor, &self.callref, &self.listen_id).await;
    }
}

async fn chunk(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    Query(q): Query<ListenQuery>,
) -> Result<Response, ApiError> {
    let (session, _) = require(&st, &headers, Role::Viewer, false).await?;
    bump(&st.metrics.chunk_requests);
    st.sweep_chunks().await;
    let admin = session.role >= Role::Admin;
    let mut row = AuditRow {
        user_name: session.user_name.clone(),
        source_ip: source_ip(&st, ip, &headers),
        id_sensor: q.sensor_id,
        callreference: q.callref.clone().unwrap_or_default(),
        via: Some("chunk".into()),
        ..AuditRow::default()
    };
    let (sensor, callref, listen_id) = match check_chunk(&st, &session, &q).await {
        Ok(c) => c,
        Err(e) => {
            st.audit_attempt(row, REFUSED, &e.to_string()).await;
            return Err(e);
        }
    };
    row.id_sensor = Some(sensor.id_sensor);
    row.callreference = callref.clone();
    let key = (
        session.user_id,
        sensor.id_sensor,
        manager::normalize_ref(&callref),
        listen_id.clone(),
    );
    let known = lock(&st.chunks).get_mut(&key).map(|c| {
        c.last_poll = std::time::Instant::now();
        c.sensor_listen_id.clone()
    });
    let sensor_listen_id = match known {
        Some(id) => id,
        None => {
            start_chunk(
                &st,
                &session,
                row,
                key.clone(),
                &sensor,
                &callref,
                &listen_id,
            )
            .await?
        }
    };
    let pcm = match manager::read_audio(&sensor, &callref, &sensor_listen_id).await {
        Ok(ReadAudio::Pcm(p)) => p,
        Ok(ReadAudio::Wait) => Vec::new(),
        Ok(ReadAudio::Gone(why)) => {
            let ended = lock(&st.chunks).remove(&key);
            if let Some(c) = ended {
                st.end_chunk(c).await;
            }
            return Err(ApiError::NotFound(format!(
                "no more audio: {why} (the call ended or the listener timed out; start again)"
            )));
        }
        Err(e) => return Err(sensor_error(e, admin)),
    };
    let wav = wav_8k_mono(&pcm).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], wav).into_response())
}

/// The role, sensor, call reference and listen id of an `/api/chunk` request.
async fn check_chunk(
    st: &AppState,
    session: &Session,
    q: &ListenQuery,
) -> Result<(Sensor, String, String), ApiError> {
    role_refusal(st, session, Role::Listener)?;
    let sensor = st.sensor(q.sensor_id).await?;
    let callref = callref_of(q)?;
    let listen_id = q
        .listen_id
        .clone()
        .unwrap_or_else(|| "earshot-chunk".into());
    if !manager::valid_listen_id(&listen_id) {
        return Err(ApiError::BadRequest(
            "listen_id must be 1-64 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    Ok((sensor, callref, listen_id))
}

/// The first poll of a chunk session: room under the caps, `listen` on the sensor, the audit
/// row. Returns the id the sensor knows the session by.
async fn start_chunk(
    st: &AppState,
    session: &Session,
    mut row: AuditRow,
    key: ChunkKey,
    sensor: &Sensor,
    callref: &str,
    listen_id: &str,
) -> Result<String, ApiError> {
    let full = lock(&st.chunks).len() >= MAX_CHUNK_SESSIONS;
    let slot = if full {
        bump(&st.metrics.listen_cap_refusals);
        Err(ApiError::Unavailable {
            message: format!(
                "the player holds {MAX_CHUNK_SESSIONS} /api/chunk sessions already: try again once some have ended"
            ),
            retry_after: 10,
        })
    } else {
        st.listen_slot(session.user_id, sensor.id_sensor, callref)
    };
    let slot = match slot {
        Ok(s) => s,
        Err(e) => {
            st.audit_attempt(row, REFUSED, &e.to_string()).await;
            return Err(e);
        }
    };
    let sensor_listen_id = format!(
        "chunk-{}",
        &auth::token_hash(&format!("{}/{listen_id}", session.user_id))[..32]
    );
    if let Err(e) = manager::listen(sensor, callref, &sensor_listen_id).await {
        bump(&st.metrics.listen_failures);
        st.audit_attempt(row, FAILED, &e.to_string()).await;
        return Err(sensor_error(e, session.role >= Role::Admin));
    }
    row.started = now_secs();
    row.outcome = Some(LISTENED.into());
    let audit_id = match st.db.audit_start(&row).await {
        Ok(id) => id,
        Err(e) => {
            // No audit, no listening.
            let _ = manager::listen_stop(sensor, callref, &sensor_listen_id).await;
            return Err(e.into());
        }
    };
    let c = ChunkSession {
        sensor: sensor.clone(),
        callref: callref.to_string(),
        sensor_listen_id: sensor_listen_id.clone(),
        audit_id,
        last_poll: std::time::Instant::now(),
        _slot: slot,
    };
    // Two first polls at once: the later one wins the table, the earlier row is closed.
    let replaced = lock(&st.chunks).insert(key, c);
    if let Some(old) = replaced {
        if let Err(e) = st.db.audit_stop(old.audit_id, now_secs()).await {
            tracing::error!("audit stop failed: {e}");
        }
    }
    Ok(sensor_listen_id)
}

/// 8 kHz mono 16-bit WAV of little-endian PCM bytes (an odd last byte is dropped).
pub fn wav_8k_mono(pcm: &[u8]) -> Result<Vec<u8>, hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec)?;
        for c in pcm.chunks_exact(2) {
            w.write_sample(i16::from_le_bytes([c[0], c[1]]))?;
        }
        w.finalize()?;
    }
    Ok(cursor.into_inner())
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
}

async fn audit(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&st, &headers, Role::Admin, false).await?;
    let rows = st.db.audit(q.limit.unwrap_or(100).clamp(1, 10_000)).await?;
    Ok(Json(json!(rows)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(rate: Option<u32>, channels: Option<u8>, from: Option<&str>) -> ListenQuery {
        ListenQuery {
            sensor_id: None,
            callref: Some("abc".into()),
            rate,
            channels,
            from: from.map(str::to_string),
            listen_id: None,
        }
    }

    #[test]
    fn stream_options_accept_only_known_values() {
        assert_eq!(
            stream_options(&q(None, None, None)).unwrap(),
            "rate=8000 channels=1 from=now"
        );
        assert_eq!(
            stream_options(&q(Some(48000), Some(2), Some("-30"))).unwrap(),
            "rate=48000 channels=2 from=-30"
        );
        for bad in [
            q(Some(44100), None, None),
            q(None, Some(3), None),
            q(None, None, Some("-")),
            q(None, None, Some("start\nlistcalls")),
        ] {
            assert!(stream_options(&bad).is_err());
        }
    }

    #[test]
    fn origin_must_match_host() {
        let h = |origin: Option<&str>, host: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, host.parse().unwrap());
            if let Some(o) = origin {
                m.insert(header::ORIGIN, o.parse().unwrap());
            }
            same_origin(&m)
        };
        assert!(h(Some("http://player:8080"), "player:8080"));
        assert!(h(Some("https://Player.example"), "player.example"));
        assert!(h(None, "player:8080"));
        assert!(!h(Some("http://evil.example"), "player:8080"));
        assert!(!h(Some("http://player:8081"), "player:8080"));
        assert!(!h(Some("null"), "player:8080"));
    }

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

    #[test]
    fn wav_is_8k_mono() {
        let wav = wav_8k_mono(&[1, 0, 2, 0, 9]).unwrap();
        let r = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
        assert_eq!(
            (r.spec().sample_rate, r.spec().channels, r.len()),
            (8000, 1, 2)
        );
    }
}
