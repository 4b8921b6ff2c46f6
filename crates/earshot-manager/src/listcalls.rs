//! `listcalls` (text and VoIPmonitor JSON) and `active_call_info` replies.
//!
//! The server snapshots each call into a [`CallSummary`] while it holds the call table, then
//! formats outside any lock: formatting needs nothing but the summaries.

use crate::callref::CallRef;
use crate::command::ListParams;
use earshot_core::{Call, CallState, Party, QualityUnknown, Stream};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// VoIPmonitor 2026.04.0's `listcalls` columns, in order (from the recorded `listcalls.bin`).
pub const FIELDS: [&str; 68] = [
    "callreference",
    "callid",
    "calldate",
    "calldate_num",
    "lastpackettime",
    "duration",
    "connect_duration",
    "caller",
    "called",
    "caller_country",
    "called_country",
    "caller_international",
    "called_international",
    "callername",
    "callerdomain",
    "calleddomain",
    "calleragent",
    "calledagent",
    "callerip",
    "calledip",
    "callerip_country",
    "calledip_country",
    "callerip_encaps",
    "calledip_encaps",
    "callerip_encaps_prot",
    "calledip_encaps_prot",
    "sipproxies",
    "lastSIPresponseNum",
    "rtp_src",
    "rtp_dst",
    "rtp_src_country",
    "rtp_dst_country",
    "callercodec",
    "calledcodec",
    "src_mosf1",
    "src_mosf1_avg",
    "src_mosf1_min",
    "src_mosf2",
    "src_mosf2_avg",
    "src_mosf2_min",
    "src_mosAD",
    "src_mosAD_avg",
    "src_mosAD_min",
    "dst_mosf1",
    "dst_mosf1_avg",
    "dst_mosf1_min",
    "dst_mosf2",
    "dst_mosf2_avg",
    "dst_mosf2_min",
    "dst_mosAD",
    "dst_mosAD_avg",
    "dst_mosAD_min",
    "src_jitter",
    "src_jitter_avg",
    "src_jitter_max",
    "dst_jitter",
    "dst_jitter_avg",
    "dst_jitter_max",
    "src_received",
    "dst_received",
    "src_loss_abs",
    "dst_loss_abs",
    "src_loss",
    "dst_loss",
    "src_loss_last10sec",
    "dst_loss_last10sec",
    "id_sensor",
    "vlan",
];

/// earshot's own columns, appended after [`FIELDS`] when `listcalls {"earshot":true}` asks:
/// VoIPmonitor's 68 stay exactly as its clients expect them.
pub const EARSHOT_FIELDS: [&str; 12] = [
    "callstate",
    "on_hold",
    "held_by",
    "callercodec_name",
    "calledcodec_name",
    "reinvites",
    "caller_mos",
    "called_mos",
    "caller_jitter_ms",
    "called_jitter_ms",
    "caller_quality_unknown",
    "called_quality_unknown",
];

/// What VoIPmonitor itself puts in its MOS columns (×10) when it has no score: its
/// `record_array` defaults, so its clients read an unknown score from earshot as they read one
/// from VoIPmonitor. earshot's own columns carry the honest null.
pub const VOIPMONITOR_NO_MOS: i64 = 45;

/// One RTP stream, reduced to what the replies show.
#[derive(Clone, Debug, PartialEq)]
pub struct LegSummary {
    pub party: Option<Party>,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
    pub payload_type: u8,
    pub codec: Option<String>,
    pub first_ns: i64,
    pub last_ns: i64,
    pub packets: u64,
    pub lost: u64,
    pub loss_percent: f64,
    pub jitter_ms: f64,
    pub jitter_avg_ms: f64,
    pub jitter_max_ms: f64,
    /// E-model MOS; `None` when `unknown` says why there is none.
    pub mos: Option<f64>,
    /// Why the stream has no MOS (and, for some reasons, no jitter): see [`QualityUnknown`].
    pub unknown: Option<QualityUnknown>,
    /// A video stream: listed, never a party's main (audio) leg.
    pub video: bool,
}

impl LegSummary {
    /// False where no clock rate was known (a dynamic payload type without rtpmap, events
    /// alone): the jitter fields are zero then, not a measurement.
    pub fn jitter_known(&self) -> bool {
        self.unknown.is_none_or(QualityUnknown::jitter_known)
    }

    /// The current jitter in ms, `None` where it was not measured.
    pub fn jitter_if_known(&self) -> Option<f64> {
        self.jitter_known().then_some(self.jitter_ms)
    }

    /// The codec as VoIPmonitor numbers it in `callercodec`/`calledcodec` (its `codecs.h`):
    /// static payload types as they are, dynamic ones by their rtpmap name, so a client can
    /// tell Opus from iLBC whatever number the SDP gave them. Unknown dynamic codecs keep
    /// their payload type.
    pub fn codec_id(&self) -> i64 {
        let pt = i64::from(self.payload_type);
        if self.payload_type < 96 {
            return pt;
        }
        let name = self.codec.as_deref().unwrap_or("").to_ascii_uppercase();
        match name.as_str() {
            "ILBC" => 97,
            "SPEEX" => 98,
            "CLEARMODE" => 100,
            "SILK" => 301,
            "ISAC" => 306,
            // Opus always runs a 48 kHz RTP clock (RFC 7587).
            "OPUS" => 316,
            "AMR" => 320,
            "AMR-WB" => 321,
            // The rtpmap name, and the name `codec_id_name` shows.
            "G7221" | "G.722.1" => 331,
            "G726-16" => 351,
            "G726-24" => 352,
            "G726-32" => 353,
            "G726-40" => 354,
            "AAL2-G726-16" => 355,
            "AAL2-G726-24" => 356,
            "AAL2-G726-32" => 357,
            "AAL2-G726-40" => 358,
            "EVS" => 359,
            "TELEPHONE-EVENT" => 400,
            _ => pt,
        }
    }

    pub fn from_stream(s: &Stream) -> Self {
        LegSummary {
            party: s.party,
            src: s.key.src,
            dst: s.key.dst,
            ssrc: s.key.ssrc,
            // What the stream carries now: after a re-INVITE from PCMU to G.722, G.722.
            payload_type: s.current_pt.unwrap_or(s.payload_type),
            codec: s.current_codec().map(str::to_string),
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
        }
    }
}

/// The codec name for a VoIPmonitor codec number (`callercodec`/`calledcodec`, see
/// [`LegSummary::codec_id`]: payload types below 96, its own ids above 300 for dynamic codecs),
/// as `earshot calls` and the player show it, for earshot and VoIPmonitor sensors alike; `None`
/// for numbers it does not define (an unknown dynamic type).
pub fn codec_id_name(id: i64) -> Option<&'static str> {
    Some(match id {
        0 => "PCMU",
        3 => "GSM",
        4 => "G723",
        8 => "PCMA",
        9 => "G722",
        18 => "G729",
        97 => "iLBC",
        98 => "Speex",
        100 => "CLEARMODE",
        301..=305 => "SILK",
        306..=308 => "iSAC",
        311..=316 | 337..=348 => "opus",
        320 => "AMR",
        321 => "AMR-WB",
        331..=336 => "G.722.1",
        351 | 355 => "G726-16",
        352 | 356 => "G726-24",
        353 | 357 => "G726-32",
        354 | 358 => "G726-40",
        359 => "EVS",
        400 => "telephone-event",
        _ => return None,
    })
}

/// A call as `listcalls` and `active_call_info` show it: a cheap, owned snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct CallSummary {
    pub callref: CallRef,
    pub id: u64,
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub caller_name: Option<String>,
    pub caller_domain: Option<String>,
    pub called_domain: Option<String>,
    pub caller_agent: Option<String>,
    pub called_agent: Option<String>,
    pub caller_ip: IpAddr,
    pub called_ip: IpAddr,
    pub state: CallState,
    pub last_sip_code: Option<u16>,
    pub start_ns: i64,
    pub answer_ns: Option<i64>,
    pub last_packet_ns: i64,
    /// Seconds from start until the end, or until `now` while the call is up.
    pub duration_secs: i64,
    /// Seconds from answer until the end (or `now`); 0 before an answer.
    pub connect_secs: i64,
    pub on_hold: bool,
    pub held_by: Option<Party>,
    pub reinvites: u32,
    pub codecs: Vec<String>,
    pub vlan: Option<u16>,
    pub sensor_id: Option<i64>,
    /// Main stream (most packets) sent by the caller and by the called party.
    pub caller_leg: Option<LegSummary>,
    pub called_leg: Option<LegSummary>,
    pub legs: Vec<LegSummary>,
}

impl CallSummary {
    /// Snapshots `call`. `now_ns` is the capture clock's current time, used for the running
    /// duration of calls that have not ended.
    pub fn from_call(call: &Call, callref: CallRef, sensor_id: Option<i64>, now_ns: i64) -> Self {
        let end = call
            .end
            .map(|t| t.nanos())
            .unwrap_or(now_ns.max(call.last_packet.nanos()));
        let start = call.start.nanos();
        let answer = call.answer.map(|t| t.nanos());
        let legs: Vec<LegSummary> = call.streams.iter().map(LegSummary::from_stream).collect();
        CallSummary {
            callref,
            id: call.id,
            call_id: call.call_id.clone(),
            caller: call.caller.clone(),
            called: call.called.clone(),
            caller_name: call.caller_name.clone(),
            caller_domain: call.caller_domain.clone(),
            called_domain: call.called_domain.clone(),
            caller_agent: call.caller_agent.clone(),
            called_agent: call.called_agent.clone(),
            caller_ip: call.caller_sip.ip(),
            called_ip: call.called_sip.ip(),
            state: call.state,
            last_sip_code: call.last_sip_code.or(call.sip_code),
            start_ns: start,
            answer_ns: answer,
            last_packet_ns: call.last_packet.nanos(),
            duration_secs: secs_between(start, end),
            connect_secs: answer.map_or(0, |a| secs_between(a, end)),
            on_hold: call.on_hold,
            held_by: call.held_by,
            reinvites: call.reinvites,
            codecs: call.codecs(),
            vlan: call.vlan,
            sensor_id,
            caller_leg: main_leg(&legs, Party::Caller),
            called_leg: main_leg(&legs, Party::Called),
            legs,
        }
    }
}

fn secs_between(from_ns: i64, to_ns: i64) -> i64 {
    (to_ns.saturating_sub(from_ns) / 1_000_000_000).max(0)
}

/// A party's stream now: the one that carried its latest packet (a re-INVITE to a new port
/// makes a new stream, which is the one to show), the larger on a tie. Audio only: a video
/// stream's codec, quality and addresses are not what the call's audio columns mean.
fn main_leg(legs: &[LegSummary], party: Party) -> Option<LegSummary> {
    legs.iter()
        .filter(|l| l.party == Some(party) && !l.video)
        .max_by_key(|l| (l.last_ns, l.packets))
        .cloned()
}

/// The values of [`EARSHOT_FIELDS`] for one call.
pub fn earshot_row(c: &CallSummary) -> Vec<Value> {
    let name = |l: &Option<LegSummary>| text(l.as_ref().and_then(|l| l.codec.as_deref()));
    vec![
        Value::from(c.state.as_str()),
        Value::from(c.on_hold),
        c.held_by.map_or(Value::Null, |p| Value::from(p.as_str())),
        name(&c.caller_leg),
        name(&c.called_leg),
        Value::from(c.reinvites),
        leg_mos(&c.caller_leg),
        leg_mos(&c.called_leg),
        leg_jitter(&c.caller_leg),
        leg_jitter(&c.called_leg),
        leg_unknown(&c.caller_leg),
        leg_unknown(&c.called_leg),
    ]
}

/// A party's MOS, null where there is none (no stream, or [`QualityUnknown`]).
fn leg_mos(l: &Option<LegSummary>) -> Value {
    l.as_ref()
        .and_then(|l| l.mos)
        .map_or(Value::Null, |m| float6((m * 100.0).round() / 100.0))
}

fn leg_jitter(l: &Option<LegSummary>) -> Value {
    l.as_ref()
        .and_then(LegSummary::jitter_if_known)
        .map_or(Value::Null, float6)
}

/// Why a party has no MOS: `"no_media"` without a stream, else the stream's reason; null when
/// it has one.
fn leg_unknown(l: &Option<LegSummary>) -> Value {
    match l {
        None => Value::from(QualityUnknown::NoMedia.as_str()),
        Some(l) => l.unknown.map_or(Value::Null, |u| Value::from(u.as_str())),
    }
}

/// Why a party has no MOS, in words for the text listing (`None`: it has one).
pub fn unknown_text(l: Option<&LegSummary>) -> Option<String> {
    let (why, codec) = match l {
        None => (QualityUnknown::NoMedia, None),
        Some(l) => (l.unknown?, l.codec.as_deref()),
    };
    Some(match why {
        QualityUnknown::NoMedia => "no media".into(),
        QualityUnknown::EventsOnly => "telephone-events only".into(),
        QualityUnknown::ClockUnknown => "clock rate unknown".into(),
        QualityUnknown::Undecodable => format!("cannot decode {}", codec.unwrap_or("its codec")),
        QualityUnknown::Video => "video".into(),
    })
}

/// Unix seconds to VoIPmonitor's `YYYY-MM-DD HH:MM:SS` (UTC).
fn datetime(ns: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(ns.div_euclid(1_000_000_000)).ok()?;
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&fmt).ok()
}

/// VoIPmonitor's IP columns: IPv4 as an unsigned integer (INET_ATON), IPv6 as its text form.
fn ip_value(ip: IpAddr) -> Value {
    match ip {
        IpAddr::V4(v4) => Value::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Value::from(u32::from(v4)),
            None => Value::from(v6.to_string()),
        },
    }
}

/// Empty strings are null in VoIPmonitor's output.
fn text(s: Option<&str>) -> Value {
    match s {
        Some(s) if !s.is_empty() => Value::from(s),
        _ => Value::Null,
    }
}

/// Floats printed with at most six decimals, like VoIPmonitor's `%f`; always a JSON float.
fn float6(v: f64) -> Value {
    if !v.is_finite() {
        return Value::Null;
    }
    Value::from((v * 1e6).round() / 1e6)
}

/// VoIPmonitor's MOS column: ×10, and its own no-data value where there is no score.
fn mos10(leg: Option<&LegSummary>) -> Value {
    let mos = leg.and_then(|l| l.mos);
    Value::from(mos.map_or(VOIPMONITOR_NO_MOS, |m| (m * 10.0).round() as i64))
}

/// VoIPmonitor's jitter columns: a float always, 0 (its no-data value) where not measured.
fn jitter6(leg: Option<&LegSummary>, f: fn(&LegSummary) -> f64) -> Value {
    float6(leg.filter(|l| l.jitter_known()).map_or(0.0, f))
}

/// The 68 positional values of one call, in [`FIELDS`] order.
pub fn json_row(c: &CallSummary) -> Vec<Value> {
    let src = c.caller_leg.as_ref();
    let dst = c.called_leg.as_ref();
    let calldate_num = c.start_ns.div_euclid(1_000_000_000);
    let (rtp_src, rtp_dst) = rtp_addresses(src, dst);
    let leg = |l: Option<&LegSummary>, f: fn(&LegSummary) -> Value| l.map_or(Value::Null, f);
    let n = Value::Null;
    vec![
        Value::from(c.callref.to_prefixed()),
        Value::from(c.call_id.as_str()),
        datetime(c.start_ns).map_or(Value::Null, Value::from),
        Value::from(calldate_num),
        Value::from(c.last_packet_ns.div_euclid(1_000_000_000)),
        Value::from(c.duration_secs),
        Value::from(c.connect_secs),
        text(Some(&c.caller)),
        text(Some(&c.called)),
        n.clone(), // caller_country
        n.clone(), // called_country
        n.clone(), // caller_international
        n.clone(), // called_international
        text(c.caller_name.as_deref()),
        text(c.caller_domain.as_deref()),
        text(c.called_domain.as_deref()),
        text(c.caller_agent.as_deref()),
        text(c.called_agent.as_deref()),
        ip_value(c.caller_ip),
        ip_value(c.called_ip),
        n.clone(), // callerip_country
        n.clone(), // calledip_country
        n.clone(), // callerip_encaps
        n.clone(), // calledip_encaps
        n.clone(), // callerip_encaps_prot
        n.clone(), // calledip_encaps_prot
        n.clone(), // sipproxies
        c.last_sip_code.map_or(Value::Null, Value::from),
        rtp_src,
        rtp_dst,
        n.clone(), // rtp_src_country
        n.clone(), // rtp_dst_country
        leg(src, |l| Value::from(l.codec_id())),
        leg(dst, |l| Value::from(l.codec_id())),
        mos10(src), // src_mosf1: our E-model MOS
        n.clone(),  // src_mosf1_avg
        n.clone(),  // src_mosf1_min
        n.clone(),  // src_mosf2
        n.clone(),  // src_mosf2_avg
        n.clone(),  // src_mosf2_min
        n.clone(),  // src_mosAD
        n.clone(),  // src_mosAD_avg
        n.clone(),  // src_mosAD_min
        mos10(dst), // dst_mosf1
        n.clone(),
        n.clone(),
        n.clone(),
        n.clone(),
        n.clone(),
        n.clone(),
        n.clone(),
        n.clone(), // dst_mosAD_min
        jitter6(src, |l| l.jitter_ms),
        jitter6(src, |l| l.jitter_avg_ms),
        jitter6(src, |l| l.jitter_max_ms),
        jitter6(dst, |l| l.jitter_ms),
        jitter6(dst, |l| l.jitter_avg_ms),
        jitter6(dst, |l| l.jitter_max_ms),
        leg(src, |l| Value::from(l.packets)),
        leg(dst, |l| Value::from(l.packets)),
        leg(src, |l| Value::from(l.lost)),
        leg(dst, |l| Value::from(l.lost)),
        leg(src, |l| float6(l.loss_percent)),
        leg(dst, |l| float6(l.loss_percent)),
        n.clone(), // src_loss_last10sec
        n.clone(), // dst_loss_last10sec
        c.sensor_id.map_or(Value::Null, Value::from),
        c.vlan.map_or(Value::Null, Value::from),
    ]
}

/// `rtp_src`/`rtp_dst`: the two ends of the caller's main stream, else of the called party's
/// stream reversed (source and destination named from the caller's side).
fn rtp_addresses(src: Option<&LegSummary>, dst: Option<&LegSummary>) -> (Value, Value) {
    match (src, dst) {
        (Some(l), _) => (ip_value(l.src.ip()), ip_value(l.dst.ip())),
        (None, Some(l)) => (ip_value(l.dst.ip()), ip_value(l.src.ip())),
        (None, None) => (Value::Null, Value::Null),
    }
}

/// What the totals element reports besides the count (copied from VoIPmonitor's keys).
#[derive(Clone, Copy, Debug, Default)]
pub struct ListContext {
    pub sensor_id: Option<i64>,
}

/// `listcalls json` (params `None`) or `listcalls {…}` (params `Some`): the header row, the
/// totals element only with parameters, then one row per call after sorting and limiting.
pub fn listcalls_json(
    calls: &[CallSummary],
    params: Option<&ListParams>,
    ctx: ListContext,
) -> Vec<u8> {
    let extra = params.is_some_and(|p| p.earshot);
    let mut rows: Vec<Vec<Value>> = calls
        .iter()
        .map(|c| {
            let mut row = json_row(c);
            if extra {
                row.extend(earshot_row(c));
            }
            row
        })
        .collect();
    let mut names = FIELDS.to_vec();
    if extra {
        names.extend(EARSHOT_FIELDS);
    }
    let mut out = String::from("[");
    out.push_str(&Value::from(names).to_string());
    if let Some(p) = params {
        sort_rows(&mut rows, p);
        // Written by hand to keep VoIPmonitor's key order (serde_json's map sorts keys).
        let sensor = ctx
            .sensor_id
            .map_or_else(|| "null".to_string(), |s| s.to_string());
        out.push_str(&format!(
            ",[{{\"total\":{},\"is_receiver\":0,\"is_server\":0,\"id_sensor\":{sensor}}}]",
            calls.len()
        ));
        if let Some(limit) = p.limit {
            rows.truncate(limit);
        }
    }
    for row in rows {
        out.push(',');
        out.push_str(&Value::Array(row).to_string());
    }
    out.push(']');
    out.into_bytes()
}

fn sort_rows(rows: &mut [Vec<Value>], p: &ListParams) {
    let Some(col) = p
        .sort_field
        .as_deref()
        .and_then(|f| FIELDS.iter().position(|n| *n == f))
    else {
        return;
    };
    // Stable sort: equal keys keep the server's order.
    rows.sort_by(|a, b| {
        let o = cmp_values(&a[col], &b[col]);
        if p.sort_desc {
            o.reverse()
        } else {
            o
        }
    });
}

/// Nulls first, then booleans, numbers, strings; within a kind the natural order.
fn cmp_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            _ => 4,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `listcalls`: one human-readable `[call]` block per call; nothing when there are none.
pub fn listcalls_text(calls: &[CallSummary]) -> Vec<u8> {
    let mut out = String::new();
    for c in calls {
        text_block(&mut out, c);
    }
    out.into_bytes()
}

fn text_block(out: &mut String, c: &CallSummary) {
    out.push_str("[call]\n");
    let mut kv = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{k}: {v}");
    };
    let dash = |s: &Option<String>| s.clone().filter(|s| !s.is_empty()).unwrap_or("-".into());
    let codecs = if c.codecs.is_empty() {
        "-".to_string()
    } else {
        c.codecs.join(",")
    };
    let sensor = c.sensor_id.map_or("-".to_string(), |s| s.to_string());
    let code = c.last_sip_code.map_or("-".to_string(), |s| s.to_string());
    let start = datetime(c.start_ns).unwrap_or_default();
    kv("id", &c.id);
    kv("caller", &c.caller);
    kv("called", &c.called);
    kv("callreference", &c.callref);
    kv("callid", &c.call_id);
    kv("state", &c.state);
    kv("last_sip_code", &code);
    kv("start", &start);
    kv("duration", &c.duration_secs);
    kv("connect_duration", &c.connect_secs);
    kv("codecs", &codecs);
    kv("on_hold", &c.on_hold);
    kv("held_by", &c.held_by.map_or("-", Party::as_str));
    kv("reinvites", &c.reinvites);
    for (k, leg) in [
        ("caller_codec", &c.caller_leg),
        ("called_codec", &c.called_leg),
    ] {
        kv(
            k,
            &leg.as_ref().and_then(|l| l.codec.as_deref()).unwrap_or("-"),
        );
    }
    kv("caller_ip", &c.caller_ip);
    kv("called_ip", &c.called_ip);
    kv("caller_agent", &dash(&c.caller_agent));
    kv("called_agent", &dash(&c.called_agent));
    kv("sensor_id", &sensor);
    for (name, leg) in [("caller_rtp", &c.caller_leg), ("called_rtp", &c.called_leg)] {
        kv(name, &rtp_line(leg.as_ref()));
    }
}

/// A party's `*_rtp` line: "-" for what was not measured, and why.
fn rtp_line(leg: Option<&LegSummary>) -> String {
    let why = unknown_text(leg)
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    let Some(l) = leg else {
        return format!("-{why}");
    };
    let jitter = l
        .jitter_if_known()
        .map_or("-".to_string(), |j| format!("{j:.2} ms"));
    let mos = l.mos.map_or("-".to_string(), |m| format!("{m:.1}"));
    format!(
        "{} -> {} pt {} packets {} lost {} ({:.1}%) jitter {jitter} MOS {mos}{why}",
        l.src, l.dst, l.payload_type, l.packets, l.lost, l.loss_percent
    )
}

/// `active_call_info`: VoIPmonitor's `{"call":{…},"sip_packets":…,"rtp_streams":[…]}`, with the
/// call's listcalls fields as an object. SIP packets are not kept, which the key says in a string
/// as VoIPmonitor does when its `active_call_info` option is off.
/// `active_call_info`: the call's listing fields as an object, its SIP messages in capture
/// order (as many as the sensor keeps per call), and its RTP streams with quality.
pub fn active_call_info(c: &CallSummary, sip: &[earshot_core::SipRecord]) -> Vec<u8> {
    let call: Map<String, Value> = FIELDS
        .iter()
        .map(|f| f.to_string())
        .zip(json_row(c))
        .collect();
    let streams: Vec<Value> = c
        .legs
        .iter()
        .map(|l| {
            json!({
                "src_ip": ip_value(l.src.ip()),
                "src_port": l.src.port(),
                "dst_ip": ip_value(l.dst.ip()),
                "dst_port": l.dst.port(),
                "time": l.first_ns.div_euclid(1000),
                "time_last": l.last_ns.div_euclid(1000),
                "ssrc": l.ssrc,
                "codec": l.payload_type,
                "received": l.packets,
                "lost": l.lost,
                "jitter_avg": jitter6(Some(l), |l| l.jitter_avg_ms),
                "jitter_max": jitter6(Some(l), |l| l.jitter_max_ms),
                // earshot's: the honest values, null where not measured.
                "mos": l.mos.map_or(Value::Null, float6),
                "jitter_ms": l.jitter_if_known().map_or(Value::Null, float6),
                "quality_unknown": l.unknown.map(QualityUnknown::as_str),
                "party": l.party.map(Party::as_str),
                "media": if l.video { "video" } else { "audio" },
            })
        })
        .collect();
    json!({
        "call": call,
        "sip_packets": sip.iter().map(|m| json!({
            "time": m.ts.nanos().div_euclid(1000),
            "src": m.src.to_string(),
            "dst": m.dst.to_string(),
            "data": m.text,
            "truncated": m.truncated,
        })).collect::<Vec<_>>(),
        "rtp_streams": streams,
        // earshot's additions, apart from VoIPmonitor's 68 fields.
        "earshot": EARSHOT_FIELDS.iter().map(|f| f.to_string()).zip(earshot_row(c)).collect::<Map<String, Value>>(),
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(payload_type: u8, codec: Option<&str>) -> LegSummary {
        let addr: SocketAddr = "192.0.2.1:4000".parse().expect("address");
        LegSummary {
            party: None,
            src: addr,
            dst: addr,
            ssrc: 1,
            payload_type,
            codec: codec.map(str::to_string),
            first_ns: 0,
            last_ns: 0,
            packets: 0,
            lost: 0,
            loss_percent: 0.0,
            jitter_ms: 0.0,
            jitter_avg_ms: 0.0,
            jitter_max_ms: 0.0,
            mos: None,
            unknown: None,
            video: false,
        }
    }

    /// A call answered at t=0, caller leg first, called leg second (either may be absent).
    fn call(caller: Option<LegSummary>, called: Option<LegSummary>) -> CallSummary {
        let ip: IpAddr = "192.0.2.1".parse().expect("address");
        CallSummary {
            callref: CallRef::from_u64(0x1234),
            id: 1,
            call_id: "c1".into(),
            caller: "1001".into(),
            called: "1002".into(),
            caller_name: None,
            caller_domain: None,
            called_domain: None,
            caller_agent: None,
            called_agent: None,
            caller_ip: ip,
            called_ip: ip,
            state: CallState::Answered,
            last_sip_code: Some(200),
            start_ns: 0,
            answer_ns: Some(0),
            last_packet_ns: 0,
            duration_secs: 1,
            connect_secs: 1,
            on_hold: false,
            held_by: None,
            reinvites: 0,
            codecs: vec![],
            vlan: None,
            sensor_id: None,
            legs: caller.iter().chain(called.iter()).cloned().collect(),
            caller_leg: caller,
            called_leg: called,
        }
    }

    fn measured(pt: u8, codec: &str, jitter: f64, mos: Option<f64>) -> LegSummary {
        let mut l = leg(pt, Some(codec));
        l.packets = 100;
        l.jitter_ms = jitter;
        l.jitter_avg_ms = jitter;
        l.jitter_max_ms = jitter;
        l.mos = mos;
        l
    }

    /// The value of a named column in `listcalls {"earshot":true}`'s row.
    fn column(c: &CallSummary, name: &str) -> Value {
        let mut row = json_row(c);
        row.extend(earshot_row(c));
        let names: Vec<&str> = FIELDS
            .iter()
            .chain(EARSHOT_FIELDS.iter())
            .copied()
            .collect();
        let i = names.iter().position(|n| *n == name).expect(name);
        row[i].clone()
    }

    #[test]
    fn an_undecodable_leg_has_no_mos_but_its_jitter() {
        let mut amr = measured(96, "AMR", 1.5, None);
        amr.unknown = Some(QualityUnknown::Undecodable);
        let pcma = measured(8, "PCMA", 0.25, Some(4.41));
        let c = call(Some(amr), Some(pcma));
        // VoIPmonitor's columns keep its types and its no-data MOS, 45.
        assert_eq!(column(&c, "src_mosf1"), Value::from(45));
        assert_eq!(column(&c, "dst_mosf1"), Value::from(44));
        assert_eq!(column(&c, "src_jitter"), Value::from(1.5));
        // earshot's say what is known.
        assert_eq!(column(&c, "caller_mos"), Value::Null);
        assert_eq!(column(&c, "called_mos"), Value::from(4.41));
        assert_eq!(column(&c, "caller_jitter_ms"), Value::from(1.5));
        assert_eq!(
            column(&c, "caller_quality_unknown"),
            Value::from("undecodable")
        );
        assert_eq!(column(&c, "called_quality_unknown"), Value::Null);
        let text = String::from_utf8(listcalls_text(&[c])).expect("utf-8");
        assert!(
            text.contains("jitter 1.50 ms MOS - (cannot decode AMR)\n"),
            "{text}"
        );
        assert!(text.contains("jitter 0.25 ms MOS 4.4\n"), "{text}");
    }

    #[test]
    fn an_unknown_clock_has_no_jitter_and_no_mos() {
        let mut dynamic = measured(101, "", 0.0, None);
        dynamic.codec = None;
        dynamic.unknown = Some(QualityUnknown::ClockUnknown);
        let mut events = measured(101, "telephone-event", 0.0, None);
        events.unknown = Some(QualityUnknown::EventsOnly);
        let c = call(Some(dynamic), Some(events));
        for (side, why) in [("caller", "clock_unknown"), ("called", "events_only")] {
            assert_eq!(column(&c, &format!("{side}_mos")), Value::Null);
            assert_eq!(column(&c, &format!("{side}_jitter_ms")), Value::Null);
            assert_eq!(
                column(&c, &format!("{side}_quality_unknown")),
                Value::from(why)
            );
        }
        assert_eq!(column(&c, "src_jitter"), Value::from(0.0));
        assert_eq!(column(&c, "dst_mosf1"), Value::from(45));
        let text = String::from_utf8(listcalls_text(&[c])).expect("utf-8");
        assert!(
            text.contains("jitter - MOS - (clock rate unknown)"),
            "{text}"
        );
        assert!(
            text.contains("jitter - MOS - (telephone-events only)"),
            "{text}"
        );
    }

    #[test]
    fn a_call_without_media_says_so() {
        let c = call(None, None);
        assert_eq!(column(&c, "src_mosf1"), Value::from(45));
        assert_eq!(column(&c, "dst_jitter_max"), Value::from(0.0));
        for side in ["caller", "called"] {
            assert_eq!(column(&c, &format!("{side}_mos")), Value::Null);
            assert_eq!(column(&c, &format!("{side}_jitter_ms")), Value::Null);
            assert_eq!(
                column(&c, &format!("{side}_quality_unknown")),
                Value::from("no_media")
            );
        }
        let text = String::from_utf8(listcalls_text(std::slice::from_ref(&c))).expect("utf-8");
        assert!(text.contains("caller_rtp: - (no media)\n"), "{text}");
        let info: Value = serde_json::from_slice(&active_call_info(&c, &[])).expect("JSON");
        assert_eq!(info["earshot"]["caller_mos"], Value::Null);
        assert_eq!(info["earshot"]["called_quality_unknown"], "no_media");
    }

    #[test]
    fn active_call_info_streams_carry_null_where_unknown() {
        let mut amr = measured(96, "AMR", 1.5, None);
        amr.unknown = Some(QualityUnknown::Undecodable);
        let mut dynamic = measured(101, "", 0.0, None);
        dynamic.unknown = Some(QualityUnknown::ClockUnknown);
        let c = call(Some(amr), Some(dynamic));
        let info: Value = serde_json::from_slice(&active_call_info(&c, &[])).expect("JSON");
        let s = &info["rtp_streams"];
        assert_eq!(s[0]["mos"], Value::Null);
        assert_eq!(s[0]["jitter_ms"], Value::from(1.5));
        assert_eq!(s[0]["quality_unknown"], "undecodable");
        assert_eq!(s[1]["jitter_ms"], Value::Null);
        assert_eq!(s[1]["jitter_avg"], Value::from(0.0));
        assert_eq!(info["call"]["src_mosf1"], Value::from(45));
        assert_eq!(info["earshot"]["caller_mos"], Value::Null);
    }

    #[test]
    fn a_video_stream_is_never_a_partys_main_leg() {
        let mut audio = leg(0, Some("PCMU"));
        audio.party = Some(Party::Caller);
        audio.packets = 100;
        let mut video = leg(96, Some("H264"));
        video.party = Some(Party::Caller);
        video.packets = 500;
        video.video = true;
        let main = main_leg(&[video, audio], Party::Caller).expect("a main leg");
        assert_eq!(main.codec.as_deref(), Some("PCMU"));
    }

    #[test]
    fn codec_id_names_invert_codec_ids() {
        for (pt, name) in [
            (0, "PCMU"),
            (8, "PCMA"),
            (9, "G722"),
            (111, "opus"),
            (96, "G726-32"),
        ] {
            let id = leg(pt, Some(name)).codec_id();
            assert_eq!(codec_id_name(id), Some(name), "{id}");
        }
        assert_eq!(codec_id_name(120), None);
    }

    #[test]
    fn codec_ids_follow_voipmonitor() {
        assert_eq!(leg(8, Some("PCMA")).codec_id(), 8);
        assert_eq!(leg(9, None).codec_id(), 9);
        assert_eq!(leg(111, Some("opus")).codec_id(), 316);
        assert_eq!(leg(102, Some("iLBC")).codec_id(), 97);
        assert_eq!(leg(96, Some("G726-32")).codec_id(), 353);
        assert_eq!(leg(120, Some("x-unknown")).codec_id(), 120);
        assert_eq!(leg(120, None).codec_id(), 120);
    }
}
