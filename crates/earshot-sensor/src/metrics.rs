//! `/metrics` for Prometheus on a port of its own (`--metrics ADDR:PORT`): plain HTTP, GET only,
//! one request per connection. Everything it prints is read from counters bumped elsewhere and
//! from the pipeline's published snapshot, so a scrape never touches the packet path.
//!
//! Who may scrape is the player's rule ([`earshot_metrics::scrape_allowed`]): the metrics token
//! as a bearer token from anywhere, or, without a token, loopback clients only.
//!
//! Connections that send nothing cannot starve Prometheus: a connection still sending its
//! request sits in a [`WaitingRoom`] where the newest pushes out the one waiting longest, and it
//! has [`HEAD_DEADLINE`] to finish; only then does it compete for one of the answering slots.

use crate::counters::SensorCounters as C;
use crate::pipeline::Shared;
use crate::server::ManagerCounters;
use crate::waiting_room::{Seat, WaitingRoom};
use arc_swap::ArcSwapOption;
use earshot_metrics::request::{head_complete, header, route, Route};
use earshot_metrics::{Exposition, CONTENT_TYPE};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// A scraper gets this long to send its request head: Prometheus sends it at once.
const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// And this long to read the answer.
const ANSWER_DEADLINE: Duration = Duration::from_secs(5);
/// Request head size limit: a scrape is one short GET.
const MAX_REQUEST: usize = 8192;
/// Connections still sending their request; the newest pushes out the longest waiting.
const MAX_WAITING: usize = 64;
/// Answers being rendered and written at once; a request beyond them is closed unanswered.
const MAX_ANSWERING: usize = 16;

/// The metrics token, swapped by a configuration reload while scrapes read it, and the counts of
/// what the endpoint refused.
#[derive(Debug, Default)]
pub struct ScrapeToken {
    token: ArcSwapOption<String>,
    /// Scrapes refused for a missing or wrong token, or for not coming from loopback.
    refused: AtomicU64,
    /// Connections closed unanswered: pushed out while idle, too slow to send their request,
    /// or over the answering limit.
    evicted: AtomicU64,
    timeouts: AtomicU64,
    busy: AtomicU64,
}

impl ScrapeToken {
    pub fn new(token: Option<String>) -> Arc<ScrapeToken> {
        let t = ScrapeToken::default();
        t.replace(token);
        Arc::new(t)
    }

    pub fn get(&self) -> Option<Arc<String>> {
        self.token.load_full()
    }

    /// Surrounding whitespace is not part of a token (the bearer value is trimmed too); an empty
    /// token means none.
    pub fn replace(&self, token: Option<String>) {
        let token = crate::server::normalise_token(token);
        self.token.store(token.map(Arc::new));
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// The text of one scrape.
pub fn render(shared: &Shared, manager: &ManagerCounters, token: &ScrapeToken) -> String {
    let c = &shared.counters;
    let m = &c.metrics;
    let snap = shared.snapshot();
    let cap = &snap.capture;
    let mut e = Exposition::new();
    e.gauge(
        "earshot_sensor_uptime_seconds",
        "Seconds since the sensor started.",
        shared.started.elapsed().as_secs_f64(),
    );
    e.counter(
        "earshot_sensor_frames_total",
        "Frames taken from the capture sources (interfaces, HEP, files).",
        C::get(&c.frames),
    );
    e.counter(
        "earshot_sensor_captured_bytes_total",
        "Bytes of the frames taken from the capture sources.",
        C::get(&c.bytes),
    );
    e.counter(
        "earshot_sensor_processed_frames_total",
        "Frames the call-tracking pipeline has processed.",
        C::get(&c.processed),
    );
    let kind = |k: &str| vec![("kind", k.to_string())];
    let reason = |r: &str| vec![("reason", r.to_string())];
    e.counters(
        "earshot_sensor_packets_total",
        "Packets the pipeline recognised, by kind (sip: SIP messages; malformed: undecodable frames or SIP).",
        [
            (kind("sip"), cap.sip_messages),
            (kind("rtp"), cap.rtp_packets),
            (kind("rtcp"), cap.rtcp_packets),
            (kind("malformed"), cap.malformed),
        ],
    );
    e.counters(
        "earshot_sensor_bytes_total",
        "Transport payload bytes (UDP/TCP/SCTP) the pipeline recognised, by kind.",
        [
            (kind("sip"), cap.sip_bytes),
            (kind("rtp"), cap.rtp_bytes),
            (kind("rtcp"), cap.rtcp_bytes),
        ],
    );
    e.counters(
        "earshot_sensor_srtp_packets_total",
        "SRTP packets of calls, by outcome (decrypted: authenticated with the call's key, SDES or DTLS-SRTP, so usable; the payload is decrypted when something reads it; auth_failed: the key did not authenticate them, not decoded; no_key: no key known, not decoded).",
        [
            (vec![("outcome", "decrypted".to_string())], cap.srtp.decrypted),
            (vec![("outcome", "auth_failed".to_string())], cap.srtp.auth_failures),
            (vec![("outcome", "no_key".to_string())], cap.srtp.no_key),
        ],
    );
    e.counters(
        "earshot_sensor_srtcp_packets_total",
        "SRTCP packets of calls, by outcome (decrypted: authenticated and decrypted with the sender's key, then read as RTCP reports; auth_failed: the key did not authenticate them, not read; no_key: no key known, not read).",
        [
            (vec![("outcome", "decrypted".to_string())], cap.srtcp.decrypted),
            (vec![("outcome", "auth_failed".to_string())], cap.srtcp.auth_failures),
            (vec![("outcome", "no_key".to_string())], cap.srtcp.no_key),
        ],
    );
    e.counters(
        "earshot_sensor_key_log_lines_total",
        "Lines read from the TLS key logs (--tls-keylog), by outcome (secret: a secret added or repeated; malformed: not a key log line; unknown_label: a label earshot has no use for).",
        [
            (vec![("outcome", "secret".to_string())], cap.key_log.secrets),
            (vec![("outcome", "malformed".to_string())], cap.key_log.malformed),
            (vec![("outcome", "unknown_label".to_string())], cap.key_log.unknown_labels),
        ],
    );
    e.counter(
        "earshot_sensor_tls_connections_total",
        "TLS connections seen (SIP over TLS).",
        cap.tls.connections,
    );
    e.counter(
        "earshot_sensor_tls_connections_decrypted_total",
        "TLS connections read with the key logs' secrets.",
        cap.tls.decrypted,
    );
    e.gauge(
        "earshot_sensor_tls_connections_without_key",
        "TLS connections waiting for secrets the key logs do not have (never read as SIP until they come).",
        cap.tls.without_key as f64,
    );
    e.counter(
        "earshot_sensor_tls_auth_failures_total",
        "TLS records whose authentication failed (a wrong secret in a key log, or damaged bytes); never read.",
        cap.tls.auth_failures,
    );
    e.counter(
        "earshot_sensor_tls_dropped_waiting_bytes_total",
        "Bytes of TLS records dropped while waiting for their keys (256 KiB a connection, 64 MiB in all).",
        cap.tls.dropped_waiting_bytes,
    );
    dtls_metrics(&mut e, &cap.dtls);
    e.counter(
        "earshot_sensor_kernel_drops_total",
        "Frames the kernel dropped before libpcap read them (raise [capture] buffer_mb).",
        C::get(&c.kernel_drops),
    );
    e.counters(
        "earshot_sensor_hep_refused_total",
        "HEP datagrams dropped before decoding, by reason (address: source not in hep.allow; auth_key: missing or wrong HEP3 auth key).",
        [
            (reason("address"), C::get(&c.hep_refused_address)),
            (reason("auth_key"), C::get(&c.hep_refused_auth_key)),
        ],
    );
    let skipped = &cap.hep_skipped;
    e.counters(
        "earshot_sensor_hep_skipped_total",
        "HEP packets decoded but not passed on, by reason (malformed: envelope cut short or \
         without addresses; unsupported: no payload chunk or an unknown transport; \
         inflate_failed: a compressed payload that is not zlib/deflate; too_big: a compressed \
         payload inflating beyond 64 KiB).",
        [
            (reason("malformed"), skipped.malformed),
            (reason("unsupported"), skipped.unsupported),
            (reason("inflate_failed"), skipped.inflate_failed),
            (reason("too_big"), skipped.too_big),
        ],
    );
    e.counter(
        "earshot_sensor_internal_drops_total",
        "Frames dropped because the pipeline queue was full: the sensor's own loss.",
        C::get(&c.internal_drops),
    );
    e.counters(
        "earshot_sensor_time_corrected_total",
        "Capture times not believed (docs/security.md): hep_envelope: a HEP envelope time too far \
         from the time of receipt, replaced by it ([calls] hep_max_clock_skew_s); clock_step: a \
         time more than a step ahead of the sensor's clock, which moved by the step only.",
        [
            (
                vec![("kind", "hep_envelope".to_string())],
                cap.hep_time_replaced,
            ),
            (
                vec![("kind", "clock_step".to_string())],
                C::get(&c.clock_clamped),
            ),
        ],
    );
    e.counter(
        "earshot_sensor_audio_resyncs_total",
        "Times a listener's audio timeline was re-anchored instead of filling a jump in capture \
         or RTP time (or a pause longer than the longest kept) with silence.",
        C::get(&c.audio_resyncs),
    );
    e.gauge(
        "earshot_sensor_active_calls",
        "Calls in the call table now (including ended calls lingering briefly).",
        snap.calls.len() as f64,
    );
    e.counter(
        "earshot_sensor_calls_started_total",
        "Calls (INVITE dialogs) seen starting.",
        C::get(&m.calls_started),
    );
    e.counters(
        "earshot_sensor_calls_ended_total",
        "Calls that ended, by final SIP response code (none: no final response, e.g. timed out).",
        m.calls_ended
            .nonzero()
            .into_iter()
            .map(|(code, n)| (vec![("code", code)], n)),
    );
    e.counter(
        "earshot_sensor_calls_dropped_total",
        "Calls not tracked because the call table was full ([calls] max_calls).",
        cap.calls_dropped,
    );
    e.counter(
        "earshot_sensor_sip_log_skipped_total",
        "SIP messages of calls not kept for active_call_info ([calls] sip_log_messages, sip_log_call_kb, sip_log_mb).",
        cap.sip_log_skipped,
    );
    e.counter(
        "earshot_sensor_legs_grouped_total",
        "Calls grouped as a B-leg with another call's A-leg (X-CID, Session-ID, icid, [correlation]).",
        cap.legs_grouped,
    );
    e.counter(
        "earshot_sensor_correlation_dropped_total",
        "Correlation keys not indexed because the index was full ([correlation] max_keys).",
        cap.correlation_dropped,
    );
    e.gauge(
        "earshot_sensor_active_streams",
        "RTP streams being tracked now.",
        snap.active_streams as f64,
    );
    e.counter(
        "earshot_sensor_streams_total",
        "RTP streams seen.",
        cap.streams,
    );
    e.counters(
        "earshot_sensor_decode_errors_total",
        "Audio payloads a listener's decoder rejected (concealed as loss), by codec.",
        m.decode_errors
            .all()
            .into_iter()
            .map(|(codec, n)| (vec![("codec", codec.to_string())], n)),
    );
    e.gauge(
        "earshot_sensor_listeners",
        "Listeners (stream and listen/readaudio clients) being fed now.",
        shared.active_listeners.load(Ordering::Relaxed) as f64,
    );
    e.counter(
        "earshot_sensor_listener_drops_total",
        "Listeners dropped because they fell behind.",
        C::get(&c.listener_drops),
    );
    e.counter(
        "earshot_sensor_listener_budget_drops_total",
        "Of the dropped listeners, those dropped because all listeners' queues were at [listen] memory_mb.",
        C::get(&c.listener_budget_drops),
    );
    e.counter(
        "earshot_sensor_listener_encode_errors_total",
        "20 ms blocks of listeners' audio the Opus encoder failed on (lost; format=opus streams only).",
        C::get(&c.listener_encode_errors),
    );
    e.counter(
        "earshot_sensor_listeners_refused_total",
        "Listeners refused by a listener limit (per sensor, per call, per client and call).",
        C::get(&c.listeners_refused),
    );
    e.counter(
        "earshot_sensor_rewind_overflow_total",
        "RTP packets not kept for rewind because their call or all calls were at the rewind byte limit.",
        C::get(&c.rewind_overflow),
    );
    e.counter(
        "earshot_sensor_handoff_drops_total",
        "RTP packets not handed to the fan-out thread (rewind and listeners): the hand-off was at its byte bound.",
        C::get(&c.handoff_drops),
    );
    e.counter(
        "earshot_sensor_calls_overflows_total",
        "Manager API `calls` subscribers closed because they did not keep up with the call events.",
        C::get(&manager.calls_overflows),
    );
    e.counter(
        "earshot_sensor_audit_drops_total",
        "Audit log lines lost (queue full or file not writable).",
        C::get(&c.audit_drops),
    );
    e.counter(
        "earshot_sensor_audio_queue_drops_total",
        "Packets or events for listeners lost because the audio fan-out queue was full.",
        C::get(&c.audio_drops),
    );
    e.histogram(
        "earshot_sensor_frame_latency_seconds",
        "From the capture time of an audio frame's last sample to the frame leaving for live listeners.",
        &m.frame_latency,
    );
    e.counter(
        "earshot_sensor_manager_connections_total",
        "Connections accepted on the Manager API port.",
        C::get(&manager.connections),
    );
    e.counters(
        "earshot_sensor_manager_refused_connections_total",
        "Manager API connections closed unanswered, by reason (address: not in manager.allow; evicted: not yet authorised, pushed out by a newer connection; timeout: no complete request within 3 s; tls: failed TLS handshake; busy: every authorised slot taken).",
        [
            (reason("address"), C::get(&manager.refused_addr)),
            (reason("evicted"), C::get(&manager.evicted)),
            (reason("timeout"), C::get(&manager.timeouts)),
            (reason("tls"), C::get(&manager.tls_failures)),
            (reason("busy"), C::get(&manager.busy)),
        ],
    );
    let state = |s: &str| vec![("state", s.to_string())];
    e.gauges(
        "earshot_sensor_manager_open_connections",
        "Manager API connections open now, by state (unauthenticated: request not yet read and authorised).",
        [
            (state("unauthenticated"), C::get(&manager.open_unauthenticated) as f64),
            (state("authenticated"), C::get(&manager.open_authenticated) as f64),
        ],
    );
    e.counters(
        "earshot_sensor_manager_requests_total",
        "Manager API requests by command and result.",
        manager
            .by_command
            .nonzero()
            .into_iter()
            .map(|(command, result, n)| {
                let labels = vec![("command", command.into()), ("result", result.into())];
                (labels, n)
            }),
    );
    e.counter(
        "earshot_sensor_manager_auth_failures_total",
        "Manager API requests refused for a missing or wrong token.",
        C::get(&manager.auth_failures),
    );
    e.counter(
        "earshot_sensor_metrics_refusals_total",
        "Scrapes of /metrics refused (wrong or missing token, or not from loopback).",
        token.refused(),
    );
    e.counters(
        "earshot_sensor_metrics_dropped_connections_total",
        "Connections to /metrics closed unanswered, by reason (evicted: idle, pushed out by a newer one; timeout: no request within 2 s; busy: too many answers being written).",
        [
            (reason("evicted"), C::get(&token.evicted)),
            (reason("timeout"), C::get(&token.timeouts)),
            (reason("busy"), C::get(&token.busy)),
        ],
    );
    e.gauge(
        "earshot_sensor_rewind_bytes",
        "Bytes of RTP kept for late listeners (the rewind buffer).",
        snap.rewind_bytes as f64,
    );
    e.gauge(
        "earshot_sensor_resident_memory_bytes",
        "Resident memory of the sensor process.",
        crate::server::resident_bytes() as f64,
    );
    e.finish()
}

/// Binds `addr` and serves `/metrics` on the current tokio runtime; returns the bound address.
pub async fn start(
    addr: SocketAddr,
    token: Arc<ScrapeToken>,
    shared: Arc<Shared>,
    manager: Arc<ManagerCounters>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let waiting = WaitingRoom::new(MAX_WAITING);
    let answering = Arc::new(Semaphore::new(MAX_ANSWERING));
    tokio::spawn(async move {
        loop {
            let (sock, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("metrics accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (seat, evicted) = waiting.enter();
            C::add(&token.evicted, evicted);
            let scrape = Scrape {
                peer: peer.ip(),
                token: token.clone(),
                shared: shared.clone(),
                manager: manager.clone(),
                answering: answering.clone(),
            };
            tokio::spawn(serve(sock, seat, scrape));
        }
    });
    Ok(local)
}

/// One connection: its request head within [`HEAD_DEADLINE`] (unless pushed out first), then,
/// with an answering slot, the answer within [`ANSWER_DEADLINE`].
async fn serve(mut sock: TcpStream, mut seat: Seat, scrape: Scrape) {
    let head = tokio::select! {
        head = tokio::time::timeout(HEAD_DEADLINE, read_head(&mut sock)) => head,
        () = seat.told_to_leave() => return,
    };
    drop(seat);
    let head = match head {
        Ok(Some(head)) => head,
        Ok(None) => return,
        Err(_) => {
            C::add(&scrape.token.timeouts, 1);
            return;
        }
    };
    let Ok(_slot) = scrape.answering.clone().try_acquire_owned() else {
        C::add(&scrape.token.busy, 1);
        return;
    };
    let _ = tokio::time::timeout(ANSWER_DEADLINE, answer(sock, &head, &scrape)).await;
}

/// What one connection needs to be answered.
struct Scrape {
    peer: IpAddr,
    token: Arc<ScrapeToken>,
    shared: Arc<Shared>,
    manager: Arc<ManagerCounters>,
    answering: Arc<Semaphore>,
}

async fn answer(mut sock: TcpStream, head: &str, scrape: &Scrape) {
    let token = scrape.token.get();
    let allowed = earshot_metrics::scrape_allowed(
        token.as_deref().map(String::as_str),
        header(head, "authorization"),
        Some(scrape.peer),
    );
    let (status, content_type, body) = match route(head) {
        Route::Metrics if !allowed => {
            C::add(&scrape.token.refused, 1);
            let reason = earshot_metrics::refusal_reason(token.is_some());
            (
                "403 Forbidden",
                "text/plain; charset=utf-8",
                format!("{reason}\n"),
            )
        }
        Route::Metrics => (
            "200 OK",
            CONTENT_TYPE,
            render(&scrape.shared, &scrape.manager, &scrape.token),
        ),
        Route::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: the metrics are at /metrics\n".to_string(),
        ),
        Route::BadMethod => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET is served here\n".to_string(),
        ),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if sock.write_all(reply.as_bytes()).await.is_ok() {
        let _ = sock.shutdown().await;
    }
}

/// Reads up to the end of the request head; `None` if the client sends garbage or too much.
async fn read_head(sock: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head_complete(&buf) {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return None;
        }
        buf.extend_from_slice(chunk.get(..n)?);
    }
    String::from_utf8(buf).ok()
}

/// DTLS-SRTP on calls' media addresses: how many handshakes were read, how many a key log
/// keyed, and why the others give no keys (an operator whose WebRTC calls stay "encrypted"
/// sees here whether the key log is missing or the profile or version is one earshot does not
/// decrypt).
fn dtls_metrics(e: &mut Exposition, d: &earshot_core::DtlsTotals) {
    e.counter(
        "earshot_sensor_dtls_datagrams_total",
        "DTLS datagrams (RFC 7983) to or from a call's media address.",
        d.datagrams,
    );
    e.counter(
        "earshot_sensor_dtls_handshakes_total",
        "DTLS 1.2 handshakes whose ClientHello and ServerHello were read.",
        d.handshakes,
    );
    e.counter(
        "earshot_sensor_dtls_handshakes_keyed_total",
        "DTLS handshakes whose master secret a key log gave (--tls-keylog): their SRTP keys are known.",
        d.keyed,
    );
    e.gauge(
        "earshot_sensor_dtls_handshakes_without_key",
        "DTLS handshakes no key log line keys yet: their media stays encrypted until one does.",
        d.without_key as f64,
    );
    e.counters(
        "earshot_sensor_dtls_unsupported_total",
        "DTLS handshakes earshot reads but does not key, by reason (profile: an SRTP protection profile it does not decrypt; version: DTLS 1.0 or 1.3).",
        [
            (vec![("reason", "profile".to_string())], d.unsupported_profile),
            (vec![("reason", "version".to_string())], d.unsupported_version),
        ],
    );
    e.counter(
        "earshot_sensor_dtls_dropped_datagrams_total",
        "DTLS datagrams of a call already observing its maximum of associations (4), not read.",
        d.dropped,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::SensorCounters;

    #[test]
    fn counters_bumped_elsewhere_show_in_the_scrape() {
        let counters = Arc::new(SensorCounters::default());
        let shared = Shared::new(counters.clone());
        let manager = ManagerCounters::default();
        SensorCounters::add(&counters.frames, 5);
        SensorCounters::add(&counters.kernel_drops, 2);
        counters.metrics.calls_ended.add(Some(486));
        counters
            .metrics
            .decode_errors
            .add(&earshot_audio::Codec::G729, 3);
        counters.metrics.frame_latency.observe_ns(50_000_000);
        manager.by_command.add("listcalls", "ok");
        manager.by_command.add("stream", "unauthorized");
        let token = ScrapeToken::new(None);
        token.refused.fetch_add(4, Ordering::Relaxed);
        let text = render(&shared, &manager, &token);
        for line in [
            "earshot_sensor_frames_total 5",
            "earshot_sensor_kernel_drops_total 2",
            "earshot_sensor_calls_ended_total{code=\"486\"} 1",
            "earshot_sensor_decode_errors_total{codec=\"g729\"} 3",
            "earshot_sensor_decode_errors_total{codec=\"pcmu\"} 0",
            "earshot_sensor_frame_latency_seconds_bucket{le=\"0.06\"} 1",
            "earshot_sensor_frame_latency_seconds_bucket{le=\"0.04\"} 0",
            "earshot_sensor_manager_requests_total{command=\"listcalls\",result=\"ok\"} 1",
            "earshot_sensor_manager_requests_total{command=\"stream\",result=\"unauthorized\"} 1",
            "earshot_sensor_metrics_refusals_total 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
