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
