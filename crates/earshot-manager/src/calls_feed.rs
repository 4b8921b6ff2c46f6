//! The `calls` subscription's events, as a pure state machine (the server runs one per subscriber):
//! given each new snapshot of the call table, the JSON lines a subscriber is sent.
//!
//! - `{"event":"snapshot","call":{…}}` for each call of the first table,
//! - `{"event":"new","call":{…}}` for a call not seen before,
//! - `{"event":"changed","callref":"0x…","fields":{…}}` with only the fields that changed:
//!   at once when text or state changed (a SIP event), at most once per [`NUMBERS_EVERY_NS`]
//!   per call when only numbers did (packets, loss, jitter, MOS, durations),
//! - `{"event":"ended","callref":"0x…"}` for a call gone from the table.
//! - `{"event":"synced"}` once, after the last `snapshot` line (also for an empty table): the
//!   subscriber's copy is whole from then on, so it can serve it.
//!
//! `call` objects have the 68 `listcalls` fields by name. The feed compares the table's
//! versions chunk by chunk ([`Listing`] shares unchanged chunks between versions), so an
//! update costs the chunks that changed, not the calls listed.

use crate::callref::CallRef;
use crate::listcalls::{earshot_row, json_row, CallSummary, EARSHOT_FIELDS, FIELDS};
use crate::listing::{Chunk, Listing};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The line that ends the first snapshot.
pub const SYNCED: &[u8] = b"{\"event\":\"synced\"}\n";

/// Numbers of one call are sent at most this often (1 s).
pub const NUMBERS_EVERY_NS: i64 = 1_000_000_000;

/// Fields that change with RTP or the clock, not with SIP: rate-limited.
const NUMBER_FIELDS: [&str; 36] = [
    "lastpackettime",
    "duration",
    "connect_duration",
    "src_mosf1",
    "dst_mosf1",
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
    "rtp_src",
    "rtp_dst",
    "callercodec",
    "calledcodec",
    "src_loss_last10sec",
    "dst_loss_last10sec",
    "vlan",
    // earshot's own columns (EARSHOT_FIELDS) that RTP moves.
    "callercodec_name",
    "calledcodec_name",
    "caller_mos",
    "called_mos",
    "caller_jitter_ms",
    "called_jitter_ms",
    "caller_quality_unknown",
    "called_quality_unknown",
    "caller_capture_loss",
    "called_capture_loss",
    "caller_network_loss",
    "called_network_loss",
];

struct Known {
    /// What the subscriber has been told (the baseline of the next `changed`).
    sent: Arc<CallSummary>,
    sent_ns: i64,
}

/// One subscriber's view of the table.
#[derive(Default)]
pub struct CallsFeed {
    known: HashMap<CallRef, Known>,
    /// The version of the table compared last: its chunks are shared with the sensor's
    /// table, so an unchanged chunk is one pointer comparison.
    seen: Option<Listing>,
    /// Calls whose number changes were held back by the rate limit: looked at again on the
    /// next update even if their chunk does not change.
    pending: HashSet<CallRef>,
    /// The first `snapshot` lines still being written: the version they come from and the
    /// next chunk to write. Changes made meanwhile are sent after it, as a diff against it.
    snapshot: Option<(Listing, usize)>,
}

impl CallsFeed {
    pub fn new() -> Self {
        CallsFeed::default()
    }

    /// Appends to `out` the lines for `table`, as of `now_ns`; the first call gives
    /// `snapshot` lines. The work is the chunks that changed since the previous call (and
    /// the calls held back), not the number of calls.
    pub fn update(&mut self, table: &Listing, now_ns: i64, out: &mut Vec<u8>) {
        while self.update_within(table, now_ns, out, usize::MAX) {}
    }

    /// [`Self::update`], stopping once `out` holds `max_bytes` (a whole chunk's lines at a
    /// time) while the snapshot is being written: true when there is more to write, so the
    /// caller writes `out` and calls again. The snapshot of 100,000 calls is about 200 MB of
    /// lines: written in parts it costs the subscriber's connection `max_bytes` of memory
    /// at a time, not the whole table.
    pub fn update_within(
        &mut self,
        table: &Listing,
        now_ns: i64,
        out: &mut Vec<u8>,
        max_bytes: usize,
    ) -> bool {
        if self.seen.is_none() {
            let (version, next) = self.snapshot.get_or_insert_with(|| (table.clone(), 0));
            let version = version.clone();
            let chunks = version.chunks();
            let mut k = *next;
            while k < chunks.len() && out.len() < max_bytes {
                for c in chunks[k].calls.iter().flatten() {
                    line(out, "snapshot", c.callref, Some(call_object(c)));
                    self.remember(c, now_ns);
                }
                k += 1;
            }
            if k < chunks.len() {
                self.snapshot = Some((version, k));
                return true;
            }
            self.snapshot = None;
            self.seen = Some(version);
            out.extend_from_slice(SYNCED);
            // What changed while the snapshot was written follows at the next update.
            return false;
        }
        let Some(prev) = self.seen.replace(table.clone()) else {
            return false;
        };
        let (old, new) = (prev.chunks(), table.chunks());
        let (mut i, mut j) = (0, 0);
        // Both lists are ordered by chunk id: walk them side by side.
        while i < old.len() || j < new.len() {
            match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) if a.id == b.id => {
                    if !Arc::ptr_eq(a, b) {
                        self.diff(Some(a), Some(b), table, now_ns, out);
                    }
                    i += 1;
                    j += 1;
                }
                // A chunk only the new version has (the old list ended, or is past it).
                (Some(a), Some(b)) if a.id > b.id => {
                    self.diff(None, Some(b), table, now_ns, out);
                    j += 1;
                }
                (None, Some(b)) => {
                    self.diff(None, Some(b), table, now_ns, out);
                    j += 1;
                }
                (Some(a), _) => {
                    self.diff(Some(a), None, table, now_ns, out);
                    i += 1;
                }
                (None, None) => break,
            }
        }
        for r in std::mem::take(&mut self.pending) {
            if let Some(c) = table.find(r) {
                self.one(c, now_ns, out);
            }
        }
        false
    }

    /// The events for one chunk's slots, old version against new.
    fn diff(
        &mut self,
        old: Option<&Chunk>,
        new: Option<&Chunk>,
        table: &Listing,
        now_ns: i64,
        out: &mut Vec<u8>,
    ) {
        fn slot(c: Option<&Chunk>, k: usize) -> Option<&Arc<CallSummary>> {
            c?.calls.get(k)?.as_ref()
        }
        let slots = old
            .map_or(0, |c| c.calls.len())
            .max(new.map_or(0, |c| c.calls.len()));
        for k in 0..slots {
            let (x, y) = (slot(old, k), slot(new, k));
            if let (Some(x), Some(y)) = (x, y) {
                if Arc::ptr_eq(x, y) {
                    continue;
                }
            }
            // A call gone from its slot ended, unless it is listed elsewhere (the sensor never
            // moves calls, but a reader must not invent an end if one did).
            if let Some(x) = x {
                if y.is_none_or(|y| y.callref != x.callref) && table.find(x.callref).is_none() {
                    self.ended(x.callref, out);
                }
            }
            if let Some(y) = y {
                self.one(y, now_ns, out);
            }
        }
    }

    fn remember(&mut self, c: &Arc<CallSummary>, now_ns: i64) {
        let known = Known {
            sent: c.clone(),
            sent_ns: now_ns,
        };
        self.known.insert(c.callref, known);
    }

    fn ended(&mut self, r: CallRef, out: &mut Vec<u8>) {
        if self.known.remove(&r).is_some() {
            self.pending.remove(&r);
            line(out, "ended", r, None);
        }
    }

    /// A call that is new, or whose summary is not the one last sent.
    fn one(&mut self, c: &Arc<CallSummary>, now_ns: i64, out: &mut Vec<u8>) {
        let Some(k) = self.known.get_mut(&c.callref) else {
            line(out, "new", c.callref, Some(call_object(c)));
            self.remember(c, now_ns);
            return;
        };
        if Arc::ptr_eq(&k.sent, c) {
            return;
        }
        let (fields, only_numbers) = changed_fields(&k.sent, c);
        if fields.is_empty() {
            k.sent = c.clone();
            return;
        }
        if only_numbers && now_ns.saturating_sub(k.sent_ns) < NUMBERS_EVERY_NS {
            // Keep the old baseline: the next line carries everything changed since.
            self.pending.insert(c.callref);
            return;
        }
        line(out, "changed", c.callref, Some(Value::Object(fields)));
        k.sent = c.clone();
        k.sent_ns = now_ns;
    }
}

/// Every field of a call as the feed sends it: VoIPmonitor's 68 `listcalls` fields, then
/// earshot's own (`listcalls {"earshot":true}`: call state, hold, codec names, MOS and jitter
/// with null where unknown, and why), so a subscriber needs no second request.
fn all_fields(c: &CallSummary) -> impl Iterator<Item = (&'static str, Value)> {
    let names = FIELDS.iter().chain(EARSHOT_FIELDS.iter()).copied();
    names.zip(json_row(c).into_iter().chain(earshot_row(c)))
}

fn call_object(c: &CallSummary) -> Value {
    Value::Object(all_fields(c).map(|(f, v)| (f.to_string(), v)).collect())
}

/// The fields whose values differ, and whether all of them are numbers.
fn changed_fields(old: &CallSummary, new: &CallSummary) -> (Map<String, Value>, bool) {
    let mut fields = Map::new();
    let mut only_numbers = true;
    for ((name, a), (_, b)) in all_fields(old).zip(all_fields(new)) {
        if a != b {
            only_numbers &= NUMBER_FIELDS.contains(&name);
            fields.insert(name.to_string(), b);
        }
    }
    (fields, only_numbers)
}

fn line(out: &mut Vec<u8>, event: &str, callref: CallRef, body: Option<Value>) {
    let mut m = Map::new();
    m.insert("event".into(), Value::from(event));
    match (event, body) {
        ("snapshot" | "new", Some(call)) => {
            m.insert("call".into(), call);
        }
        (_, body) => {
            m.insert("callref".into(), Value::from(callref.to_prefixed()));
            if let Some(fields) = body {
                m.insert("fields".into(), fields);
            }
        }
    }
    let _ = serde_json::to_writer(&mut *out, &Value::Object(m));
    out.push(b'\n');
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use earshot_sip::CallState;

    /// A ringing call numbered `n` (callref 0x100 + n), for the feed's and the table's tests.
    pub(crate) fn call(n: u64) -> CallSummary {
        CallSummary {
            callref: CallRef::from_u64(0x100 + n),
            id: n,
            text: std::sync::Arc::new(crate::CallText {
                call_id: format!("{n}@example.com").into(),
                caller: "1001".into(),
                called: "2002".into(),
                caller_name: None,
                caller_domain: None,
                called_domain: None,
                caller_agent: None,
                called_agent: None,
                codecs: Vec::new().into(),
                group: None,
            }),
            caller_ip: "192.0.2.1".parse().expect("address"),
            called_ip: "192.0.2.2".parse().expect("address"),
            state: CallState::Ringing,
            last_sip_code: Some(180),
            start_ns: 0,
            answer_ns: None,
            last_packet_ns: 0,
            last_sip_ns: 0,
            duration_secs: 0,
            connect_secs: 0,
            on_hold: false,
            held_by: None,
            reinvites: 0,
            vlan: None,
            sensor_id: None,
            caller_leg: None,
            called_leg: None,
            legs: Vec::new(),
        }
    }

    fn lines(out: &mut Vec<u8>) -> Vec<Value> {
        let v = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("a JSON line"))
            .collect();
        out.clear();
        v
    }

    #[test]
    fn events_follow_the_table() {
        let mut feed = CallsFeed::new();
        let mut out = Vec::new();
        let mut table = Listing::default();
        table.put(Arc::new(call(1)));
        feed.update(&table, 0, &mut out);
        let l = lines(&mut out);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0]["event"], "snapshot");
        assert_eq!(l[0]["call"]["callid"], "1@example.com");
        assert_eq!(
            l[1],
            serde_json::json!({"event":"synced"}),
            "the copy is whole"
        );

        // The same version: nothing to say.
        feed.update(&table, 100, &mut out);
        assert!(lines(&mut out).is_empty());

        // A new call, and a SIP change (state, code) on the first: sent at once, only the diff.
        let mut answered = call(1);
        answered.state = CallState::Answered;
        answered.last_sip_code = Some(200);
        table.put(Arc::new(answered.clone()));
        table.put(Arc::new(call(2)));
        feed.update(&table, 200, &mut out);
        let l = lines(&mut out);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0]["event"], "changed");
        assert_eq!(l[0]["callref"], "0x101");
        assert_eq!(
            l[0]["fields"],
            serde_json::json!({"lastSIPresponseNum": 200, "callstate": "answered"})
        );
        assert_eq!(l[1]["event"], "new");

        // Numbers only: held back within a second, then sent with everything since, even
        // with no further change to the table.
        let mut later = answered;
        later.duration_secs = 2;
        table.put(Arc::new(later));
        feed.update(&table, 300_000_000, &mut out);
        assert!(lines(&mut out).is_empty(), "rate-limited");
        feed.update(&table, 1_300_000_000, &mut out);
        let l = lines(&mut out);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0]["fields"], serde_json::json!({"duration": 2}));

        // Gone from the table: ended, once.
        table.remove(CallRef::from_u64(0x101));
        feed.update(&table, 1_400_000_000, &mut out);
        let l = lines(&mut out);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0], serde_json::json!({"event":"ended","callref":"0x101"}));
        feed.update(&table, 1_500_000_000, &mut out);
        assert!(lines(&mut out).is_empty());
        assert!(table.find(CallRef::from_u64(0x102)).is_some());
    }

    #[test]
    fn an_empty_table_is_synced_at_once_and_once() {
        let mut feed = CallsFeed::new();
        let mut out = Vec::new();
        let table = Listing::default();
        feed.update(&table, 0, &mut out);
        assert_eq!(lines(&mut out), [serde_json::json!({"event":"synced"})]);
        feed.update(&table, 100, &mut out);
        assert!(lines(&mut out).is_empty());
    }

    #[test]
    fn an_update_looks_only_at_the_chunks_that_changed() {
        use crate::listing::CHUNK;
        let mut feed = CallsFeed::new();
        let mut out = Vec::new();
        let mut table = Listing::default();
        for n in 0..(20 * CHUNK as u64) {
            table.put(Arc::new(call(n)));
        }
        feed.update(&table, 0, &mut out);
        assert_eq!(lines(&mut out).len(), 20 * CHUNK + 1, "and synced");

        // One call answered, one ended, one new: three lines, and every other chunk shared.
        let mut answered = call(7);
        answered.last_sip_code = Some(200);
        table.put(Arc::new(answered));
        table.remove(CallRef::from_u64(0x100 + 5 * CHUNK as u64));
        table.put(Arc::new(call(100_000)));
        let before = feed.seen.clone().expect("a version was seen");
        let shared = before
            .chunks()
            .iter()
            .zip(table.chunks())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(
            shared,
            20 - 2,
            "two chunks changed (the new call opened a 21st)"
        );
        feed.update(&table, 100, &mut out);
        let l = lines(&mut out);
        let events: Vec<&str> = l.iter().filter_map(|v| v["event"].as_str()).collect();
        assert_eq!(events, ["changed", "ended", "new"]);
    }

    #[test]
    fn a_big_snapshot_goes_in_parts_and_what_changed_meanwhile_follows() {
        let mut table = Listing::default();
        for n in 1..=1000 {
            table.put(Arc::new(call(n)));
        }
        let mut feed = CallsFeed::new();
        let mut out = Vec::new();
        let mut parts = 0;
        let mut snapshot = 0;
        let mut largest = 0;
        loop {
            let more = feed.update_within(&table, 0, &mut out, 64 << 10);
            largest = largest.max(out.len());
            snapshot += lines(&mut out)
                .iter()
                .filter(|l| l["event"] == "snapshot")
                .count();
            parts += 1;
            if parts == 2 {
                // The table changes while the snapshot is being written.
                table.remove(CallRef::from_u64(0x100 + 1));
                table.put(Arc::new(call(1001)));
            }
            if !more {
                break;
            }
        }
        assert_eq!(
            snapshot, 1000,
            "every call of the version the snapshot began with"
        );
        assert!(parts > 5, "{parts} parts");
        // A part stops after the chunk that reached the limit: 64 calls of ~2 KB past it.
        assert!(
            largest < (64 << 10) + 64 * 4096,
            "a part of {largest} bytes"
        );
        feed.update(&table, 100, &mut out);
        let l = lines(&mut out);
        let events: Vec<&str> = l.iter().filter_map(|v| v["event"].as_str()).collect();
        assert_eq!(events, ["ended", "new"], "the changes made meanwhile");
    }
}
