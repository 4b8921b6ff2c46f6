//! Errors of the player backend. Every message is meant for the person at the browser or CLI:
//! it says what went wrong and, where possible, what to do.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use thiserror::Error;

/// Failures of the database layer.
#[derive(Debug, Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
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
    #[error("the sensor sent something unexpected: {0}")]
    Protocol(String),
    #[error("this sensor is registered with TLS but the player trusts no certificate for sensors: give the sensors' CA (or the sensor's own certificate) as [sensors] tls_ca or --sensor-ca FILE")]
    TlsNoTrust,
    #[error("TLS with the sensor failed: {0}; check that the sensor runs with --tls-cert, that its certificate names the host registered, and that the player trusts its CA")]
    Tls(String),
}

impl ManagerError {
    /// Whether trying again later may succeed (the sensor may come back); a refused token, a
    /// call that is gone or a protocol mismatch will not fix themselves.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ManagerError::Unreachable { .. } | ManagerError::Timeout(_)
        )
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
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}
