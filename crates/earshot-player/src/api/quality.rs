//! `/api/calls/quality`: one call's quality over time (per-second packets, loss, jitter, MOS
//! of each stream), for the page's quality chart. A per-call read like the call list: any
//! signed-in user, of a registered sensor only, for a reference the sensor listed.

use super::*;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/calls/quality", get(quality))
}

#[derive(Deserialize)]
struct QualityQuery {
    sensor_id: Option<i64>,
    callref: Option<String>,
}

async fn quality(
    State(st): State<Arc<AppState>>,
    Viewer { session, .. }: Viewer,
    Query(q): Query<QualityQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let admin = session.role >= Role::Admin;
    let sensor = st.sensor(q.sensor_id).await?;
    let callref = super::listen::checked_callref(q.callref.as_deref())?;
    let quality = manager::call_quality(&sensor, callref)
        .await
        .map_err(|e| sensor_error(e, admin))?;
    Ok(Json(serde_json::json!({
        "sensor_id": sensor.id_sensor,
        "callreference": callref,
        "quality": quality,
    })))
}
