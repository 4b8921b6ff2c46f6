//! The Manager API server: TCP, one command per connection, VoIPmonitor's framing. Protocol
//! parsing and formatting live in `earshot-manager`; this is the I/O shell around them.
//!
//! Every wait has a deadline: reading a request (500 ms idle, 3 s from accept, TLS handshake
//! included), writing a reply, and writing stream frames to a client that stopped reading.
//!
//! Connections are admitted in two stages, so that clients who have not shown a token cannot
//! hold the door shut: until its request is read and authorised, a connection sits in a small
//! [`WaitingRoom`] (an eighth of `max_connections`) where the newest arrival pushes out the one
//! that has waited longest; once authorised it takes one of the remaining slots, which
//! unauthenticated clients never touch. docs/security.md has the numbers.

use crate::admission::{Admitted, Client, Refusal};
use crate::audit::{CallInfo, Mode, Session};
use crate::counters::SensorCounters;
use crate::listener::AudioFormat;
use crate::pipeline::{Control, Shared};
use crate::queue::FrameRx;
use crate::waiting_room::{Seat, WaitingRoom};
use arc_swap::ArcSwap;
use crossbeam_channel::Sender as ControlSender;
use earshot_manager::replies;
use earshot_manager::stream_proto::{self, EndReason, Frame, StreamHeader};
use earshot_manager::{
    authorize, parse_command, CallRef, Command, ListCallsFormat, ListContext, Request,
    RequestReader, StreamFrom, StreamRequest, IDLE_TIMEOUT,
};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Semaphore};

/// Longest a client may take from being accepted to a complete request, TLS handshake
/// included. Until then it has shown no token, so it may not hold a connection for long; a real
/// client sends its request at once.
const REQUEST_DEADLINE: Duration = Duration::from_secs(3);
/// Longest the answer to a client that was not authorised (a refusal, an error) may take to
/// write: such a client gets no patience.
const REFUSAL_WRITE_DEADLINE: Duration = Duration::from_secs(1);
/// One in this many of `max_connections` is for connections not yet authorised.
const UNAUTHENTICATED_SHARE: usize = 8;
/// Longest one reply write (or one stream frame) may wait for the client.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// A `listen` listener that is not read for this long is dropped (VoIPmonitor's rule).
const READAUDIO_IDLE: Duration = Duration::from_secs(10);
/// A stream client that accepts no bytes for this long has stopped listening.
const STREAM_STALL: Duration = Duration::from_secs(3);
/// Kernel send buffer per connection (Linux doubles it for bookkeeping).
const SEND_BUFFER: usize = 32 * 1024;

#[derive(Clone, Debug)]
pub struct ManagerConfig {
    pub listen: SocketAddr,
    /// Source ranges allowed to connect; others are closed without a reply.
    pub allow: Vec<IpNet>,
    pub token: Option<String>,
    /// Connections at once, in total; an eighth of them for connections not yet authorised.
    pub max_connections: usize,
    pub sensor_id: Option<i64>,
    /// When set, every connection must speak TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl ManagerConfig {
    pub fn loopback_only() -> Vec<IpNet> {
        ["127.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// Refuses a configuration that would expose the API to the network without a token.
    pub fn check(&self) -> Result<(), String> {
        check_token_rule(self.listen, self.token.as_deref())
    }

    /// How `max_connections` is split: (not yet authorised, authorised).
    pub fn shares(&self) -> (usize, usize) {
        let total = self.max_connections.max(2);
        let unauthenticated = (total / UNAUTHENTICATED_SHARE).max(1);
        (unauthenticated, total - unauthenticated)
    }
}

/// The rule that keeps the API off the network without a token, for an address and a token
/// (before [`normalise_token`]: a blank token is none).
pub fn check_token_rule(listen: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if !listen.ip().is_loopback() && token.is_none_or(|t| t.trim().is_empty()) {
        return Err(format!(
            "the manager would listen on {listen} without a token: anyone who can reach it could list \
             calls and listen to them. Set a token (--token, EARSHOT_TOKEN, --token-file or [manager] \
             token) or bind to 127.0.0.1"
        ));
    }
    Ok(())
}

/// A token as configured (command line, environment, file): surrounding whitespace is not part
/// of it (a client's `auth` line is trimmed too, so an untrimmed token could never match), and
/// an empty one means none.
pub fn normalise_token(token: Option<String>) -> Option<String> {
    let token = token?;
    let trimmed = token.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// What a reload (SIGHUP) may change while connections and streams carry on: who may connect
/// and with which token, and the TLS certificate. Each connection reads it once, on accept.
#[derive(Clone, Debug)]
pub struct Access {
    pub allow: Vec<IpNet>,
    pub token: Option<String>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Access {
    pub fn of(cfg: &ManagerConfig) -> Access {
        Access {
            allow: cfg.allow.clone(),
            token: normalise_token(cfg.token.clone()),
            tls: cfg.tls.clone(),
        }
    }
}

/// Swaps the running server's [`Access`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct AccessHandle(Arc<ArcSwap<Access>>);

impl AccessHandle {
    pub fn current(&self) -> Arc<Access> {
        self.0.load_full()
    }

    /// Takes effect for the next connection; open ones keep what they were accepted with.
    pub fn replace(&self, access: Access) {
        self.0.store(Arc::new(access));
    }
}

/// Counters of the manager, for `sniffer_stat` and metrics.
#[derive(Debug, Default)]
pub struct ManagerCounters {
    pub connections: AtomicU64,
    pub refused_addr: AtomicU64,
    pub auth_failures: AtomicU64,
    /// Authorised requests turned away because every authorised slot was taken.
    pub busy: AtomicU64,
    /// `calls` subscribers closed because they did not keep up.
    pub calls_overflows: AtomicU64,
    /// Connections not yet authorised, pushed out to make room for a newer one.
    pub evicted: AtomicU64,
    /// Connections that sent no complete request within [`REQUEST_DEADLINE`].
    pub timeouts: AtomicU64,
    /// TLS handshakes that failed.
    pub tls_failures: AtomicU64,
    /// Connections open now that have not been authorised yet (gauge).
    pub open_unauthenticated: AtomicU64,
    /// Connections open now that have been authorised (gauge).
    pub open_authenticated: AtomicU64,
    pub requests: AtomicU64,
    pub by_command: RequestCounts,
}

/// Command labels of [`RequestCounts`]: the Manager API's commands, and "unknown" for requests
/// that never got as far as a command.
pub const COMMAND_LABELS: [&str; 12] = [
    "listcalls",
    "active_call_info",
    "totalcalls",
    "getversion",
    "help",
    "sniffer_stat",
    "listen",
    "readaudio",
    "listen_stop",
    "stream",
    "calls",
    "unknown",
];

/// Result labels: answered, the call was not there, an error reply, a missing or wrong token,
/// or a request that could not be read or parsed.
pub const RESULT_LABELS: [&str; 5] = ["ok", "not_found", "error", "unauthorized", "invalid"];

/// Requests by command and result: a fixed grid of relaxed atomics.
#[derive(Debug)]
pub struct RequestCounts(Box<[AtomicU64]>);

impl Default for RequestCounts {
    fn default() -> Self {
        let n = COMMAND_LABELS.len() * RESULT_LABELS.len();
        RequestCounts((0..n).map(|_| AtomicU64::new(0)).collect())
    }
}

impl RequestCounts {
    pub fn add(&self, command: &str, result: &str) {
        let c = COMMAND_LABELS.iter().position(|l| *l == command);
        let r = RESULT_LABELS.iter().position(|l| *l == result);
        if let (Some(c), Some(r)) = (c, r) {
            if let Some(slot) = self.0.get(c * RESULT_LABELS.len() + r) {
                slot.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `(command, result, count)` for every pair seen at least once.
    pub fn nonzero(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (ci, c) in COMMAND_LABELS.iter().enumerate() {
            for (ri, r) in RESULT_LABELS.iter().enumerate() {
                let n = self
                    .0
                    .get(ci * RESULT_LABELS.len() + ri)
                    .map_or(0, |a| a.load(Ordering::Relaxed));
                if n > 0 {
                    out.push((*c, *r, n));
                }
            }
        }
        out
    }
}

fn command_label(c: &Command) -> &'static str {
    match c {
        Command::ListCalls(_) => "listcalls",
        Command::ActiveCallInfo(_) => "active_call_info",
        Command::TotalCalls => "totalcalls",
        Command::GetVersion => "getversion",
        Command::Help => "help",
        Command::SnifferStat => "sniffer_stat",
        Command::Listen { .. } => "listen",
        Command::ReadAudio { .. } => "readaudio",
        Command::ListenStop { .. } => "listen_stop",
        Command::Stream(_) => "stream",
        Command::Calls => "calls",
    }
}

/// How a reply went, read from its bytes (the replies are VoIPmonitor's fixed strings).
fn result_label(reply: &[u8]) -> &'static str {
    if reply == replies::CALL_NOT_FOUND || reply == replies::ERROR_CALL_NOT_FOUND {
        "not_found"
    } else if reply.starts_with(b"error") || reply == replies::COMMAND_NOT_FOUND {
        "error"
    } else {
        "ok"
    }
}

/// One `listen` registration, drained by `readaudio`.
struct Polled {
    rx: FrameRx,
    /// Its place in the listener counts, and its audit session, both ended with it.
    _admitted: Admitted,
    session: Session,
    pcm: Vec<u8>,
    last_read: Instant,
    ended: bool,
    id: u64,
}

struct State {
    cfg: ManagerConfig,
    waiting: Arc<WaitingRoom>,
    /// Log lines about failed TLS handshakes, at most one a second.
    tls_log: std::sync::Mutex<LogLimit>,
    shared: Arc<Shared>,
    control: ControlSender<Control>,
    polled: Mutex<HashMap<(CallRef, String), Polled>>,
    next_id: AtomicU64,
    pub counters: Arc<ManagerCounters>,
    slots: Arc<Semaphore>,
    access: AccessHandle,
}

/// A running server: its address and counters.
pub struct Manager {
    pub local_addr: SocketAddr,
    pub counters: Arc<ManagerCounters>,
    pub access: AccessHandle,
    slots: Arc<Semaphore>,
    max_authenticated: usize,
    waiting: Arc<WaitingRoom>,
}

impl Manager {
    /// Connections open right now (stream listeners and clients still sending included).
    pub fn open_connections(&self) -> usize {
        self.max_authenticated
            .saturating_sub(self.slots.available_permits())
            + self.waiting.len()
    }
}

/// Counts one open connection in a gauge for as long as it lives.
struct Open<'a>(&'a AtomicU64);

impl<'a> Open<'a> {
    fn new(gauge: &'a AtomicU64) -> Open<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        Open(gauge)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Binds and starts serving on the current tokio runtime.
pub async fn start(
    cfg: ManagerConfig,
    shared: Arc<Shared>,
    control: ControlSender<Control>,
) -> std::io::Result<Manager> {
    let listener = TcpListener::bind(cfg.listen).await?;
    let local_addr = listener.local_addr()?;
    let counters = Arc::new(ManagerCounters::default());
    let access = AccessHandle(Arc::new(ArcSwap::from_pointee(Access::of(&cfg))));
    let (max_unauthenticated, max_authenticated) = cfg.shares();
    let slots = Arc::new(Semaphore::new(max_authenticated));
    let waiting = WaitingRoom::new(max_unauthenticated);
    let state = Arc::new(State {
        waiting: waiting.clone(),
        tls_log: std::sync::Mutex::new(LogLimit::default()),
        slots: slots.clone(),
        access: access.clone(),
        cfg,
        shared,
        control,
        polled: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        counters: counters.clone(),
    });
    tokio::spawn(sweep_idle_listeners(state.clone()));
    tokio::spawn(accept_loop(listener, state));
    Ok(Manager {
        local_addr,
        counters,
        access,
        slots,
        max_authenticated,
        waiting,
    })
}

/// Lets one log line a second through: a flood of connections from a disallowed address must
/// not become a flood of log lines (every refusal is counted in the metrics anyway).
#[derive(Default)]
struct LogLimit {
    quiet_until: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    /// `Some(n)` when a line may be logged now, `n` being the lines held back since the last.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.quiet_until.is_some_and(|t| now < t) {
            self.suppressed += 1;
            return None;
        }
        self.quiet_until = Some(now + Duration::from_secs(1));
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// `" (N more … since the last such line)"` when lines were held back.
fn held_back_note(held_back: u64, what: &str) -> String {
    if held_back > 0 {
        format!(" ({held_back} more {what} since the last such line)")
    } else {
        String::new()
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut refusals = LogLimit::default();
    let mut evictions = LogLimit::default();
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("manager accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        state.counters.connections.fetch_add(1, Ordering::Relaxed);
        let access = state.access.current();
        if !access
            .allow
            .iter()
            .any(|n| n.contains(&canonical(peer.ip())))
        {
            state.counters.refused_addr.fetch_add(1, Ordering::Relaxed);
            if let Some(held_back) = refusals.allow(Instant::now()) {
                tracing::warn!(
                    %peer,
                    "manager connection refused: address not in manager.allow{}",
                    held_back_note(held_back, "refusals")
                );
            }
            drop(sock);
            continue;
        }
        let (seat, evicted) = state.waiting.enter();
        if evicted > 0 {
            state.counters.evicted.fetch_add(evicted, Ordering::Relaxed);
            if let Some(held_back) = evictions.allow(Instant::now()) {
                tracing::warn!(
                    "manager: {} connections that sent no request yet: the longest waiting was \
                     closed to make room (a client holding connections open?){}",
                    state.waiting.len(),
                    held_back_note(held_back, "closed")
                );
            }
        }
        let _ = sock.set_nodelay(true);
        let tuner = socket2::SockRef::from(&sock).try_clone().ok();
        tokio::spawn(serve(sock, tuner, peer, state.clone(), access, seat));
    }
}

/// One connection, from accept to close: the TLS handshake if the port has TLS, then the
/// request. Both must be done within [`REQUEST_DEADLINE`], and the connection leaves at once
/// when its seat in the waiting room is needed.
async fn serve(
    sock: TcpStream,
    tuner: Option<socket2::Socket>,
    peer: SocketAddr,
    state: Arc<State>,
    access: Arc<Access>,
    mut seat: Seat,
) {
    let open = Open::new(&state.counters.open_unauthenticated);
    let deadline = tokio::time::Instant::now() + REQUEST_DEADLINE;
    let Some(tls) = access.tls.clone() else {
        return handle(
            sock,
            tuner,
            peer,
            &state,
            &access,
            Waiting {
                seat,
                _open: open,
                deadline,
            },
        )
        .await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let handshake = tokio::select! {
        done = tokio::time::timeout_at(deadline, acceptor.accept(sock)) => done,
        // Pushed out before TLS was up: nothing may be said in plain text on a TLS port.
        () = seat.told_to_leave() => return,
    };
    match handshake {
        Ok(Ok(stream)) => {
            handle(
                stream,
                tuner,
                peer,
                &state,
                &access,
                Waiting {
                    seat,
                    _open: open,
                    deadline,
                },
            )
            .await
        }
        Ok(Err(e)) => {
            state.counters.tls_failures.fetch_add(1, Ordering::Relaxed);
            let allowed = state.tls_log.lock().map(|mut l| l.allow(Instant::now()));
            if let Ok(Some(held_back)) = allowed {
                tracing::warn!(
                    %peer,
                    "manager TLS handshake failed: {e}{}",
                    held_back_note(held_back, "failures")
                );
            }
        }
        Err(_) => {
            state.counters.timeouts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A connection not yet authorised: its seat, its place in the gauge, and its deadline.
struct Waiting<'a> {
    seat: Seat,
    _open: Open<'a>,
    deadline: tokio::time::Instant,
}

/// IPv4-mapped IPv6 peers (dual-stack sockets) are matched as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `tuner`: the connection's socket (a duplicate handle, TLS or not), to set its options once
/// the command is known.
async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut sock: S,
    tuner: Option<socket2::Socket>,
    peer: SocketAddr,
    state: &State,
    access: &Access,
    mut waiting: Waiting<'_>,
) {
    let read = tokio::select! {
        r = tokio::time::timeout_at(waiting.deadline, read_request(&mut sock)) => Some(r),
        () = waiting.seat.told_to_leave() => None,
    };
    let request = match read {
        Some(Ok(Some(Ok(r)))) => r,
        Some(Ok(Some(Err(e)))) => {
            state.counters.by_command.add("unknown", "invalid");
            let _ = write_refusal(&mut sock, e.reply()).await;
            drain_before_close(&mut sock).await;
            return;
        }
        Some(Ok(None)) => return,
        Some(Err(_)) => {
            state.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            state.counters.by_command.add("unknown", "invalid");
            let _ = write_refusal(&mut sock, b"error: request timed out\n").await;
            return;
        }
        // Pushed out (and counted) to make room for a newer connection.
        None => {
            let _ = write_refusal(&mut sock, BUSY).await;
            return;
        }
    };
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let token = access.token.as_deref().map(str::as_bytes);
    if !authorize(token, &request) {
        state.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
        let label = parse_command(&request.command_line)
            .ok()
            .map_or("unknown", |c| command_label(&c));
        state.counters.by_command.add(label, "unauthorized");
        tracing::warn!(%peer, "manager request refused: missing or wrong token");
        let _ = write_refusal(&mut sock, replies::UNAUTHORIZED).await;
        return;
    }
    // Authorised: from here on the connection uses the slots unauthenticated clients never
    // touch, and it leaves the waiting room.
    drop(waiting);
    let Ok(_slot) = state.slots.clone().try_acquire_owned() else {
        state.counters.busy.fetch_add(1, Ordering::Relaxed);
        let _ = write_refusal(&mut sock, BUSY).await;
        return;
    };
    let _open = Open::new(&state.counters.open_authenticated);
    let command = match parse_command(&request.command_line) {
        Ok(c) => c,
        Err(e) => {
            let reply = e.reply();
            state.counters.by_command.add("unknown", "invalid");
            let _ = write_reply(&mut sock, &reply).await;
            return;
        }
    };
    let label = command_label(&command);
    tracing::debug!(%peer, command = %request.command_line, "manager request");
    let who = Who {
        client: Client {
            addr: canonical(peer.ip()),
            identity: if token.is_some() { "token" } else { "none" },
        },
        peer: peer.to_string(),
    };
    if let Command::Stream(req) = command {
        // A small kernel send buffer: otherwise megabytes of a stalled stream client's audio
        // would sit in socket buffers, hiding that it stopped reading, instead of filling its
        // bounded queue so the pipeline drops it. Only here: with one segment of loopback's
        // 64 KiB in flight the receiver delays its ACK 40 ms each time, which made a 6.5 MB
        // `listcalls` of 10,000 calls take 2-3 s instead of milliseconds.
        if let Some(t) = &tuner {
            let _ = t.set_send_buffer_size(SEND_BUFFER);
        }
        drop(tuner);
        let found = stream(&mut sock, state, req, &who).await;
        let result = if found { "ok" } else { "not_found" };
        state.counters.by_command.add(label, result);
        return;
    }
    if let Command::Calls = command {
        state.counters.by_command.add(label, "ok");
        calls_subscription(&mut sock, state).await;
        return;
    }
    let reply = answer(state, command, &who).await;
    state.counters.by_command.add(label, result_label(&reply));
    let _ = write_reply(&mut sock, &reply).await;
}

async fn read_request<S: AsyncRead + Unpin>(
    sock: &mut S,
) -> Option<Result<Request, earshot_manager::RequestError>> {
    let mut reader = RequestReader::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let read = if reader.wants_idle_timer() {
            match tokio::time::timeout(IDLE_TIMEOUT, sock.read(&mut buf)).await {
                Ok(r) => r,
                Err(_) => return reader.on_idle_timeout(),
            }
        } else {
            sock.read(&mut buf).await
        };
        match read {
            Ok(0) | Err(_) => return reader.on_eof(),
            Ok(n) => {
                if let Some(r) = reader.push(buf.get(..n).unwrap_or_default()) {
                    return Some(r);
                }
            }
        }
    }
}

/// Reads and discards what the client is still sending, briefly, before the socket is closed:
/// closing with unread bytes makes the kernel send a reset, which can destroy the reply the
/// client has not read yet (a refused or oversized request).
async fn drain_before_close<S: AsyncRead + Unpin>(sock: &mut S) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        let mut left = 1usize << 20;
        while left > 0 {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// What a client turned away for want of room is told (inside TLS on a TLS port).
const BUSY: &[u8] = b"error: too many connections\n";

/// Most bytes of `calls` events one subscriber may have waiting; more, and it is sent
/// `{"event":"overflow"}` and closed (counted in `calls_overflows`).
const CALLS_QUEUE_BYTES: usize = 32 << 20;
/// The first snapshot is written in parts of about this much (whole chunks of 64 calls).
const CALLS_PART_BYTES: usize = 1 << 20;

/// How often a `calls` subscriber's view is brought up to date: the snapshot interval.
const CALLS_EVERY: Duration = Duration::from_millis(100);
/// A `calls` subscriber is sent `{"event":"alive"}` after this long without a line, so that it
/// can tell a quiet sensor from a dead connection (a host that vanished sends no FIN) within
/// a deadline of its own.
pub const CALLS_KEEPALIVE: Duration = Duration::from_secs(5);
const ALIVE: &[u8] = b"{\"event\":\"alive\"}\n";

/// `calls`: the table as `snapshot` lines, then its changes, one JSON line per event
/// (`earshot_manager::calls_feed`). The work is this connection's: each interval it reads the
/// shared snapshot (unchanged calls cost a lookup) and writes what changed; the pipeline never
/// waits for it. A subscriber that falls behind (its events over CALLS_QUEUE_BYTES, or a write
/// not taken within the write deadline) is told so and closed.
async fn calls_subscription<S: AsyncWrite + Unpin>(sock: &mut S, state: &State) {
    let mut feed = earshot_manager::calls_feed::CallsFeed::new();
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(CALLS_EVERY);
    let mut last_line = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let snap = state.shared.snapshot();
        // A big snapshot is written a part at a time, without waiting for the next tick.
        let more = feed.update_within(&snap.calls, snap.taken_ns, &mut out, CALLS_PART_BYTES);
        if more {
            tick.reset_immediately();
        }
        if out.is_empty() {
            if last_line.elapsed() < CALLS_KEEPALIVE {
                continue;
            }
            out.extend_from_slice(ALIVE);
        }
        last_line = tokio::time::Instant::now();
        let behind = if out.len() > CALLS_QUEUE_BYTES {
            true
        } else {
            // Not write_reply: that ends the reply; this connection stays open.
            let write = async {
                sock.write_all(&out).await?;
                sock.flush().await
            };
            match tokio::time::timeout(WRITE_DEADLINE, write).await {
                Ok(Ok(())) => false,
                Err(_) => true,
                // The subscriber went away.
                Ok(Err(_)) => return,
            }
        };
        if behind {
            state
                .counters
                .calls_overflows
                .fetch_add(1, Ordering::Relaxed);
            let _ = write_refusal(sock, b"{\"event\":\"overflow\"}\n").await;
            return;
        }
        out.clear();
    }
}

async fn write_reply<S: AsyncWrite + Unpin>(sock: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    write_within(sock, bytes, WRITE_DEADLINE).await
}

/// A reply to a client that was not served, with little patience.
async fn write_refusal<S: AsyncWrite + Unpin>(sock: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    write_within(sock, bytes, REFUSAL_WRITE_DEADLINE).await
}

async fn write_within<S: AsyncWrite + Unpin>(
    sock: &mut S,
    bytes: &[u8],
    limit: Duration,
) -> std::io::Result<()> {
    match tokio::time::timeout(limit, async {
        sock.write_all(bytes).await?;
        sock.shutdown().await
    })
    .await
    {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Who sent a request: what the listener limits and the audit log know a client by.
struct Who {
    client: Client,
    peer: String,
}

async fn answer(state: &State, command: Command, who: &Who) -> Vec<u8> {
    let snap = state.shared.snapshot();
    match command {
        Command::ListCalls(ListCallsFormat::Text) => {
            earshot_manager::listcalls::listcalls_text(snap.calls.summaries())
        }
        Command::ListCalls(ListCallsFormat::Json) => {
            earshot_manager::listcalls::listcalls_json(snap.calls.summaries(), None, context(state))
        }
        Command::ListCalls(ListCallsFormat::JsonWithParams(p)) => {
            earshot_manager::listcalls::listcalls_json(
                snap.calls.summaries(),
                Some(&p),
                context(state),
            )
        }
        Command::ActiveCallInfo(r) => match snap.find(r) {
            Some(c) => {
                let detail = sip_log(state, r).await;
                let sip: Vec<_> = detail
                    .sip
                    .into_iter()
                    .map(crate::summary::sip_packet)
                    .collect();
                earshot_manager::listcalls::active_call_info_with(c, &sip, Some(&detail.quality))
            }
            None => replies::CALL_NOT_FOUND.to_vec(),
        },
        Command::TotalCalls => replies::totalcalls(snap.calls.len()),
        Command::GetVersion => replies::version().to_vec(),
        Command::Help => replies::help(),
        Command::SnifferStat => sniffer_stat(state, &snap),
        Command::Listen { callref, listen_id } => listen(state, callref, listen_id, who).await,
        Command::ReadAudio { callref, listen_id } => {
            read_audio(state, callref, listen_id, who).await
        }
        Command::ListenStop { callref, listen_id } => {
            if let Some(mut p) = state.polled.lock().await.remove(&(callref, listen_id)) {
                p.session.end_reason("listen_stop");
                let _ = state.control.try_send(Control::Unsubscribe { id: p.id });
            }
            replies::LISTEN_STOP.to_vec()
        }
        Command::Stream(_) | Command::Calls => Vec::new(),
    }
}

/// Asks the pipeline for a call's SIP messages; empty if it does not answer within a second.
async fn sip_log(state: &State, callref: CallRef) -> crate::pipeline::CallDetail {
    let (reply, rx) = tokio::sync::oneshot::channel();
    if state
        .control
        .try_send(Control::SipLog { callref, reply })
        .is_err()
    {
        return Default::default();
    }
    match tokio::time::timeout(Duration::from_secs(1), rx).await {
        Ok(Ok(log)) => log,
        _ => Default::default(),
    }
}

fn context(state: &State) -> ListContext {
    ListContext {
        sensor_id: state.cfg.sensor_id,
    }
}

fn sniffer_stat(state: &State, snap: &crate::pipeline::Snapshot) -> Vec<u8> {
    use crate::counters::SensorCounters as C;
    let c = &state.shared.counters;
    replies::sniffer_stat(&replies::SnifferStat {
        uptime_secs: state.shared.started.elapsed().as_secs(),
        active_calls: snap.calls.len(),
        packets_seen: C::get(&c.frames),
        packets_dropped: C::get(&c.internal_drops) + C::get(&c.kernel_drops),
        memory_is_full: false,
        packets_processed: C::get(&c.processed),
        listener_drops: C::get(&c.listener_drops),
        listeners: state.shared.active_listeners.load(Ordering::Relaxed),
        kernel_drops: C::get(&c.kernel_drops),
        internal_drops: C::get(&c.internal_drops),
        audio_drops: C::get(&c.audio_drops),
        memory_bytes: resident_bytes(),
        rewind_bytes: snap.rewind_bytes as u64,
        rewind_overflow: C::get(&c.rewind_overflow),
        handoff_drops: C::get(&c.handoff_drops),
        calls_overflows: C::get(&state.counters.calls_overflows),
    })
}

/// Resident set size from /proc (Linux); 0 elsewhere.
pub(crate) fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

/// Admits a listener (the limits are checked here, before the pipeline is asked for anything,
/// so a refusal costs the packet path nothing) and asks the pipeline to feed it.
fn subscribe(
    state: &State,
    callref: CallRef,
    format: AudioFormat,
    from: StreamFrom,
    client: &Client,
) -> Result<(u64, FrameRx, Admitted), Refusal> {
    let admitted = match state.shared.gate.admit(callref, client.clone()) {
        Ok(a) => a,
        Err(r) => {
            SensorCounters::add(&state.shared.counters.listeners_refused, 1);
            return Err(r);
        }
    };
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let limits = &state.shared.listen;
    let (tx, rx) = crate::queue::channel(limits.queue_bytes, state.shared.listener_memory.clone());
    let _ = state.control.try_send(Control::Subscribe {
        id,
        callref,
        format,
        from,
        tx,
    });
    Ok((id, rx, admitted))
}

fn call_info(callref: CallRef, call_id: &str, from: &str) -> CallInfo {
    CallInfo {
        callref: callref.to_string(),
        call_id: call_id.to_string(),
        from: from.to_string(),
    }
}

async fn listen(state: &State, callref: CallRef, listen_id: String, who: &Who) -> Vec<u8> {
    let snap = state.shared.snapshot();
    let Some(call) = snap.find(callref) else {
        return replies::CALL_NOT_FOUND.to_vec();
    };
    let mut polled = state.polled.lock().await;
    let already = polled.keys().any(|(r, _)| *r == callref);
    if !polled.contains_key(&(callref, listen_id.clone())) {
        let format = AudioFormat::pcm(8000, 1);
        let info = call_info(callref, &call.text.call_id, "");
        let audit = &state.shared.audit;
        let (id, rx, admitted) =
            match subscribe(state, callref, format, StreamFrom::Now, &who.client) {
                Ok(x) => x,
                Err(r) => {
                    audit.refused(&who.client, &who.peer, &info, Mode::Listen, r.message());
                    return format!("error: {}\n", r.message()).into_bytes();
                }
            };
        let entry = Polled {
            rx,
            _admitted: admitted,
            session: audit.start(&who.client, &who.peer, &info, Mode::Listen),
            pcm: Vec::new(),
            last_read: Instant::now(),
            ended: false,
            id,
        };
        polled.insert((callref, listen_id), entry);
    }
    if already {
        replies::CALL_ALREADY_LISTENING.to_vec()
    } else {
        replies::SUCCESS.to_vec()
    }
}

/// VoIPmonitor's block size: 50 ms of 8 kHz 16-bit mono.
const READAUDIO_BLOCK: usize = 800;

async fn read_audio(state: &State, callref: CallRef, listen_id: String, who: &Who) -> Vec<u8> {
    let mut polled = state.polled.lock().await;
    let key = (callref, listen_id);
    let Some(p) = polled.get_mut(&key) else {
        let call_listened = polled.keys().any(|(r, _)| *r == callref);
        let call_id = state
            .shared
            .snapshot()
            .find(callref)
            .map(|c| c.text.call_id.clone())
            .unwrap_or_default();
        let info = call_info(callref, &call_id, "");
        let reason = "no listen registration with this id: send listen first";
        let audit = &state.shared.audit;
        audit.refused(&who.client, &who.peer, &info, Mode::ReadAudio, reason);
        return if state.shared.snapshot().find(callref).is_none() && !call_listened {
            replies::ERROR_CALL_NOT_FOUND.to_vec()
        } else if call_listened {
            replies::ERROR_CLIENT_NOT_FOUND.to_vec()
        } else {
            replies::ERROR_WORKER_NOT_FOUND.to_vec()
        };
    };
    p.last_read = Instant::now();
    while let Some(frame) = p.rx.try_recv() {
        match frame {
            Frame::Audio(a) => {
                p.session.sent(1, 0);
                a.samples
                    .iter()
                    .for_each(|s| p.pcm.extend_from_slice(&s.to_le_bytes()))
            }
            Frame::End(e) => {
                p.session.end_reason(end_reason(&e.reason));
                p.ended = true;
            }
            _ => {}
        }
    }
    let whole = p.pcm.len() / READAUDIO_BLOCK * READAUDIO_BLOCK;
    if whole == 0 {
        if p.ended || p.rx.is_closed() {
            if !p.ended {
                p.session.end_reason("overflow");
            }
            polled.remove(&key);
            return replies::ERROR_CALL_NOT_FOUND.to_vec();
        }
        return replies::WAIT_FOR_DATA.to_vec();
    }
    p.session.sent(0, whole as u64);
    p.pcm.drain(..whole).collect()
}

async fn sweep_idle_listeners(state: Arc<State>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let mut polled = state.polled.lock().await;
        polled.retain(|_, p| {
            let keep = p.last_read.elapsed() < READAUDIO_IDLE;
            if !keep {
                p.session.end_reason("idle");
                let _ = state.control.try_send(Control::Unsubscribe { id: p.id });
            }
            keep
        });
    }
}

/// Streams one call to the client; false when the call was not there.
async fn stream<S: AsyncWrite + Unpin>(
    sock: &mut S,
    state: &State,
    req: StreamRequest,
    who: &Who,
) -> bool {
    let snap = state.shared.snapshot();
    let Some(call) = snap.find(req.callref) else {
        let _ = write_reply(sock, &stream_proto::encode_refusal("call not found")).await;
        return false;
    };
    let header = StreamHeader {
        version: stream_proto::PROTOCOL_VERSION,
        callreference: req.callref.to_string(),
        callid: call.text.call_id.to_string(),
        caller: call.text.caller.to_string(),
        called: call.text.called.to_string(),
        format: req.format.as_str().into(),
        rate: req.rate,
        channels: req.channels,
        from: match req.from {
            StreamFrom::Now => "now".into(),
            StreamFrom::Start => "start".into(),
            StreamFrom::SecondsAgo(s) => format!("-{s}"),
        },
    };
    let format = AudioFormat {
        rate: req.rate,
        channels: req.channels,
        encoding: req.format,
    };
    let info = call_info(req.callref, &call.text.call_id, &header.from);
    let audit = &state.shared.audit;
    let (id, mut rx, _admitted) = match subscribe(state, req.callref, format, req.from, &who.client)
    {
        Ok(x) => x,
        Err(r) => {
            audit.refused(&who.client, &who.peer, &info, Mode::Stream, r.message());
            let _ = write_reply(sock, &stream_proto::encode_refusal(r.message())).await;
            return true;
        }
    };
    let mut session = audit.start(&who.client, &who.peer, &info, Mode::Stream);
    let mut out = stream_proto::encode_header(&header);
    if timed_write(sock, &out).await.is_err() {
        session.end_reason("client_gone");
        let _ = state.control.try_send(Control::Unsubscribe { id });
        return true;
    }
    loop {
        let frame = match rx.recv().await {
            Some(f) => f,
            // The pipeline dropped us (we were too slow) or went away.
            None => Frame::End(stream_proto::EndFrame {
                reason: EndReason::Overflow,
                detail: None,
            }),
        };
        let end = match &frame {
            Frame::End(e) => {
                session.end_reason(end_reason(&e.reason));
                true
            }
            _ => false,
        };
        out.clear();
        if stream_proto::encode_frame(&frame, &mut out).is_err() {
            break;
        }
        match tokio::time::timeout(STREAM_STALL, sock.write_all(&out)).await {
            Ok(Ok(())) => session.sent(
                u64::from(matches!(frame, Frame::Audio(_) | Frame::Opus(_))),
                out.len() as u64,
            ),
            Ok(Err(_)) => {
                session.end_reason("client_gone");
                break;
            }
            Err(_) => {
                session.end_reason("stalled");
                // The client stopped reading: a slow listener, dropped and counted, unless the
                // fan-out already dropped (and counted) it when its queue filled.
                if !rx.is_closed() {
                    SensorCounters::add(&state.shared.counters.listener_drops, 1);
                }
                tracing::warn!(callref = %req.callref, "stream listener dropped: nothing read for {STREAM_STALL:?}");
                break;
            }
        }
        if end {
            break;
        }
    }
    let _ = state.control.try_send(Control::Unsubscribe { id });
    let _ = tokio::time::timeout(WRITE_DEADLINE, sock.shutdown()).await;
    true
}

/// An end frame's reason as the audit log writes it.
fn end_reason(r: &EndReason) -> &'static str {
    match r {
        EndReason::CallEnded => "call_ended",
        EndReason::Overflow => "overflow",
        EndReason::ServerShutdown => "server_shutdown",
        EndReason::Error | EndReason::Unknown => "error",
    }
}

async fn timed_write<S: AsyncWrite + Unpin>(sock: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_DEADLINE, sock.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

#[cfg(test)]
mod log_limit_tests {
    use super::LogLimit;
    use std::time::{Duration, Instant};

    #[test]
    fn one_line_a_second_with_the_count_held_back() {
        let t0 = Instant::now();
        let mut l = LogLimit::default();
        assert_eq!(l.allow(t0), Some(0));
        for ms in [1, 10, 500, 999] {
            assert_eq!(l.allow(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(l.allow(t0 + Duration::from_millis(1000)), Some(4));
        assert_eq!(l.allow(t0 + Duration::from_millis(1500)), None);
        assert_eq!(l.allow(t0 + Duration::from_millis(5000)), Some(1));
        assert_eq!(l.allow(t0 + Duration::from_millis(7000)), Some(0));
    }
}

#[cfg(test)]
mod access_tests {
    use super::*;

    fn config(listen: &str, max_connections: usize) -> ManagerConfig {
        ManagerConfig {
            listen: listen.parse().unwrap(),
            allow: ManagerConfig::loopback_only(),
            token: None,
            max_connections,
            sensor_id: None,
            tls: None,
        }
    }

    #[test]
    fn an_eighth_of_the_connections_may_wait_unauthenticated() {
        assert_eq!(config("127.0.0.1:1", 2048).shares(), (256, 1792));
        assert_eq!(config("127.0.0.1:1", 64).shares(), (8, 56));
        assert_eq!(config("127.0.0.1:1", 2).shares(), (1, 1));
        assert_eq!(config("127.0.0.1:1", 0).shares(), (1, 1));
    }

    #[test]
    fn tokens_are_trimmed_and_blank_is_none() {
        assert_eq!(
            normalise_token(Some(" s3cret \n".into())),
            Some("s3cret".into())
        );
        assert_eq!(normalise_token(Some("a b".into())), Some("a b".into()));
        assert_eq!(normalise_token(Some(" \t".into())), None);
        assert_eq!(normalise_token(None), None);
    }

    #[test]
    fn no_token_beyond_loopback() {
        let public: SocketAddr = "0.0.0.0:5029".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:5029".parse().unwrap();
        assert!(check_token_rule(public, None).is_err());
        assert!(check_token_rule(public, Some("  ")).is_err());
        assert!(check_token_rule(public, Some("t")).is_ok());
        assert!(check_token_rule(local, None).is_ok());
        let err = check_token_rule(public, None).unwrap_err();
        assert!(
            err.contains("EARSHOT_TOKEN") && err.contains("127.0.0.1"),
            "{err}"
        );
    }
}
