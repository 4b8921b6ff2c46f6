//! `/api/ladder`: a call's SIP messages as a ladder (columns, arrows, texts) for the page's
//! "SIP ladder", from the sensor's `active_call_info`. Message texts say more than the call
//! list (URIs, SDP, headers), so the rules are those of listening: a listener's role, and an
//! audit row for every look, refused ones too.

use super::*;
use earshot_manager::ladder::{self, Ladder};

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/ladder", get(ladder_of_call))
}

/// Arrows drawn at most: a call's whole dialog, re-INVITEs and all, many times over.
pub const MAX_ARROWS: usize = 500;
/// Text of one message sent at most (the sensor keeps 4 KiB by default).
pub const MAX_TEXT: usize = 16 << 10;
/// [`AuditRow::outcome`] of a ladder that was shown.
const VIEWED: &str = "viewed";

#[derive(Serialize)]
struct LadderReply {
    sensor_id: i64,
    callreference: String,
    callid: Value,
    caller: Value,
    called: Value,
    #[serde(flatten)]
    ladder: Ladder,
}

async fn ladder_of_call(
    State(st): State<Arc<AppState>>,
    Viewer { session, .. }: Viewer,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    Query(q): Query<ListenQuery>,
) -> Result<Json<Value>, ApiError> {
    let admin = session.role >= Role::Admin;
    let mut row = audit::call_request_row(&st, &session, ip, &headers, &q, "ladder");
    let checked = async {
        role_refusal(&st, &session, Role::Listener)?;
        let sensor = st.sensor(q.sensor_id).await?;
        let callref = callref_of(&q)?;
        Ok::<_, ApiError>((sensor, callref))
    };
    let (sensor, callref) = match checked.await {
        Ok(c) => c,
        Err(e) => {
            st.audit_attempt(row, REFUSED, &e.to_string()).await;
            return Err(e);
        }
    };
    row.id_sensor = Some(sensor.id_sensor);
    row.callreference = callref.clone();
    let info = match manager::call_info(&sensor, &callref).await {
        Ok(i) => i,
        Err(e) => {
            st.audit_attempt(row, FAILED, &e.to_string()).await;
            return Err(sensor_error(e, admin));
        }
    };
    let (packets, more) = ladder::packets_from_info(&info, MAX_ARROWS);
    let mut l = ladder::build(&packets, MAX_ARROWS, MAX_TEXT);
    l.left_out += more;
    let field = |k: &str| info.get("call").and_then(|c| c.get(k)).cloned();
    let reply = LadderReply {
        sensor_id: sensor.id_sensor,
        callreference: callref,
        callid: field("callid").unwrap_or(Value::Null),
        caller: field("caller").unwrap_or(Value::Null),
        called: field("called").unwrap_or(Value::Null),
        ladder: l,
    };
    let text_of = |v: &Value| v.as_str().map(str::to_string);
    row.callid = text_of(&reply.callid);
    row.caller = text_of(&reply.caller);
    row.called = text_of(&reply.called);
    row.outcome = Some(VIEWED.into());
    row.started = now_secs();
    row.stopped = Some(row.started);
    // No audit, no ladder: as for listening, the log is the point.
    if let Err(e) = st.db.audit_start(&row).await {
        tracing::error!("audit insert failed: {e}");
        return Err(ApiError::Internal(
            "the player cannot write its audit log; see its log".into(),
        ));
    }
    Ok(Json(serde_json::to_value(&reply).unwrap_or(Value::Null)))
}
