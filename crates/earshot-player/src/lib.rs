//! Backend of `earshot player`: a small web server between browsers and sensors.
//!
//! - users log in (argon2 passwords, a session cookie, a CSRF token for state changes);
//! - `/api/calls` lists the active calls of every registered sensor from the player's call
//!   directory, which follows each sensor with one feed (the `calls` subscription, or one
//!   `listcalls` poll per second for VoIPmonitor sensors) whatever the number of pages;
//! - `/api/listen` relays a sensor's `stream` to the browser over a WebSocket, one binary
//!   message per stream frame (VoIPmonitor sensors are polled and their audio wrapped in the
//!   same frames);
//! - every listening session is written to an audit table.
//!
//! The player only connects to sensors from its configuration or its registry table.

pub mod api;
pub mod auth;
pub mod callview;
pub mod config;
pub mod connections;
pub mod db;
pub mod directory;
pub mod error;
pub mod https;
pub mod limiter;
pub mod manager;
pub mod metrics;
pub mod relay;
pub mod tokens;
mod web;

pub use api::{router, AppState};

/// A mutex's guard even if another thread panicked holding it: nothing the player keeps under
/// a lock can be left half-updated by a panic worth refusing service for.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
pub use config::{Config, FileConfig, Overrides};
pub use db::{AuditRow, Db, Role, Sensor, SensorKind};
pub use error::{ApiError, DbError, ManagerError};

/// Opens the database and serves until `shutdown` completes. Each configuration received on
/// `reloads` replaces the running one (see [`AppState::replace_config`]); sensors registered in
/// the database are read per request, so they need no reload.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    mut reloads: tokio::sync::mpsc::UnboundedReceiver<Config>,
) -> Result<(), ServeError> {
    let db = Db::open(&config.database_url).await?;
    if db.users().await?.is_empty() {
        tracing::warn!(
            "no users yet: nobody can log in; create one with `earshot users add NAME --role admin`"
        );
    }
    if let Some(ca) = &config.sensor_ca {
        let trust = earshot_tls::client_config(ca).map_err(ServeError::Tls)?;
        manager::trust_sensors(Some(trust));
    }
    let tls = match &config.tls {
        Some((cert, key)) => Some(earshot_tls::server_config(cert, key).map_err(ServeError::Tls)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| ServeError::Bind(config.listen.clone(), e.to_string()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("earshot player listening on {scheme}://{}", config.listen);
    let state = AppState::new(config, db);
    let reloading = state.clone();
    tokio::spawn(async move {
        while let Some(config) = reloads.recv().await {
            if config.sensor_ca != reloading.config().sensor_ca {
                match config.sensor_ca.as_deref().map(earshot_tls::client_config) {
                    None => manager::trust_sensors(None),
                    Some(Ok(trust)) => manager::trust_sensors(Some(trust)),
                    Some(Err(e)) => {
                        tracing::warn!("reload: {e}; keeping the sensors' previous CA");
                        continue;
                    }
                }
            }
            reloading.replace_config(config);
        }
    });
    let sweeping = state.clone();
    // /api/chunk sessions nobody polls any more are ended even if no other poll comes.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            sweeping.sweep_chunks().await;
        }
    });
    let app = router(state.clone());
    match tls {
        Some(tls) => {
            let max = state.config().limits.max_connections;
            let listener = https::TlsListener::new(listener, tls, max)
                .map_err(|e| ServeError::Serve(e.to_string()))?;
            connections::serve(listener, app, state, shutdown).await
        }
        None => connections::serve(listener, app, state, shutdown).await,
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen on {0}: {1}; pick another address with --listen")]
    Bind(String, String),
    #[error("{0}")]
    Tls(earshot_tls::TlsError),
    #[error("the web server failed: {0}")]
    Serve(String),
}
