//! Errors of the player backend. Every message is meant for the person at the browser or CLI:
//! it says what went wrong and, where possible, what to do.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use thiserror::Error;

/// Failures of the database layer.
#[derive(Debug, Error)]
pub enum DbError {
    /// The database could not be opened: the URL shown without its password, the deepest cause
    /// once (sqlx repeats it at each level of its error chain), and what to check.
    #[error("cannot open the database {url}: {cause}; {hint}")]
    Open {
        url: String,
        cause: String,
        hint: &'static str,
    },
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// The schema could not be brought to this player's version: a migration failed, or the
    /// database was migrated by a newer player (or an applied migration was changed).
    #[error("cannot bring the database schema to this player's version: {0}; if a newer earshot player has used this database, run that version (schemas are not downgraded)")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Conflict(String),
    #[error("the database holds an invalid value: {0}")]
    Invalid(String),
}

/// Failures talking to a sensor's Manager API.
#[derive(Debug, Error)]
pub enum ManagerError {
    #[error("cannot reach the sensor at {addr}: {reason}; is `earshot sensor` running there?")]
    Unreachable { addr: String, reason: String },
    #[error("the sensor at {0} did not answer in time")]
    Timeout(String),
    #[error("the sensor refused the player's token: set the sensor's token in the player's registry (`earshot sensors add … --token`) or [manager] token")]
    TokenRefused,
    #[error("call not found on the sensor: it may have ended; refresh the call list")]
    CallNotFound,
    #[error("the sensor refused: {0}")]
    Refused(String),
    /// The sensor is at one of its listener limits (per sensor, per call, per client).
    #[error("the sensor refused: {0}")]
    Busy(String),
    #[error("the sensor sent something unexpected: {0}")]
    Protocol(String),
    #[error("this sensor is registered with TLS but the player trusts no certificate for sensors: give the sensors' CA (or the sensor's own certificate) as [sensors] tls_ca or --sensor-ca FILE")]
    TlsNoTrust,
    #[error("TLS with the sensor failed: {0}; check that the sensor runs with --tls-cert, that its certificate names the host registered, and that the player trusts its CA")]
    Tls(String),
}

impl ManagerError {
    /// A sensor's refusal, as its text says: at a listener limit (worth retrying), or not.
    pub fn refusal(text: &str) -> ManagerError {
        if text.starts_with("too many listeners") {
            ManagerError::Busy(text.to_string())
        } else {
            ManagerError::Refused(text.to_string())
        }
    }

    /// Whether trying again later may succeed (the sensor may come back); a refused token, a
    /// call that is gone or a protocol mismatch will not fix themselves.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ManagerError::Unreachable { .. } | ManagerError::Timeout(_) | ManagerError::Busy(_)
        )
    }

    /// The message for users who may not see where sensors live (everyone but admins): no
    /// address, and nothing of what the far end sent (a banner, a stranger's reply). Errors
    /// that carry neither keep their own words, since they tell the user what to do.
    pub fn public_message(&self) -> String {
        match self {
            ManagerError::TokenRefused | ManagerError::CallNotFound | ManagerError::TlsNoTrust => {
                self.to_string()
            }
            ManagerError::Timeout(_) => {
                "the sensor did not answer in time: try again later; an admin sees the details"
                    .into()
            }
            ManagerError::Busy(_) => {
                "the sensor has as many listeners as it allows: try again later; an admin sees the details"
                    .into()
            }
            ManagerError::Unreachable { .. }
            | ManagerError::Refused(_)
            | ManagerError::Protocol(_)
            | ManagerError::Tls(_) => {
                "sensor unreachable: try again later; an admin sees the details".into()
            }
        }
    }
}

/// An HTTP API error, rendered as `{"error": "…"}` with a status code.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Upstream(String),
    /// Too many attempts: the client must wait `retry_after` seconds.
    #[error("{message}")]
    TooMany { message: String, retry_after: u64 },
    /// The player is busy; trying again after `retry_after` seconds may succeed.
    #[error("{message}")]
    Unavailable { message: String, retry_after: u64 },
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(m) => ApiError::Conflict(m),
            other => {
                // The detail goes to the log; the browser gets a message without internals.
                tracing::error!("{other}");
                ApiError::Internal("the player's database failed; see the player's log".into())
            }
        }
    }
}

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> Self {
        match e {
            ManagerError::CallNotFound => ApiError::NotFound(e.to_string()),
            other => ApiError::Upstream(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::TooMany { retry_after, .. } | ApiError::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        };
        let mut body = serde_json::json!({ "error": self.to_string() });
        let mut resp = match retry_after {
            Some(secs) => {
                body["retry_after"] = secs.into();
                (self.status(), Json(body)).into_response()
            }
            None => (self.status(), Json(body)).into_response(),
        };
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sensor at its listener limits is worth trying again, and the user is told why in
    /// words that do not leak the sensor's reply; any other refusal is not retried.
    #[test]
    fn a_sensor_at_its_listener_limit_is_busy_not_unreachable() {
        let busy = ManagerError::refusal("too many listeners of this call: try again later");
        assert!(matches!(busy, ManagerError::Busy(_)));
        assert!(busy.retryable());
        assert!(busy
            .public_message()
            .contains("as many listeners as it allows"));
        assert!(busy.to_string().contains("too many listeners of this call"));
        let other = ManagerError::refusal("unauthorized-ish");
        assert!(matches!(other, ManagerError::Refused(_)));
        assert!(!other.retryable());
    }
}
