//! The sensor registry: listing, adding and removing sensors.

use super::*;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/sensors", get(list_sensors).post(add_sensor))
        .route("/api/sensors/{id}", delete(remove_sensor))
}

#[derive(Serialize)]
struct Added<'a> {
    id_sensor: i64,
    name: &'a str,
    kind: crate::db::SensorKind,
}

#[derive(Serialize)]
struct Removed {
    removed: i64,
}

/// A sensor as `/api/sensors` lists it: where it lives only for admins; never its token.
#[derive(Serialize)]
struct SensorView<'a> {
    id_sensor: i64,
    name: &'a str,
    kind: crate::db::SensorKind,
    online: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    admin: Option<SensorAdminView<'a>>,
}

#[derive(Serialize)]
struct SensorAdminView<'a> {
    host: &'a str,
    port: u16,
    tls: bool,
    /// Whether a token is set (the token itself never leaves the backend).
    token: bool,
    /// In the registry (removable), not only the configured default.
    registered: bool,
}

async fn list_sensors(
    State(st): State<Arc<AppState>>,
    Viewer { session, .. }: Viewer,
) -> Result<Response, ApiError> {
    let sensors = st.all_sensors().await?;
    let registered: HashSet<i64> = st.db.sensors().await?.iter().map(|s| s.id_sensor).collect();
    let checks = sensors
        .iter()
        .map(|s| manager::online(s, Duration::from_secs(1)));
    let online = futures_util::future::join_all(checks).await;
    let list: Vec<SensorView> = sensors
        .iter()
        .zip(online)
        .map(|(s, on)| SensorView {
            id_sensor: s.id_sensor,
            name: &s.name,
            kind: s.kind,
            online: on,
            // Where sensors live is for admins.
            admin: (session.role >= Role::Admin).then(|| SensorAdminView {
                host: &s.host,
                port: s.port,
                tls: s.tls,
                token: s.token.is_some(),
                registered: registered.contains(&s.id_sensor),
            }),
        })
        .collect();
    Ok(Json(list).into_response())
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
    _: AdminWrite,
    body: Result<Json<NewSensor>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
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
    let added = Added {
        id_sensor: s.id_sensor,
        name: &s.name,
        kind: s.kind,
    };
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

async fn remove_sensor(
    State(st): State<Arc<AppState>>,
    _: AdminWrite,
    Path(id): Path<i64>,
) -> Result<Json<Removed>, ApiError> {
    *lock(&st.recent_sensors) = None;
    if !st.db.remove_sensor(id).await? {
        return Err(ApiError::NotFound(format!("sensor {id} is not registered")));
    }
    Ok(Json(Removed { removed: id }))
}
