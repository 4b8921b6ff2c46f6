//! The daemons' signals: SIGTERM and SIGINT stop, SIGHUP reloads the configuration.

/// Returns on SIGTERM or SIGINT (Ctrl-C); calls `on_reload` for each SIGHUP meanwhile.
pub async fn until_stop(mut on_reload: impl FnMut()) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (term, hup) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        );
        let (Ok(mut term), Ok(mut hup)) = (term, hup) else {
            tracing::warn!("cannot install the SIGTERM/SIGHUP handlers: only Ctrl-C stops");
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    on_reload();
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = &mut on_reload;
        let _ = tokio::signal::ctrl_c().await;
    }
}
