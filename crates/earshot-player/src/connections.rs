//! The player's own HTTP/1.1 server loop (in place of `axum::serve`), for the limits a server
//! facing hostile clients needs and `axum::serve` does not offer:
//!
//! - a request head must arrive within `[http] header_timeout_seconds`, the first one and every
//!   one after it on a kept-alive connection, so an idle or trickling connection is closed;
//! - at most `[http] max_connections` connections (HTTP and WebSocket) are open, and never so
//!   many that the file limit is reached: accepting must always stay possible;
//! - at the cap, the oldest connection that has not sent a request yet gives way to the new one,
//!   so a flood of idle connections cannot lock real clients out; only when every open
//!   connection is busy serving is the new one closed unserved (counted).

use crate::https::PeerAddr;
use crate::metrics::{bump, PlayerMetrics};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};

/// File descriptors kept free of connections: the database, logs, and a margin for accept.
const RESERVED_FILES: usize = 64;

/// The connection cap in force: `configured`, or less when the file limit would not allow
/// it. Each listening WebSocket also opens a connection to a sensor, so a connection may
/// cost two descriptors.
pub fn effective_cap(configured: usize, file_limit: usize) -> usize {
    configured
        .min(file_limit.saturating_sub(RESERVED_FILES) / 2)
        .max(1)
}

/// Raises the soft file limit to the hard one (a systemd `LimitNOFILE=` or the shell's
/// `ulimit -Hn`) and returns it; the default soft limit of 1024 is too low for a server.
pub fn raise_file_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed; no other state.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
}

/// The open connections: how many, and which have not sent a request yet (oldest first).
struct Table {
    cap: usize,
    open: AtomicUsize,
    next_id: AtomicU64,
    fresh: Mutex<BTreeMap<u64, Arc<Notify>>>,
}

impl Table {
    fn fresh(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Notify>>> {
        match self.fresh.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A slot for a new connection, making room at the cap if an idle one can give way.
    fn admit(self: &Arc<Self>, metrics: &PlayerMetrics) -> Option<Slot> {
        if self.open.load(Ordering::Relaxed) >= self.cap {
            let oldest = self.fresh().pop_first();
            match oldest {
                Some((_, close)) => {
                    bump(&metrics.connections_evicted);
                    // notify_one stores the wake-up if the task is not waiting yet.
                    close.notify_one();
                }
                None => {
                    bump(&metrics.connections_refused);
                    return None;
                }
            }
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        self.fresh().insert(id, close.clone());
        Some(Slot {
            table: self.clone(),
            id,
            close,
        })
    }
}

/// One open connection's place in the table; freed when dropped (for a WebSocket, when the
/// socket itself goes, since the slot travels inside the connection's I/O).
struct Slot {
    table: Arc<Table>,
    id: u64,
    close: Arc<Notify>,
}

impl Slot {
    /// The connection sent a request: it is no longer an idle one that may be closed. (The
    /// server does this through the table directly, the slot being inside the I/O by then.)
    #[cfg(test)]
    fn served(&self) {
        self.table.fresh().remove(&self.id);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.fresh().remove(&self.id);
        self.table.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's I/O carrying its slot and the open-connections gauge.
struct Counted<I> {
    io: I,
    _slot: Slot,
    _gauge: Gauge,
}

/// Counts the connection in `earshot_player_connections_open` while it lives.
struct Gauge(Arc<crate::api::AppState>);

impl Gauge {
    fn new(st: Arc<crate::api::AppState>) -> Gauge {
        bump(&st.metrics.connections_open);
        Gauge(st)
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0
            .metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish
/// (the caller bounds how long). WebSockets already upgraded are not waited for.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    state: Arc<crate::api::AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) where
    L: Listener<Addr = SocketAddr>,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = state.config().limits.clone();
    let files = raise_file_limit();
    let cap = effective_cap(limits.max_connections, files);
    if cap < limits.max_connections {
        tracing::warn!(
            "at most {cap} connections, not [http] max_connections = {}: the file limit is {files}; raise it (systemd LimitNOFILE=, ulimit -n)",
            limits.max_connections
        );
    }
    let table = Arc::new(Table {
        cap,
        open: AtomicUsize::new(0),
        next_id: AtomicU64::new(0),
        fresh: Mutex::new(BTreeMap::new()),
    });
    let (closing_tx, closing) = watch::channel(false);
    // Each connection task holds a clone; when all are gone, every connection has ended.
    let (done_tx, mut done) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            c = listener.accept() => c,
            () = &mut shutdown => break,
        };
        let Some(slot) = table.admit(&state.metrics) else {
            drop(io);
            continue;
        };
        let conn = Conn {
            app: app.clone(),
            state: state.clone(),
            header_timeout: limits.header_timeout,
            closing: closing.clone(),
            _done: done_tx.clone(),
        };
        tokio::spawn(conn.run(io, peer, slot));
    }
    let _ = closing_tx.send(true);
    drop(done_tx);
    let _ = done.recv().await;
}

struct Conn {
    app: Router,
    state: Arc<crate::api::AppState>,
    header_timeout: Duration,
    closing: watch::Receiver<bool>,
    _done: tokio::sync::mpsc::Sender<()>,
}

impl Conn {
    async fn run<I>(mut self, io: I, peer: SocketAddr, slot: Slot)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let close = slot.close.clone();
        let table = slot.table.clone();
        let id = slot.id;
        let io = Counted {
            io,
            _slot: slot,
            _gauge: Gauge::new(self.state.clone()),
        };
        let served = AtomicBool::new(false);
        let app = self.app.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                if !served.swap(true, Ordering::Relaxed) {
                    table.fresh().remove(&id);
                }
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
                let mut app = app.clone();
                tower_service::Service::call(&mut app, req)
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut conn = std::pin::pin!(conn);
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        if e.is_timeout() {
                            bump(&self.state.metrics.header_timeouts);
                        }
                        tracing::debug!("connection from {peer}: {e}");
                    }
                    return;
                }
                // Evicted at the cap: it had sent nothing, so nothing is cut short.
                () = close.notified() => return,
                changed = self.closing.changed() => {
                    if changed.is_err() || *self.closing.borrow() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_file_limit() {
        assert_eq!(effective_cap(4096, 65536), 4096);
        assert_eq!(effective_cap(4096, 1024), (1024 - RESERVED_FILES) / 2);
        assert_eq!(effective_cap(4096, 10), 1);
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_gives_way() {
        let metrics = PlayerMetrics::default();
        let table = Arc::new(Table {
            cap: 2,
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            fresh: Mutex::new(BTreeMap::new()),
        });
        let a = table.admit(&metrics).unwrap();
        let b = table.admit(&metrics).unwrap();
        b.served();
        // Full: `a` (idle) is told to close to make room.
        let c = table.admit(&metrics).unwrap();
        assert_eq!(metrics.connections_evicted.load(Ordering::Relaxed), 1);
        drop(a);
        c.served();
        // Full of busy connections: the new one is refused.
        assert!(table.admit(&metrics).is_none());
        assert_eq!(metrics.connections_refused.load(Ordering::Relaxed), 1);
        drop(b);
        assert!(table.admit(&metrics).is_some());
    }
}
