//! `/api/v1`: the versioned JSON API for other systems' backends, authenticated with API keys
//! (`Authorization: Bearer esk_…`, `earshot keys add`): the call list, one call, and listen
//! tokens that let a browser on another site listen to one call (`/api/listen?token=…`).
//! Described by `/api/v1/openapi.json` (docs/api.md).

use super::*;
use crate::db::ApiKey;
use crate::directory::WindowQuery;
use crate::tokens::{self, ListenGrant};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/calls", get(list_calls))
        .route("/api/v1/calls/{sensor}/{callref}", get(one_call))
        .route("/api/v1/listen-tokens", post(mint_token))
        .route("/api/v1/openapi.json", get(openapi))
}

/// The OpenAPI 3.1 description of `/api/v1` (and of `/api/listen?token=`), hand-written:
/// the API is small, and a generator would cost a dependency and macros on every handler.
const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Rows of `/api/v1/calls` by default and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// The longest end-user name a token may carry (the audit column's width).
const MAX_USER: usize = 255;

/// A request with a valid, unexpired API key within its rate. As an extractor, like
/// [`Authed`]: a handler taking one cannot run without the check.
pub struct KeyAuthed(pub ApiKey);

impl FromRequestParts<Arc<AppState>> for KeyAuthed {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        let key = api_key(st, &parts.headers).await?;
        st.count_key_request(&key)?;
        Ok(KeyAuthed(key))
    }
}

/// The key the request carries, looked up in the database each time (no cache: revoking it
/// on any player sharing the database refuses it everywhere at once).
async fn api_key(st: &AppState, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
    let refuse = |why: &str, message: &str| {
        st.metrics.refused(why);
        ApiError::Unauthorized(message.into())
    };
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| refuse("no_key", "send an API key as `Authorization: Bearer esk_…`; an admin creates one with `earshot keys add NAME --role listener`"))?;
    if !sent.starts_with(tokens::KEY_PREFIX) {
        return Err(refuse(
            "bad_key",
            "that is not an earshot API key (they start with esk_): check what your backend sends",
        ));
    }
    let key = st
        .db
        .api_key_by_hash(&auth::token_hash(sent))
        .await?
        .ok_or_else(|| refuse("bad_key", "this API key is not known (revoked, or mistyped): ask an admin for a new one (`earshot keys add`)"))?;
    if key.expired(now_secs()) {
        return Err(refuse(
            "key_expired",
            &format!(
                "the API key {} has expired: ask an admin for a new one",
                key.name
            ),
        ));
    }
    Ok(key)
}

/// The refusal for a sensor a key may not use (the same words whether or not it exists, so a
/// key limited to some sensors learns nothing of the others).
fn sensor_refusal(key: &ApiKey, sensor: i64) -> ApiError {
    let allowed = key
        .sensors
        .iter()
        .flatten()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    ApiError::Forbidden(format!(
        "the API key {} may not use sensor {sensor} (it is limited to sensors {allowed}): ask an admin for a key with --sensors including it",
        key.name
    ))
}

fn check_sensor(st: &AppState, key: &ApiKey, sensor: i64) -> Result<(), ApiError> {
    if key.allows_sensor(sensor) {
        return Ok(());
    }
    st.metrics.refused("key_sensor");
    Err(sensor_refusal(key, sensor))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V1CallsQuery {
    /// Only calls whose numbers, Call-ID, reference, state or codecs contain this.
    q: Option<String>,
    /// Only this sensor's calls.
    sensor_id: Option<i64>,
    offset: Option<usize>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct V1Calls {
    calls: Vec<CallView>,
    /// Calls that pass the filters, before `offset` and `limit`.
    total: usize,
    offset: usize,
    limit: usize,
    errors: Vec<V1SensorError>,
}

#[derive(Serialize)]
struct V1SensorError {
    sensor_id: i64,
    error: String,
}

/// `GET /api/v1/calls?q=&sensor_id=&offset=&limit=`: the active calls of the sensors the key
/// may see.
async fn list_calls(
    State(st): State<Arc<AppState>>,
    KeyAuthed(key): KeyAuthed,
    Query(q): Query<V1CallsQuery>,
) -> Result<Json<V1Calls>, ApiError> {
    if let Some(s) = q.sensor_id {
        check_sensor(&st, &key, s)?;
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1-{MAX_LIMIT}: page through longer lists with offset"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    bump(&st.metrics.call_list_requests);
    let sensors = st.listed_sensors().await?;
    // The window of every sensor, as the pages ask for it (shared with them), filtered here:
    // asking the directory for fewer sensors would stop the feeds of the others.
    let query = WindowQuery {
        q: q.q.as_deref().unwrap_or("").trim().to_ascii_lowercase(),
        offset: 0,
        limit: usize::MAX,
    };
    let win = st.directory.window(&sensors, &query, LIST_TIMEOUT).await;
    let visible = |id: i64| key.allows_sensor(id) && q.sensor_id.is_none_or(|s| s == id);
    let rows: Vec<&CallView> = win
        .rows
        .iter()
        .map(|r| r.call.as_ref())
        .filter(|c| visible(c.sensor_id))
        .collect();
    let admin = key.role >= Role::Admin;
    let errors = win
        .errors
        .iter()
        .filter(|(id, _)| visible(*id))
        .map(|(sensor_id, e)| V1SensorError {
            sensor_id: *sensor_id,
            error: sensor_message(e, admin),
        })
        .collect();
    Ok(Json(V1Calls {
        total: rows.len(),
        calls: rows.into_iter().skip(offset).take(limit).cloned().collect(),
        offset,
        limit,
        errors,
    }))
}

/// `GET /api/v1/calls/{sensor}/{callref}`: one active call.
async fn one_call(
    State(st): State<Arc<AppState>>,
    KeyAuthed(key): KeyAuthed,
    Path((sensor, callref)): Path<(i64, String)>,
) -> Result<Json<CallView>, ApiError> {
    check_sensor(&st, &key, sensor)?;
    if !manager::valid_callref(&callref) {
        return Err(ApiError::BadRequest(format!(
            "{callref:?} is not a call reference (hex, as /api/v1/calls shows it)"
        )));
    }
    let sensors = st.listed_sensors().await?;
    if !sensors.iter().any(|s| s.id_sensor == sensor) {
        return Err(ApiError::NotFound(format!(
            "sensor {sensor} is not registered: see /api/v1/calls for the sensors' calls"
        )));
    }
    let query = WindowQuery {
        q: String::new(),
        offset: 0,
        limit: usize::MAX,
    };
    let win = st.directory.window(&sensors, &query, LIST_TIMEOUT).await;
    let wanted = manager::normalize_ref(&callref);
    win.rows
        .iter()
        .map(|r| r.call.as_ref())
        .find(|c| {
            c.sensor_id == sensor
                && c.callreference
                    .as_str()
                    .is_some_and(|r| manager::normalize_ref(r) == wanted)
        })
        .cloned()
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no active call {callref} on sensor {sensor}: it may have ended; see /api/v1/calls"
            ))
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    sensor_id: i64,
    callref: String,
    /// `now` (default), `start` or `-SECONDS`.
    from: Option<String>,
    /// The person who will listen, as the dashboard knows them: written to the audit log.
    user: String,
    /// The dashboard page's origin: the token is then refused from any other page.
    origin: Option<String>,
}

#[derive(Serialize)]
struct Minted {
    token: String,
    /// Unix seconds: the session must start before then.
    expires_at: i64,
    expires_in: u64,
    sensor_id: i64,
    callref: String,
}

/// `POST /api/v1/listen-tokens`: a signed, short-lived token for one listening session of one
/// call, for the end user's browser (`<earshot-player token=…>`).
async fn mint_token(
    State(st): State<Arc<AppState>>,
    KeyAuthed(key): KeyAuthed,
    Json(req): Json<MintRequest>,
) -> Result<(StatusCode, Json<Minted>), ApiError> {
    if key.role < Role::Listener {
        st.metrics.refused("role");
        return Err(ApiError::Forbidden(format!(
            "the API key {} has the role {}, which may list calls but not listen: ask an admin for a key with --role listener",
            key.name,
            key.role.as_str()
        )));
    }
    check_sensor(&st, &key, req.sensor_id)?;
    st.sensor(Some(req.sensor_id)).await?;
    if !manager::valid_callref(&req.callref) {
        return Err(ApiError::BadRequest(format!(
            "callref {:?} is not a call reference (hex, as /api/v1/calls shows it)",
            req.callref
        )));
    }
    let from = req.from.unwrap_or_else(|| "now".into());
    if listen::parse_from(&from).is_none() {
        return Err(ApiError::BadRequest(
            "from must be now, start or -SECONDS (e.g. -30)".into(),
        ));
    }
    let user = req.user.trim().to_string();
    if user.is_empty() || user.chars().count() > MAX_USER || user.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "user must name the person listening (1-{MAX_USER} characters, no control characters): it goes into the audit log"
        )));
    }
    let config = st.config();
    let origin = match req.origin {
        None => None,
        Some(o) => {
            let o = crate::config::parse_origin(o.trim())
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if !config.embed.allows(&o) {
                return Err(ApiError::BadRequest(format!(
                    "origin {o} is not in the player's [embed] allowed_origins, so the token could not be used from it: add it there (and reload the player) or leave origin out"
                )));
            }
            Some(o)
        }
    };
    let ttl = config.embed.token_seconds;
    let expires = now_secs() + i64::try_from(ttl).unwrap_or(60);
    let grant = ListenGrant {
        key_id: key.id,
        key_name: key.name.clone(),
        sensor_id: req.sensor_id,
        callref: req.callref.clone(),
        from,
        user,
        origin,
        expires,
        nonce: auth::random_hex(16).map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let token = tokens::sign(&grant, &st.signing_secret().await?);
    Ok((
        StatusCode::CREATED,
        Json(Minted {
            token,
            expires_at: expires,
            expires_in: ttl,
            sensor_id: req.sensor_id,
            callref: req.callref,
        }),
    ))
}
