//! A call as the player shows it: the columns the page uses, made from a sensor's `listcalls`
//! row or from its `calls` subscription's call objects and `changed` events.
//!
//! Both sensors name their columns the same way (VoIPmonitor's names); earshot adds its own
//! columns (`callstate`, codec names, MOS and jitter with `null` where unknown, and why). A
//! view is built by setting each column it is given, so a `changed` event (a few columns) is
//! applied to the view the same way a whole row makes it, and no copy of the sensor's 68
//! columns is kept per call.

use serde::Serialize;
use serde_json::Value;

/// One call of one sensor, as `/api/calls` lists it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CallView {
    pub sensor_id: i64,
    pub callreference: Value,
    pub callid: Value,
    pub caller: Value,
    pub called: Value,
    pub last_sip_code: Value,
    pub duration: Value,
    /// The parties' codecs now (caller's, then called's).
    pub codecs: Vec<String>,
    pub codec_caller: Option<String>,
    pub codec_called: Option<String>,
    pub mos_caller: Value,
    pub mos_called: Value,
    pub loss_caller: Value,
    pub loss_called: Value,
    pub jitter_caller: Value,
    pub jitter_called: Value,
    /// Why a party's MOS is null: "no_media", "undecodable", "clock_unknown", "events_only",
    /// "video"; null when known or from VoIPmonitor.
    pub quality_unknown_caller: Value,
    pub quality_unknown_called: Value,
    /// SRTP without a key (earshot sensors; false from VoIPmonitor): measured, not heard.
    pub encrypted_caller: bool,
    pub encrypted_called: bool,
    /// Of a party's loss, packets the sensor missed that the call did not lose (earshot
    /// sensors; null from VoIPmonitor and for a party without media).
    pub capture_loss_caller: Value,
    pub capture_loss_called: Value,
    pub start: Value,
    /// earshot sensors only (null from VoIPmonitor): the call's state, and its hold.
    pub state: Value,
    pub on_hold: Value,
    pub held_by: Value,
    /// What the page shows in its State column, and what the filter matches: "calling" for a
    /// call trying, "no answer", "on hold (by caller)", "failed (486)"; from the response code
    /// for VoIPmonitor's calls, which have no state.
    pub state_text: String,
    /// earshot sensors only (null otherwise): the legs of one call through a B2BUA share a
    /// `group` (the A-leg's Call-ID); `leg` is "a" or "b", `correlated_by` what tied them.
    pub group: Value,
    pub leg: Value,
    pub correlated_by: Value,
    #[serde(skip)]
    source: Source,
}

/// The columns that need another column to be read: codecs by name (earshot) or by number
/// (both), and MOS/jitter from earshot's columns (null where unknown) or VoIPmonitor's.
#[derive(Clone, Debug, Default, PartialEq)]
struct Source {
    /// The sensor sends earshot's own columns: MOS and jitter come from them.
    earshot: bool,
    codec_name: [Value; 2],
    codec_number: [Value; 2],
    voipmonitor_mos: [Value; 2],
    voipmonitor_jitter: [Value; 2],
}

/// Whether a sensor's columns include earshot's own (it then names MOS and jitter as unknown
/// where they are).
pub fn has_earshot_columns<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|n| n == "caller_quality_unknown")
}

impl CallView {
    /// A call from its columns by name (`earshot`: see [`has_earshot_columns`]).
    pub fn from_columns<'a>(
        sensor_id: i64,
        earshot: bool,
        columns: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> CallView {
        let mut v = CallView {
            sensor_id,
            source: Source {
                earshot,
                ..Source::default()
            },
            ..CallView::default()
        };
        v.apply(columns);
        v
    }

    /// Some of the call's columns changed (a `changed` event's fields): the view follows.
    /// Unknown columns are ignored.
    pub fn apply<'a>(&mut self, columns: impl IntoIterator<Item = (&'a str, &'a Value)>) {
        for (name, value) in columns {
            self.set(name, value);
        }
        self.derive();
    }

    fn set(&mut self, name: &str, value: &Value) {
        let v = value.clone();
        let s = &mut self.source;
        match name {
            "callreference" => self.callreference = v,
            "callid" => self.callid = v,
            "caller" => self.caller = v,
            "called" => self.called = v,
            "lastSIPresponseNum" => self.last_sip_code = v,
            "duration" => self.duration = v,
            "calldate" => self.start = v,
            "callstate" => self.state = v,
            "on_hold" => self.on_hold = v,
            "held_by" => self.held_by = v,
            "group" => self.group = v,
            "leg" => self.leg = v,
            "correlated_by" => self.correlated_by = v,
            "src_loss" => self.loss_caller = v,
            "dst_loss" => self.loss_called = v,
            "caller_quality_unknown" => self.quality_unknown_caller = v,
            "called_quality_unknown" => self.quality_unknown_called = v,
            "caller_encrypted" => self.encrypted_caller = v == Value::Bool(true),
            "called_encrypted" => self.encrypted_called = v == Value::Bool(true),
            "caller_capture_loss" => self.capture_loss_caller = v,
            "called_capture_loss" => self.capture_loss_called = v,
            "callercodec_name" => s.codec_name[0] = v,
            "calledcodec_name" => s.codec_name[1] = v,
            "callercodec" => s.codec_number[0] = v,
            "calledcodec" => s.codec_number[1] = v,
            // MOS and jitter: earshot's columns when the sensor has them, else VoIPmonitor's.
            "caller_mos" if s.earshot => self.mos_caller = v,
            "called_mos" if s.earshot => self.mos_called = v,
            "caller_jitter_ms" if s.earshot => self.jitter_caller = v,
            "called_jitter_ms" if s.earshot => self.jitter_called = v,
            "src_mosf1" => s.voipmonitor_mos[0] = v,
            "dst_mosf1" => s.voipmonitor_mos[1] = v,
            "src_jitter" => s.voipmonitor_jitter[0] = v,
            "dst_jitter" => s.voipmonitor_jitter[1] = v,
            _ => {}
        }
    }

    /// The columns made from others.
    fn derive(&mut self) {
        let s = &self.source;
        // earshot names the codecs; VoIPmonitor numbers them.
        let [caller, called] = [0, 1].map(|i| match &s.codec_name[i] {
            Value::String(n) => Some(n.clone()),
            _ => payload_type_name(&s.codec_number[i]),
        });
        self.codecs = caller.iter().chain(called.iter()).cloned().collect();
        (self.codec_caller, self.codec_called) = (caller, called);
        if !s.earshot {
            // VoIPmonitor's MOS is ×10, and its no-data values stay as it sends them.
            let mos = |m: &Value| serde_json::json!(m.as_f64().map(|m| m / 10.0));
            self.mos_caller = mos(&s.voipmonitor_mos[0]);
            self.mos_called = mos(&s.voipmonitor_mos[1]);
            self.jitter_caller = s.voipmonitor_jitter[0].clone();
            self.jitter_called = s.voipmonitor_jitter[1].clone();
        }
        self.state_text = self.describe_state();
        if self.encrypted_caller || self.encrypted_called {
            self.state_text.push_str(" · encrypted, no key");
        }
    }

    fn describe_state(&self) -> String {
        if self.on_hold == Value::Bool(true) {
            return match self.held_by.as_str().filter(|by| !by.is_empty()) {
                Some(by) => format!("on hold (by {by})"),
                None => "on hold".into(),
            };
        }
        let code = number(&self.last_sip_code).filter(|&c| c > 0);
        if let Some(state) = self.state.as_str().filter(|s| !s.is_empty()) {
            let text = match state {
                "trying" => "calling",
                "early" => "early media",
                "unanswered" => "no answer",
                other => other,
            };
            return match code {
                Some(code) if state == "failed" => format!("{text} ({code})"),
                _ => text.to_string(),
            };
        }
        // VoIPmonitor's calls: only the last response code.
        match code {
            None => "calling".into(),
            Some(c) if c < 200 => format!("ringing ({c})"),
            Some(c) if c < 300 => "answered".into(),
            Some(c) => format!("failed ({c})"),
        }
    }

    /// The reference, normalised (lower case, no `0x`, no leading zeros).
    pub fn key(&self) -> String {
        self.callreference
            .as_str()
            .map(crate::manager::normalize_ref)
            .unwrap_or_default()
    }

    /// Whether every word of the filter text (already lower case) is in the call's numbers,
    /// Call-ID, reference, state, codecs, sensor id or `sensor_name`: what the page's filter
    /// box does.
    pub fn matches(&self, needle: &str, sensor_name: &str) -> bool {
        let mut words = needle.split_whitespace().peekable();
        if words.peek().is_none() {
            return true;
        }
        let mut hay = String::new();
        for v in [
            &self.caller,
            &self.called,
            &self.callid,
            &self.callreference,
            &self.state,
            // The A-leg's Call-ID: searching for it finds every leg of the call.
            &self.group,
        ] {
            if let Some(s) = v.as_str() {
                hay.push_str(s);
                hay.push(' ');
            }
        }
        hay.push_str(&self.state_text);
        hay.push(' ');
        for c in &self.codecs {
            hay.push_str(c);
            hay.push(' ');
        }
        hay.push_str(&self.sensor_id.to_string());
        hay.push(' ');
        hay.push_str(sensor_name);
        let hay = hay.to_ascii_lowercase();
        words.all(|w| hay.contains(w))
    }
}

/// A number sent as a number or as its text (VoIPmonitor's columns are either).
fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A codec name for VoIPmonitor's codec numbers (`callercodec`), as both kinds of sensor send
/// them: the manager protocol's one table, `PT<n>` for a dynamic type it does not name.
fn payload_type_name(pt: &Value) -> Option<String> {
    let n = pt.as_i64().filter(|&n| n >= 0)?;
    Some(
        earshot_manager::listcalls::codec_id_name(n)
            .map_or_else(|| format!("PT{n}"), str::to_owned),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns(v: &Value) -> Vec<(&str, &Value)> {
        v.as_object()
            .expect("an object")
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect()
    }

    fn earshot_call() -> Value {
        json!({
            "callreference": "0x1A2B", "callid": "a@example.com", "caller": "1001",
            "called": "2002", "lastSIPresponseNum": 200, "duration": 12,
            "calldate": "2026-12-03 10:00:00", "callstate": "answered", "on_hold": false,
            "held_by": null, "src_loss": 0.5, "dst_loss": 0,
            "callercodec": 8, "calledcodec": 8, "callercodec_name": "PCMA",
            "calledcodec_name": null, "caller_mos": 4.4, "called_mos": null,
            "caller_jitter_ms": 1.5, "called_jitter_ms": null,
            "caller_quality_unknown": null, "called_quality_unknown": "no_media",
            "src_mosf1": 44, "dst_mosf1": 45, "src_jitter": 1, "dst_jitter": 0,
        })
    }

    #[test]
    fn an_earshot_call_is_read_from_its_own_columns() {
        let call = earshot_call();
        let cols = columns(&call);
        let earshot = has_earshot_columns(cols.iter().map(|(k, _)| *k));
        assert!(earshot);
        let v = CallView::from_columns(3, earshot, cols);
        assert_eq!(v.sensor_id, 3);
        assert_eq!(v.mos_caller, json!(4.4));
        assert_eq!(v.mos_called, Value::Null, "unknown, not VoIPmonitor's 4.5");
        assert_eq!(v.jitter_called, Value::Null);
        assert_eq!(v.quality_unknown_called, json!("no_media"));
        assert_eq!(v.codec_caller.as_deref(), Some("PCMA"));
        assert_eq!(
            v.codec_called.as_deref(),
            Some("PCMA"),
            "named from its number"
        );
        assert_eq!(v.codecs, ["PCMA", "PCMA"]);
        assert_eq!(v.state, json!("answered"));
        assert_eq!(v.key(), "1a2b");
    }

    #[test]
    fn a_voipmonitor_row_reads_its_mos_and_codec_numbers() {
        let row = json!({
            "callreference": "0x7f", "caller": "1001", "called": "2002",
            "src_mosf1": 41, "dst_mosf1": 45, "src_jitter": 3, "dst_jitter": 0,
            "callercodec": 0, "calledcodec": 111,
        });
        let cols = columns(&row);
        let v = CallView::from_columns(1, has_earshot_columns(cols.iter().map(|(k, _)| *k)), cols);
        assert_eq!(v.mos_caller, json!(4.1));
        assert_eq!(v.mos_called, json!(4.5));
        assert_eq!(v.jitter_caller, json!(3));
        assert_eq!(v.codecs, ["PCMU", "PT111"]);
        assert_eq!(v.state, Value::Null);
    }

    #[test]
    fn changed_columns_give_the_view_a_whole_row_would() {
        let call = earshot_call();
        let mut v = CallView::from_columns(3, true, columns(&call));
        let changes = json!({
            "duration": 30, "lastSIPresponseNum": 200, "calledcodec_name": "G722",
            "called_mos": 3.9, "callstate": "ended", "on_hold": true,
        });
        v.apply(columns(&changes));
        let mut whole = call.clone();
        for (k, val) in changes.as_object().expect("object") {
            whole[k] = val.clone();
        }
        assert_eq!(v, CallView::from_columns(3, true, columns(&whole)));
        assert_eq!(v.codecs, ["PCMA", "G722"]);
        assert_eq!(v.mos_called, json!(3.9));
    }

    #[test]
    fn codec_numbers_have_names() {
        let name = |n: i64| payload_type_name(&json!(n));
        assert_eq!(name(8).as_deref(), Some("PCMA"));
        assert_eq!(name(316).as_deref(), Some("opus"));
        assert_eq!(name(353).as_deref(), Some("G726-32"));
        assert_eq!(name(111).as_deref(), Some("PT111"));
        assert_eq!(name(-1), None);
    }

    #[test]
    fn the_filter_searches_numbers_ids_and_codecs() {
        let v = CallView::from_columns(3, true, columns(&earshot_call()));
        for hit in [
            "100",
            "2002",
            "a@example",
            "1a2b",
            "answered",
            "pcma",
            "",
            "1001 2002",
            " 3 ",
        ] {
            assert!(v.matches(hit, "edge"), "{hit}");
        }
        assert!(!v.matches("4420", "edge"));
        assert!(v.matches("edge 1001", "edge"), "the sensor's name");
        assert!(!v.matches("on hold", "edge"));
        assert!(!v.matches("1001 4420", "edge"), "every word must be found");
    }

    /// The filter finds calls by the words the page shows for their state, not only by the
    /// sensor's: a supervisor types "calling", "no answer" or "on hold".
    #[test]
    fn the_state_is_described_and_found_as_the_page_shows_it() {
        let with = |changes: Value| {
            let mut v = CallView::from_columns(3, true, columns(&earshot_call()));
            v.apply(columns(&changes));
            v
        };
        let cases = [
            (
                json!({"callstate": "trying", "lastSIPresponseNum": 0}),
                "calling",
            ),
            (json!({"callstate": "early"}), "early media"),
            (
                json!({"callstate": "unanswered", "lastSIPresponseNum": 408}),
                "no answer",
            ),
            (
                json!({"callstate": "failed", "lastSIPresponseNum": 486}),
                "failed (486)",
            ),
            (
                json!({"on_hold": true, "held_by": "caller"}),
                "on hold (by caller)",
            ),
            (json!({"on_hold": true}), "on hold"),
            (json!({"callstate": "answered"}), "answered"),
        ];
        for (changes, text) in cases {
            let v = with(changes);
            assert_eq!(v.state_text, text);
            assert!(v.matches(text, "edge"), "{text}");
        }
        assert!(with(json!({"callstate": "trying"})).matches("calling 1001", "edge"));
        let srtp = with(json!({"callstate": "answered", "called_encrypted": true}));
        assert_eq!(srtp.state_text, "answered · encrypted, no key");
        assert!(srtp.encrypted_called && !srtp.encrypted_caller);
        assert!(srtp.matches("encrypted", "edge"));
        assert!(!with(json!({"callstate": "answered"})).matches("encrypted", "edge"));
        let voipmonitor = |code: Value| {
            let row = json!({"callreference": "0x7f", "lastSIPresponseNum": code});
            CallView::from_columns(1, false, columns(&row)).state_text
        };
        assert_eq!(voipmonitor(json!(0)), "calling");
        assert_eq!(voipmonitor(json!("183")), "ringing (183)");
        assert_eq!(voipmonitor(json!(200)), "answered");
        assert_eq!(voipmonitor(json!(503)), "failed (503)");
    }

    #[test]
    fn a_legs_group_follows_its_columns() {
        let mut v = CallView::from_columns(3, true, columns(&earshot_call()));
        assert_eq!((&v.group, &v.leg), (&Value::Null, &Value::Null));
        let grouped = json!({"group": "a@pbx", "leg": "a", "correlated_by": "x-cid"});
        v.apply(columns(&grouped));
        let listed = serde_json::to_value(&v).expect("serialises");
        assert_eq!(listed["group"], "a@pbx");
        assert_eq!(listed["leg"], "a");
        assert_eq!(listed["correlated_by"], "x-cid");
    }
}
