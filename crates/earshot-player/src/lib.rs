//! Backend of `earshot player`: a small web server between browsers and sensors.
//!
//! - users log in (argon2 passwords, a session cookie, a CSRF token for state changes);
//! - `/api/calls` lists the active calls of every registered sensor (Manager API
//!   `listcalls json`, concurrently, each with a time limit);
//! - `/api/listen` relays a sensor's `stream` to the browser over a WebSocket, one binary
//!   message per stream frame (VoIPmonitor sensors are polled and their audio wrapped in the
//!   same frames);
//! - every listening session is written to an audit table.
//!
//! The player only connects to sensors from its configuration or its registry table.

pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod manager;
pub mod metrics;
mod web;

pub use api::{router, AppState};
pub use config::{Config, FileConfig, Overrides};
pub use db::{AuditRow, Db, Role, Sensor, SensorKind};
pub use error::{ApiError, DbError, ManagerError};

use std::net::SocketAddr;

/// Opens the database and serves until `shutdown` completes.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let db = Db::open(&config.database_url).await?;
    if db.users().await?.is_empty() {
        tracing::warn!(
            "no users yet: nobody can log in; create one with `earshot users add NAME --role admin`"
        );
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| ServeError::Bind(config.listen.clone(), e.to_string()))?;
    tracing::info!("earshot player listening on http://{}", config.listen);
    let app = router(AppState::new(config, db));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| ServeError::Serve(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen on {0}: {1}; pick another address with --listen")]
    Bind(String, String),
    #[error("the web server failed: {0}")]
    Serve(String),
}
