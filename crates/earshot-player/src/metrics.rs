//! The player's `/metrics`: listening sessions, the relay's frames and latency, logins and
//! refusals, sensor errors. Counters are relaxed atomics bumped where things happen.
//!
//! Access: Prometheus cannot log in, so `/metrics` does not use sessions. With a metrics token
//! configured (`--metrics-token`, `[metrics] token`) a scraper must send
//! `Authorization: Bearer <token>`, from any address; without one, only loopback clients are
//! answered. (Behind a reverse proxy every client looks like loopback: set a token there.)

use earshot_metrics::{Exposition, Histogram};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Bounds of the relay histogram, in seconds: handing a frame to a healthy browser takes
/// microseconds; a slow one makes it wait.
pub const RELAY_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Why a request was refused for its session, API key or listen token: labels of
/// `earshot_player_auth_refusals_total`.
pub const REFUSAL_LABELS: [&str; 10] = [
    "no_session",
    "expired",
    "csrf",
    "role",
    "no_key",
    "bad_key",
    "key_expired",
    "key_sensor",
    "key_rate",
    "token",
];

#[derive(Debug)]
pub struct PlayerMetrics {
    started: Instant,
    pub logins: AtomicU64,
    pub login_failures: AtomicU64,
    refusals: [AtomicU64; REFUSAL_LABELS.len()],
    pub metrics_refusals: AtomicU64,
    pub listen_sessions: AtomicU64,
    pub listen_failures: AtomicU64,
    pub active_listen_sessions: AtomicU64,
    pub relay_frames: AtomicU64,
    pub relay_bytes: AtomicU64,
    /// From a frame arriving from the sensor to the WebSocket having taken it.
    pub relay_latency: Histogram,
    pub chunk_requests: AtomicU64,
    pub call_list_requests: AtomicU64,
    /// `listcalls` answers that failed (sensor down, wrong token, timeout).
    pub sensor_errors: AtomicU64,
    /// Logins refused unchecked: the user or address was locked out after too many failures.
    pub login_locked: AtomicU64,
    /// Logins refused because no password-hashing thread became free in time.
    pub login_busy: AtomicU64,
    /// HTTP and WebSocket connections open now.
    pub connections_open: AtomicU64,
    /// Connections closed at once: the connection cap was reached and none could give way.
    pub connections_refused: AtomicU64,
    /// Connections that had sent no request yet, closed to make room for a new one at the cap.
    pub connections_evicted: AtomicU64,
    /// Connections closed for not sending a request head in time (also idle keep-alives).
    pub header_timeouts: AtomicU64,
    /// Requests not answered within the request time limit.
    pub request_timeouts: AtomicU64,
    /// Listening attempts refused for the per-user, per-call cap (or the chunk session cap).
    pub listen_cap_refusals: AtomicU64,
    /// /api/chunk sessions ended because nobody polled them.
    pub chunk_idle_ends: AtomicU64,
}

impl Default for PlayerMetrics {
    fn default() -> Self {
        PlayerMetrics {
            started: Instant::now(),
            logins: AtomicU64::new(0),
            login_failures: AtomicU64::new(0),
            refusals: Default::default(),
            metrics_refusals: AtomicU64::new(0),
            listen_sessions: AtomicU64::new(0),
            listen_failures: AtomicU64::new(0),
            active_listen_sessions: AtomicU64::new(0),
            relay_frames: AtomicU64::new(0),
            relay_bytes: AtomicU64::new(0),
            relay_latency: Histogram::new(RELAY_BOUNDS),
            chunk_requests: AtomicU64::new(0),
            call_list_requests: AtomicU64::new(0),
            sensor_errors: AtomicU64::new(0),
            login_locked: AtomicU64::new(0),
            login_busy: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_evicted: AtomicU64::new(0),
            header_timeouts: AtomicU64::new(0),
            request_timeouts: AtomicU64::new(0),
            listen_cap_refusals: AtomicU64::new(0),
            chunk_idle_ends: AtomicU64::new(0),
        }
    }
}

pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl PlayerMetrics {
    pub fn refused(&self, reason: &str) {
        if let Some(i) = REFUSAL_LABELS.iter().position(|l| *l == reason) {
            bump(&self.refusals[i]);
        }
    }

    /// Counts a listening session for as long as the guard lives.
    pub fn session(&self) -> SessionGuard<'_> {
        bump(&self.listen_sessions);
        bump(&self.active_listen_sessions);
        SessionGuard(self)
    }

    /// The exposition, with the shared sensor streams' figures from `relays`.
    pub fn render(&self, relays: &crate::relay::Relays) -> String {
        let mut e = Exposition::new();
        e.gauge(
            "earshot_player_uptime_seconds",
            "Seconds since the player started.",
            self.started.elapsed().as_secs_f64(),
        );
        e.counter(
            "earshot_player_logins_total",
            "Successful logins.",
            get(&self.logins),
        );
        e.counter(
            "earshot_player_login_failures_total",
            "Logins refused for a wrong user name or password.",
            get(&self.login_failures),
        );
        e.counters(
            "earshot_player_auth_refusals_total",
            "API requests refused, by reason (no_session: not logged in; expired: unknown or expired session; csrf: missing or wrong X-CSRF-Token; role: not allowed for the user's role).",
            REFUSAL_LABELS
                .iter()
                .zip(&self.refusals)
                .map(|(l, c)| (vec![("reason", l.to_string())], get(c))),
        );
        e.counter(
            "earshot_player_metrics_refusals_total",
            "Scrapes of /metrics refused (wrong or missing token, or not from loopback).",
            get(&self.metrics_refusals),
        );
        e.counter(
            "earshot_player_listen_sessions_total",
            "Listening sessions (WebSocket relays) that reached a sensor and started.",
            get(&self.listen_sessions),
        );
        e.counter(
            "earshot_player_listen_failures_total",
            "Listening sessions that could not start (sensor unreachable, call gone, audit log failure).",
            get(&self.listen_failures),
        );
        e.gauge(
            "earshot_player_active_listen_sessions",
            "Listening sessions relaying now.",
            get(&self.active_listen_sessions) as f64,
        );
        e.counter(
            "earshot_player_relay_frames_total",
            "Stream frames relayed from sensors to browsers.",
            get(&self.relay_frames),
        );
        e.counter(
            "earshot_player_relay_bytes_total",
            "Bytes of the stream frames relayed from sensors to browsers.",
            get(&self.relay_bytes),
        );
        e.histogram(
            "earshot_player_relay_latency_seconds",
            "From a frame arriving from the sensor to the browser's WebSocket taking it.",
            &self.relay_latency,
        );
        e.counter(
            "earshot_player_chunk_requests_total",
            "Requests to /api/chunk (VoIPmonitor-style WAV polling).",
            get(&self.chunk_requests),
        );
        e.counter(
            "earshot_player_call_list_requests_total",
            "Requests to /api/calls.",
            get(&self.call_list_requests),
        );
        e.counter(
            "earshot_player_sensor_errors_total",
            "Sensors that failed to list their calls for /api/calls (down, wrong token, timeout).",
            get(&self.sensor_errors),
        );
        e.counters(
            "earshot_player_login_refusals_total",
            "Logins refused without checking the password, by reason (locked: too many failures for the user or address, see [login]; busy: no password-hashing thread free in time).",
            [("locked", &self.login_locked), ("busy", &self.login_busy)]
                .into_iter()
                .map(|(l, c)| (vec![("reason", l.to_string())], get(c))),
        );
        e.gauge(
            "earshot_player_connections_open",
            "HTTP and WebSocket connections open now.",
            get(&self.connections_open) as f64,
        );
        e.counter(
            "earshot_player_connections_refused_total",
            "Connections closed unserved at the connection cap ([http] max_connections).",
            get(&self.connections_refused),
        );
        e.counter(
            "earshot_player_connections_evicted_total",
            "Connections that had sent no request yet, closed to make room at the connection cap.",
            get(&self.connections_evicted),
        );
        e.counter(
            "earshot_player_header_timeouts_total",
            "Connections closed for sending no complete request head in time, idle keep-alives included ([http] header_timeout_seconds).",
            get(&self.header_timeouts),
        );
        e.counter(
            "earshot_player_request_timeouts_total",
            "Requests not answered within [http] request_timeout_seconds.",
            get(&self.request_timeouts),
        );
        e.counter(
            "earshot_player_listen_cap_refusals_total",
            "Listening attempts refused for [listening] max_per_user_per_call or the chunk session cap.",
            get(&self.listen_cap_refusals),
        );
        e.counter(
            "earshot_player_chunk_idle_ends_total",
            "/api/chunk listening sessions ended because nobody polled them ([listening] chunk_idle_seconds).",
            get(&self.chunk_idle_ends),
        );
        e.gauge(
            "earshot_player_sensor_streams",
            "Sensor streams open now: one per call and format listened to from now, however many browsers share it.",
            get(&relays.upstreams) as f64,
        );
        e.counter(
            "earshot_player_shared_stream_joins_total",
            "Listening sessions that joined a sensor stream already open for another browser.",
            get(&relays.shared_joins),
        );
        e.counter(
            "earshot_player_lagged_listeners_total",
            "Listening sessions dropped for falling seconds behind their shared sensor stream.",
            get(&relays.lagged),
        );
        e.finish()
    }
}

/// Decrements the active-session gauge when the session ends, however it ends.
pub struct SessionGuard<'a>(&'a PlayerMetrics);

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        let _ =
            self.0
                .active_listen_sessions
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_counted_while_they_last() {
        let m = PlayerMetrics::default();
        {
            let _a = m.session();
            let _b = m.session();
            assert_eq!(get(&m.active_listen_sessions), 2);
        }
        assert_eq!(get(&m.active_listen_sessions), 0);
        assert_eq!(get(&m.listen_sessions), 2);
        m.refused("csrf");
        m.refused("not-a-reason");
        let text = m.render(&crate::relay::Relays::default());
        assert!(
            text.contains("earshot_player_auth_refusals_total{reason=\"csrf\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("earshot_player_listen_sessions_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("earshot_player_active_listen_sessions 0\n"),
            "{text}"
        );
    }
}
