//! Rendering analysis results: the human table and the `--json` document
//! (schema documented in docs/analyze-json.md; the field names are a public interface).

use earshot_core::{Call, CaptureGaps, Engine, Stream};
use earshot_wire::Timestamp;
use serde_json::{json, Value};
use std::io::{self, Write};

/// RFC 3339 in UTC with microseconds, e.g. `2013-07-19T10:31:05.123456Z`.
pub fn rfc3339(ts: Timestamp) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts.nanos()))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

/// What a stream's document holds beyond its totals.
#[derive(Copy, Clone)]
pub struct Detail<'a> {
    pub gaps: &'a CaptureGaps,
    /// Per-second points (`analyze --timeline`).
    pub timeline: bool,
}

pub fn stream_json(s: &Stream, d: Detail<'_>) -> Value {
    let known = s.jitter_known();
    let mut v = json!({
        "ssrc": format!("0x{:08X}", s.key.ssrc),
        "src": s.key.src.to_string(),
        "dst": s.key.dst.to_string(),
        "direction": s.party.map(|p| p.as_str()),
        "media": if s.is_video() { "video" } else { "audio" },
        "payload_type": s.shown_payload_type(),
        "codec": s.codec,
        "clock_rate": s.clock_rate,
        "packets": s.stats.packets,
        "lost": s.stats.lost(),
        "network_loss": s.network_loss(d.gaps),
        "capture_loss": s.capture_loss(d.gaps),
        "duplicates": s.stats.duplicates,
        "out_of_order": s.stats.out_of_order,
        // null when no clock rate is known (see `Stream::jitter_known`).
        "jitter_ms": known.then(|| round(s.stats.mean_jitter_ms(), 3)),
        "max_jitter_ms": known.then(|| round(s.stats.max_jitter_ms(), 3)),
        "max_delta_ms": round(s.stats.max_delta_ms(), 3),
        "mos": s.mos_if_known().map(|m| round(m, 2)),
        "start": rfc3339(Timestamp(s.stats.first_seen_ns)),
        "end": rfc3339(Timestamp(s.stats.last_seen_ns)),
    });
    if let Some(f) = s.far_end() {
        v["far_end"] = json!({
            "reports": f.reports,
            "lost": f.cumulative_lost,
            "highest_seq": f.highest_seq,
            "sensor_lost": f.sensor_lost,
        });
    }
    if d.timeline {
        v["timeline"] = timeline_json(s, d.gaps);
    }
    // Only where true, so the documents of clear calls stay as they were.
    if s.is_encrypted() {
        v["encrypted"] = json!(true);
    }
    if let Some(srtp) = &s.srtp {
        v["srtp"] = json!({
            "keys": s.srtp_source.map(earshot_core::KeySource::as_str),
            "decrypted": srtp.counters.decrypted,
            "auth_failures": srtp.counters.auth_failures,
        });
    }
    v
}

/// The stream's per-second points (schema: docs/analyze-json.md, "Timeline").
pub fn timeline_json(s: &Stream, gaps: &CaptureGaps) -> Value {
    let Some(t) = s.timeline() else {
        return json!({"points": [], "points_left_out": 0, "skipped_seconds": 0});
    };
    let mut first = None;
    let points: Vec<Value> = earshot_core::all_points(t, &s.stats)
        .map(|(sec, p)| {
            let start = *first.get_or_insert(sec);
            let mut v = json!({
                "t": sec.saturating_sub(start),
                "packets": p.packets,
                "lost": p.lost,
                "jitter_ms": round(p.jitter_ms(), 1),
                "mos": earshot_core::point_mos(s, &p).map(|m| round(m, 2)),
            });
            if gaps.contains(sec) {
                v["capture_gap"] = json!(true);
            }
            v
        })
        .collect();
    let start = first.map(|sec| rfc3339(Timestamp(sec.saturating_mul(1_000_000_000))));
    json!({
        "start": start,
        "points": points,
        "points_left_out": t.left_out(),
        "skipped_seconds": t.skipped_seconds(),
    })
}

pub fn call_json(c: &Call, d: Detail<'_>) -> Value {
    let mut v = call_fields(c, d);
    // Only for grouped calls, so the documents of others stay as they were.
    if let Some(g) = &c.group {
        v["group"] =
            json!({ "key": &*g.key, "leg": g.leg.as_str(), "correlated_by": g.via.as_str() });
    }
    v
}

fn call_fields(c: &Call, d: Detail<'_>) -> Value {
    json!({
        "call_id": c.sip_call_id,
        "caller": c.caller,
        "called": c.called,
        "caller_name": c.caller_name,
        "called_name": c.called_name,
        "from": c.from_uri,
        "to": c.to_uri,
        "state": c.state.as_str(),
        "sip_code": c.sip_code.or(c.last_sip_code),
        "reason": c.reason,
        "start": rfc3339(c.start),
        "ring": c.ring.map(rfc3339),
        "answer": c.answer.map(rfc3339),
        "end": c.end.map(rfc3339),
        "timed_out": c.timed_out,
        "duration_s": round(c.duration_ns() as f64 / 1e9, 3),
        "codecs": c.codecs(),
        "dtmf": c.dtmf,
        "caller_agent": c.caller_agent,
        "called_agent": c.called_agent,
        "caller_sip": c.caller_sip.to_string(),
        "called_sip": c.called_sip.to_string(),
        "vlan": c.vlan,
        "sip_messages": c.sip_messages,
        "rtcp_packets": c.rtcp_packets,
        "streams": c.streams.iter().map(|s| stream_json(s, d)).collect::<Vec<_>>(),
    })
}

pub fn document(engine: &Engine, timeline: bool) -> Value {
    let counters = engine.counters();
    let d = Detail {
        gaps: engine.capture_gaps(),
        timeline,
    };
    let mut doc = json!({
        "capture": {
            "packets": counters.frames,
            "sip_messages": counters.sip_messages,
            "rtp_packets": counters.rtp_packets,
            "rtcp_packets": counters.rtcp_packets,
            "rtcp_reports": counters.rtcp_reports,
            "malformed": counters.malformed,
            "hep_skipped": {
                "malformed": counters.hep_skipped.malformed,
                "unsupported": counters.hep_skipped.unsupported,
                "inflate_failed": counters.hep_skipped.inflate_failed,
                "too_big": counters.hep_skipped.too_big,
            },
            "tcp_media": {
                "frames": counters.tcp_media.frames,
                "skipped": counters.tcp_media.skipped,
                "desyncs": counters.tcp_media.desyncs,
            },
            "duration_s": round(counters.duration_s(), 6),
            "other_sip_requests": counters.other_sip,
        },
        "calls": engine.calls().into_iter().map(|c| call_json(c, d)).collect::<Vec<_>>(),
        "unassociated_streams": engine.unassociated_streams().iter().map(|s| stream_json(s, d)).collect::<Vec<_>>(),
    });
    // Only for captures with SRTP, so the documents of others stay as they were.
    let srtp = counters.srtp;
    if srtp != earshot_core::SrtpTotals::default() {
        doc["capture"]["srtp_packets"] = json!({
            "decrypted": srtp.decrypted,
            "auth_failures": srtp.auth_failures,
            "no_key": srtp.no_key,
        });
    }
    // Likewise only for calls whose SRTP sent SRTCP.
    let srtcp = counters.srtcp;
    if srtcp != earshot_core::SrtpTotals::default() {
        doc["capture"]["srtcp_packets"] = json!({
            "decrypted": srtcp.decrypted,
            "auth_failures": srtcp.auth_failures,
            "no_key": srtcp.no_key,
        });
    }
    // Likewise only for captures with TLS connections.
    let tls = counters.tls;
    if tls.connections > 0 {
        doc["capture"]["tls"] = json!({
            "connections": tls.connections,
            "decrypted": tls.decrypted,
            "without_key": tls.without_key,
            "auth_failures": tls.auth_failures,
            "dropped_waiting_bytes": tls.dropped_waiting_bytes,
            "broken": tls.broken,
        });
    }
    // Only for captures with DTLS on calls' media, likewise.
    let dtls = counters.dtls;
    if dtls != earshot_core::DtlsTotals::default() {
        doc["capture"]["dtls"] = json!({
            "datagrams": dtls.datagrams,
            "handshakes": dtls.handshakes,
            "keyed": dtls.keyed,
            "without_key": dtls.without_key,
            "unsupported_profile": dtls.unsupported_profile,
            "dropped": dtls.dropped,
            "unsupported_version": dtls.unsupported_version,
        });
    }
    doc
}

pub fn write_table(out: &mut dyn Write, engine: &Engine) -> io::Result<()> {
    let calls = engine.calls();
    for c in &calls {
        let code = c
            .sip_code
            .or(c.last_sip_code)
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        let mos = c
            .streams
            .iter()
            .filter_map(|s| s.mos_if_known())
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
        writeln!(
            out,
            "{}  {} -> {}  {}{}  {:.1} s  {}  MOS {}  {}",
            rfc3339(c.start),
            or_dash(&c.caller),
            or_dash(&c.called),
            c.state,
            code,
            c.duration_ns() as f64 / 1e9,
            or_dash(&c.codecs().join(",")),
            mos.map(|m| format!("{m:.1}")).unwrap_or_else(|| "-".into()),
            c.sip_call_id,
        )?;
        if let Some(g) = &c.group {
            let role = match g.leg {
                earshot_core::Leg::A => "A-leg",
                earshot_core::Leg::B => "B-leg",
            };
            writeln!(out, "    {role} of {} (by {})", g.key, g.via)?;
        }
        if !c.dtmf.is_empty() {
            writeln!(out, "    DTMF {}", c.dtmf)?;
        }
        for s in &c.streams {
            write_stream(out, s, engine.capture_gaps())?;
        }
    }
    let un = engine.unassociated_streams();
    if !un.is_empty() {
        writeln!(out, "unassociated RTP (no SDP seen)")?;
        for s in un {
            write_stream(out, s, engine.capture_gaps())?;
        }
    }
    let k = engine.counters();
    writeln!(
        out,
        "{} calls, {} packets, {} SIP messages, {} RTP packets, {} malformed, {:.1} s",
        calls.len(),
        k.frames,
        k.sip_messages,
        k.rtp_packets,
        k.malformed,
        k.duration_s()
    )
}

fn write_stream(out: &mut dyn Write, s: &Stream, gaps: &CaptureGaps) -> io::Result<()> {
    let st = &s.stats;
    // "-" where no clock rate is known (see `Stream::jitter_known`).
    let jitter = if s.jitter_known() {
        format!("{:.2}/{:.2}", st.mean_jitter_ms(), st.max_jitter_ms())
    } else {
        "-".to_string()
    };
    let mos = s
        .mos_if_known()
        .map(|m| format!("{m:.1}"))
        .unwrap_or_else(|| "-".into());
    writeln!(
        out,
        "    0x{:08X}  {} -> {}  {:<6} {:<8} {:>6} pkts  lost {} ({:.1}%){}  jitter {} ms  MOS {}{}{}",
        s.key.ssrc,
        s.key.src,
        s.key.dst,
        s.party.map(|p| p.as_str()).unwrap_or("-"),
        s.codec
            .as_deref()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("PT{}", s.shown_payload_type())),
        st.packets,
        st.lost(),
        st.loss_percent(),
        loss_split(s, gaps),
        jitter,
        mos,
        if s.is_video() { "  video" } else { "" },
        if s.is_encrypted() {
            "  encrypted (SRTP, no key)"
        } else if s.is_decrypted() {
            "  SRTP (decrypted)"
        } else {
            ""
        },
    )
}

/// ` (network N, capture M)` where the sensor has evidence that some loss was its own (an
/// RTCP report from the receiver, or its drop counters), else nothing: the line stays as it
/// was for captures without such evidence.
fn loss_split(s: &Stream, gaps: &CaptureGaps) -> String {
    let capture = s.capture_loss(gaps);
    if capture == 0 && s.far_end().is_none() {
        return String::new();
    }
    format!(" (network {}, capture {capture})", s.network_loss(gaps))
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}
