//! The engine's calls as the Manager API lists them: a [`CallSummary`] per call, made here,
//! where the engine's types are known, so the protocol crate (earshot-manager) formats
//! summaries without depending on the engine.
//!
//! A summary's text (call-id, numbers, names, agents, codec names, group) is one shared
//! [`CallText`], so refreshing the numbers of a call every second copies one pointer, not
//! strings ([`refreshed`]).

use earshot_core::{Call, CaptureGaps, Party, SipRecord, Stream};
use earshot_manager::listcalls::{main_leg, SipPacket};
use earshot_manager::{CallRef, CallSummary, CallText, GroupSummary, LegSummary};
use std::sync::Arc;

/// A stream as the listings show it.
pub fn leg_of(s: &Stream, gaps: &CaptureGaps) -> LegSummary {
    leg_with_codec(s, s.current_codec().map(Arc::from), gaps)
}

/// The stream's numbers, with its codec name taken from `prev` (the same stream's previous
/// summary) when it has not changed: no allocation for a stream that only got packets.
fn leg_refreshed(s: &Stream, prev: &[LegSummary], gaps: &CaptureGaps) -> LegSummary {
    let name = s.current_codec();
    let codec = prev
        .iter()
        .filter_map(|l| l.codec.as_ref())
        .find(|c| Some(&***c) == name)
        .cloned()
        .or_else(|| name.map(Arc::from));
    leg_with_codec(s, codec, gaps)
}

fn leg_with_codec(s: &Stream, codec: Option<Arc<str>>, gaps: &CaptureGaps) -> LegSummary {
    LegSummary {
        party: s.party,
        src: s.key.src,
        dst: s.key.dst,
        ssrc: s.key.ssrc,
        // What the stream carries now: after a re-INVITE from PCMU to G.722, G.722.
        payload_type: s.current_pt.unwrap_or(s.payload_type),
        codec,
        first_ns: s.stats.first_seen_ns,
        last_ns: s.stats.last_seen_ns,
        packets: s.stats.packets,
        lost: s.stats.lost().max(0) as u64,
        loss_percent: s.stats.loss_percent(),
        jitter_ms: s.stats.jitter_ms(),
        jitter_avg_ms: s.stats.mean_jitter_ms(),
        jitter_max_ms: s.stats.max_jitter_ms(),
        mos: s.mos_if_known(),
        unknown: s.quality_unknown(),
        video: s.is_video(),
        encrypted: s.is_encrypted(),
        capture_loss: s.capture_loss(gaps),
    }
}

/// Snapshots `call`. `now_ns` is the capture clock's current time, used for the running
/// duration of calls that have not ended.
pub fn summary_of(
    call: &Call,
    callref: CallRef,
    sensor_id: Option<i64>,
    now_ns: i64,
    gaps: &CaptureGaps,
) -> CallSummary {
    let opt = |s: &Option<String>| s.as_deref().map(Arc::from);
    let legs: Vec<LegSummary> = call.streams.iter().map(|s| leg_of(s, gaps)).collect();
    let text = CallText {
        call_id: Arc::from(call.sip_call_id.as_str()),
        caller: Arc::from(call.caller.as_str()),
        called: Arc::from(call.called.as_str()),
        caller_name: opt(&call.caller_name),
        caller_domain: opt(&call.caller_domain),
        called_domain: opt(&call.called_domain),
        caller_agent: opt(&call.caller_agent),
        called_agent: opt(&call.called_agent),
        codecs: call.codecs().into(),
        group: call.group.as_deref().map(group_of),
    };
    numbers(call, callref, sensor_id, now_ns, legs, Arc::new(text))
}

/// `prev` brought up to date with `call`'s numbers (packets, loss, jitter, durations, state)
/// when no SIP message has arrived since `prev` was made (`last_sip_ns`); otherwise, and for
/// another call, a fresh [`summary_of`]. The text is shared with `prev`.
pub fn refreshed(prev: &CallSummary, call: &Call, now_ns: i64, gaps: &CaptureGaps) -> CallSummary {
    if call.id != prev.id
        || call.last_sip.nanos() != prev.last_sip_ns
        || call.group.is_some() != prev.text.group.is_some()
    {
        return summary_of(call, prev.callref, prev.sensor_id, now_ns, gaps);
    }
    let legs = call
        .streams
        .iter()
        .map(|s| leg_refreshed(s, &prev.legs, gaps))
        .collect();
    numbers(
        call,
        prev.callref,
        prev.sensor_id,
        now_ns,
        legs,
        prev.text.clone(),
    )
}

/// Whether [`refreshed`] would give a summary equal to `prev`: nothing to rebuild.
pub fn is_current(prev: &CallSummary, call: &Call, now_ns: i64) -> bool {
    let (duration, connect) = durations(call, now_ns);
    call.id == prev.id
        && call.last_sip.nanos() == prev.last_sip_ns
        && call.last_packet.nanos() == prev.last_packet_ns
        && call.state == prev.state
        && duration == prev.duration_secs
        && connect == prev.connect_secs
}

/// Everything that is not text, with the call's `text`.
fn numbers(
    call: &Call,
    callref: CallRef,
    sensor_id: Option<i64>,
    now_ns: i64,
    legs: Vec<LegSummary>,
    text: Arc<CallText>,
) -> CallSummary {
    let (duration_secs, connect_secs) = durations(call, now_ns);
    CallSummary {
        callref,
        id: call.id,
        text,
        caller_ip: call.caller_sip.ip(),
        called_ip: call.called_sip.ip(),
        state: call.state,
        last_sip_code: call.last_sip_code.or(call.sip_code),
        start_ns: call.start.nanos(),
        answer_ns: call.answer.map(|t| t.nanos()),
        last_packet_ns: call.last_packet.nanos(),
        last_sip_ns: call.last_sip.nanos(),
        duration_secs,
        connect_secs,
        on_hold: call.on_hold,
        held_by: call.held_by,
        reinvites: call.reinvites,
        vlan: call.vlan,
        sensor_id,
        caller_leg: main_leg(&legs, Party::Caller),
        called_leg: main_leg(&legs, Party::Called),
        legs,
    }
}

/// A call's group as the listings show it.
pub fn group_of(g: &earshot_core::CallGroup) -> GroupSummary {
    GroupSummary {
        key: Arc::from(&*g.key),
        leg: g.leg.as_str(),
        via: g.via.as_str(),
    }
}

/// Seconds from start, and from answer (0 before one), until the end or `now_ns`.
fn durations(call: &Call, now_ns: i64) -> (i64, i64) {
    let end = call
        .end
        .map(|t| t.nanos())
        .unwrap_or(now_ns.max(call.last_packet.nanos()));
    let answer = call.answer.map(|t| t.nanos());
    (
        secs_between(call.start.nanos(), end),
        answer.map_or(0, |a| secs_between(a, end)),
    )
}

fn secs_between(from_ns: i64, to_ns: i64) -> i64 {
    (to_ns.saturating_sub(from_ns) / 1_000_000_000).max(0)
}

/// A kept SIP message as `active_call_info` shows it.
pub fn sip_packet(m: SipRecord) -> SipPacket {
    SipPacket {
        ts_ns: m.ts.nanos(),
        src: m.src,
        dst: m.dst,
        text: m.text,
        truncated: m.truncated,
    }
}

/// The call's streams' per-second quality, as the engine keeps it (the open second last).
pub fn timelines(call: &Call, gaps: &CaptureGaps) -> Vec<earshot_manager::quality::StreamTimeline> {
    use earshot_manager::quality::{QualitySecond, StreamTimeline};
    call.streams
        .iter()
        .filter_map(|s| {
            let t = s.timeline()?;
            let points = earshot_core::all_points(t, &s.stats)
                .map(|(sec, p)| QualitySecond {
                    sec,
                    packets: p.packets,
                    lost: p.lost,
                    jitter_ms: p.jitter_ms(),
                    mos: earshot_core::point_mos(s, &p),
                    capture_gap: gaps.contains(sec),
                })
                .collect();
            Some(StreamTimeline {
                party: s.party,
                ssrc: s.key.ssrc,
                points,
                left_out: t.left_out(),
            })
        })
        .collect()
}
