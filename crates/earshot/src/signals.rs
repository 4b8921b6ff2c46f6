//! The daemons' signals: SIGTERM and SIGINT stop, SIGHUP reloads the configuration.
//!
//! The handlers are installed when these functions are called, not when their futures are
//! first polled: a caller announces it is ready (prints its address, writes its banner) after
//! calling them, so a signal sent on seeing that announcement is never lost to the default
//! action (for SIGHUP and SIGTERM: dying without cleaning up).

use std::future::Future;

/// Returns on SIGTERM or SIGINT (Ctrl-C); calls `on_reload` for each SIGHUP meanwhile.
pub fn until_stop(on_reload: impl FnMut()) -> impl Future<Output = ()> {
    let signals = Signals::install();
    async move { signals.wait(Some(on_reload)).await }
}

/// Returns on SIGTERM, SIGINT or SIGHUP. For `earshot demo`: it has no configuration to
/// reload, and when the terminal it runs in goes away it should stop, removing its temporary
/// directory, rather than carry on holding its ports.
pub fn until_stop_or_hangup() -> impl Future<Output = ()> {
    let signals = Signals::install();
    async move { signals.wait(None::<fn()>).await }
}

struct Signals {
    #[cfg(unix)]
    installed: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Signals {
    /// Must run inside the Tokio runtime.
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let kinds = [
                SignalKind::terminate(),
                SignalKind::interrupt(),
                SignalKind::hangup(),
            ];
            let installed = match kinds.map(signal) {
                [Ok(term), Ok(int), Ok(hup)] => Some([term, int, hup]),
                _ => None,
            };
            Signals { installed }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// SIGHUP calls `on_reload`, or stops without one.
    async fn wait(self, mut on_reload: Option<impl FnMut()>) {
        #[cfg(unix)]
        if let Some([mut term, mut int, mut hup]) = self.installed {
            loop {
                tokio::select! {
                    _ = int.recv() => return,
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
        #[cfg(unix)]
        tracing::warn!("cannot install the SIGTERM/SIGHUP handlers: only Ctrl-C stops");
        let _ = &mut on_reload;
        let _ = tokio::signal::ctrl_c().await;
    }
}
