//! The daemons' signals: SIGTERM and SIGINT stop, SIGHUP reloads the configuration.

/// Returns on SIGTERM or SIGINT (Ctrl-C); calls `on_reload` for each SIGHUP meanwhile.
pub async fn until_stop(on_reload: impl FnMut()) {
    wait(Some(on_reload)).await;
}

/// Returns on SIGTERM, SIGINT or SIGHUP. For `earshot demo`: it has no configuration to
/// reload, and when the terminal it runs in goes away it should stop, removing its temporary
/// directory, rather than carry on holding its ports.
pub async fn until_stop_or_hangup() {
    wait(None::<fn()>).await;
}

/// SIGHUP calls `on_reload`, or stops without one.
async fn wait(mut on_reload: Option<impl FnMut()>) {
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
                    let Some(reload) = on_reload.as_mut() else {
                        return;
                    };
                    tracing::info!("SIGHUP: reloading the configuration");
                    reload();
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
