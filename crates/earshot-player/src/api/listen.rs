//! Listening: the `/api/listen` WebSocket relaying a sensor's `stream` (or polling a
//! VoIPmonitor sensor), with its checks and its audit row.

use super::*;
use crate::relay::{Joined, RelayKey, Upstream};
use earshot_manager::stream_proto::AudioEncoding;
use earshot_manager::{CallRef, StreamFrom, StreamRequest};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/listen", get(listen))
}

#[derive(Deserialize)]
pub struct ListenQuery {
    pub(super) sensor_id: Option<i64>,
    pub(super) callref: Option<String>,
    rate: Option<u32>,
    channels: Option<u8>,
    from: Option<String>,
    /// `s16le` (the default) or `opus`: Opus carries 16 kHz stereo in about 5 KB/s where
    /// PCM takes 64 KB/s.
    format: Option<String>,
    pub(super) listen_id: Option<String>,
    /// A listen token from `POST /api/v1/listen-tokens`, instead of the session cookie: it
    /// names the sensor, the call and the start, which the query may repeat but not change.
    pub(super) token: Option<String>,
}

pub(super) fn callref_of(q: &ListenQuery) -> Result<String, ApiError> {
    checked_callref(q.callref.as_deref()).map(str::to_string)
}

/// A call reference from a query, refused (with what to do) when missing or not one: the one
/// rule of every page endpoint that names a call (listen, chunk, ladder, quality).
pub(super) fn checked_callref(r: Option<&str>) -> Result<&str, ApiError> {
    let r = r.ok_or_else(|| {
        ApiError::BadRequest("callref is missing: pick a call from the list".into())
    })?;
    if !manager::valid_callref(r) {
        return Err(ApiError::BadRequest(format!(
            "callref {r:?} is not a call reference (hex, as the call list shows it)"
        )));
    }
    Ok(r)
}

/// The `stream` request, validated so nothing but known values reaches the sensor.
fn stream_request(callref: &str, q: &ListenQuery) -> Result<StreamRequest, ApiError> {
    let rate = q.rate.unwrap_or(8000);
    if !matches!(rate, 8000 | 16000 | 48000) {
        return Err(ApiError::BadRequest(
            "rate must be 8000, 16000 or 48000".into(),
        ));
    }
    let channels = q.channels.unwrap_or(1);
    if !matches!(channels, 1 | 2) {
        return Err(ApiError::BadRequest("channels must be 1 or 2".into()));
    }
    let from = parse_from(q.from.as_deref().unwrap_or("now")).ok_or_else(|| {
        ApiError::BadRequest("from must be now, start or -SECONDS (e.g. -30)".into())
    })?;
    let format = match q.format.as_deref() {
        None => AudioEncoding::S16le,
        Some(f) => AudioEncoding::parse(f)
            .ok_or_else(|| ApiError::BadRequest("format must be s16le or opus".into()))?,
    };
    let callref = CallRef::parse(callref).map_err(|_| {
        ApiError::BadRequest(format!(
            "callref {callref:?} is not a call reference (hex, as the call list shows it)"
        ))
    })?;
    Ok(StreamRequest {
        callref,
        rate,
        channels,
        from,
        format,
    })
}

/// Where a stream starts: `now`, `start` or `-SECONDS` (at most six digits).
pub(super) fn parse_from(from: &str) -> Option<StreamFrom> {
    match from {
        "now" => Some(StreamFrom::Now),
        "start" => Some(StreamFrom::Start),
        other => other
            .strip_prefix('-')
            .filter(|n| !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
            .map(StreamFrom::SecondsAgo),
    }
}

/// Browsers always send Origin on WebSocket requests; a page from another site must not be
/// able to open a listening session with the user's cookie.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser (curl, scripts): no cross-site risk, and the cookie is still required.
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

async fn listen(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    Query(q): Query<ListenQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    if let Some(token) = q.token.clone() {
        return listen_with_token(st, headers, ip, q, token, ws).await;
    }
    let checked = match require(&st, &headers, Role::Viewer, false).await {
        Err(e) => Err((None, e)),
        Ok((session, _)) => match check_listen(&st, &headers, &q, &session).await {
            Ok(c) => Ok((session, c)),
            Err(e) => Err((Some(session), e)),
        },
    };
    let attempt = |session: &Session| {
        audit::call_request_row(&st, session, ip.clone(), &headers, &q, "websocket")
    };
    let (session, (sensor, callref, options, slot)) = match checked {
        Ok(c) => c,
        Err((session, e)) => {
            if let Some(session) = &session {
                st.audit_attempt(attempt(session), REFUSED, &e.to_string())
                    .await;
            }
            return refuse_upgrade(ws, e);
        }
    };
    let Ok(ws) = ws else {
        return Err(ApiError::BadRequest(
            "/api/listen needs a WebSocket connection".into(),
        ));
    };
    let mut audit = attempt(&session);
    audit.id_sensor = Some(sensor.id_sensor);
    audit.callreference = callref.clone();
    let session = RelaySession {
        sensor,
        callref,
        options,
        audit,
        admin: session.role >= Role::Admin,
        _slot: slot,
    };
    Ok(ws.on_upgrade(move |socket| relay(st, socket, session)))
}

/// A browser cannot read the body of a refused upgrade: accept it, say why in the page's own
/// terms, and close, so the page shows the reason instead of retrying.
fn refuse_upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    e: ApiError,
) -> Result<Response, ApiError> {
    let Ok(ws) = ws else { return Err(e) };
    let text = e.to_string();
    Ok(ws.on_upgrade(move |mut socket| async move { send_error(&mut socket, &text, false).await }))
}

/// `/api/listen?token=…`: a browser on a dashboard's page, listening with a listen token
/// instead of a login. Refusals of a correctly signed token are audited (a dashboard's key
/// made it, so they cannot be an anonymous flood); a forged or expired one is not.
async fn listen_with_token(
    st: Arc<AppState>,
    headers: HeaderMap,
    ip: Option<String>,
    q: ListenQuery,
    token: String,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let grant = match verified_grant(&st, &token).await {
        Ok(g) => g,
        Err(e) => return refuse_upgrade(ws, e),
    };
    let mut audit = AuditRow {
        user_name: grant.user.clone(),
        source_ip: source_ip(&st, ip, &headers),
        id_sensor: Some(grant.sensor_id),
        callreference: grant.callref.clone(),
        via: Some("websocket".into()),
        api_key: Some(grant.key_name.clone()),
        end_user: Some(grant.user.clone()),
        ..AuditRow::default()
    };
    let checked = check_token_listen(&st, &headers, &q, &grant).await;
    let (sensor, options, slot, admin) = match checked {
        Ok(c) => c,
        Err(e) => {
            st.audit_attempt(audit, REFUSED, &e.to_string()).await;
            return refuse_upgrade(ws, e);
        }
    };
    let Ok(ws) = ws else {
        return Err(ApiError::BadRequest(
            "/api/listen needs a WebSocket connection".into(),
        ));
    };
    // Only now, with every check passed: a refused attempt does not use the token up.
    match st.db.use_listen_token(&grant.nonce, grant.expires).await {
        Ok(true) => {}
        Ok(false) => {
            st.metrics.refused("token");
            let e = ApiError::Forbidden(
                "this listen token was used already (a token serves one session): the dashboard must mint a new one".into(),
            );
            st.audit_attempt(audit, REFUSED, &e.to_string()).await;
            return refuse_upgrade(Ok(ws), e);
        }
        Err(e) => return refuse_upgrade(Ok(ws), e.into()),
    }
    audit.id_sensor = Some(sensor.id_sensor);
    let session = RelaySession {
        sensor,
        callref: grant.callref,
        options,
        audit,
        admin,
        _slot: slot,
    };
    Ok(ws.on_upgrade(move |socket| relay(st, socket, session)))
}

/// The grant of a token this player's database signed, unexpired.
async fn verified_grant(
    st: &AppState,
    token: &str,
) -> Result<crate::tokens::ListenGrant, ApiError> {
    let secret = st.signing_secret().await?;
    crate::tokens::verify(token, &secret, now_secs()).map_err(|e| {
        st.metrics.refused("token");
        ApiError::Unauthorized(e.to_string())
    })
}

/// Everything a token's session needs before it may start: a page origin the player allows
/// (and the token's own, if it names one), the query naming the token's call or none, a key
/// that still exists and may listen to the sensor, valid stream options and room under the
/// key's cap on the call.
async fn check_token_listen(
    st: &AppState,
    headers: &HeaderMap,
    q: &ListenQuery,
    grant: &crate::tokens::ListenGrant,
) -> Result<(Sensor, StreamRequest, ListenSlot, bool), ApiError> {
    let refuse = |message: String| {
        st.metrics.refused("token");
        ApiError::Forbidden(message)
    };
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if let Some(o) = origin {
        if !same_origin(headers) && !st.config().embed.allows(o) {
            return Err(refuse(format!(
                "pages from {o} may not listen with a token: the player's admin adds the dashboard's origin to [embed] allowed_origins"
            )));
        }
    }
    if let Some(bound) = &grant.origin {
        if !origin.is_some_and(|o| o.eq_ignore_ascii_case(bound)) {
            return Err(refuse(format!(
                "this listen token may only be used from pages of {bound}: open the player from there, or mint the token without origin"
            )));
        }
    }
    let same_call = q
        .callref
        .as_deref()
        .is_none_or(|r| manager::normalize_ref(r) == manager::normalize_ref(&grant.callref));
    let same_sensor = q.sensor_id.is_none_or(|s| s == grant.sensor_id);
    let same_from = q.from.as_deref().is_none_or(|f| f == grant.from);
    if !(same_call && same_sensor && same_from) {
        return Err(refuse(format!(
            "this listen token is for call {} on sensor {} from {}, not the call asked for: the dashboard must mint a token for that call",
            grant.callref, grant.sensor_id, grant.from
        )));
    }
    let key = st.db.api_key_by_id(grant.key_id).await?;
    let key = key.filter(|k| !k.expired(now_secs())).ok_or_else(|| {
        refuse(format!(
            "the API key {} that minted this token was revoked or has expired: the dashboard needs a new key",
            grant.key_name
        ))
    })?;
    if key.role < Role::Listener || !key.allows_sensor(grant.sensor_id) {
        return Err(refuse(format!(
            "the API key {} may no longer listen to sensor {}: ask an admin",
            key.name, grant.sensor_id
        )));
    }
    let sensor = st.sensor(Some(grant.sensor_id)).await?;
    let asked = ListenQuery {
        sensor_id: Some(grant.sensor_id),
        callref: Some(grant.callref.clone()),
        from: Some(grant.from.clone()),
        rate: q.rate,
        channels: q.channels,
        format: q.format.clone(),
        listen_id: None,
        token: None,
    };
    let options = stream_request(&grant.callref, &asked)?;
    // Counted per key: key ids and user ids are both random 63-bit numbers.
    let slot = st.listen_slot(key.id, sensor.id_sensor, &grant.callref)?;
    Ok((sensor, options, slot, key.role >= Role::Admin))
}

/// Everything a listening session needs before it may start: a listener's role, the
/// player's own origin, a known sensor, a valid call reference and stream options, and room
/// under the user's cap on the call.
async fn check_listen(
    st: &AppState,
    headers: &HeaderMap,
    q: &ListenQuery,
    session: &Session,
) -> Result<(Sensor, String, StreamRequest, ListenSlot), ApiError> {
    role_refusal(st, session, Role::Listener)?;
    if !same_origin(headers) {
        return Err(ApiError::Forbidden(
            "this page's origin may not open listening sessions: open the player from its own address".into(),
        ));
    }
    let sensor = st.sensor(q.sensor_id).await?;
    let callref = callref_of(q)?;
    let options = stream_request(&callref, q)?;
    let slot = st.listen_slot(session.user_id, sensor.id_sensor, &callref)?;
    Ok((sensor, callref, options, slot))
}

/// Tells the page why the session ends; `retry` says whether reconnecting may help, so the
/// page neither hammers a sensor that refuses it nor gives up on one that restarts.
async fn send_error(socket: &mut WebSocket, message: &str, retry: bool) {
    let text = json!({"type": "error", "error": message, "retry": retry}).to_string();
    let _ = socket.send(Message::Text(text.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// A listening session accepted by [`listen`], waiting for its WebSocket.
struct RelaySession {
    sensor: Sensor,
    callref: String,
    options: StreamRequest,
    audit: AuditRow,
    admin: bool,
    /// Held for as long as the session lasts.
    _slot: ListenSlot,
}

/// One listening session: sensor frames to the browser until either side ends.
async fn relay(st: Arc<AppState>, mut socket: WebSocket, session: RelaySession) {
    let RelaySession {
        sensor,
        callref,
        options,
        mut audit,
        admin,
        _slot,
    } = session;
    let source = match sensor.kind {
        SensorKind::Earshot => {
            let key = RelayKey {
                sensor: sensor.id_sensor,
                callref: manager::normalize_ref(&callref),
                options: options.options(),
            };
            let open = async {
                let conn = StreamConn::open(&sensor, &options).await?;
                Ok((conn.header.clone(), conn))
            };
            st.relays.join(key, open).await.map(Source::Stream)
        }
        SensorKind::Voipmonitor => {
            // The directory already has the call (its Call-ID and parties for the header);
            // only a call it does not list yet costs the sensor a `listcalls`.
            let known = st.directory.find(sensor.id_sensor, &callref);
            Poller::open(&sensor, &callref, known)
                .await
                .map(Source::Poll)
        }
    };
    let mut source = match source {
        Ok(s) => s,
        Err(e) => {
            bump(&st.metrics.listen_failures);
            st.audit_attempt(audit, FAILED, &e.to_string()).await;
            return send_error(&mut socket, &sensor_message(&e, admin), e.retryable()).await;
        }
    };
    let header = source.header();
    let text_of = |k: &str| header.get(k).and_then(Value::as_str).map(str::to_string);
    audit.callid = text_of("callid");
    audit.caller = text_of("caller");
    audit.called = text_of("called");
    audit.started = now_secs();
    audit.outcome = Some(LISTENED.into());
    let audit_id = match st.db.audit_start(&audit).await {
        Ok(id) => id,
        Err(e) => {
            // No audit, no listening: the log is the point of the audit.
            tracing::error!("audit insert failed: {e}");
            bump(&st.metrics.listen_failures);
            source.stop().await;
            return send_error(
                &mut socket,
                "the player cannot write its audit log; see its log",
                false,
            )
            .await;
        }
    };
    let mut first = serde_json::Map::new();
    first.insert("type".into(), json!("header"));
    first.extend(header);
    let counted = st.metrics.session();
    let (mut tx, mut rx) = socket.split();
    // A browser that vanished without a close (a dead link) is found by its silence: it
    // answers pings by itself, so nothing heard for WS_IDLE_TIMEOUT means nobody is there.
    // The first ping one interval from now, not at once: a healthy session sees few.
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + WS_PING_INTERVAL,
        WS_PING_INTERVAL,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = std::time::Instant::now();
    if tx
        .send(Message::Text(Value::Object(first).to_string().into()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                frame = source.next_frame() => match frame {
                    Upstream::Frame(f) => {
                        let end = f.first() == Some(&earshot_manager::stream_proto::KIND_END);
                        let (arrived, len) = (std::time::Instant::now(), f.len() as u64);
                        // A browser that stops reading (a frozen tab, a dead link) must not hold
                        // the sensor connection open forever: give up on it after a while.
                        let sent = tokio::time::timeout(BROWSER_SEND_TIMEOUT, tx.send(Message::Binary(f))).await;
                        if !matches!(sent, Ok(Ok(()))) {
                            break;
                        }
                        st.metrics.relay_latency.observe(arrived.elapsed());
                        bump(&st.metrics.relay_frames);
                        st.metrics.relay_bytes.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                        if end {
                            break;
                        }
                    }
                    Upstream::Closed => break,
                    Upstream::Failed(e) => {
                        let text = json!({"type": "error", "error": sensor_message(&e, admin), "retry": e.retryable()}).to_string();
                        let _ = tokio::time::timeout(BROWSER_SEND_TIMEOUT, tx.send(Message::Text(text.into()))).await;
                        break;
                    }
                    Upstream::Lagged => {
                        // Dropped, as the sensor drops a listener that cannot keep up; the page
                        // reconnects from now.
                        let text = json!({"type": "error", "error": "this connection fell seconds behind the call's audio; reconnecting", "retry": true}).to_string();
                        let _ = tokio::time::timeout(BROWSER_SEND_TIMEOUT, tx.send(Message::Text(text.into()))).await;
                        break;
                    }
                },
                msg = rx.next() => match msg {
                    // The page has nothing to say; anything but a close is ignored.
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => heard = std::time::Instant::now(),
                },
                _ = ping.tick() => {
                    if heard.elapsed() >= WS_IDLE_TIMEOUT {
                        break;
                    }
                    let sent = tokio::time::timeout(BROWSER_SEND_TIMEOUT, tx.send(Message::Ping(Vec::new().into()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                }
            }
        }
    }
    let _ = tokio::time::timeout(BROWSER_SEND_TIMEOUT, tx.send(Message::Close(None))).await;
    source.stop().await;
    drop(counted);
    if let Err(e) = st.db.audit_stop(audit_id, now_secs()).await {
        tracing::error!("audit stop failed: {e}");
    }
}

enum Source {
    /// An earshot sensor's stream, shared with the other browsers listening to the call from
    /// now in the same format.
    Stream(Joined),
    Poll(Poller),
}

impl Source {
    fn header(&self) -> serde_json::Map<String, Value> {
        match self {
            Source::Stream(s) => s.header.clone(),
            Source::Poll(p) => p.header.clone(),
        }
    }

    async fn next_frame(&mut self) -> Upstream {
        match self {
            Source::Stream(s) => s.next().await,
            Source::Poll(p) => match p.next_frame().await {
                Ok(Some(f)) => Upstream::Frame(f.into()),
                Ok(None) => Upstream::Closed,
                Err(e) => Upstream::Failed(Arc::new(e)),
            },
        }
    }

    async fn stop(&mut self) {
        if let Source::Poll(p) = self {
            p.stop().await;
        }
    }
}

/// VoIPmonitor sensors have no `stream`: poll `readaudio` and dress the PCM as stream frames,
/// so the browser code is the same for both kinds.
struct Poller {
    sensor: Sensor,
    callref: String,
    listen_id: String,
    header: serde_json::Map<String, Value>,
    seq: u32,
    /// Half a sample left over from a reply of odd length.
    carry: Option<u8>,
    ended: bool,
    ticker: tokio::time::Interval,
}

impl Poller {
    async fn open(
        sensor: &Sensor,
        callref: &str,
        known: Option<CallView>,
    ) -> Result<Poller, ManagerError> {
        let listen_id = format!("earshot-player-{:x}", crate::db::random_id());
        manager::listen(sensor, callref, &listen_id).await?;
        // Best effort: the call list gives the Call-ID and parties for the header and audit.
        let call = match known {
            Some(c) => Some(c),
            None => manager::find_call(sensor, callref).await.ok().flatten(),
        };
        let field =
            |f: fn(&CallView) -> &Value| call.as_ref().map_or(Value::Null, |c| f(c).clone());
        let header = json!({
            "version": 1, "callreference": callref, "callid": field(|c| &c.callid),
            "caller": field(|c| &c.caller), "called": field(|c| &c.called),
            "format": "s16le", "rate": 8000, "channels": 1, "from": "now",
        });
        let header = match header {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        Ok(Poller {
            sensor: sensor.clone(),
            callref: callref.to_string(),
            listen_id,
            header,
            seq: 0,
            carry: None,
            ended: false,
            ticker: tokio::time::interval(POLL_INTERVAL),
        })
    }

    async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ManagerError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            self.ticker.tick().await;
            match manager::read_audio(&self.sensor, &self.callref, &self.listen_id).await? {
                ReadAudio::Wait => continue,
                ReadAudio::Gone(why) => {
                    self.ended = true;
                    let end = Frame::End(EndFrame {
                        reason: EndReason::CallEnded,
                        detail: Some(why),
                    });
                    let mut out = Vec::new();
                    encode_frame(&end, &mut out)
                        .map_err(|e| ManagerError::Protocol(e.to_string()))?;
                    return Ok(Some(out));
                }
                ReadAudio::Pcm(bytes) => {
                    let mut all = Vec::with_capacity(bytes.len() + 1);
                    all.extend(self.carry.take());
                    all.extend_from_slice(&bytes);
                    if all.len() % 2 == 1 {
                        self.carry = all.pop();
                    }
                    if all.is_empty() {
                        continue;
                    }
                    let samples: Vec<i16> = all
                        .chunks_exact(2)
                        .map(|c| i16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    // VoIPmonitor gives no capture time: the poll's wall clock, minus the
                    // audio's length, is the best estimate of the first sample's.
                    let dur_ns = samples.len() as i64 * 1_000_000_000 / 8000;
                    let now_ns = i64::try_from(crate::db::now_nanos()).unwrap_or(i64::MAX);
                    let frame = Frame::Audio(AudioFrame {
                        seq: self.seq,
                        capture_ts_ns: now_ns - dur_ns,
                        rate: 8000,
                        channels: 1,
                        samples,
                    });
                    self.seq = self.seq.wrapping_add(1);
                    let mut out = Vec::new();
                    encode_frame(&frame, &mut out)
                        .map_err(|e| ManagerError::Protocol(e.to_string()))?;
                    return Ok(Some(out));
                }
            }
        }
    }

    async fn stop(&mut self) {
        let _ = manager::listen_stop(&self.sensor, &self.callref, &self.listen_id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(rate: Option<u32>, channels: Option<u8>, from: Option<&str>) -> ListenQuery {
        ListenQuery {
            sensor_id: None,
            callref: Some("abc".into()),
            rate,
            channels,
            from: from.map(str::to_string),
            format: None,
            listen_id: None,
            token: None,
        }
    }

    /// The options as the sensor's command line gets them.
    fn stream_options(q: &ListenQuery) -> Result<String, ApiError> {
        stream_request("abc", q).map(|r| r.options())
    }

    #[test]
    fn the_format_is_asked_for_only_when_it_is_opus() {
        let with = |f: &str| ListenQuery {
            format: Some(f.into()),
            ..q(Some(16000), Some(2), None)
        };
        assert_eq!(
            stream_options(&with("opus")).unwrap(),
            "rate=16000 channels=2 from=now format=opus"
        );
        assert_eq!(
            stream_options(&with("s16le")).unwrap(),
            "rate=16000 channels=2 from=now"
        );
        for bad in ["mp3", "opus channels=1", "OPUS", ""] {
            assert!(stream_options(&with(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stream_options_accept_only_known_values() {
        assert_eq!(
            stream_options(&q(None, None, None)).unwrap(),
            "rate=8000 channels=1 from=now"
        );
        assert_eq!(
            stream_options(&q(Some(48000), Some(2), Some("-30"))).unwrap(),
            "rate=48000 channels=2 from=-30"
        );
        for bad in [
            q(Some(44100), None, None),
            q(None, Some(3), None),
            q(None, None, Some("-")),
            q(None, None, Some("start\nlistcalls")),
        ] {
            assert!(stream_options(&bad).is_err());
        }
    }

    #[test]
    fn origin_must_match_host() {
        let h = |origin: Option<&str>, host: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, host.parse().unwrap());
            if let Some(o) = origin {
                m.insert(header::ORIGIN, o.parse().unwrap());
            }
            same_origin(&m)
        };
        assert!(h(Some("http://player:8080"), "player:8080"));
        assert!(h(Some("https://Player.example"), "player.example"));
        assert!(h(None, "player:8080"));
        assert!(!h(Some("http://evil.example"), "player:8080"));
        assert!(!h(Some("http://player:8081"), "player:8080"));
        assert!(!h(Some("null"), "player:8080"));
    }
}
