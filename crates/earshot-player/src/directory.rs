//! The live call directory: every sensor's calls, kept current in memory by one feed per
//! sensor and shared by every page, so that the number of pages open costs the sensors
//! nothing.
//!
//! - An earshot sensor is followed through its `calls` subscription (snapshot, then new,
//!   changed and ended events); its calls are served once it has said `synced`.
//! - A VoIPmonitor sensor has no subscription: it is polled with `listcalls`, once per
//!   [`POLL_EVERY`] at most whatever the number of pages, and only while pages ask (a page
//!   asked within [`POLL_WHILE_ASKED`]).
//! - A feed that fails is shown as the sensor's error (its calls are not listed: they would be
//!   stale) and retried with back-off, 1 s doubling to [`MAX_BACKOFF`] (5 s).
//!
//! [`SensorCalls`] is the sans-IO part (lines and poll results in, the sensor's calls out);
//! the tasks only move lines to it and read the clock.

use crate::callview::{has_earshot_columns, CallView};
use crate::db::{Sensor, SensorKind};
use crate::error::ManagerError;
use crate::lock;
use crate::manager::{self, CallsConn};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a page waits for a sensor's feed that has not settled yet, and how long a
/// VoIPmonitor sensor has to answer a poll: one dead sensor must not hold up the others.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(3);
/// A VoIPmonitor sensor is polled at most this often.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// … and only while a page asked for calls this recently.
pub const POLL_WHILE_ASKED: Duration = Duration::from_secs(30);
/// Longest wait between two attempts to reach a sensor: a sensor that comes back is listed
/// again within seconds, and an attempt is one TCP connection.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A `calls` subscription silent this long is dead (the sensor says `alive` every 5 s).
pub const FEED_IDLE: Duration = Duration::from_secs(15);

/// Where a sensor's feed is.
#[derive(Clone, Debug)]
pub enum Status {
    /// Not reached yet (or again, after a failure, while the next attempt runs).
    Connecting,
    /// Its calls are current.
    Live,
    /// The last attempt failed with this.
    Down(Arc<ManagerError>),
}

/// One sensor's calls, in the order the sensor gave them, and what its feed says of itself.
#[derive(Debug)]
pub struct SensorCalls {
    sensor_id: i64,
    status: Status,
    /// Arrival order → call; `by_key` finds a call's place from its normalised reference.
    calls: BTreeMap<u64, Entry>,
    by_key: HashMap<String, u64>,
    next: u64,
    /// Counts every change (a call, or the status): a page's window is recomputed only when
    /// a sensor's version moved, and a call's `rev` says which version last changed it.
    version: u64,
}

#[derive(Debug)]
struct Entry {
    view: Arc<CallView>,
    rev: u64,
}

/// Why a feed line was not taken.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("a call feed line is not JSON: {0}")]
    NotJson(String),
    #[error("the sensor closed the call feed: this player fell behind (overflow)")]
    Overflow,
}

impl SensorCalls {
    pub fn new(sensor_id: i64) -> SensorCalls {
        SensorCalls {
            sensor_id,
            status: Status::Connecting,
            calls: BTreeMap::new(),
            by_key: HashMap::new(),
            next: 0,
            version: 0,
        }
    }

    /// See the `version` field.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn touch(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Whether a page can be answered from this sensor now: its calls, or its error.
    pub fn settled(&self) -> bool {
        match self.status {
            Status::Live => true,
            Status::Down(_) => true,
            Status::Connecting => false,
        }
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The calls, in the sensor's order.
    pub fn calls(&self) -> impl Iterator<Item = &CallView> {
        self.calls.values().map(|e| &*e.view)
    }

    /// The calls with the version that last changed each.
    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.calls.values()
    }

    pub fn find(&self, callref: &str) -> Option<&CallView> {
        let at = self.by_key.get(&manager::normalize_ref(callref))?;
        self.calls.get(at).map(|e| &*e.view)
    }

    /// A new subscription starts: what was known is forgotten (the snapshot brings it back).
    pub fn begin(&mut self) {
        self.clear();
    }

    /// The feed failed: nothing is listed for this sensor until it is back.
    pub fn fail(&mut self, e: ManagerError) {
        self.clear();
        self.status = Status::Down(Arc::new(e));
    }

    fn clear(&mut self) {
        self.calls.clear();
        self.by_key.clear();
        self.touch();
    }

    /// One line of the `calls` subscription.
    pub fn on_line(&mut self, line: &[u8]) -> Result<(), FeedError> {
        let v: Value = serde_json::from_slice(line).map_err(|_| {
            FeedError::NotJson(String::from_utf8_lossy(&line[..line.len().min(200)]).into())
        })?;
        match v.get("event").and_then(Value::as_str) {
            Some("snapshot" | "new") => {
                if let Some(call) = v.get("call").and_then(Value::as_object) {
                    let earshot = has_earshot_columns(call.keys().map(String::as_str));
                    let view = CallView::from_columns(
                        self.sensor_id,
                        earshot,
                        call.iter().map(|(k, v)| (k.as_str(), v)),
                    );
                    self.put(view);
                }
            }
            Some("changed") => {
                let (Some(r), Some(fields)) = (
                    v.get("callref").and_then(Value::as_str),
                    v.get("fields").and_then(Value::as_object),
                ) else {
                    return Ok(());
                };
                let key = manager::normalize_ref(r);
                let Some(&at) = self.by_key.get(&key) else {
                    return Ok(());
                };
                let rev = self.touch();
                if let Some(e) = self.calls.get_mut(&at) {
                    Arc::make_mut(&mut e.view).apply(fields.iter().map(|(k, v)| (k.as_str(), v)));
                    e.rev = rev;
                }
            }
            Some("ended") => {
                if let Some(r) = v.get("callref").and_then(Value::as_str) {
                    self.remove(&manager::normalize_ref(r));
                }
            }
            Some("synced") => {
                self.status = Status::Live;
                self.touch();
            }
            Some("overflow") => return Err(FeedError::Overflow),
            // `alive`, and events a newer sensor may add.
            _ => {}
        }
        Ok(())
    }

    /// A poll's answer replaces the sensor's calls.
    pub fn replace(&mut self, calls: Vec<CallView>) {
        self.clear();
        for c in calls {
            self.put(c);
        }
        self.status = Status::Live;
        self.touch();
    }

    fn put(&mut self, view: CallView) {
        let key = view.key();
        let rev = self.touch();
        let entry = Entry {
            view: Arc::new(view),
            rev,
        };
        match self.by_key.get(&key) {
            Some(at) => {
                self.calls.insert(*at, entry);
            }
            None => {
                let at = self.next;
                self.next += 1;
                self.by_key.insert(key, at);
                self.calls.insert(at, entry);
            }
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(at) = self.by_key.remove(key) {
            self.calls.remove(&at);
            self.touch();
        }
    }
}

type Shared = Arc<RwLock<SensorCalls>>;

fn read(s: &Shared) -> std::sync::RwLockReadGuard<'_, SensorCalls> {
    match s.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn write(s: &Shared) -> std::sync::RwLockWriteGuard<'_, SensorCalls> {
    match s.write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// One sensor's feed: its calls, a signal when they change state, and its task (stopped when
/// this is dropped).
struct Feed {
    sensor: Sensor,
    calls: Shared,
    changed: watch::Receiver<u64>,
    /// When a page last asked (VoIPmonitor sensors are polled only then).
    asked: Arc<Mutex<Instant>>,
    task: tokio::task::AbortHandle,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every sensor's feed.
#[derive(Default)]
pub struct Directory {
    feeds: Mutex<HashMap<i64, Feed>>,
    /// Windows computed lately, by what was asked: pages asking the same (most pages show
    /// the first screen of an unfiltered list) share one computation per change.
    windows: Mutex<HashMap<WindowQuery, (Stamp, Arc<Window>)>>,
}

/// What a page shows: the calls that contain `q` (lower case), from `offset`, `limit` of
/// them.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct WindowQuery {
    pub q: String,
    pub offset: usize,
    pub limit: usize,
}

/// The sensors (id, version, whether their calls are listed) a window was made from.
type Stamp = Vec<(i64, u64, bool)>;

/// Windows kept for sharing; past this many distinct queries the cache starts over.
const WINDOWS_KEPT: usize = 64;

/// One row of a window: `key` is `SENSOR:REF`, unique across sensors; `rev` changes whenever
/// the call does.
#[derive(Clone, Debug)]
pub struct Row {
    pub key: String,
    pub rev: u64,
    pub call: Arc<CallView>,
}

/// A page's slice of the directory, with the number of calls that pass its filter.
#[derive(Debug, Default)]
pub struct Window {
    pub total: usize,
    pub rows: Vec<Row>,
    pub errors: Vec<(i64, Arc<ManagerError>)>,
}

impl Directory {
    /// Follows exactly these sensors: feeds start for new ones (and for sensors whose address
    /// or credentials changed) and stop for those gone from the registry.
    pub fn follow(&self, sensors: &[Sensor]) {
        let mut feeds = lock(&self.feeds);
        feeds.retain(|id, f| sensors.iter().any(|s| s.id_sensor == *id && *s == f.sensor));
        for s in sensors {
            feeds
                .entry(s.id_sensor)
                .or_insert_with(|| Feed::start(s.clone()));
        }
    }

    /// The window `w` of these sensors' calls (followed first; feeds not settled yet are
    /// waited for up to `wait`). Computed once per change of the
    /// sensors it covers, whoever asks.
    pub async fn window(&self, sensors: &[Sensor], w: &WindowQuery, wait: Duration) -> Arc<Window> {
        let shared = self.settled_feeds(sensors, wait).await;
        let stamp: Stamp = shared
            .iter()
            .map(|f| {
                let c = read(&f.calls);
                (f.id, c.version(), matches!(c.status(), Status::Live))
            })
            .collect();
        if let Some((at, win)) = lock(&self.windows).get(w) {
            if *at == stamp {
                return win.clone();
            }
        }
        let win = Arc::new(compute_window(&shared, w));
        let mut cache = lock(&self.windows);
        if cache.len() >= WINDOWS_KEPT {
            cache.clear();
        }
        cache.insert(w.clone(), (stamp, win.clone()));
        win
    }

    /// These sensors' call tables, in their order, once each has settled or `wait` passed.
    async fn settled_feeds(&self, sensors: &[Sensor], wait: Duration) -> Vec<Followed> {
        self.follow(sensors);
        let feeds: Vec<(Followed, watch::Receiver<u64>)> = {
            let feeds = lock(&self.feeds);
            sensors
                .iter()
                .filter_map(|s| feeds.get(&s.id_sensor))
                .map(|f| {
                    *lock(&f.asked) = Instant::now();
                    let followed = Followed {
                        id: f.sensor.id_sensor,
                        name: f.sensor.name.clone(),
                        calls: f.calls.clone(),
                    };
                    (followed, f.changed.clone())
                })
                .collect()
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::with_capacity(feeds.len());
        for (followed, mut changed) in feeds {
            while !read(&followed.calls).settled() {
                match tokio::time::timeout_at(deadline, changed.changed()).await {
                    Ok(Ok(())) => {}
                    _ => break,
                }
            }
            out.push(followed);
        }
        out
    }

    /// One call of a followed sensor, if its feed is live and lists it.
    pub fn find(&self, sensor_id: i64, callref: &str) -> Option<CallView> {
        let feeds = lock(&self.feeds);
        let c = read(&feeds.get(&sensor_id)?.calls);
        matches!(c.status(), Status::Live)
            .then(|| c.find(callref).cloned())
            .flatten()
    }
}

/// A sensor a window is made from: its id and name (the filter finds calls by either) and its
/// calls.
struct Followed {
    id: i64,
    name: String,
    calls: Shared,
}

/// What a page is told of a sensor that is not live.
fn status_error(id: i64, status: &Status) -> Option<Arc<ManagerError>> {
    match status {
        Status::Live => None,
        Status::Down(e) => Some(e.clone()),
        Status::Connecting => Some(Arc::new(ManagerError::Timeout(format!("sensor {id}")))),
    }
}

/// The calls passing the filter, counted, and the slice asked for. One pass over the calls
/// (none at all for the rows before `offset` of an unfiltered list beyond counting).
fn compute_window(feeds: &[Followed], w: &WindowQuery) -> Window {
    let mut win = Window::default();
    let end = w.offset.saturating_add(w.limit);
    for Followed { id, name, calls } in feeds {
        let c = read(calls);
        if let Some(e) = status_error(*id, c.status()) {
            win.errors.push((*id, e));
            continue;
        }
        if w.q.is_empty() && (win.total + c.len() <= w.offset || win.total >= end) {
            win.total += c.len();
            continue;
        }
        for e in c.entries() {
            if !e.view.matches(&w.q, name) {
                continue;
            }
            if (w.offset..end).contains(&win.total) {
                win.rows.push(Row {
                    key: format!("{id}:{}", e.view.key()),
                    rev: e.rev,
                    call: e.view.clone(),
                });
            }
            win.total += 1;
        }
    }
    win
}

impl Feed {
    fn start(sensor: Sensor) -> Feed {
        let calls: Shared = Arc::new(RwLock::new(SensorCalls::new(sensor.id_sensor)));
        let (tx, rx) = watch::channel(0u64);
        let asked = Arc::new(Mutex::new(Instant::now()));
        let weak = Arc::downgrade(&calls);
        let task = match sensor.kind {
            SensorKind::Earshot => tokio::spawn(subscribe(sensor.clone(), weak, tx)),
            SensorKind::Voipmonitor => tokio::spawn(poll(sensor.clone(), weak, tx, asked.clone())),
        };
        Feed {
            sensor,
            calls,
            changed: rx,
            asked,
            task: task.abort_handle(),
        }
    }
}

fn bump(tx: &watch::Sender<u64>) {
    tx.send_modify(|n| *n = n.wrapping_add(1));
}

/// Follows an earshot sensor's `calls` subscription, reconnecting with back-off.
async fn subscribe(sensor: Sensor, calls: Weak<RwLock<SensorCalls>>, tx: watch::Sender<u64>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let result = follow_once(&sensor, &calls, &tx).await;
        let Some(shared) = calls.upgrade() else {
            return;
        };
        let was_live = matches!(read(&shared).status(), Status::Live);
        let e = match result {
            Ok(()) => ManagerError::Protocol("the sensor closed the call feed".into()),
            Err(e) => e,
        };
        tracing::warn!(sensor = sensor.id_sensor, "call feed: {e}");
        write(&shared).fail(e);
        drop(shared);
        bump(&tx);
        if was_live {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One subscription, until it fails or the directory is gone (`Ok`).
async fn follow_once(
    sensor: &Sensor,
    calls: &Weak<RwLock<SensorCalls>>,
    tx: &watch::Sender<u64>,
) -> Result<(), ManagerError> {
    let mut conn = CallsConn::open(sensor).await?;
    {
        let Some(shared) = calls.upgrade() else {
            return Ok(());
        };
        write(&shared).begin();
    }
    while let Some(line) = conn.next_line(FEED_IDLE).await? {
        let Some(shared) = calls.upgrade() else {
            return Ok(());
        };
        let mut c = write(&shared);
        let settled = c.settled();
        c.on_line(line)
            .map_err(|e| ManagerError::Protocol(e.to_string()))?;
        if c.settled() != settled {
            drop(c);
            bump(tx);
        }
    }
    Err(ManagerError::Protocol(
        "the sensor closed the call feed".into(),
    ))
}

/// Polls a VoIPmonitor sensor while pages ask, once per [`POLL_EVERY`] at most.
async fn poll(
    sensor: Sensor,
    calls: Weak<RwLock<SensorCalls>>,
    tx: watch::Sender<u64>,
    asked: Arc<Mutex<Instant>>,
) {
    let mut backoff = POLL_EVERY;
    loop {
        let wanted = lock(&asked).elapsed() < POLL_WHILE_ASKED;
        if !wanted {
            tokio::time::sleep(POLL_EVERY).await;
            if calls.strong_count() == 0 {
                return;
            }
            continue;
        }
        let started = Instant::now();
        let result = manager::list_calls(&sensor, LIST_TIMEOUT).await;
        let Some(shared) = calls.upgrade() else {
            return;
        };
        let wait = match result {
            Ok(list) => {
                write(&shared).replace(list);
                backoff = POLL_EVERY;
                POLL_EVERY.saturating_sub(started.elapsed())
            }
            Err(e) => {
                tracing::warn!(sensor = sensor.id_sensor, "polling calls: {e}");
                write(&shared).fail(e);
                let w = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                w
            }
        };
        drop(shared);
        bump(&tx);
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_line(event: &str, r: &str, caller: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "event": event,
            "call": {"callreference": r, "caller": caller, "called": "2002",
                     "callstate": "ringing", "caller_quality_unknown": null},
        }))
        .expect("json")
    }

    #[test]
    fn a_feed_is_served_once_synced_and_follows_events() {
        let mut s = SensorCalls::new(7);
        s.begin();
        s.on_line(&call_line("snapshot", "0x10", "1001"))
            .expect("line");
        s.on_line(&call_line("snapshot", "0x11", "1002"))
            .expect("line");
        assert!(!s.settled(), "half a table is not served");
        s.on_line(br#"{"event":"synced"}"#).expect("line");
        assert!(s.settled());
        s.on_line(&call_line("new", "0x12", "1003")).expect("line");
        s.on_line(br#"{"event":"changed","callref":"0x10","fields":{"callstate":"answered","lastSIPresponseNum":200}}"#)
            .expect("line");
        s.on_line(br#"{"event":"ended","callref":"0x11"}"#)
            .expect("line");
        s.on_line(br#"{"event":"alive"}"#).expect("line");
        s.on_line(br#"{"event":"something-new"}"#)
            .expect("unknown events are ignored");
        let calls: Vec<(&Value, &Value)> = s.calls().map(|c| (&c.caller, &c.state)).collect();
        assert_eq!(
            calls,
            [
                (&Value::from("1001"), &Value::from("answered")),
                (&Value::from("1003"), &Value::from("ringing")),
            ],
            "in the sensor's order"
        );
        assert_eq!(s.find("0X0010").map(|c| c.sensor_id), Some(7));
        assert!(s.find("0x11").is_none());
    }

    #[test]
    fn a_failed_feed_lists_nothing_and_says_why() {
        let mut s = SensorCalls::new(7);
        s.on_line(&call_line("snapshot", "0x10", "1001"))
            .expect("line");
        s.on_line(br#"{"event":"synced"}"#).expect("line");
        assert!(matches!(
            s.on_line(br#"{"event":"overflow"}"#),
            Err(FeedError::Overflow)
        ));
        assert!(s.on_line(b"not json").is_err());
        s.fail(ManagerError::TokenRefused);
        assert!(s.settled());
        assert!(s.is_empty(), "stale calls are not listed");
        assert!(matches!(s.status(), Status::Down(e) if matches!(**e, ManagerError::TokenRefused)));
        // Reconnected: the new snapshot brings the calls back.
        s.begin();
        s.on_line(&call_line("snapshot", "0x10", "1001"))
            .expect("line");
        assert_eq!(s.len(), 1);
    }

    fn live_sensor(id: i64, refs: &[&str]) -> Followed {
        let mut s = SensorCalls::new(id);
        s.begin();
        for r in refs {
            s.on_line(&call_line("snapshot", r, &format!("caller-{r}")))
                .expect("line");
        }
        s.on_line(br#"{"event":"synced"}"#).expect("line");
        Followed {
            id,
            name: format!("edge-{id}"),
            calls: Arc::new(RwLock::new(s)),
        }
    }

    fn keys(w: &Window) -> Vec<&str> {
        w.rows.iter().map(|r| r.key.as_str()).collect()
    }

    fn query(q: &str, offset: usize, limit: usize) -> WindowQuery {
        WindowQuery {
            q: q.into(),
            offset,
            limit,
        }
    }

    #[test]
    fn a_window_spans_sensors_counts_and_filters() {
        let feeds = [
            live_sensor(1, &["0x1", "0x2", "0x3"]),
            live_sensor(2, &["0xa", "0xb"]),
        ];
        let w = compute_window(&feeds, &query("", 2, 2));
        assert_eq!(w.total, 5);
        assert_eq!(keys(&w), ["1:3", "2:a"], "across the sensors' boundary");
        let w = compute_window(&feeds, &query("", 4, 10));
        assert_eq!(keys(&w), ["2:b"]);
        let w = compute_window(&feeds, &query("", 9, 10));
        assert!(w.rows.is_empty());
        assert_eq!(w.total, 5);
        let w = compute_window(&feeds, &query("caller-0xb", 0, 10));
        assert_eq!((w.total, keys(&w)), (1, vec!["2:b"]));
        let w = compute_window(&feeds, &query("edge-2", 0, 10));
        assert_eq!(
            (w.total, keys(&w)),
            (2, vec!["2:a", "2:b"]),
            "by sensor name"
        );

        // A changed call gets a new rev; the others keep theirs.
        let before = compute_window(&feeds, &query("", 0, 10));
        write(&feeds[1].calls)
            .on_line(br#"{"event":"changed","callref":"0xa","fields":{"duration":5}}"#)
            .expect("line");
        let after = compute_window(&feeds, &query("", 0, 10));
        let changed: Vec<&str> = before
            .rows
            .iter()
            .zip(&after.rows)
            .filter(|(a, b)| a.rev != b.rev)
            .map(|(_, b)| b.key.as_str())
            .collect();
        assert_eq!(changed, ["2:a"]);

        // A sensor that is down is an error, not rows.
        write(&feeds[0].calls).fail(ManagerError::TokenRefused);
        let w = compute_window(&feeds, &query("", 0, 10));
        assert_eq!((w.total, w.errors.len()), (2, 1));
        assert_eq!(w.errors[0].0, 1);
    }

    #[test]
    fn a_poll_replaces_the_table() {
        let mut s = SensorCalls::new(1);
        let view = |r: &str| {
            let v = serde_json::json!({"callreference": r});
            CallView::from_columns(
                1,
                false,
                v.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str(), v)),
            )
        };
        s.replace(vec![view("0x1"), view("0x2")]);
        assert!(s.settled());
        s.replace(vec![view("0x2"), view("0x3")]);
        let refs: Vec<String> = s.calls().map(CallView::key).collect();
        assert_eq!(refs, ["2", "3"]);
    }
}
