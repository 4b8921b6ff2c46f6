//! The command line: which command, with which arguments.
//!
//! Names are matched exactly (VoIPmonitor also falls back to a substring match, which makes
//! `xlistcalls` run `listcalls`; we do not copy that). Malformed arguments give a clear
//! `error: …` reply, except where VoIPmonitor's clients expect a specific string: an unparsable
//! call reference behaves like an unknown call.

use crate::callref::CallRef;
use crate::replies;
use serde_json::Value;
use thiserror::Error;

/// Every command we implement, for `help` and tests.
pub const COMMAND_NAMES: &[&str] = &[
    "active_call_info",
    "calls",
    "getversion",
    "help",
    "listcalls",
    "listen",
    "listen_stop",
    "readaudio",
    "sniffer_stat",
    "stream",
    "totalcalls",
];

/// Longest accepted listen id (VoIPmonitor reads it into `char[20]` unchecked; we bound it).
pub const MAX_LISTEN_ID_LEN: usize = 64;

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    ListCalls(ListCallsFormat),
    Listen {
        callref: CallRef,
        listen_id: String,
    },
    ReadAudio {
        callref: CallRef,
        listen_id: String,
    },
    ListenStop {
        callref: CallRef,
        listen_id: String,
    },
    Stream(StreamRequest),
    ActiveCallInfo(CallRef),
    TotalCalls,
    SnifferStat,
    /// `calls`: a subscription to call events (one JSON line each), see `calls_feed`.
    Calls,
    GetVersion,
    Help,
}

// One per command line, never stored in bulk: the size of the filters does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum ListCallsFormat {
    /// `listcalls`: human-readable `[call]` blocks.
    Text,
    /// `listcalls json`: VoIPmonitor's JSON, without the totals element.
    Json,
    /// `listcalls {…}`: VoIPmonitor's JSON with the totals element.
    JsonWithParams(ListParams),
}

/// The `listcalls {…}` parameters we act on; other keys (`zip`, `sensor_map`, VoIPmonitor
/// filter keys we do not know) are ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListParams {
    pub limit: Option<usize>,
    /// Rows skipped before the page (`offset`, or `start` as paging clients name it).
    pub offset: usize,
    /// Which calls are listed (and counted in `total`).
    pub filter: ListFilter,
    /// One of the listcalls field names; unknown names leave the order unchanged.
    pub sort_field: Option<String>,
    pub sort_desc: bool,
    /// `"earshot":true`: append earshot's own columns (`EARSHOT_FIELDS`) after VoIPmonitor's.
    pub earshot: bool,
}

/// `listcalls` filters, given at the top level or in `filter` (an object, an array of objects
/// or a string holding one, as VoIPmonitor's GUI sends them). All given must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListFilter {
    /// Substring of the caller or the called number.
    pub number: Option<String>,
    /// Substring of the caller number.
    pub caller: Option<String>,
    /// Substring of the called number.
    pub called: Option<String>,
    /// Substring of the SIP Call-ID.
    pub call_id: Option<String>,
    /// A call state as `listcalls {"earshot":true}` names it (`answered`, `ringing`…).
    pub state: Option<String>,
    /// A codec either party sends, by name (`PCMA`, `opus`) or VoIPmonitor number (8, 316).
    pub codec: Option<String>,
    pub sensor_id: Option<i64>,
}

impl ListFilter {
    pub fn is_empty(&self) -> bool {
        *self == ListFilter::default()
    }

    /// Whether `c` passes every filter given.
    pub fn matches(&self, c: &crate::CallSummary) -> bool {
        let has =
            |hay: &str, needle: &Option<String>| needle.as_deref().is_none_or(|n| hay.contains(n));
        has(&c.text.caller, &self.caller)
            && has(&c.text.called, &self.called)
            && has(&c.text.call_id, &self.call_id)
            && self
                .number
                .as_deref()
                .is_none_or(|n| c.text.caller.contains(n) || c.text.called.contains(n))
            && self
                .state
                .as_deref()
                .is_none_or(|s| c.state.as_str().eq_ignore_ascii_case(s))
            && self.sensor_id.is_none_or(|s| c.sensor_id == Some(s))
            && self.codec.as_deref().is_none_or(|k| codec_matches(c, k))
    }
}

/// A codec filter matches a party's main leg by its name, its VoIPmonitor number or the name
/// of that number (so `G726-32` finds AAL2-G726-32 too).
fn codec_matches(c: &crate::CallSummary, wanted: &str) -> bool {
    [&c.caller_leg, &c.called_leg]
        .into_iter()
        .flatten()
        .any(|l| {
            let id = l.codec_id();
            wanted.parse::<i64>().ok() == Some(id)
                || l.codec
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
                || crate::listcalls::codec_id_name(id)
                    .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFrom {
    /// Only audio captured from now on.
    Now,
    /// Everything still buffered since the call started.
    Start,
    /// The last N seconds, as far as buffered.
    SecondsAgo(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRequest {
    pub callref: CallRef,
    pub rate: u32,
    pub channels: u8,
    pub from: StreamFrom,
    /// `format=s16le` (the default) or `format=opus`.
    pub format: crate::stream_proto::AudioEncoding,
}

/// Why a command line could not become a [`Command`]; [`CommandError::reply`] is what to send.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("command not found")]
    NotFound,
    /// A reference that cannot be parsed names no call: answered like an unknown call.
    #[error("call not found")]
    BadCallRef { command: &'static str },
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("invalid listcalls parameters: {0}")]
    BadListParams(String),
    #[error("invalid stream option: {0}")]
    BadStreamOption(String),
}

impl CommandError {
    /// The reply bytes for this error.
    pub fn reply(&self) -> Vec<u8> {
        match self {
            CommandError::NotFound => replies::COMMAND_NOT_FOUND.to_vec(),
            CommandError::BadCallRef { command } => match *command {
                "readaudio" | "stream" => replies::ERROR_CALL_NOT_FOUND.to_vec(),
                "listen_stop" => replies::LISTEN_STOP.to_vec(),
                _ => replies::CALL_NOT_FOUND.to_vec(),
            },
            other => format!("error: {other}\n").into_bytes(),
        }
    }
}

const USAGE_LISTEN: &str = "listen <callreference> <listen_id>";
const USAGE_READAUDIO: &str = "readaudio <callreference> <listen_id>";
const USAGE_LISTEN_STOP: &str = "listen_stop <callreference> <listen_id>";
const USAGE_INFO: &str = "active_call_info <callreference>";
const USAGE_STREAM: &str =
    "stream <callreference> [rate=8000|16000|48000] [channels=1|2] [from=now|start|-SECONDS] [format=s16le|opus]";

impl Command {
    /// The command line a client sends (without its line ending), as [`parse_command`] reads
    /// it back: the one way clients (the player, the CLI) write commands. References go out
    /// `0x`-prefixed: VoIPmonitor tries decimal first, and a bare hex reference of digits
    /// only would be read as another number.
    pub fn encode(&self) -> String {
        match self {
            Command::ListCalls(ListCallsFormat::Text) => "listcalls".into(),
            Command::ListCalls(ListCallsFormat::Json) => "listcalls json".into(),
            Command::ListCalls(ListCallsFormat::JsonWithParams(p)) => {
                format!("listcalls {}", p.to_json())
            }
            Command::Listen { callref, listen_id } => {
                format!("listen {} {listen_id}", callref.to_prefixed())
            }
            Command::ReadAudio { callref, listen_id } => {
                format!("readaudio {} {listen_id}", callref.to_prefixed())
            }
            Command::ListenStop { callref, listen_id } => {
                format!("listen_stop {} {listen_id}", callref.to_prefixed())
            }
            Command::Stream(r) => format!("stream {} {}", r.callref.to_prefixed(), r.options()),
            Command::ActiveCallInfo(r) => format!("active_call_info {}", r.to_prefixed()),
            Command::TotalCalls => "totalcalls".into(),
            Command::SnifferStat => "sniffer_stat".into(),
            Command::Calls => "calls".into(),
            Command::GetVersion => "getversion".into(),
            Command::Help => "help".into(),
        }
    }
}

impl StreamRequest {
    /// The options as the command line carries them. `format` only when it is not the
    /// default, so a sensor from before Opus streams still takes a PCM request.
    pub fn options(&self) -> String {
        let from = match self.from {
            StreamFrom::Now => "now".to_string(),
            StreamFrom::Start => "start".to_string(),
            StreamFrom::SecondsAgo(s) => format!("-{s}"),
        };
        let mut o = format!("rate={} channels={} from={from}", self.rate, self.channels);
        if self.format != crate::stream_proto::AudioEncoding::S16le {
            o.push_str(" format=");
            o.push_str(self.format.as_str());
        }
        o
    }
}

impl ListParams {
    /// The `listcalls {…}` object that [`parse_command`] reads back as these parameters.
    pub fn to_json(&self) -> String {
        let mut o = serde_json::Map::new();
        if let Some(l) = self.limit {
            o.insert("limit".into(), l.into());
        }
        if self.offset > 0 {
            o.insert("offset".into(), self.offset.into());
        }
        if let Some(f) = &self.sort_field {
            o.insert("sort_field".into(), f.clone().into());
            o.insert(
                "sort_dir".into(),
                if self.sort_desc { "desc" } else { "asc" }.into(),
            );
        }
        if self.earshot {
            o.insert("earshot".into(), true.into());
        }
        let f = &self.filter;
        let mut filter = serde_json::Map::new();
        for (key, v) in [
            ("number", &f.number),
            ("caller", &f.caller),
            ("called", &f.called),
            ("callid", &f.call_id),
            ("state", &f.state),
            ("codec", &f.codec),
        ] {
            if let Some(v) = v {
                filter.insert(key.into(), v.clone().into());
            }
        }
        if let Some(id) = f.sensor_id {
            filter.insert("sensor_id".into(), id.into());
        }
        if !filter.is_empty() {
            o.insert("filter".into(), Value::Object(filter));
        }
        Value::Object(o).to_string()
    }
}

/// Parses one command line (without its line ending).
pub fn parse_command(line: &str) -> Result<Command, CommandError> {
    let line = line.trim_matches(|c: char| c == ' ' || c == '\t');
    let (name, rest) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i..].trim_start()),
        None => (line, ""),
    };
    match name {
        "listcalls" => parse_listcalls(rest).map(Command::ListCalls),
        "listen" => parse_ref_and_id(rest, "listen", USAGE_LISTEN)
            .map(|(callref, listen_id)| Command::Listen { callref, listen_id }),
        "readaudio" => parse_ref_and_id(rest, "readaudio", USAGE_READAUDIO)
            .map(|(callref, listen_id)| Command::ReadAudio { callref, listen_id }),
        "listen_stop" => parse_ref_and_id(rest, "listen_stop", USAGE_LISTEN_STOP)
            .map(|(callref, listen_id)| Command::ListenStop { callref, listen_id }),
        "stream" => parse_stream(rest).map(Command::Stream),
        "active_call_info" => parse_single_ref(rest).map(Command::ActiveCallInfo),
        "totalcalls" => Ok(Command::TotalCalls),
        "sniffer_stat" => Ok(Command::SnifferStat),
        "calls" => Ok(Command::Calls),
        "getversion" => Ok(Command::GetVersion),
        "help" => Ok(Command::Help),
        _ => Err(CommandError::NotFound),
    }
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split([' ', '\t']).filter(|w| !w.is_empty())
}

fn parse_ref(word: &str, command: &'static str) -> Result<CallRef, CommandError> {
    CallRef::parse(word).map_err(|_| CommandError::BadCallRef { command })
}

fn parse_ref_and_id(
    rest: &str,
    command: &'static str,
    usage: &'static str,
) -> Result<(CallRef, String), CommandError> {
    let mut w = words(rest);
    let (Some(r), Some(id), None) = (w.next(), w.next(), w.next()) else {
        return Err(CommandError::Usage(usage));
    };
    if id.len() > MAX_LISTEN_ID_LEN || id.chars().any(char::is_control) {
        return Err(CommandError::Usage(usage));
    }
    Ok((parse_ref(r, command)?, id.to_string()))
}

/// `active_call_info <ref>` or VoIPmonitor's `active_call_info {"callreference":"0x…"}`.
fn parse_single_ref(rest: &str) -> Result<CallRef, CommandError> {
    if rest.starts_with('{') {
        let v: Value = serde_json::from_str(rest).map_err(|_| CommandError::Usage(USAGE_INFO))?;
        let r = v
            .get("callreference")
            .and_then(Value::as_str)
            .ok_or(CommandError::Usage(USAGE_INFO))?;
        return parse_ref(r, "active_call_info");
    }
    let mut w = words(rest);
    match (w.next(), w.next()) {
        (Some(r), None) => parse_ref(r, "active_call_info"),
        _ => Err(CommandError::Usage(USAGE_INFO)),
    }
}

fn parse_listcalls(rest: &str) -> Result<ListCallsFormat, CommandError> {
    if rest.is_empty() {
        return Ok(ListCallsFormat::Text);
    }
    if rest == "json" {
        return Ok(ListCallsFormat::Json);
    }
    if !rest.starts_with('{') {
        return Err(CommandError::BadListParams(
            "expected nothing, 'json' or a JSON object".into(),
        ));
    }
    let v: Value =
        serde_json::from_str(rest).map_err(|e| CommandError::BadListParams(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| CommandError::BadListParams("not a JSON object".into()))?;
    let limit = match obj.get("limit") {
        None | Some(Value::Null) => None,
        Some(l) => Some(json_usize(l).ok_or_else(|| {
            CommandError::BadListParams("limit must be a non-negative integer".into())
        })?),
    };
    let sort_field = obj
        .get("sort_field")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let sort_desc = obj
        .get("sort_dir")
        .and_then(Value::as_str)
        .is_some_and(|d| d.eq_ignore_ascii_case("desc"));
    let earshot = obj.get("earshot").and_then(Value::as_bool) == Some(true);
    let offset = match obj.get("offset").or_else(|| obj.get("start")) {
        None | Some(Value::Null) => 0,
        Some(o) => json_usize(o).ok_or_else(|| {
            CommandError::BadListParams("offset must be a non-negative integer".into())
        })?,
    };
    let mut filter = ListFilter::default();
    read_filter(obj, &mut filter)?;
    match obj.get("filter") {
        Some(Value::Object(f)) => read_filter(f, &mut filter)?,
        Some(Value::Array(fs)) => {
            for f in fs.iter().filter_map(Value::as_object) {
                read_filter(f, &mut filter)?;
            }
        }
        Some(Value::String(text)) if text.trim_start().starts_with('{') => {
            let f: Value = serde_json::from_str(text)
                .map_err(|e| CommandError::BadListParams(format!("filter: {e}")))?;
            if let Some(f) = f.as_object() {
                read_filter(f, &mut filter)?;
            }
        }
        _ => {}
    }
    Ok(ListCallsFormat::JsonWithParams(ListParams {
        limit,
        offset,
        filter,
        sort_field,
        sort_desc,
        earshot,
    }))
}

/// The filter keys of one object; empty values filter nothing (forms send empty fields).
fn read_filter(
    obj: &serde_json::Map<String, Value>,
    f: &mut ListFilter,
) -> Result<(), CommandError> {
    let text = |key: &str| -> Option<String> {
        match obj.get(key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let set = |slot: &mut Option<String>, key: &str| {
        if let Some(v) = text(key) {
            *slot = Some(v);
        }
    };
    set(&mut f.number, "number");
    set(&mut f.caller, "caller");
    set(&mut f.called, "called");
    set(&mut f.call_id, "callid");
    set(&mut f.state, "state");
    set(&mut f.codec, "codec");
    if let Some(v) = text("sensor_id").or_else(|| text("id_sensor")) {
        let id = v
            .parse()
            .map_err(|_| CommandError::BadListParams("sensor_id must be an integer".into()))?;
        f.sensor_id = Some(id);
    }
    Ok(())
}

/// A count given as a JSON number or, as PHP clients often send, a numeric string.
fn json_usize(v: &Value) -> Option<usize> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_stream(rest: &str) -> Result<StreamRequest, CommandError> {
    let mut w = words(rest);
    let first = w.next().ok_or(CommandError::Usage(USAGE_STREAM))?;
    let callref = parse_ref(first, "stream")?;
    let mut req = StreamRequest {
        callref,
        rate: 8000,
        channels: 1,
        from: StreamFrom::Now,
        format: crate::stream_proto::AudioEncoding::S16le,
    };
    let mut seen: Vec<&str> = Vec::new();
    for opt in w {
        let (key, value) = opt
            .split_once('=')
            .ok_or_else(|| bad_opt(format!("'{opt}' is not key=value")))?;
        if seen.contains(&key) {
            return Err(bad_opt(format!("'{key}' given twice")));
        }
        seen.push(key);
        match key {
            "rate" => req.rate = parse_rate(value)?,
            "channels" => req.channels = parse_channels(value)?,
            "from" => req.from = parse_from(value)?,
            "format" => {
                req.format = crate::stream_proto::AudioEncoding::parse(value)
                    .ok_or_else(|| bad_opt(format!("format '{value}': use s16le or opus")))?
            }
            _ => return Err(bad_opt(format!("unknown option '{key}'"))),
        }
    }
    Ok(req)
}

fn bad_opt(msg: String) -> CommandError {
    CommandError::BadStreamOption(msg)
}

fn parse_rate(v: &str) -> Result<u32, CommandError> {
    match v {
        "8000" => Ok(8000),
        "16000" => Ok(16000),
        "48000" => Ok(48000),
        _ => Err(bad_opt(format!("rate '{v}': use 8000, 16000 or 48000"))),
    }
}

fn parse_channels(v: &str) -> Result<u8, CommandError> {
    match v {
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err(bad_opt(format!("channels '{v}': use 1 or 2"))),
    }
}

fn parse_from(v: &str) -> Result<StreamFrom, CommandError> {
    match v {
        "now" => Ok(StreamFrom::Now),
        "start" => Ok(StreamFrom::Start),
        _ => v
            .strip_prefix('-')
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u32>().ok())
            .map(StreamFrom::SecondsAgo)
            .ok_or_else(|| bad_opt(format!("from '{v}': use now, start or -SECONDS"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: u64) -> CallRef {
        CallRef::from_u64(v)
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse_command("totalcalls"), Ok(Command::TotalCalls));
        assert_eq!(parse_command("sniffer_stat"), Ok(Command::SnifferStat));
        assert_eq!(parse_command("getversion"), Ok(Command::GetVersion));
        assert_eq!(parse_command(" help "), Ok(Command::Help));
        assert_eq!(
            parse_command("thisisnotacommand"),
            Err(CommandError::NotFound)
        );
        assert_eq!(parse_command(""), Err(CommandError::NotFound));
        assert_eq!(parse_command("xlistcalls"), Err(CommandError::NotFound));
        assert_eq!(
            CommandError::NotFound.reply(),
            b"command not found\n".to_vec()
        );
    }

    #[test]
    fn listcalls_forms() {
        assert_eq!(
            parse_command("listcalls"),
            Ok(Command::ListCalls(ListCallsFormat::Text))
        );
        assert_eq!(
            parse_command("listcalls json"),
            Ok(Command::ListCalls(ListCallsFormat::Json))
        );
        assert_eq!(
            parse_command(r#"listcalls {"limit":10,"sort_field":"calldate","sort_dir":"desc"}"#),
            Ok(Command::ListCalls(ListCallsFormat::JsonWithParams(
                ListParams {
                    limit: Some(10),
                    sort_field: Some("calldate".into()),
                    sort_desc: true,
                    earshot: false,
                    ..ListParams::default()
                }
            )))
        );
        assert_eq!(
            parse_command(r#"listcalls {"limit":"5","zip":"no"}"#),
            Ok(Command::ListCalls(ListCallsFormat::JsonWithParams(
                ListParams {
                    limit: Some(5),
                    ..Default::default()
                }
            )))
        );
        assert_eq!(
            parse_command("listcalls {}"),
            Ok(Command::ListCalls(ListCallsFormat::JsonWithParams(
                ListParams::default()
            )))
        );
        assert!(matches!(
            parse_command("listcalls {nope"),
            Err(CommandError::BadListParams(_))
        ));
        assert!(matches!(
            parse_command(r#"listcalls {"limit":-1}"#),
            Err(CommandError::BadListParams(_))
        ));
        assert!(matches!(
            parse_command("listcalls xml"),
            Err(CommandError::BadListParams(_))
        ));
    }

    #[test]
    fn listen_family() {
        assert_eq!(
            parse_command("listen 0x563de480a000 abc"),
            Ok(Command::Listen {
                callref: r(0x563de480a000),
                listen_id: "abc".into()
            })
        );
        assert_eq!(
            parse_command("readaudio 563de480a000 def"),
            Ok(Command::ReadAudio {
                callref: r(0x563de480a000),
                listen_id: "def".into()
            })
        );
        assert_eq!(
            parse_command("listen_stop 0x1234\tabc"),
            Ok(Command::ListenStop {
                callref: r(0x1234),
                listen_id: "abc".into()
            })
        );
        assert_eq!(
            parse_command("listen 0x1234"),
            Err(CommandError::Usage(USAGE_LISTEN))
        );
        assert_eq!(
            parse_command("listen 0x1234 a b"),
            Err(CommandError::Usage(USAGE_LISTEN))
        );
        let long = format!("listen 0x1234 {}", "x".repeat(65));
        assert_eq!(parse_command(&long), Err(CommandError::Usage(USAGE_LISTEN)));
        // Garbage references answer like unknown calls, each command in its own words.
        let e = parse_command("listen zzz abc").unwrap_err();
        assert_eq!(e.reply(), b"call not found".to_vec());
        let e = parse_command("readaudio zzz abc").unwrap_err();
        assert_eq!(e.reply(), b"error: call not found".to_vec());
        let e = parse_command("listen_stop zzz abc").unwrap_err();
        assert_eq!(e.reply(), Vec::<u8>::new());
        let e = parse_command("listen").unwrap_err();
        assert_eq!(
            e.reply(),
            b"error: usage: listen <callreference> <listen_id>\n".to_vec()
        );
    }

    #[test]
    fn active_call_info_forms() {
        assert_eq!(
            parse_command("active_call_info 0xabc"),
            Ok(Command::ActiveCallInfo(r(0xabc)))
        );
        assert_eq!(
            parse_command(r#"active_call_info {"callreference":"0xabc","zip":"no"}"#),
            Ok(Command::ActiveCallInfo(r(0xabc)))
        );
        assert_eq!(
            parse_command("active_call_info"),
            Err(CommandError::Usage(USAGE_INFO))
        );
    }

    #[test]
    fn stream_options() {
        use crate::stream_proto::AudioEncoding;
        assert_eq!(
            parse_command("stream 0xabc"),
            Ok(Command::Stream(StreamRequest {
                callref: r(0xabc),
                rate: 8000,
                channels: 1,
                from: StreamFrom::Now,
                format: AudioEncoding::S16le,
            }))
        );
        assert_eq!(
            parse_command("stream abc rate=48000 channels=2 from=-30"),
            Ok(Command::Stream(StreamRequest {
                callref: r(0xabc),
                rate: 48000,
                channels: 2,
                from: StreamFrom::SecondsAgo(30),
                format: AudioEncoding::S16le,
            }))
        );
        assert_eq!(
            parse_command("stream abc from=start rate=16000 format=opus"),
            Ok(Command::Stream(StreamRequest {
                callref: r(0xabc),
                rate: 16000,
                channels: 1,
                from: StreamFrom::Start,
                format: AudioEncoding::Opus,
            }))
        );
        for bad in [
            "stream abc rate=44100",
            "stream abc channels=3",
            "stream abc from=yesterday",
            "stream abc from=-",
            "stream abc from=-1x",
            "stream abc from=-99999999999",
            "stream abc volume=2",
            "stream abc rate",
            "stream abc rate=8000 rate=8000",
            "stream abc format=mp3",
            "stream abc format=opus format=opus",
        ] {
            let e = parse_command(bad).unwrap_err();
            assert!(
                matches!(e, CommandError::BadStreamOption(_)),
                "{bad}: {e:?}"
            );
            assert!(e.reply().starts_with(b"error: invalid stream option: "));
        }
        assert_eq!(
            parse_command("stream"),
            Err(CommandError::Usage(USAGE_STREAM))
        );
        assert_eq!(
            parse_command("stream nothex").unwrap_err().reply(),
            b"error: call not found".to_vec()
        );
    }

    fn command_strategy() -> impl proptest::strategy::Strategy<Value = Command> {
        use crate::stream_proto::AudioEncoding;
        use proptest::prelude::*;
        let callref = (1u64..).prop_map(CallRef::from_u64);
        let id = "[A-Za-z0-9_-]{1,64}";
        let text = proptest::option::of("[A-Za-z0-9@.+-][A-Za-z0-9@.+ -]{0,20}[A-Za-z0-9@.+-]");
        let filter = (
            text.clone(),
            text.clone(),
            text.clone(),
            text.clone(),
            text.clone(),
            text,
            proptest::option::of(any::<i64>()),
        )
            .prop_map(
                |(number, caller, called, call_id, state, codec, sensor_id)| ListFilter {
                    number,
                    caller,
                    called,
                    call_id,
                    state,
                    codec,
                    sensor_id,
                },
            );
        let params = (
            proptest::option::of(0usize..100_000),
            0usize..100_000,
            filter,
            proptest::option::of("[a-z_]{1,20}"),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(limit, offset, filter, sort_field, desc, earshot)| ListParams {
                    limit,
                    offset,
                    filter,
                    sort_desc: desc && sort_field.is_some(),
                    sort_field,
                    earshot,
                },
            );
        let from = prop_oneof![
            Just(StreamFrom::Now),
            Just(StreamFrom::Start),
            any::<u32>().prop_map(StreamFrom::SecondsAgo),
        ];
        let stream = (
            callref.clone(),
            prop_oneof![Just(8000u32), Just(16000), Just(48000)],
            1u8..=2,
            from,
            prop_oneof![Just(AudioEncoding::S16le), Just(AudioEncoding::Opus)],
        )
            .prop_map(|(callref, rate, channels, from, format)| {
                Command::Stream(StreamRequest {
                    callref,
                    rate,
                    channels,
                    from,
                    format,
                })
            });
        prop_oneof![
            Just(Command::ListCalls(ListCallsFormat::Text)),
            Just(Command::ListCalls(ListCallsFormat::Json)),
            params.prop_map(|p| Command::ListCalls(ListCallsFormat::JsonWithParams(p))),
            (callref.clone(), id)
                .prop_map(|(callref, listen_id)| Command::Listen { callref, listen_id }),
            (callref.clone(), id)
                .prop_map(|(callref, listen_id)| Command::ReadAudio { callref, listen_id }),
            (callref.clone(), id)
                .prop_map(|(callref, listen_id)| Command::ListenStop { callref, listen_id }),
            stream,
            callref.prop_map(Command::ActiveCallInfo),
            Just(Command::TotalCalls),
            Just(Command::SnifferStat),
            Just(Command::Calls),
            Just(Command::GetVersion),
            Just(Command::Help),
        ]
    }

    proptest::proptest! {
        /// Every command a client can write is the command the server reads.
        #[test]
        fn encoded_commands_parse_back(c in command_strategy()) {
            proptest::prop_assert_eq!(parse_command(&c.encode()), Ok(c));
        }
    }

    #[test]
    fn references_go_out_prefixed_and_pcm_streams_without_a_format() {
        let r = CallRef::from_u64(0x1234);
        let c = Command::Stream(StreamRequest {
            callref: r,
            rate: 16000,
            channels: 2,
            from: StreamFrom::SecondsAgo(30),
            format: crate::stream_proto::AudioEncoding::S16le,
        });
        assert_eq!(c.encode(), "stream 0x1234 rate=16000 channels=2 from=-30");
        let l = Command::Listen {
            callref: r,
            listen_id: "p1".into(),
        };
        assert_eq!(l.encode(), "listen 0x1234 p1");
    }
}
