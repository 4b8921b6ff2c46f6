//! The pipeline thread: it owns the call engine, takes frames from the sources, feeds
//! listeners, and publishes a snapshot of the call table for the manager to read.
//!
//! Nothing here blocks on anything downstream: listeners are fed with `try_send` and dropped
//! when full, and the manager reads snapshots (an `Arc` swapped under a lock held for a pointer
//! copy) instead of the live table. The only waits are on the input queue, with a timeout.

use crate::counters::SensorCounters;
use crate::listener::{AudioFormat, Gone, Listener};
use crate::rewind::Rewind;
use crate::source::FrameBatch;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use earshot_core::{
    Call, CallId, CallState, CaptureCounters, Config, Engine, Event, Party, RtpPacket, Sink,
};
use earshot_manager::stream_proto::{CallEvent, EndReason, Frame, QualityReport};
use earshot_manager::{CallRef, CallRefGenerator, CallSummary, StreamFrom};
use earshot_wire::Timestamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::Sender;

#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub engine: Config,
    pub sensor_id: Option<i64>,
    /// How much of each call is kept for late listeners.
    pub rewind_ns: i64,
    pub rewind_budget_bytes: usize,
    pub max_listeners: usize,
    pub max_listeners_per_call: usize,
    pub snapshot_interval: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            engine: Config {
                retain_ended: false,
                ..Config::default()
            },
            sensor_id: None,
            rewind_ns: 60 * 1_000_000_000,
            rewind_budget_bytes: 256 << 20,
            max_listeners: 1000,
            max_listeners_per_call: 50,
            snapshot_interval: Duration::from_millis(100),
        }
    }
}

/// The call table as the manager sees it: a copy, at most one snapshot interval old.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub calls: Vec<CallSummary>,
    index: HashMap<CallRef, usize>,
    pub taken_ns: i64,
    pub capture: CaptureCounters,
    pub listeners: usize,
    pub rewind_bytes: usize,
}

impl Snapshot {
    pub fn find(&self, r: CallRef) -> Option<&CallSummary> {
        self.index.get(&r).and_then(|&i| self.calls.get(i))
    }
}

/// What the pipeline shares with the rest of the sensor.
pub struct Shared {
    pub counters: Arc<SensorCounters>,
    snapshot: Mutex<Arc<Snapshot>>,
    pub started: Instant,
    pub active_listeners: AtomicU64,
}

impl Shared {
    pub fn new(counters: Arc<SensorCounters>) -> Arc<Self> {
        Arc::new(Shared {
            counters,
            snapshot: Mutex::new(Arc::new(Snapshot::default())),
            started: Instant::now(),
            active_listeners: AtomicU64::new(0),
        })
    }
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
    fn publish(&self, s: Snapshot) {
        let s = Arc::new(s);
        match self.snapshot.lock() {
            Ok(mut slot) => *slot = s,
            Err(poisoned) => *poisoned.into_inner() = s,
        }
    }
}

/// Requests from the manager to the pipeline.
pub enum Control {
    Subscribe {
        id: u64,
        callref: CallRef,
        format: AudioFormat,
        from: StreamFrom,
        tx: Sender<Frame>,
    },
    Unsubscribe {
        id: u64,
    },
    /// Tell every listener the sensor is going away, then stop.
    Shutdown,
}

/// Starts the pipeline thread. It runs until the frame queue is closed (all sources ended and
/// dropped their senders) or a `Shutdown` arrives.
pub fn spawn(
    cfg: PipelineConfig,
    frames: Receiver<FrameBatch>,
    control: Receiver<Control>,
    shared: Arc<Shared>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("earshot-pipeline".into())
        .spawn(move || {
            let mut worker = Worker::new(cfg, shared);
            worker.run(&frames, &control);
        })
}

struct Worker {
    cfg: PipelineConfig,
    engine: Engine,
    hub: Hub,
    shared: Arc<Shared>,
    refs_gen: CallRefGenerator,
    clock: Clock,
}

/// Everything the engine's sink touches, kept apart from the engine so both can be borrowed.
struct Hub {
    refs: HashMap<CallId, CallRef>,
    by_ref: HashMap<CallRef, CallId>,
    listeners: HashMap<CallId, Vec<Listener>>,
    rewind: Rewind,
    counters: Arc<SensorCounters>,
    new_calls: Vec<CallId>,
    listener_count: usize,
}

/// Capture-time clock that keeps moving between packets: the last capture time plus the wall
/// time since it arrived, so audio is released during silences too.
struct Clock {
    last_capture: Option<(i64, Instant)>,
}

impl Clock {
    fn now_ns(&self) -> i64 {
        match self.last_capture {
            Some((ts, at)) => ts + at.elapsed().as_nanos() as i64,
            None => wall_ns(),
        }
    }
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl Worker {
    fn new(cfg: PipelineConfig, shared: Arc<Shared>) -> Self {
        let refs_gen = CallRefGenerator::new()
            .unwrap_or_else(|_| CallRefGenerator::from_seed(wall_ns() as u64));
        Worker {
            engine: Engine::new(cfg.engine.clone()),
            hub: Hub {
                refs: HashMap::new(),
                by_ref: HashMap::new(),
                listeners: HashMap::new(),
                rewind: Rewind::new(cfg.rewind_ns, cfg.rewind_budget_bytes),
                counters: shared.counters.clone(),
                new_calls: Vec::new(),
                listener_count: 0,
            },
            cfg,
            shared,
            refs_gen,
            clock: Clock { last_capture: None },
        }
    }

    fn run(&mut self, frames: &Receiver<FrameBatch>, control: &Receiver<Control>) {
        let mut last_snapshot = Instant::now();
        let mut last_second = Instant::now();
        loop {
            match frames.recv_timeout(Duration::from_millis(10)) {
                Ok(batch) => self.process(batch),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.end_all(EndReason::ServerShutdown, "capture ended");
                    self.publish();
                    return;
                }
            }
            while let Ok(msg) = control.try_recv() {
                if !self.control(msg) {
                    self.end_all(EndReason::ServerShutdown, "sensor shutting down");
                    self.publish();
                    return;
                }
            }
            self.poll_listeners();
            if last_second.elapsed() >= Duration::from_secs(1) {
                last_second = Instant::now();
                self.engine
                    .expire(Timestamp(self.clock.now_ns()), &mut self.hub);
                self.send_quality();
            }
            if last_snapshot.elapsed() >= self.cfg.snapshot_interval
                || !self.hub.new_calls.is_empty()
            {
                last_snapshot = Instant::now();
                self.publish();
            }
        }
    }

    fn process(&mut self, batch: FrameBatch) {
        let n = batch.len() as u64;
        for f in &batch {
            self.clock.last_capture = Some((f.ts.nanos(), Instant::now()));
            self.engine
                .handle_frame(f.ts, f.link, &f.data, &mut self.hub);
        }
        for id in std::mem::take(&mut self.hub.new_calls) {
            let r = self.refs_gen.next_ref();
            self.hub.refs.insert(id, r);
            self.hub.by_ref.insert(r, id);
        }
        SensorCounters::add(&self.shared.counters.processed, n);
    }

    fn control(&mut self, msg: Control) -> bool {
        match msg {
            Control::Subscribe {
                id,
                callref,
                format,
                from,
                tx,
            } => self.subscribe(id, callref, format, from, tx),
            Control::Unsubscribe { id } => {
                for ls in self.hub.listeners.values_mut() {
                    ls.retain(|l| l.id != id);
                }
                self.hub.recount();
            }
            Control::Shutdown => return false,
        }
        true
    }

    fn subscribe(
        &mut self,
        id: u64,
        callref: CallRef,
        format: AudioFormat,
        from: StreamFrom,
        tx: Sender<Frame>,
    ) {
        let refuse = |detail: &str| {
            let end = earshot_manager::stream_proto::EndFrame {
                reason: EndReason::Error,
                detail: Some(detail.into()),
            };
            let _ = tx.try_send(Frame::End(end));
        };
        let Some(&call_id) = self.hub.by_ref.get(&callref) else {
            return refuse("call not found");
        };
        let per_call = self.hub.listeners.get(&call_id).map_or(0, Vec::len);
        if self.hub.listener_count >= self.cfg.max_listeners
            || per_call >= self.cfg.max_listeners_per_call
        {
            return refuse("too many listeners");
        }
        let mut listener = match Listener::new(id, format, tx.clone()) {
            Ok(l) => l,
            Err(e) => return refuse(&e),
        };
        let now = self.clock.now_ns();
        let since = match from {
            StreamFrom::Now => Timestamp(i64::MAX),
            StreamFrom::Start => Timestamp(i64::MIN),
            StreamFrom::SecondsAgo(s) => Timestamp(now - i64::from(s) * 1_000_000_000),
        };
        for p in self.hub.rewind.since(call_id, since) {
            if listener.push(&p.as_rtp(call_id)).is_err() {
                SensorCounters::add(&self.shared.counters.listener_drops, 1);
                return;
            }
        }
        self.hub
            .listeners
            .entry(call_id)
            .or_default()
            .push(listener);
        self.hub.recount();
        self.shared
            .active_listeners
            .store(self.hub.listener_count as u64, Ordering::Relaxed);
    }

    fn poll_listeners(&mut self) {
        if self.hub.listener_count == 0 {
            return;
        }
        let now = self.clock.now_ns();
        let counters = &self.shared.counters;
        for ls in self.hub.listeners.values_mut() {
            ls.retain_mut(|l| keep(l.poll(now), counters));
        }
        self.hub.recount();
        self.shared
            .active_listeners
            .store(self.hub.listener_count as u64, Ordering::Relaxed);
    }

    fn send_quality(&mut self) {
        let now = self.clock.now_ns();
        let counters = &self.shared.counters;
        for (id, ls) in self.hub.listeners.iter_mut() {
            let Some(call) = self.engine.call(*id) else {
                continue;
            };
            for report in quality(call, now) {
                ls.retain_mut(|l| keep(l.send(Frame::Quality(report.clone())), counters));
            }
        }
        self.hub.recount();
    }

    fn end_all(&mut self, reason: EndReason, detail: &str) {
        for (_, mut ls) in self.hub.listeners.drain() {
            for l in &mut ls {
                l.finish(reason.clone(), Some(detail.to_string()));
            }
        }
        self.hub.recount();
    }

    fn publish(&mut self) {
        let now = self.clock.now_ns();
        let mut calls = Vec::new();
        let mut index = HashMap::new();
        for call in self.engine.calls() {
            let Some(&r) = self.hub.refs.get(&call.id) else {
                continue;
            };
            index.insert(r, calls.len());
            calls.push(CallSummary::from_call(call, r, self.cfg.sensor_id, now));
        }
        self.shared.publish(Snapshot {
            calls,
            index,
            taken_ns: now,
            capture: self.engine.counters(),
            listeners: self.hub.listener_count,
            rewind_bytes: self.hub.rewind.bytes(),
        });
    }
}

/// Keeps a listener unless it fell behind or went away; counts the ones that fell behind.
fn keep(result: Result<(), Gone>, counters: &SensorCounters) -> bool {
    match result {
        Ok(()) => true,
        Err(Gone::Overflow) => {
            SensorCounters::add(&counters.listener_drops, 1);
            false
        }
        Err(Gone::Closed) => false,
    }
}

/// Per-party quality of a call's newest stream for each party.
fn quality(call: &Call, now: i64) -> Vec<QualityReport> {
    [Party::Caller, Party::Called]
        .into_iter()
        .filter_map(|party| {
            let s = call
                .party_streams(party)
                .max_by_key(|s| s.stats.last_seen_ns)?;
            Some(QualityReport {
                ts_ns: now,
                leg: party.as_str().to_string(),
                ssrc: s.key.ssrc,
                packets: s.stats.packets,
                lost: s.stats.lost().max(0) as u64,
                loss_pct: s.stats.loss_percent(),
                jitter_ms: s.stats.jitter_ms(),
                mos: s.mos(),
            })
        })
        .collect()
}

impl Hub {
    fn recount(&mut self) {
        self.listeners.retain(|_, ls| !ls.is_empty());
        self.listener_count = self.listeners.values().map(Vec::len).sum();
    }

    fn broadcast(&mut self, call: CallId, frame: &Frame) {
        let counters = &self.counters;
        if let Some(ls) = self.listeners.get_mut(&call) {
            ls.retain_mut(|l| keep(l.send(frame.clone()), counters));
        }
    }

    fn finish_call(&mut self, call: CallId, ended: CallEvent) {
        self.broadcast(call, &Frame::Event(ended));
        if let Some(mut ls) = self.listeners.remove(&call) {
            for l in &mut ls {
                l.finish(EndReason::CallEnded, None);
            }
        }
        self.recount();
    }
}

impl Sink for Hub {
    fn rtp(&mut self, p: &RtpPacket<'_>) {
        self.rewind.push(p);
        let counters = &self.counters;
        if let Some(ls) = self.listeners.get_mut(&p.call) {
            ls.retain_mut(|l| keep(l.push(p), counters));
        }
    }

    fn event(&mut self, event: &Event, call: &Call) {
        match event {
            Event::CallNew(id) => self.new_calls.push(*id),
            Event::CallState(id, state) => {
                let ts_ns = call.last_packet.nanos();
                match state {
                    CallState::Answered => {
                        let code = call.sip_code.unwrap_or(200);
                        self.broadcast(*id, &Frame::Event(CallEvent::Answered { ts_ns, code }));
                    }
                    s if s.is_final() || call.timed_out => {
                        let ended = CallEvent::Ended {
                            ts_ns,
                            state: s.as_str().to_string(),
                            code: call.sip_code,
                        };
                        self.finish_call(*id, ended);
                    }
                    _ => {}
                }
            }
            Event::MediaChanged(id) => {
                let ts_ns = call.last_packet.nanos();
                let ev = if call.on_hold {
                    CallEvent::Hold { ts_ns }
                } else {
                    CallEvent::Reinvite { ts_ns, codec: None }
                };
                self.broadcast(*id, &Frame::Event(ev));
            }
            Event::CallRemoved(id) => {
                let ended = CallEvent::Ended {
                    ts_ns: call.last_packet.nanos(),
                    state: call.state.as_str().to_string(),
                    code: call.sip_code,
                };
                self.finish_call(*id, ended);
                self.rewind.forget(*id);
                if let Some(r) = self.refs.remove(id) {
                    self.by_ref.remove(&r);
                }
            }
        }
    }
}
