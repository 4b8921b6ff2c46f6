//! The audit log, for admins.

use super::*;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/audit", get(audit))
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
}

async fn audit(
    State(st): State<Arc<AppState>>,
    _: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let rows = st.db.audit(q.limit.unwrap_or(100).clamp(1, 10_000)).await?;
    Ok(Json(json!(rows)))
}

/// The audit row of a signed-in user's request for one call, before anything is checked: who,
/// from where, the call as asked, and how (`via`: `websocket`, `chunk`, `ladder`). Refused
/// requests are recorded with it too, so it holds only what the request itself says.
pub(super) fn call_request_row(
    st: &AppState,
    session: &Session,
    peer: Option<String>,
    headers: &HeaderMap,
    q: &ListenQuery,
    via: &str,
) -> AuditRow {
    AuditRow {
        user_name: session.user_name.clone(),
        source_ip: source_ip(st, peer, headers),
        id_sensor: q.sensor_id,
        callreference: q.callref.clone().unwrap_or_default(),
        via: Some(via.into()),
        ..AuditRow::default()
    }
}
