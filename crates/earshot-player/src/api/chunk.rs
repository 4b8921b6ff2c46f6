//! VoIPmonitor's ChunkPlayer protocol: `/api/chunk` returns the audio since the previous
//! request as WAV, one audited session per user, call and listen id.

use super::*;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/chunk", get(chunk))
}

async fn chunk(
    State(st): State<Arc<AppState>>,
    Viewer { session, .. }: Viewer,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    Query(q): Query<ListenQuery>,
) -> Result<Response, ApiError> {
    bump(&st.metrics.chunk_requests);
    st.sweep_chunks().await;
    let admin = session.role >= Role::Admin;
    let mut row = audit::call_request_row(&st, &session, ip, &headers, &q, "chunk");
    let (sensor, callref, listen_id) = match check_chunk(&st, &session, &q).await {
        Ok(c) => c,
        Err(e) => {
            st.audit_attempt(row, REFUSED, &e.to_string()).await;
            return Err(e);
        }
    };
    row.id_sensor = Some(sensor.id_sensor);
    row.callreference = callref.clone();
    let key = (
        session.user_id,
        sensor.id_sensor,
        manager::normalize_ref(&callref),
        listen_id.clone(),
    );
    let known = lock(&st.chunks).get_mut(&key).map(|c| {
        c.last_poll = std::time::Instant::now();
        c.sensor_listen_id.clone()
    });
    let sensor_listen_id = match known {
        Some(id) => id,
        None => {
            start_chunk(
                &st,
                &session,
                row,
                key.clone(),
                &sensor,
                &callref,
                &listen_id,
            )
            .await?
        }
    };
    let pcm = match manager::read_audio(&sensor, &callref, &sensor_listen_id).await {
        Ok(ReadAudio::Pcm(p)) => p,
        Ok(ReadAudio::Wait) => Vec::new(),
        Ok(ReadAudio::Gone(why)) => {
            let ended = lock(&st.chunks).remove(&key);
            if let Some(c) = ended {
                st.end_chunk(c).await;
            }
            return Err(ApiError::NotFound(format!(
                "no more audio: {why} (the call ended or the listener timed out; start again)"
            )));
        }
        Err(e) => return Err(sensor_error(e, admin)),
    };
    let wav = wav_8k_mono(&pcm).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], wav).into_response())
}

/// The role, sensor, call reference and listen id of an `/api/chunk` request.
async fn check_chunk(
    st: &AppState,
    session: &Session,
    q: &ListenQuery,
) -> Result<(Sensor, String, String), ApiError> {
    role_refusal(st, session, Role::Listener)?;
    let sensor = st.sensor(q.sensor_id).await?;
    let callref = callref_of(q)?;
    let listen_id = q
        .listen_id
        .clone()
        .unwrap_or_else(|| "earshot-chunk".into());
    if !manager::valid_listen_id(&listen_id) {
        return Err(ApiError::BadRequest(
            "listen_id must be 1-64 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    Ok((sensor, callref, listen_id))
}

/// The first poll of a chunk session: room under the caps, `listen` on the sensor, the audit
/// row. Returns the id the sensor knows the session by.
async fn start_chunk(
    st: &AppState,
    session: &Session,
    mut row: AuditRow,
    key: ChunkKey,
    sensor: &Sensor,
    callref: &str,
    listen_id: &str,
) -> Result<String, ApiError> {
    let full = lock(&st.chunks).len() >= MAX_CHUNK_SESSIONS;
    let slot = if full {
        bump(&st.metrics.listen_cap_refusals);
        Err(ApiError::Unavailable {
            message: format!(
                "the player holds {MAX_CHUNK_SESSIONS} /api/chunk sessions already: try again once some have ended"
            ),
            retry_after: 10,
        })
    } else {
        st.listen_slot(session.user_id, sensor.id_sensor, callref)
    };
    let slot = match slot {
        Ok(s) => s,
        Err(e) => {
            st.audit_attempt(row, REFUSED, &e.to_string()).await;
            return Err(e);
        }
    };
    let sensor_listen_id = format!(
        "chunk-{}",
        &auth::token_hash(&format!("{}/{listen_id}", session.user_id))[..32]
    );
    if let Err(e) = manager::listen(sensor, callref, &sensor_listen_id).await {
        bump(&st.metrics.listen_failures);
        st.audit_attempt(row, FAILED, &e.to_string()).await;
        return Err(sensor_error(e, session.role >= Role::Admin));
    }
    row.started = now_secs();
    row.outcome = Some(LISTENED.into());
    let audit_id = match st.db.audit_start(&row).await {
        Ok(id) => id,
        Err(e) => {
            // No audit, no listening.
            let _ = manager::listen_stop(sensor, callref, &sensor_listen_id).await;
            return Err(e.into());
        }
    };
    let c = ChunkSession {
        sensor: sensor.clone(),
        callref: callref.to_string(),
        sensor_listen_id: sensor_listen_id.clone(),
        audit_id,
        last_poll: std::time::Instant::now(),
        _slot: slot,
    };
    // Two first polls at once: the later one wins the table, the earlier row is closed.
    let replaced = lock(&st.chunks).insert(key, c);
    if let Some(old) = replaced {
        if let Err(e) = st.db.audit_stop(old.audit_id, now_secs()).await {
            tracing::error!("audit stop failed: {e}");
        }
    }
    Ok(sensor_listen_id)
}

/// 8 kHz mono 16-bit WAV of little-endian PCM bytes (an odd last byte is dropped).
pub fn wav_8k_mono(pcm: &[u8]) -> Result<Vec<u8>, hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec)?;
        for c in pcm.chunks_exact(2) {
            w.write_sample(i16::from_le_bytes([c[0], c[1]]))?;
        }
        w.finalize()?;
    }
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_is_8k_mono() {
        let wav = wav_8k_mono(&[1, 0, 2, 0, 9]).unwrap();
        let r = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
        assert_eq!(
            (r.spec().sample_rate, r.spec().channels, r.len()),
            (8000, 1, 2)
        );
    }
}
