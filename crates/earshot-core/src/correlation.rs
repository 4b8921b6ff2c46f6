//! Both legs of a call: INVITE dialogs that a B2BUA or SBC made of one call, grouped.
//!
//! A B2BUA answers the caller's INVITE (the A-leg) and sends a new INVITE of its own (a B-leg),
//! with its own Call-ID. What ties them together is a header the B2BUA copies or adds:
//!
//! * `X-CID` / `X-Call-ID` (and any header the operator names, VoIPmonitor's
//!   `callidmerge_header`): the B-leg carries the A-leg's Call-ID;
//! * RFC 7989 `Session-ID`: every leg of a session carries the originating UA's UUID
//!   (`local-uuid;remote=remote-uuid`, the remote all zeros until the far end answered), and
//!   a compliant intermediary passes it on unchanged;
//! * 3GPP `P-Charging-Vector`: the `icid-value` stays the same along the IMS path;
//! * a regular expression over a named header, whose first group (or whole match) is a key
//!   both legs share (the Homer-style correlation header; a value that is the A-leg's Call-ID
//!   matches it too).
//!
//! The keys are read once, from the dialog's initial INVITE, and looked up in one index: the
//! work is per INVITE, never per call in the table. The index is bounded
//! ([`Correlation::max_keys`], keys at most [`MAX_KEY_BYTES`], at most [`MAX_KEYS_PER_CALL`]
//! per call) and each call takes its own entries out when it leaves the table.

use crate::call::{Call, CallKey};
use earshot_sip::SipMessage;
use regex_automata::meta::Regex;
use std::fmt;

/// A key longer than this is not a correlation id (UUIDs are 32-36 bytes, Call-IDs rarely
/// above 100): it is ignored, so no packet can make the index hold long strings.
pub const MAX_KEY_BYTES: usize = 256;

/// At most this many keys are read from one INVITE (built-in headers, configured ones and the
/// regular expression together).
pub const MAX_KEYS_PER_CALL: usize = 8;

/// At most this many configured header names: each is a header look-up per INVITE.
pub const MAX_CONFIGURED_HEADERS: usize = 8;

/// Headers that carry the A-leg's Call-ID in the B-leg, read whatever the configuration says.
const CALL_ID_HEADERS: [&str; 2] = ["X-CID", "X-Call-ID"];

/// How two legs were found to belong together.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CorrelationKind {
    /// `X-CID` or `X-Call-ID` naming the other leg's Call-ID (or carried by both).
    XCid,
    /// RFC 7989 `Session-ID`: the same originating UUID.
    SessionId,
    /// `P-Charging-Vector`: the same `icid-value`.
    Icid,
    /// A header named in the configuration (`callidmerge_header`).
    Header,
    /// The configured regular expression's key.
    Regex,
}

impl CorrelationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CorrelationKind::XCid => "x-cid",
            CorrelationKind::SessionId => "session-id",
            CorrelationKind::Icid => "icid",
            CorrelationKind::Header => "header",
            CorrelationKind::Regex => "regex",
        }
    }

    /// Keys that are Call-IDs of other legs share one namespace with the Call-IDs themselves;
    /// Session-IDs and icids each have their own.
    fn namespace(self) -> Namespace {
        match self {
            CorrelationKind::XCid | CorrelationKind::Header | CorrelationKind::Regex => {
                Namespace::CallKey
            }
            CorrelationKind::SessionId => Namespace::Session,
            CorrelationKind::Icid => Namespace::Icid,
        }
    }
}

impl fmt::Display for CorrelationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role of a call in its group: the first leg seen (the caller's side of the B2BUA) or a
/// leg the B2BUA made for it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    A,
    B,
}

impl Leg {
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::A => "a",
            Leg::B => "b",
        }
    }
}

/// A call's place in a group of correlated legs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallGroup {
    /// The group's A-leg (engine id); for the A-leg itself, its own id.
    pub a_leg: CallKey,
    /// The A-leg's SIP Call-ID: what names the group outside the engine.
    pub key: Box<str>,
    pub leg: Leg,
    /// What tied this leg to the group (for the A-leg: what tied its first B-leg).
    pub via: CorrelationKind,
}

/// A header and the expression that extracts a correlation key from its value.
#[derive(Clone, Debug)]
pub struct HeaderRegex {
    pub header: String,
    pub regex: Regex,
}

/// What the engine correlates legs by (`Config::correlation`).
#[derive(Clone, Debug)]
pub struct Correlation {
    /// Off: no keys are read and no call is grouped.
    pub enabled: bool,
    /// Headers whose value is the A-leg's Call-ID (VoIPmonitor's `callidmerge_header`), in
    /// addition to `X-CID` and `X-Call-ID`; at most [`MAX_CONFIGURED_HEADERS`] are read.
    pub headers: Vec<String>,
    /// VoIPmonitor's `callidmerge_secret`: the configured headers' values are the A-leg's
    /// Call-ID XORed with this secret (cycled) and base64-encoded; `None`: in the clear.
    pub secret: Option<Vec<u8>>,
    pub regex: Option<HeaderRegex>,
    /// Entries the index holds at most; a key that finds it full is not indexed and counted
    /// (`CaptureCounters::correlation_dropped`).
    pub max_keys: usize,
}

impl Default for Correlation {
    fn default() -> Self {
        Correlation {
            enabled: true,
            headers: Vec::new(),
            secret: None,
            regex: None,
            max_keys: 262_144,
        }
    }
}

/// Why a configured expression cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CorrelationError {
    #[error("correlation regex: {0}")]
    Regex(String),
    #[error("at most {MAX_CONFIGURED_HEADERS} correlation headers")]
    TooManyHeaders,
}

impl Correlation {
    /// Compiles `pattern` for `header` (its first capture group is the key, else the match).
    pub fn header_regex(header: &str, pattern: &str) -> Result<HeaderRegex, CorrelationError> {
        let regex = Regex::new(pattern).map_err(|e| CorrelationError::Regex(e.to_string()))?;
        Ok(HeaderRegex {
            header: header.to_owned(),
            regex,
        })
    }

    /// Checks what the operator configured.
    pub fn validate(&self) -> Result<(), CorrelationError> {
        if self.headers.len() > MAX_CONFIGURED_HEADERS {
            return Err(CorrelationError::TooManyHeaders);
        }
        Ok(())
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Namespace {
    CallKey,
    Session,
    Icid,
}

/// One key of a call as the index holds it: a 64-bit SipHash of its namespace and value,
/// not the text, so an entry is a few dozen bytes however long the key (the index and the
/// call's list of its own entries would otherwise each hold a copy of up to
/// [`MAX_KEY_BYTES`]). Two different keys that hash alike would group two calls wrongly: by
/// chance that is one in 2^64 per pair, and on purpose it takes a second preimage of a key
/// the attacker does not choose (the victim's), about 2^64 SipHash evaluations.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IndexKey(u64);

/// A key read from an INVITE, borrowed from it (or normalised into `owned`).
#[derive(Debug)]
pub(crate) struct Found<'m> {
    pub kind: CorrelationKind,
    pub value: std::borrow::Cow<'m, str>,
}

impl Found<'_> {
    pub fn index_key(&self) -> IndexKey {
        use std::hash::{Hash, Hasher};
        // `DefaultHasher::new` has fixed keys: the same key hashes alike for the process's
        // life (and across runs: analysis stays deterministic).
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.kind.namespace().hash(&mut h);
        self.value.as_bytes().hash(&mut h);
        IndexKey(h.finish())
    }

    pub fn is_call_id(&self) -> bool {
        self.kind.namespace() == Namespace::CallKey
    }
}

/// The keys of an initial INVITE, in the order they are tried: header references first (they
/// name the A-leg exactly), then Session-ID, icid, the expression. Empty, over-long and null
/// keys are left out.
pub(crate) fn keys<'m>(cfg: &Correlation, msg: &'m SipMessage<'_>) -> Vec<Found<'m>> {
    let mut out: Vec<Found<'m>> = Vec::new();
    if !cfg.enabled {
        return out;
    }
    let mut push = |kind: CorrelationKind, value: std::borrow::Cow<'m, str>| {
        let v = value.trim();
        if v.is_empty() || v.len() > MAX_KEY_BYTES || out.len() >= MAX_KEYS_PER_CALL {
            return;
        }
        let value = match value {
            std::borrow::Cow::Borrowed(b) => std::borrow::Cow::Borrowed(b.trim()),
            std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(o.trim().to_owned()),
        };
        if !out
            .iter()
            .any(|f| f.kind.namespace() == kind.namespace() && f.value == value)
        {
            out.push(Found { kind, value });
        }
    };
    for h in CALL_ID_HEADERS {
        if let Some(v) = msg.header(h) {
            push(CorrelationKind::XCid, v.into());
        }
    }
    for h in cfg.headers.iter().take(MAX_CONFIGURED_HEADERS) {
        let Some(v) = msg.header(h) else { continue };
        match &cfg.secret {
            None => push(CorrelationKind::Header, v.into()),
            Some(secret) => {
                if let Some(clear) = unveil(v.trim(), secret) {
                    push(CorrelationKind::Header, clear.into());
                }
            }
        }
    }
    if let Some(uuid) = msg.header("Session-ID").and_then(session_uuid) {
        push(CorrelationKind::SessionId, uuid.into());
    }
    if let Some(icid) = msg.header("P-Charging-Vector").and_then(icid_value) {
        push(CorrelationKind::Icid, icid.into());
    }
    if let Some(r) = &cfg.regex {
        if let Some(v) = msg.header(&r.header).and_then(|v| regex_key(&r.regex, v)) {
            push(CorrelationKind::Regex, v.into());
        }
    }
    out
}

/// The sender's UUID of an RFC 7989 `Session-ID` value (`local-uuid;remote=...`), lowercased:
/// 32 hex digits, never the null UUID. RFC 7329's older form (a bare UUID) reads the same.
pub(crate) fn session_uuid(value: &str) -> Option<String> {
    let local = value.split(';').next()?.trim();
    let ok = local.len() == 32
        && local.bytes().all(|b| b.is_ascii_hexdigit())
        && local.bytes().any(|b| b != b'0');
    ok.then(|| local.to_ascii_lowercase())
}

/// `icid-value` of a `P-Charging-Vector` (RFC 7315 §5.1), unquoted.
pub(crate) fn icid_value(value: &str) -> Option<&str> {
    value.split(';').find_map(|param| {
        let (name, v) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("icid-value")
            .then(|| v.trim().trim_matches('"'))
    })
}

/// A merge header's value as VoIPmonitor's `callidmerge_secret` hides it: base64 of the Call-ID
/// XORed with the secret. `None` for a value that is too long, not base64 or not text.
fn unveil(value: &str, secret: &[u8]) -> Option<String> {
    use base64::Engine as _;
    if value.len() > MAX_KEY_BYTES || secret.is_empty() {
        return None;
    }
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    for (b, k) in bytes.iter_mut().zip(secret.iter().cycle()) {
        *b ^= k;
    }
    String::from_utf8(bytes).ok()
}

/// The expression's first capture group in `value`, else its whole match.
fn regex_key<'v>(re: &Regex, value: &'v str) -> Option<&'v str> {
    let mut caps = re.create_captures();
    re.captures(value, &mut caps);
    let span = caps.get_group(1).or_else(|| caps.get_group(0))?;
    value.get(span.start..span.end)
}

/// Where the group a call joins begins: the call that holds the key, or that call's own A-leg.
pub(crate) fn founder_of(owner: &Call) -> (CallKey, Box<str>) {
    match &owner.group {
        Some(g) => (g.a_leg, g.key.clone()),
        None => (owner.id, Box::from(owner.sip_call_id.as_str())),
    }
}

impl crate::engine::Engine {
    /// Reads the new call's correlation keys from its INVITE, puts it in the group the first
    /// key that another live call holds leads to, and indexes its keys. Returns the call that
    /// just became an A-leg (it had no group before), whose listing must follow.
    pub(crate) fn correlate(&mut self, id: CallKey, msg: &SipMessage<'_>) -> Option<CallKey> {
        let found = keys(&self.cfg.correlation, msg);
        if found.is_empty() {
            return None;
        }
        let owner = found
            .iter()
            .find_map(|f| Some((self.key_owner(id, f)?, f.kind)));
        let mut new_a_leg = None;
        if let Some((owner, via)) = owner {
            let (a_leg, key) = self.calls.get(&owner).map(founder_of)?;
            if let Some(a) = self.calls.get_mut(&a_leg).filter(|a| a.group.is_none()) {
                a.group = Some(Box::new(CallGroup {
                    a_leg,
                    key: key.clone(),
                    leg: Leg::A,
                    via,
                }));
                new_a_leg = Some(a_leg);
            }
            if let Some(call) = self.calls.get_mut(&id) {
                call.group = Some(Box::new(CallGroup {
                    a_leg,
                    key,
                    leg: Leg::B,
                    via,
                }));
                self.counters.legs_grouped += 1;
            }
        }
        self.index_keys(id, &found);
        new_a_leg
    }

    /// The live call (not `id`) a key leads to: for a Call-ID reference, the newest call with
    /// that Call-ID; else whoever indexed the key first.
    fn key_owner(&self, id: CallKey, f: &Found<'_>) -> Option<CallKey> {
        let live = |c: &CallKey| *c != id && self.calls.contains_key(c);
        if f.is_call_id() {
            let by_id = self.by_call_id.get(&*f.value);
            if let Some(&c) = by_id.and_then(|ids| ids.iter().rev().find(|c| live(c))) {
                return Some(c);
            }
        }
        self.correlation.get(&f.index_key()).copied().filter(live)
    }

    /// Keys nobody holds yet become the call's; a full index takes none and counts them.
    fn index_keys(&mut self, id: CallKey, found: &[Found<'_>]) {
        let mut mine = Vec::new();
        for f in found {
            let key = f.index_key();
            if self.correlation.contains_key(&key) {
                continue;
            }
            if self.correlation.len() >= self.cfg.correlation.max_keys {
                self.counters.correlation_dropped += 1;
                continue;
            }
            self.correlation.insert(key, id);
            mine.push(key);
        }
        if let Some(call) = self.calls.get_mut(&id) {
            mine.shrink_to_fit();
            call.corr_keys = mine;
        }
    }

    /// Takes a leaving call's keys out of the index (only those still its own).
    pub(crate) fn forget_correlation(&mut self, call: &Call) {
        for k in &call.corr_keys {
            if self.correlation.get(k) == Some(&call.id) {
                self.correlation.remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(extra: &str) -> Vec<u8> {
        format!(
            "INVITE sip:2002@example.com SIP/2.0\r\nCall-ID: b-leg@sbc\r\nCSeq: 1 INVITE\r\n\
             From: <sip:1001@example.com>;tag=1\r\nTo: <sip:2002@example.com>\r\n{extra}\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn found(cfg: &Correlation, extra: &str) -> Vec<(CorrelationKind, String)> {
        let bytes = invite(extra);
        let msg = SipMessage::parse(&bytes).expect("parses");
        keys(cfg, &msg)
            .into_iter()
            .map(|f| (f.kind, f.value.into_owned()))
            .collect()
    }

    #[test]
    fn reads_every_built_in_kind() {
        let got = found(
            &Correlation::default(),
            "X-CID: a-leg@pbx\r\nSession-ID: AB30317F1A784DC48FF824D0D3715D86;remote=00000000000000000000000000000000\r\n\
             P-Charging-Vector: icid-value=\"1234bc9876e\";icid-generated-at=192.0.6.8\r\n",
        );
        assert_eq!(
            got,
            vec![
                (CorrelationKind::XCid, "a-leg@pbx".into()),
                (
                    CorrelationKind::SessionId,
                    "ab30317f1a784dc48ff824d0d3715d86".into()
                ),
                (CorrelationKind::Icid, "1234bc9876e".into()),
            ]
        );
    }

    #[test]
    fn null_short_and_long_keys_are_ignored() {
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        let got = found(
            &Correlation::default(),
            &format!(
                "X-CID: {long}\r\nX-Call-ID:   \r\nSession-ID: 00000000000000000000000000000000\r\n\
                 P-Charging-Vector: orig-ioi=home1.net\r\n"
            ),
        );
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(session_uuid("abc"), None);
    }

    #[test]
    fn configured_header_and_regex() {
        let cfg = Correlation {
            headers: vec!["X-Orig-Call".into()],
            regex: Some(
                Correlation::header_regex("X-Info", r"corr=([0-9a-f]+)").expect("compiles"),
            ),
            ..Correlation::default()
        };
        let got = found(
            &cfg,
            "X-Orig-Call: a-leg@pbx\r\nX-Info: site=7;corr=deadbeef;x=1\r\n",
        );
        assert_eq!(
            got,
            vec![
                (CorrelationKind::Header, "a-leg@pbx".into()),
                (CorrelationKind::Regex, "deadbeef".into()),
            ]
        );
        let off = Correlation {
            enabled: false,
            ..cfg
        };
        assert!(found(&off, "X-CID: a-leg@pbx\r\n").is_empty());
    }

    #[test]
    fn a_secret_unveils_the_configured_header() {
        use base64::Engine as _;
        let secret = b"s3cret";
        let hidden: Vec<u8> = b"a-leg@pbx"
            .iter()
            .zip(secret.iter().cycle())
            .map(|(b, k)| b ^ k)
            .collect();
        let value = base64::engine::general_purpose::STANDARD.encode(hidden);
        let cfg = Correlation {
            headers: vec!["X-Merge".into()],
            secret: Some(secret.to_vec()),
            ..Correlation::default()
        };
        let got = found(&cfg, &format!("X-Merge: {value}\r\nX-CID: a-leg@pbx\r\n"));
        assert_eq!(
            got,
            vec![(CorrelationKind::XCid, "a-leg@pbx".into())],
            "the same Call-ID twice is one key"
        );
        let got = found(&cfg, &format!("X-Merge: {value}\r\n"));
        assert_eq!(got, vec![(CorrelationKind::Header, "a-leg@pbx".into())]);
        assert!(found(&cfg, "X-Merge: not base64!\r\n").is_empty());
    }

    #[test]
    fn keys_per_call_are_capped() {
        let cfg = Correlation {
            headers: (0..MAX_CONFIGURED_HEADERS)
                .map(|i| format!("X-H{i}"))
                .collect(),
            ..Correlation::default()
        };
        let extra: String = (0..MAX_CONFIGURED_HEADERS)
            .map(|i| format!("X-H{i}: v{i}\r\n"))
            .collect();
        let got = found(&cfg, &format!("X-CID: a\r\nX-Call-ID: b\r\n{extra}"));
        assert_eq!(got.len(), MAX_KEYS_PER_CALL);
    }

    // The engine's side: INVITEs in, groups out.

    use crate::engine::{Config, Engine, Event, Sink};
    use earshot_wire::{Packet, Timestamp, Transport};

    #[derive(Default)]
    struct Events(Vec<Event>);
    impl Sink for Events {
        fn event(&mut self, e: &Event, _call: &Call) {
            self.0.push(e.clone());
        }
    }

    fn sip(engine: &mut Engine, sink: &mut Events, text: &str) {
        let p = Packet {
            ts: Timestamp::from_nanos(1_000_000_000),
            src: "192.0.2.1:5060".parse().expect("addr"),
            dst: "192.0.2.2:5060".parse().expect("addr"),
            vlan: None,
            transport: Transport::Udp,
            payload: text.as_bytes(),
            from_hep: false,
        };
        engine.handle_packet(&p, sink);
    }

    fn leg(engine: &mut Engine, sink: &mut Events, call_id: &str, extra: &str) -> CallKey {
        let text = format!(
            "INVITE sip:2002@example.com SIP/2.0\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
             From: <sip:1001@example.com>;tag={call_id}\r\nTo: <sip:2002@example.com>\r\n{extra}\
             Content-Length: 0\r\n\r\n"
        );
        sip(engine, sink, &text);
        engine
            .calls()
            .iter()
            .find(|c| c.sip_call_id == call_id)
            .map(|c| c.id)
            .expect("call made")
    }

    fn group(engine: &Engine, id: CallKey) -> Option<(String, Leg, CorrelationKind)> {
        let g = engine.call(id)?.group.as_ref()?;
        Some((g.key.to_string(), g.leg, g.via))
    }

    #[test]
    fn a_b_leg_by_x_cid_names_the_a_legs_call_id() {
        let (mut e, mut s) = (Engine::default(), Events::default());
        let a = leg(&mut e, &mut s, "a1@pbx", "");
        let unrelated = leg(&mut e, &mut s, "u1@pbx", "X-CID: nobody@pbx\r\n");
        assert_eq!(group(&e, a), None, "a lone call is in no group");
        let b = leg(&mut e, &mut s, "b1@sbc", "X-CID: a1@pbx\r\n");
        assert_eq!(
            group(&e, a),
            Some(("a1@pbx".into(), Leg::A, CorrelationKind::XCid))
        );
        assert_eq!(
            group(&e, b),
            Some(("a1@pbx".into(), Leg::B, CorrelationKind::XCid))
        );
        assert_eq!(group(&e, unrelated), None);
        assert!(
            s.0.contains(&Event::Grouped(a)),
            "the A-leg's listing must follow"
        );
        assert_eq!(e.counters().legs_grouped, 1);
    }

    #[test]
    fn legs_sharing_a_session_id_or_icid_are_grouped() {
        let (mut e, mut s) = (Engine::default(), Events::default());
        let sid = "Session-ID: ab30317f1a784dc48ff824d0d3715d86;remote=00000000000000000000000000000000\r\n";
        let a = leg(&mut e, &mut s, "a2@pbx", sid);
        let b = leg(&mut e, &mut s, "b2@sbc", &sid.replace("ab3", "AB3"));
        assert_eq!(
            group(&e, b),
            Some(("a2@pbx".into(), Leg::B, CorrelationKind::SessionId))
        );
        assert_eq!(group(&e, a).map(|g| g.1), Some(Leg::A));
        let icid = "P-Charging-Vector: icid-value=c0ffee;orig-ioi=home1.net\r\n";
        let c = leg(&mut e, &mut s, "a3@ims", icid);
        let d = leg(&mut e, &mut s, "b3@ims", icid);
        let third = leg(&mut e, &mut s, "b3b@ims", icid);
        assert_eq!(group(&e, c).map(|g| g.1), Some(Leg::A));
        assert_eq!(
            group(&e, d),
            Some(("a3@ims".into(), Leg::B, CorrelationKind::Icid))
        );
        assert_eq!(
            group(&e, third),
            Some(("a3@ims".into(), Leg::B, CorrelationKind::Icid))
        );
        // Different Session-IDs stay apart.
        let other = leg(&mut e, &mut s, "x@pbx", &sid.replace("ab3", "cd3"));
        assert_eq!(group(&e, other), None);
    }

    #[test]
    fn configured_header_groups_and_nothing_without_it() {
        let cfg = Config {
            correlation: Correlation {
                headers: vec!["X-Orig-Call".into()],
                ..Correlation::default()
            },
            ..Config::default()
        };
        let (mut e, mut s) = (Engine::new(cfg), Events::default());
        let a = leg(&mut e, &mut s, "a4@pbx", "");
        let b = leg(&mut e, &mut s, "b4@sbc", "X-Orig-Call: a4@pbx\r\n");
        assert_eq!(
            group(&e, b),
            Some(("a4@pbx".into(), Leg::B, CorrelationKind::Header))
        );
        assert_eq!(group(&e, a).map(|g| g.1), Some(Leg::A));

        let (mut e, mut s) = (Engine::default(), Events::default());
        leg(&mut e, &mut s, "a4@pbx", "");
        let b = leg(&mut e, &mut s, "b4@sbc", "X-Orig-Call: a4@pbx\r\n");
        assert_eq!(group(&e, b), None, "an unconfigured header means nothing");
    }

    #[test]
    fn the_index_is_bounded_and_drains_with_the_calls() {
        let cfg = Config {
            retain_ended: false,
            linger_ns: 0,
            idle_timeout_ns: 1,
            correlation: Correlation {
                max_keys: 2,
                ..Correlation::default()
            },
            ..Config::default()
        };
        let (mut e, mut s) = (Engine::new(cfg), Events::default());
        for i in 0..4 {
            leg(
                &mut e,
                &mut s,
                &format!("c{i}@pbx"),
                &format!("X-CID: k{i}\r\n"),
            );
        }
        assert_eq!(e.correlation.len(), 2);
        assert_eq!(e.counters().correlation_dropped, 2);
        e.expire(Timestamp::from_nanos(10_000_000_000), &mut s);
        e.expire(Timestamp::from_nanos(20_000_000_000), &mut s);
        assert_eq!(e.calls().len(), 0);
        assert_eq!(e.correlation.len(), 0, "keys leave with their calls");
    }
}
