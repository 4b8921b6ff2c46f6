//! API keys on the admin page: listed, created (the key shown once) and revoked, as
//! `earshot keys` does from the command line.

use super::*;
use crate::db::ApiKey;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/keys", get(list_keys).post(add_key))
        .route("/api/keys/{name}", delete(revoke_key))
}

/// Checks a key's name (CLI and API share it): it is shown in lists and the audit log.
pub fn validate_key_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err("the key's name must be 1-255 characters, without control characters".into());
    }
    Ok(())
}

async fn list_keys(
    State(st): State<Arc<AppState>>,
    _: Admin,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    Ok(Json(st.db.api_keys().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    role: String,
    /// Only these sensors; absent or null: every sensor.
    sensors: Option<Vec<i64>>,
    /// Days until it stops working; absent or null: never.
    expires_days: Option<u32>,
}

#[derive(Serialize)]
struct Created {
    /// The key itself: shown this once, never stored.
    key: String,
    #[serde(flatten)]
    info: ApiKey,
}

async fn add_key(
    State(st): State<Arc<AppState>>,
    _: AdminWrite,
    body: Result<Json<NewKey>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "send JSON {{name, role, sensors?: [ids], expires_days?}}: {e}"
        ))
    })?;
    let name = b.name.trim().to_string();
    validate_key_name(&name).map_err(ApiError::BadRequest)?;
    let role: Role = b.role.parse().map_err(ApiError::BadRequest)?;
    let expires = match b.expires_days {
        None => None,
        Some(0) => {
            return Err(ApiError::BadRequest(
                "expires_days must be at least 1 (or left out for a key that does not expire)"
                    .into(),
            ))
        }
        Some(d) => Some(now_secs() + i64::from(d) * 86_400),
    };
    let key = crate::tokens::new_key().map_err(|e| ApiError::Internal(e.to_string()))?;
    let info = st
        .db
        .add_api_key(&name, &auth::token_hash(&key), role, b.sensors, expires)
        .await?;
    Ok((StatusCode::CREATED, Json(Created { key, info })).into_response())
}

async fn revoke_key(
    State(st): State<Arc<AppState>>,
    _: AdminWrite,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !st.db.revoke_api_key(&name).await? {
        return Err(ApiError::NotFound(format!(
            "no API key {name}: reload the page to see the keys"
        )));
    }
    Ok(Json(json!({ "revoked": name })))
}
