//! `listcalls` (text and VoIPmonitor JSON) and `active_call_info` replies.
//!
//! The server snapshots each call into a [`CallSummary`] while it holds the call table, then
//! formats outside any lock: formatting needs nothing but the summaries.
//!
//! A summary's text (call-id, numbers, names, agents, codec names) is shared (`Arc<str>`), so a
//! sensor refreshing the numbers of a call many times a second copies pointers, not strings
//! ([`CallSummary::refresh`]). Rows are written straight into one buffer ([`write_row`]), with
//! serde_json's own number and string encoders, so the bytes are those serde_json's `Value`
//! gave before, without a `Value` per field.

use crate::callref::CallRef;
use crate::command::ListParams;
use earshot_rtp::{Party, QualityUnknown};
use earshot_sip::CallState;
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

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
pub const EARSHOT_FIELDS: [&str; 21] = [
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
    "caller_encrypted",
    "called_encrypted",
    // Both legs of a call through a B2BUA: the group's key (its A-leg's Call-ID), this
    // call's role in it ("a" or "b"), and what correlated it ("x-cid", "session-id", "icid",
    // "header", "regex"); null for a call in no group.
    "group",
    "leg",
    "correlated_by",
    "caller_capture_loss",
    "called_capture_loss",
    "caller_network_loss",
    "called_network_loss",
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
    pub codec: Option<Arc<str>>,
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
    /// SRTP without a key: measured, never decoded (see `earshot_core::Stream::is_encrypted`).
    pub encrypted: bool,
    /// Of `lost`, packets the sensor missed that the call did not lose (the receiver's RTCP
    /// reports say it got them, or the sensor's drop counters rose then): see
    /// `earshot_core::Stream::capture_loss`. `lost - capture_loss` is the network's.
    pub capture_loss: u64,
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

/// What SIP says of a call, shared by its summaries: set when a SIP message arrives, while
/// the numbers beside it are refreshed every second. One pointer for all of it, so a refresh
/// of 10,000 calls a second copies (and later drops) one reference per call rather than one
/// per string, each on a cache line of its own.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CallText {
    pub call_id: Arc<str>,
    pub caller: Arc<str>,
    pub called: Arc<str>,
    pub caller_name: Option<Arc<str>>,
    pub caller_domain: Option<Arc<str>>,
    pub called_domain: Option<Arc<str>>,
    pub caller_agent: Option<Arc<str>>,
    pub called_agent: Option<Arc<str>>,
    pub codecs: Arc<[String]>,
    /// The group of correlated legs the call belongs to (A-leg and B-legs through a B2BUA).
    pub group: Option<GroupSummary>,
}

/// A call as `listcalls` and `active_call_info` show it: a cheap, owned snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct CallSummary {
    pub callref: CallRef,
    pub id: u64,
    pub text: Arc<CallText>,
    pub caller_ip: IpAddr,
    pub called_ip: IpAddr,
    pub state: CallState,
    pub last_sip_code: Option<u16>,
    pub start_ns: i64,
    pub answer_ns: Option<i64>,
    pub last_packet_ns: i64,
    /// The call's latest SIP message: a summary older than it has stale text.
    pub last_sip_ns: i64,
    /// Seconds from start until the end, or until `now` while the call is up.
    pub duration_secs: i64,
    /// Seconds from answer until the end (or `now`); 0 before an answer.
    pub connect_secs: i64,
    pub on_hold: bool,
    pub held_by: Option<Party>,
    pub reinvites: u32,
    pub vlan: Option<u16>,
    pub sensor_id: Option<i64>,
    /// Main stream (most packets) sent by the caller and by the called party.
    pub caller_leg: Option<LegSummary>,
    pub called_leg: Option<LegSummary>,
    pub legs: Vec<LegSummary>,
}

/// A call's place among the legs of one call (see `earshot_core::CallGroup`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSummary {
    /// The A-leg's SIP Call-ID: the same for every leg of the group.
    pub key: Arc<str>,
    /// "a" or "b".
    pub leg: &'static str,
    /// What correlated the legs: "x-cid", "session-id", "icid", "header", "regex".
    pub via: &'static str,
}

/// A party's stream now: the one that carried its latest packet (a re-INVITE to a new port
/// makes a new stream, which is the one to show), the larger on a tie. Audio only: a video
/// stream's codec, quality and addresses are not what the call's audio columns mean.
pub fn main_leg(legs: &[LegSummary], party: Party) -> Option<LegSummary> {
    legs.iter()
        .filter(|l| l.party == Some(party) && !l.video)
        .max_by_key(|l| (l.last_ns, l.packets))
        .cloned()
}

/// One JSON array being written into a buffer: the values, comma-separated. Numbers and
/// strings go through serde_json's own encoders, so the bytes are those of a `Value`.
struct Row<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Row<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'[');
        Row { out, first: true }
    }

    fn close(self) {
        self.out.push(b']');
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }

    fn null(&mut self) {
        self.sep();
        self.out.extend_from_slice(b"null");
    }

    fn nulls(&mut self, n: usize) {
        for _ in 0..n {
            self.null();
        }
    }

    /// Any serde scalar (integers, bools, strings): serde_json's encoding, into the buffer.
    fn value<T: serde::Serialize + ?Sized>(&mut self, v: &T) {
        self.sep();
        // Writing scalars into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, v);
    }

    fn opt<T: serde::Serialize>(&mut self, v: Option<T>) {
        match v {
            Some(v) => self.value(&v),
            None => self.null(),
        }
    }

    /// Empty strings are null in VoIPmonitor's output.
    fn text(&mut self, s: Option<&str>) {
        match s {
            Some(s) if !s.is_empty() => self.value(s),
            _ => self.null(),
        }
    }

    /// Floats printed with at most six decimals, like VoIPmonitor's `%f`; always a JSON float.
    fn float6(&mut self, v: f64) {
        if v.is_finite() {
            self.value(&((v * 1e6).round() / 1e6));
        } else {
            self.null();
        }
    }

    /// VoIPmonitor's IP columns: IPv4 as an unsigned integer (INET_ATON), IPv6 as text.
    fn ip(&mut self, ip: IpAddr) {
        match ip_number(ip) {
            Ok(n) => self.value(&n),
            Err(v6) => {
                self.sep();
                let _ = write!(ByteWriter(self.out), "\"{v6}\"");
            }
        }
    }

    /// VoIPmonitor's MOS column: ×10, and its own no-data value where there is no score.
    fn mos10(&mut self, leg: Option<&LegSummary>) {
        let mos = leg.and_then(|l| l.mos);
        self.value(&mos.map_or(VOIPMONITOR_NO_MOS, |m| (m * 10.0).round() as i64));
    }

    /// VoIPmonitor's jitter columns: a float always, 0 (its no-data value) where not measured.
    fn jitter6(&mut self, leg: Option<&LegSummary>, f: fn(&LegSummary) -> f64) {
        self.float6(leg.filter(|l| l.jitter_known()).map_or(0.0, f));
    }

    fn leg_float(&mut self, leg: Option<&LegSummary>, f: fn(&LegSummary) -> f64) {
        match leg {
            Some(l) => self.float6(f(l)),
            None => self.null(),
        }
    }
}

/// `fmt::Write` into a byte buffer (for the few values written with `write!`).
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// An IPv4 (or IPv4-mapped) address as VoIPmonitor's number, else the IPv6 address.
fn ip_number(ip: IpAddr) -> Result<u32, std::net::Ipv6Addr> {
    match ip {
        IpAddr::V4(v4) => Ok(u32::from(v4)),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(u32::from).ok_or(v6),
    }
}

fn ip_value(ip: IpAddr) -> Value {
    match ip_number(ip) {
        Ok(n) => Value::from(n),
        Err(v6) => Value::from(v6.to_string()),
    }
}

fn float6(v: f64) -> Value {
    if !v.is_finite() {
        return Value::Null;
    }
    Value::from((v * 1e6).round() / 1e6)
}

/// VoIPmonitor's jitter values as a `Value`: a float always, 0 (its no-data value) where not
/// measured (`active_call_info`; listcalls rows use [`Row::jitter6`]).
fn jitter6(leg: Option<&LegSummary>, f: fn(&LegSummary) -> f64) -> Value {
    float6(leg.filter(|l| l.jitter_known()).map_or(0.0, f))
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
        QualityUnknown::ModeDependent => format!(
            "{}: its impairment depends on the mode",
            codec.unwrap_or("its codec")
        ),
        QualityUnknown::Video => "video".into(),
    })
}

/// Unix seconds to VoIPmonitor's `YYYY-MM-DD HH:MM:SS` (UTC).
fn datetime(ns: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(ns.div_euclid(1_000_000_000)).ok()?;
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&fmt).ok()
}

/// Writes `calldate` as a JSON string without allocating (same text as [`datetime`]).
fn write_datetime(row: &mut Row<'_>, ns: i64) {
    match time::OffsetDateTime::from_unix_timestamp(ns.div_euclid(1_000_000_000)) {
        Ok(t) => {
            row.sep();
            let _ = write!(
                ByteWriter(row.out),
                "\"{:04}-{:02}-{:02} {:02}:{:02}:{:02}\"",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
        }
        Err(_) => row.null(),
    }
}

/// The 68 positional values of one call, in [`FIELDS`] order, as a JSON array into `out`;
/// with `extra`, earshot's [`EARSHOT_FIELDS`] after them.
pub fn write_row(out: &mut Vec<u8>, c: &CallSummary, extra: bool) {
    let src = c.caller_leg.as_ref();
    let dst = c.called_leg.as_ref();
    let mut r = Row::open(out);
    r.sep();
    let _ = write!(ByteWriter(r.out), "\"{:#x}\"", c.callref.as_u64());
    r.value(&*c.text.call_id);
    write_datetime(&mut r, c.start_ns);
    r.value(&c.start_ns.div_euclid(1_000_000_000)); // calldate_num
    r.value(&c.last_packet_ns.div_euclid(1_000_000_000)); // lastpackettime
    r.value(&c.duration_secs);
    r.value(&c.connect_secs);
    r.text(Some(&c.text.caller));
    r.text(Some(&c.text.called));
    r.nulls(4); // caller/called country, caller/called international
    r.text(c.text.caller_name.as_deref());
    r.text(c.text.caller_domain.as_deref());
    r.text(c.text.called_domain.as_deref());
    r.text(c.text.caller_agent.as_deref());
    r.text(c.text.called_agent.as_deref());
    r.ip(c.caller_ip);
    r.ip(c.called_ip);
    r.nulls(7); // ip countries, encapsulations, sipproxies
    r.opt(c.last_sip_code);
    // rtp_src/rtp_dst: the two ends of the caller's main stream, else of the called party's
    // stream reversed (source and destination named from the caller's side).
    match (src, dst) {
        (Some(l), _) => {
            r.ip(l.src.ip());
            r.ip(l.dst.ip());
        }
        (None, Some(l)) => {
            r.ip(l.dst.ip());
            r.ip(l.src.ip());
        }
        (None, None) => r.nulls(2),
    }
    r.nulls(2); // rtp_src_country, rtp_dst_country
    r.opt(src.map(LegSummary::codec_id));
    r.opt(dst.map(LegSummary::codec_id));
    r.mos10(src); // src_mosf1: our E-model MOS
    r.nulls(8); // src_mosf1_avg … src_mosAD_min
    r.mos10(dst); // dst_mosf1
    r.nulls(8); // dst_mosf1_avg … dst_mosAD_min
    r.jitter6(src, |l| l.jitter_ms);
    r.jitter6(src, |l| l.jitter_avg_ms);
    r.jitter6(src, |l| l.jitter_max_ms);
    r.jitter6(dst, |l| l.jitter_ms);
    r.jitter6(dst, |l| l.jitter_avg_ms);
    r.jitter6(dst, |l| l.jitter_max_ms);
    r.opt(src.map(|l| l.packets));
    r.opt(dst.map(|l| l.packets));
    r.opt(src.map(|l| l.lost));
    r.opt(dst.map(|l| l.lost));
    r.leg_float(src, |l| l.loss_percent);
    r.leg_float(dst, |l| l.loss_percent);
    r.nulls(2); // src_loss_last10sec, dst_loss_last10sec
    r.opt(c.sensor_id);
    r.opt(c.vlan);
    if extra {
        write_earshot_values(&mut r, c);
    }
    r.close();
}

fn write_earshot_values(r: &mut Row<'_>, c: &CallSummary) {
    r.value(c.state.as_str());
    r.value(&c.on_hold);
    r.opt(c.held_by.map(Party::as_str));
    r.text(leg_codec(&c.caller_leg));
    r.text(leg_codec(&c.called_leg));
    r.value(&c.reinvites);
    r.value(&leg_mos(&c.caller_leg));
    r.value(&leg_mos(&c.called_leg));
    r.value(&leg_jitter(&c.caller_leg));
    r.value(&leg_jitter(&c.called_leg));
    r.value(&leg_unknown(&c.caller_leg));
    r.value(&leg_unknown(&c.called_leg));
    r.value(&c.caller_leg.as_ref().is_some_and(|l| l.encrypted));
    r.value(&c.called_leg.as_ref().is_some_and(|l| l.encrypted));
    let g = c.text.group.as_ref();
    r.text(g.map(|g| &*g.key));
    r.text(g.map(|g| g.leg));
    r.text(g.map(|g| g.via));
    // Capture loss beside network loss, per party's main leg: null without one.
    let capture = |l: &Option<LegSummary>| l.as_ref().map(|l| l.capture_loss.min(l.lost));
    let network = |l: &Option<LegSummary>| l.as_ref().map(|l| l.lost - l.capture_loss.min(l.lost));
    r.value(&capture(&c.caller_leg));
    r.value(&capture(&c.called_leg));
    r.value(&network(&c.caller_leg));
    r.value(&network(&c.called_leg));
}

fn leg_codec(l: &Option<LegSummary>) -> Option<&str> {
    l.as_ref().and_then(|l| l.codec.as_deref())
}

/// The values of [`EARSHOT_FIELDS`] for one call.
pub fn earshot_row(c: &CallSummary) -> Vec<Value> {
    let mut out = Vec::new();
    let mut r = Row::open(&mut out);
    write_earshot_values(&mut r, c);
    r.close();
    parse_row(&out)
}

/// The 68 positional values of one call, in [`FIELDS`] order (what [`write_row`] writes).
pub fn json_row(c: &CallSummary) -> Vec<Value> {
    let mut out = Vec::new();
    write_row(&mut out, c, false);
    parse_row(&out)
}

fn parse_row(bytes: &[u8]) -> Vec<Value> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Array(values)) => values,
        _ => Vec::new(),
    }
}

/// What the totals element reports besides the count (copied from VoIPmonitor's keys).
#[derive(Clone, Copy, Debug, Default)]
pub struct ListContext {
    pub sensor_id: Option<i64>,
}

/// `listcalls json` (params `None`) or `listcalls {…}` (params `Some`): the header row, the
/// totals element only with parameters, then one row per call after filtering, sorting and
/// paging. Only the rows on the page are formatted: a 100-call page of 10,000 calls costs a
/// filter pass (and a sort of keys when asked), not 10,000 rows.
pub fn listcalls_json<'a>(
    calls: impl IntoIterator<Item = &'a CallSummary>,
    params: Option<&ListParams>,
    ctx: ListContext,
) -> Vec<u8> {
    let extra = params.is_some_and(|p| p.earshot);
    let mut names = FIELDS.to_vec();
    if extra {
        names.extend(EARSHOT_FIELDS);
    }
    let mut out = Vec::with_capacity(1024);
    out.push(b'[');
    let _ = serde_json::to_writer(&mut out, &names);
    let Some(p) = params else {
        for c in calls {
            out.push(b',');
            write_row(&mut out, c, false);
        }
        out.push(b']');
        return out;
    };
    let mut picked: Vec<&CallSummary> = calls.into_iter().filter(|c| p.filter.matches(c)).collect();
    sort_calls(&mut picked, p);
    // Written by hand to keep VoIPmonitor's key order (serde_json's map sorts keys).
    let sensor = ctx
        .sensor_id
        .map_or_else(|| "null".to_string(), |s| s.to_string());
    let _ = write!(
        ByteWriter(&mut out),
        ",[{{\"total\":{},\"is_receiver\":0,\"is_server\":0,\"id_sensor\":{sensor}}}]",
        picked.len()
    );
    let page = picked
        .iter()
        .skip(p.offset)
        .take(p.limit.unwrap_or(usize::MAX));
    for c in page {
        out.push(b',');
        write_row(&mut out, c, extra);
    }
    out.push(b']');
    out
}

/// A sort key: the column's value reduced to what [`cmp_keys`] compares.
#[derive(Debug, PartialEq)]
enum Key<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    Owned(String),
}

/// The sort key of column `col` for one call. The columns clients sort by are read straight
/// from the summary; any other column from its formatted row (slower, same order).
fn sort_key(c: &CallSummary, col: usize) -> Key<'_> {
    let num = |v: Option<f64>| v.map_or(Key::Null, Key::Num);
    let (src, dst) = (c.caller_leg.as_ref(), c.called_leg.as_ref());
    let secs = |ns: i64| Key::Num(ns.div_euclid(1_000_000_000) as f64);
    match FIELDS[col] {
        "callid" => Key::Str(&c.text.call_id),
        // The date text sorts as its seconds do.
        "calldate" | "calldate_num" => secs(c.start_ns),
        "lastpackettime" => secs(c.last_packet_ns),
        "duration" => Key::Num(c.duration_secs as f64),
        "connect_duration" => Key::Num(c.connect_secs as f64),
        "caller" => text_key(Some(&c.text.caller)),
        "called" => text_key(Some(&c.text.called)),
        "callername" => text_key(c.text.caller_name.as_deref()),
        "callerdomain" => text_key(c.text.caller_domain.as_deref()),
        "calleddomain" => text_key(c.text.called_domain.as_deref()),
        "calleragent" => text_key(c.text.caller_agent.as_deref()),
        "calledagent" => text_key(c.text.called_agent.as_deref()),
        "lastSIPresponseNum" => num(c.last_sip_code.map(f64::from)),
        "callercodec" => num(src.map(|l| l.codec_id() as f64)),
        "calledcodec" => num(dst.map(|l| l.codec_id() as f64)),
        "src_received" => num(src.map(|l| l.packets as f64)),
        "dst_received" => num(dst.map(|l| l.packets as f64)),
        "src_loss_abs" => num(src.map(|l| l.lost as f64)),
        "dst_loss_abs" => num(dst.map(|l| l.lost as f64)),
        "id_sensor" => num(c.sensor_id.map(|s| s as f64)),
        "vlan" => num(c.vlan.map(f64::from)),
        _ => match json_row(c).into_iter().nth(col) {
            Some(Value::Bool(b)) => Key::Bool(b),
            Some(Value::Number(n)) => Key::Num(n.as_f64().unwrap_or(0.0)),
            Some(Value::String(s)) => Key::Owned(s),
            _ => Key::Null,
        },
    }
}

fn text_key(s: Option<&str>) -> Key<'_> {
    match s {
        Some(s) if !s.is_empty() => Key::Str(s),
        _ => Key::Null,
    }
}

fn key_str<'a>(k: &'a Key<'_>) -> Option<&'a str> {
    match k {
        Key::Str(s) => Some(s),
        Key::Owned(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Nulls first, then booleans, numbers, strings; within a kind the natural order.
fn cmp_keys(a: &Key<'_>, b: &Key<'_>) -> Ordering {
    fn rank(k: &Key<'_>) -> u8 {
        match k {
            Key::Null => 0,
            Key::Bool(_) => 1,
            Key::Num(_) => 2,
            Key::Str(_) | Key::Owned(_) => 3,
        }
    }
    match (a, b) {
        (Key::Bool(x), Key::Bool(y)) => x.cmp(y),
        (Key::Num(x), Key::Num(y)) => x.total_cmp(y),
        _ => match (key_str(a), key_str(b)) {
            (Some(x), Some(y)) => x.cmp(y),
            _ => rank(a).cmp(&rank(b)),
        },
    }
}

fn sort_calls(calls: &mut Vec<&CallSummary>, p: &ListParams) {
    let Some(col) = p
        .sort_field
        .as_deref()
        .and_then(|f| FIELDS.iter().position(|n| *n == f))
    else {
        return;
    };
    let mut keyed: Vec<(Key<'_>, &CallSummary)> =
        calls.iter().map(|&c| (sort_key(c, col), c)).collect();
    // Stable sort: equal keys keep the server's order.
    keyed.sort_by(|a, b| {
        let o = cmp_keys(&a.0, &b.0);
        if p.sort_desc {
            o.reverse()
        } else {
            o
        }
    });
    calls.clear();
    calls.extend(keyed.into_iter().map(|(_, c)| c));
}

/// `listcalls`: one human-readable `[call]` block per call; nothing when there are none.
pub fn listcalls_text<'a>(calls: impl IntoIterator<Item = &'a CallSummary>) -> Vec<u8> {
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
    let codecs = if c.text.codecs.is_empty() {
        "-".to_string()
    } else {
        c.text.codecs.join(",")
    };
    let sensor = c.sensor_id.map_or("-".to_string(), |s| s.to_string());
    let code = c.last_sip_code.map_or("-".to_string(), |s| s.to_string());
    let start = datetime(c.start_ns).unwrap_or_default();
    kv("id", &c.id);
    kv("caller", &c.text.caller);
    kv("called", &c.text.called);
    kv("callreference", &c.callref);
    kv("callid", &c.text.call_id);
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
    kv("caller_agent", &dash(&c.text.caller_agent));
    kv("called_agent", &dash(&c.text.called_agent));
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

fn dash(s: &Option<Arc<str>>) -> &str {
    s.as_deref().filter(|s| !s.is_empty()).unwrap_or("-")
}

/// One SIP message of a call for `active_call_info`, as the sensor kept it.
#[derive(Clone, Debug)]
pub struct SipPacket {
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: i64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub text: String,
    /// True when the message was longer than the kept text.
    pub truncated: bool,
}

/// `active_call_info`: VoIPmonitor's `{"call":{…},"sip_packets":…,"rtp_streams":[…]}`, with the
/// call's listcalls fields as an object. SIP packets are not kept, which the key says in a string
/// as VoIPmonitor does when its `active_call_info` option is off.
/// `active_call_info`: the call's listing fields as an object, its SIP messages in capture
/// order (as many as the sensor keeps per call), and its RTP streams with quality.
pub fn active_call_info(c: &CallSummary, sip: &[SipPacket]) -> Vec<u8> {
    active_call_info_with(c, sip, None)
}

/// [`active_call_info`] with the call's quality over time (`"quality"`, see
/// [`crate::quality::quality_json`]) when the sensor has it.
pub fn active_call_info_with(
    c: &CallSummary,
    sip: &[SipPacket],
    quality: Option<&[crate::quality::StreamTimeline]>,
) -> Vec<u8> {
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
                "encrypted": l.encrypted,
                "capture_loss": l.capture_loss.min(l.lost),
                "network_loss": l.lost - l.capture_loss.min(l.lost),
            })
        })
        .collect();
    let mut v = json!({
        "call": call,
        "sip_packets": sip.iter().map(|m| json!({
            "time": m.ts_ns.div_euclid(1000),
            "src": m.src.to_string(),
            "dst": m.dst.to_string(),
            "data": m.text,
            "truncated": m.truncated,
        })).collect::<Vec<_>>(),
        "rtp_streams": streams,
        // earshot's additions, apart from VoIPmonitor's 68 fields.
        "earshot": EARSHOT_FIELDS.iter().map(|f| f.to_string()).zip(earshot_row(c)).collect::<Map<String, Value>>(),
    });
    if let Some(q) = quality {
        v["quality"] = crate::quality::quality_json(q);
    }
    v.to_string().into_bytes()
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
            codec: codec.map(Arc::from),
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
            encrypted: false,
            capture_loss: 0,
        }
    }

    /// A call answered at t=0, caller leg first, called leg second (either may be absent).
    fn call(caller: Option<LegSummary>, called: Option<LegSummary>) -> CallSummary {
        let ip: IpAddr = "192.0.2.1".parse().expect("address");
        CallSummary {
            callref: CallRef::from_u64(0x1234),
            id: 1,
            text: std::sync::Arc::new(CallText {
                call_id: "c1".into(),
                caller: "1001".into(),
                called: "1002".into(),
                caller_name: None,
                caller_domain: None,
                called_domain: None,
                caller_agent: None,
                called_agent: None,
                codecs: Vec::new().into(),
                group: None,
            }),
            caller_ip: ip,
            called_ip: ip,
            state: CallState::Answered,
            last_sip_code: Some(200),
            start_ns: 0,
            answer_ns: Some(0),
            last_packet_ns: 0,
            last_sip_ns: 0,
            duration_secs: 1,
            connect_secs: 1,
            on_hold: false,
            held_by: None,
            reinvites: 0,
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

    fn listed(
        n: u64,
        caller: &str,
        called: &str,
        state: CallState,
        codec: (u8, &str),
    ) -> CallSummary {
        let mut l = leg(codec.0, Some(codec.1));
        l.party = Some(Party::Caller);
        l.jitter_ms = f64::NAN;
        l.loss_percent = 1.0 / 3.0;
        CallSummary {
            callref: CallRef::from_u64(0x1000 + n),
            id: n,
            text: std::sync::Arc::new(CallText {
                call_id: format!("{n}@\"quoted\"\u{e9}\\").into(),
                caller: caller.into(),
                called: called.into(),
                caller_name: Some("".into()),
                caller_domain: Some("example.com".into()),
                called_domain: None,
                caller_agent: Some("agent\n1".into()),
                called_agent: None,
                codecs: vec![codec.1.to_string()].into(),
                group: None,
            }),
            caller_ip: "192.0.2.1".parse().expect("address"),
            called_ip: "2001:db8::1".parse().expect("address"),
            state,
            last_sip_code: Some(200),
            start_ns: 1_700_000_000_000_000_000 + n as i64 * 1_000_000_000,
            answer_ns: None,
            last_packet_ns: 1_700_000_100_000_000_000,
            last_sip_ns: 0,
            duration_secs: 100 - n as i64,
            connect_secs: 0,
            on_hold: false,
            held_by: Some(Party::Called),
            reinvites: 1,
            vlan: Some(7),
            sensor_id: Some(n as i64 % 2),
            caller_leg: Some(l.clone()),
            called_leg: None,
            legs: vec![l],
        }
    }

    fn table() -> Vec<CallSummary> {
        vec![
            listed(1, "1001", "2002", CallState::Answered, (8, "PCMA")),
            listed(2, "1003", "3004", CallState::Ringing, (0, "PCMU")),
            listed(3, "5005", "1001", CallState::Answered, (111, "opus")),
            listed(4, "", "2008", CallState::Trying, (8, "PCMA")),
        ]
    }

    fn list(calls: &[CallSummary], line: &str) -> Vec<Value> {
        let p = match crate::command::parse_command(line) {
            Ok(crate::command::Command::ListCalls(
                crate::command::ListCallsFormat::JsonWithParams(p),
            )) => p,
            other => panic!("{line}: {other:?}"),
        };
        match serde_json::from_slice(&listcalls_json(calls, Some(&p), ListContext::default())) {
            Ok(Value::Array(a)) => a,
            other => panic!("not an array: {other:?}"),
        }
    }

    /// The ids (column `callid`'s leading number) of the rows after the header and totals.
    fn ids(reply: &[Value]) -> Vec<u64> {
        reply[2..]
            .iter()
            .map(|r| {
                r[1].as_str()
                    .and_then(|s| s.split('@').next())
                    .and_then(|n| n.parse().ok())
                    .expect("callid")
            })
            .collect()
    }

    fn total(reply: &[Value]) -> u64 {
        reply[1][0]["total"].as_u64().expect("total")
    }

    #[test]
    fn rows_are_serde_json_bytes() {
        // write_row replaced a Value per field: its bytes must be what serializing the values
        // gives (escapes, float digits, IPv6 text, nulls for NaN and empty text).
        for c in table() {
            let mut out = Vec::new();
            write_row(&mut out, &c, true);
            let mut values = json_row(&c);
            assert_eq!(values.len(), FIELDS.len());
            values.extend(earshot_row(&c));
            assert_eq!(values.len(), FIELDS.len() + EARSHOT_FIELDS.len());
            let reference = Value::Array(values).to_string();
            assert_eq!(String::from_utf8_lossy(&out), reference);
        }
        let c = &table()[0];
        let row = json_row(c);
        assert_eq!(row[0], Value::from("0x1001"));
        assert_eq!(row[2], Value::from("2023-11-14 22:13:21"));
        assert_eq!(row[19], Value::from("2001:db8::1"));
        assert_eq!(row[13], Value::Null, "empty caller name is null");
        assert_eq!(row[52], Value::Null, "NaN jitter is null");
        assert_eq!(row[62], Value::from(0.333333));
    }

    #[test]
    fn paging_skips_and_limits_after_counting() {
        let calls = table();
        let r = list(&calls, r#"listcalls {"limit":2,"offset":1}"#);
        assert_eq!(total(&r), 4);
        assert_eq!(ids(&r), [2, 3]);
        let r = list(&calls, r#"listcalls {"limit":"2","start":"3"}"#);
        assert_eq!(ids(&r), [4]);
        let r = list(&calls, r#"listcalls {"limit":0}"#);
        assert_eq!((total(&r), r.len()), (4, 2));
        let r = list(&calls, r#"listcalls {"offset":10}"#);
        assert_eq!((total(&r), ids(&r)), (4, vec![]));
    }

    #[test]
    fn filters_narrow_the_list_and_the_total() {
        let calls = table();
        let r = list(&calls, r#"listcalls {"number":"1001"}"#);
        assert_eq!((total(&r), ids(&r)), (2, vec![1, 3]));
        let r = list(
            &calls,
            r#"listcalls {"filter":{"caller":"100","called":"2"}}"#,
        );
        assert_eq!(ids(&r), [1]);
        let r = list(
            &calls,
            r#"listcalls {"filter":[{"state":"Answered"},{"codec":"pcma"}]}"#,
        );
        assert_eq!(ids(&r), [1]);
        let r = list(&calls, r#"listcalls {"codec":316}"#);
        assert_eq!(ids(&r), [3]);
        let r = list(&calls, r#"listcalls {"filter":"{\"sensor_id\":\"0\"}"}"#);
        assert_eq!(ids(&r), [2, 4]);
        let r = list(&calls, r#"listcalls {"number":"","callid":"3@"}"#);
        assert_eq!(ids(&r), [3]);
    }

    #[test]
    fn sorting_orders_filtered_calls_before_the_page() {
        let calls = table();
        let r = list(
            &calls,
            r#"listcalls {"sort_field":"caller","sort_dir":"desc","limit":3}"#,
        );
        assert_eq!(
            ids(&r),
            [3, 2, 1],
            "an empty caller is null: last when descending"
        );
        let r = list(&calls, r#"listcalls {"sort_field":"duration"}"#);
        assert_eq!(ids(&r), [4, 3, 2, 1]);
        // A column without a direct key sorts by its formatted value.
        let r = list(
            &calls,
            r#"listcalls {"sort_field":"src_jitter_avg","sort_dir":"asc"}"#,
        );
        assert_eq!(ids(&r), [1, 2, 3, 4], "equal keys keep the table's order");
        let r = list(
            &calls,
            r#"listcalls {"sort_field":"calldate","sort_dir":"desc","offset":1,"limit":1}"#,
        );
        assert_eq!(ids(&r), [3]);
    }
}
