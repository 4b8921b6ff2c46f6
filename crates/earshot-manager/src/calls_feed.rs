//! The `calls` subscription's events, as a pure state machine (the server runs one per subscriber):
//! given each new snapshot of the call table, the JSON lines a subscriber is sent.
//!
//! - `{"event":"snapshot","call":{…}}` for each call of the first table,
//! - `{"event":"new","call":{…}}` for a call not seen before,
//! - `{"event":"changed","callref":"0x…","fields":{…}}` with only the fields that changed:
//!   at once when text or state changed (a SIP event), at most once per [`NUMBERS_EVERY_NS`]
//!   per call when only numbers did (packets, loss, jitter, MOS, durations),
//! - `{"event":"ended","callref":"0x…"}` for a call gone from the table.
//!
//! `call` objects have the 68 `listcalls` fields by name. A call whose summary is the same
//! `Arc` as last time costs a lookup: the sensor shares unchanged summaries between snapshots.

use crate::callref::CallRef;
use crate::listcalls::{json_row, CallSummary, FIELDS};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Numbers of one call are sent at most this often (1 s).
pub const NUMBERS_EVERY_NS: i64 = 1_000_000_000;

/// Fields that change with RTP or the clock, not with SIP: rate-limited.
const NUMBER_FIELDS: [&str; 24] = [
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
];

struct Known {
    /// What the subscriber has been told (the baseline of the next `changed`).
    sent: Arc<CallSummary>,
    sent_ns: i64,
    /// Generation of the latest table the call was in (to find ended calls).
    seen: u64,
}

/// One subscriber's view of the table.
#[derive(Default)]
pub struct CallsFeed {
    known: HashMap<CallRef, Known>,
    generation: u64,
}

impl CallsFeed {
    pub fn new() -> Self {
        CallsFeed::default()
    }

    /// Appends to `out` the lines for `calls`, the table as of `now_ns`; the first call gives
    /// `snapshot` lines.
    pub fn update(&mut self, calls: &[Arc<CallSummary>], now_ns: i64, out: &mut Vec<u8>) {
        let first = self.generation == 0;
        self.generation += 1;
        for c in calls {
            self.one(c, first, now_ns, out);
        }
        let generation = self.generation;
        self.known.retain(|r, k| {
            let live = k.seen == generation;
            if !live {
                line(out, "ended", *r, None);
            }
            live
        });
    }

    fn one(&mut self, c: &Arc<CallSummary>, first: bool, now_ns: i64, out: &mut Vec<u8>) {
        let generation = self.generation;
        let Some(k) = self.known.get_mut(&c.callref) else {
            let event = if first { "snapshot" } else { "new" };
            line(out, event, c.callref, Some(call_object(c)));
            self.known.insert(
                c.callref,
                Known {
                    sent: c.clone(),
                    sent_ns: now_ns,
                    seen: generation,
                },
            );
            return;
        };
        k.seen = generation;
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
            return;
        }
        line(out, "changed", c.callref, Some(Value::Object(fields)));
        k.sent = c.clone();
        k.sent_ns = now_ns;
    }
}

fn call_object(c: &CallSummary) -> Value {
    Value::Object(
        FIELDS
            .iter()
            .map(|f| f.to_string())
            .zip(json_row(c))
            .collect(),
    )
}

/// The fields whose values differ, and whether all of them are numbers.
fn changed_fields(old: &CallSummary, new: &CallSummary) -> (Map<String, Value>, bool) {
    let mut fields = Map::new();
    let mut only_numbers = true;
    for ((name, a), b) in FIELDS.iter().zip(json_row(old)).zip(json_row(new)) {
        if a != b {
            only_numbers &= NUMBER_FIELDS.contains(name);
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
mod tests {
    use super::*;
    use earshot_core::CallState;

    fn call(n: u64) -> CallSummary {
        CallSummary {
            callref: CallRef::from_u64(0x100 + n),
            id: n,
            call_id: format!("{n}@example.com").into(),
            caller: "1001".into(),
            called: "2002".into(),
            caller_name: None,
            caller_domain: None,
            called_domain: None,
            caller_agent: None,
            called_agent: None,
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
            codecs: Vec::new().into(),
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
        let a = Arc::new(call(1));
        feed.update(std::slice::from_ref(&a), 0, &mut out);
        let l = lines(&mut out);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0]["event"], "snapshot");
        assert_eq!(l[0]["call"]["callid"], "1@example.com");

        // The same Arc: nothing to say.
        feed.update(std::slice::from_ref(&a), 100, &mut out);
        assert!(lines(&mut out).is_empty());

        // A new call, and a SIP change (state, code) on the first: sent at once, only the diff.
        let mut answered = call(1);
        answered.state = CallState::Answered;
        answered.last_sip_code = Some(200);
        let a2 = Arc::new(answered);
        let b = Arc::new(call(2));
        feed.update(&[a2.clone(), b.clone()], 200, &mut out);
        let l = lines(&mut out);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0]["event"], "changed");
        assert_eq!(l[0]["callref"], "0x101");
        assert_eq!(
            l[0]["fields"],
            serde_json::json!({"lastSIPresponseNum": 200})
        );
        assert_eq!(l[1]["event"], "new");

        // Numbers only: held back within a second, then sent with everything since.
        let mut later = (*a2).clone();
        later.duration_secs = 1;
        feed.update(&[Arc::new(later.clone()), b.clone()], 300_000_000, &mut out);
        assert!(lines(&mut out).is_empty(), "rate-limited");
        later.duration_secs = 2;
        feed.update(&[Arc::new(later), b.clone()], 1_300_000_000, &mut out);
        let l = lines(&mut out);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0]["fields"], serde_json::json!({"duration": 2}));

        // Gone from the table: ended, once.
        feed.update(std::slice::from_ref(&b), 1_400_000_000, &mut out);
        let l = lines(&mut out);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0], serde_json::json!({"event":"ended","callref":"0x101"}));
        feed.update(&[b], 1_500_000_000, &mut out);
        assert!(lines(&mut out).is_empty());
    }
}
