//! The pipeline thread: it owns the call engine, takes frames from the sources, feeds
//! listeners, and publishes a snapshot of the call table for the manager to read.
//!
//! Nothing here blocks on anything downstream: listeners are fed with `try_send` and dropped
//! when full, and the manager reads snapshots (an `Arc` swapped without a lock, `arc-swap`)
//! instead of the live table. The only waits are on the input queue, with a timeout.

use crate::admission::{Gate, ListenLimits};
use crate::audit::AuditLog;
use crate::clock::BoundedClock;
use crate::counters::SensorCounters;
use crate::fanout::{self, AudioMsg, CallGone, Handoff, Limits};
use crate::listener::AudioFormat;
use crate::queue::{FrameTx, MemoryBudget};
use crate::rewind::{PacketBatch, RewindLimits};
use crate::source::FrameBatch;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender as CbSender};
use earshot_core::{
    Call, CallKey, CallState, CaptureCounters, Config, Engine, Event, Party, QualityUnknown,
    RtpPacket, Sink,
};
use earshot_manager::stream_proto::{CallEvent, EndReason, Frame, QualityReport};
use earshot_manager::{CallRef, CallRefGenerator, CallSummary, Listing, StreamFrom};
use earshot_wire::{reuse_frame_list, Timestamp};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// HEP envelope times further than this from the time of receipt are replaced by it (and
/// counted): agents keep their clocks within milliseconds by NTP, and a time far off is a
/// broken clock or a forgery that would put calls in the future or the past.
pub const HEP_MAX_SKEW_NS: i64 = 10 * 1_000_000_000;

/// Messages queued for the fan-out thread: packet batches (bounded in bytes by
/// [`HANDOFF_BYTES`]) and listeners' events. crossbeam allocates every slot up front.
const AUDIO_QUEUE: usize = 8_192;
/// Bytes of packet records on their way to the fan-out at most: a third of a second of
/// 10,000 G.711 calls, so a fan-out busy for that long (a listener's rewind starting) loses
/// nothing, and one that stalls costs this much memory, not more.
const HANDOFF_BYTES: usize = 64 << 20;
/// A batch is handed over when it holds this much, or [`HANDOFF_LATENCY_NS`] after its first
/// packet, whichever comes first.
const BATCH_BYTES: usize = 256 << 10;
/// The longest packets wait in the pipeline's batch while frames keep coming, before the
/// fan-out gets them (their listeners' playout holds 40–400 ms); once the frames queue is
/// empty the batch goes at once ([`Worker::on_input_drained`]). Handing over after every
/// frame batch woke the fan-out thread several times per ring block, thousands of times a
/// second; on a virtual machine each cross-core wake-up costs more than the work it brings
/// (issue 13: a sixth of both threads' CPU at 50 k packets/s went to switching and
/// yielding).
const HANDOFF_LATENCY_NS: i64 = 5_000_000;
/// Formats and ended calls kept while the fan-out's queue is full, at most; past it they are
/// dropped and counted (`audio_drops`), and at the next tick the fan-out is told which calls
/// still exist and all their formats again (see [`Worker::resync_fanout`]).
const MAX_METADATA: usize = 1 << 20;
/// Read batches kept for reuse: their buffers have grown to a batch's size.
const SPARE_BATCHES: usize = 16;

#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub engine: Config,
    pub sensor_id: Option<i64>,
    /// How much of each call is kept for late listeners.
    pub rewind_ns: i64,
    pub rewind_budget_bytes: usize,
    /// How much rewind one call may hold, so one call cannot take the whole budget.
    pub rewind_call_bytes: usize,
    pub max_listeners: usize,
    pub max_listeners_per_call: usize,
    pub snapshot_interval: Duration,
    /// How listeners' decoders read payloads (`[codecs]`: the G.726 bit order).
    pub decoder: earshot_audio::DecoderOptions,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            engine: Config {
                retain_ended: false,
                sip_log_messages: 32,
                hep_max_skew_ns: Some(HEP_MAX_SKEW_NS),
                // A live listing must not show dead INVITEs as "calling" for the idle timeout.
                unanswered_timeout_ns: Some(32 * 1_000_000_000),
                ..Config::default()
            },
            sensor_id: None,
            rewind_ns: 60 * 1_000_000_000,
            rewind_budget_bytes: 256 << 20,
            rewind_call_bytes: 16 << 20,
            max_listeners: 1000,
            max_listeners_per_call: 50,
            snapshot_interval: Duration::from_millis(100),
            decoder: earshot_audio::DecoderOptions::default(),
        }
    }
}

/// The call table as the manager sees it: a version at most one snapshot interval old. The
/// table is persistent ([`Listing`]): a version shares every unchanged chunk of calls with
/// the pipeline's working copy and the versions before it, so publishing costs what changed.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub calls: Listing,
    pub taken_ns: i64,
    pub capture: CaptureCounters,
    pub listeners: usize,
    pub rewind_bytes: usize,
    /// RTP streams the engine is tracking now.
    pub active_streams: usize,
}

impl Snapshot {
    pub fn find(&self, r: CallRef) -> Option<&CallSummary> {
        self.calls.find(r).map(|c| &**c)
    }
}

/// What the pipeline shares with the rest of the sensor.
pub struct Shared {
    pub counters: Arc<SensorCounters>,
    snapshot: arc_swap::ArcSwap<Snapshot>,
    pub started: Instant,
    pub active_listeners: AtomicU64,
    /// The listener limits and the counts they are checked against.
    pub listen: ListenLimits,
    pub gate: Gate,
    /// Bytes of frames queued for all listeners.
    pub listener_memory: Arc<MemoryBudget>,
    pub audit: AuditLog,
}

impl Shared {
    /// Default listener limits, no audit log.
    pub fn new(counters: Arc<SensorCounters>) -> Arc<Self> {
        Shared::with(counters, ListenLimits::default(), AuditLog::disabled())
    }

    pub fn with(counters: Arc<SensorCounters>, listen: ListenLimits, audit: AuditLog) -> Arc<Self> {
        Arc::new(Shared {
            counters,
            snapshot: arc_swap::ArcSwap::from_pointee(Snapshot::default()),
            started: Instant::now(),
            active_listeners: AtomicU64::new(0),
            listen,
            gate: Gate::new(listen),
            listener_memory: MemoryBudget::new(listen.memory_bytes),
            audit,
        })
    }
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
    fn publish(&self, s: Snapshot) {
        self.snapshot.store(Arc::new(s));
    }
}

/// What `active_call_info` needs from the engine beyond the published summary.
#[derive(Default)]
pub struct CallDetail {
    pub sip: Vec<earshot_core::SipRecord>,
    pub quality: Vec<earshot_manager::quality::StreamTimeline>,
}

/// Requests from the manager to the pipeline.
pub enum Control {
    Subscribe {
        id: u64,
        callref: CallRef,
        format: AudioFormat,
        from: StreamFrom,
        tx: FrameTx,
    },
    Unsubscribe {
        id: u64,
    },
    /// The SIP messages the engine kept for a call and its streams' quality over time
    /// (`active_call_info`).
    SipLog {
        callref: CallRef,
        reply: tokio::sync::oneshot::Sender<CallDetail>,
    },
    /// New whole lines of a TLS key log (`--tls-keylog`, see `keylog_watch.rs`): fed to the
    /// engine's key log, then the SIP-over-TLS records that waited for them are read.
    KeyLog(Vec<u8>),
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
    let (audio_tx, audio_rx) = crossbeam_channel::bounded(AUDIO_QUEUE);
    let (gone_tx, gone_rx) = crossbeam_channel::bounded(4096);
    let (spares_tx, spares_rx) = crossbeam_channel::bounded(SPARE_BATCHES);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let handoff = Handoff {
        spares: spares_tx,
        in_flight: in_flight.clone(),
    };
    fanout::spawn(
        audio_rx,
        gone_tx,
        handoff,
        shared.clone(),
        fanout_limits(&cfg),
    )?;
    let link = FanoutLink {
        audio: audio_tx,
        spares: spares_rx,
        in_flight,
    };
    std::thread::Builder::new()
        .name("earshot-pipeline".into())
        .spawn(move || {
            let mut worker = Worker::new(cfg, shared, link);
            worker.run(&frames, &control, &gone_rx);
        })
}

/// What the fan-out thread enforces, from the pipeline's configuration.
pub(crate) fn fanout_limits(cfg: &PipelineConfig) -> Limits {
    Limits {
        max_listeners: cfg.max_listeners,
        max_listeners_per_call: cfg.max_listeners_per_call,
        decoder: cfg.decoder,
        rewind: RewindLimits {
            keep_ns: cfg.rewind_ns,
            budget_bytes: cfg.rewind_budget_bytes,
            per_call_bytes: cfg.rewind_call_bytes,
        },
    }
}

/// The pipeline's side of the hand-off to the fan-out thread.
pub(crate) struct FanoutLink {
    pub audio: CbSender<AudioMsg>,
    /// Batches the fan-out has read, for reuse.
    pub spares: Receiver<PacketBatch>,
    /// Bytes of packet records handed over and not yet taken.
    pub in_flight: Arc<AtomicUsize>,
}

struct Worker {
    cfg: PipelineConfig,
    engine: Engine,
    hub: Hub,
    shared: Arc<Shared>,
    refs_gen: CallRefGenerator,
    clock: Clock,
    /// The allocation of the frame list each batch is handed to the engine as.
    spare_frames: Vec<earshot_wire::Frame<'static>>,
    /// A call started since the last publish: publish now, not at the next interval.
    new_since_publish: bool,
    /// What the last publish did, for tests and benchmarks.
    last_publish: PublishStats,
    /// When (`Now::mono_ns`) the table was last published and the calls last aged.
    published_at: i64,
    expired_at: i64,
    /// The sensor's own drops (kernel + internal) and the capture time when last looked at:
    /// when they rose, the engine is told those seconds may be missing packets
    /// (`Engine::note_capture_gap`), so the calls' loss then counts as capture loss.
    drops_seen: u64,
    drops_seen_at: i64,
}

/// How the summaries of one publish were made. Only the calls with a SIP event and one
/// sweep bucket's calls are looked at; the rest are not counted, they cost nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Swept and unchanged: the same `Arc`.
    pub reused: usize,
    /// Swept: new numbers, text shared with the previous summary.
    pub refreshed: usize,
    /// Built from the call (new, or SIP changed it).
    pub rebuilt: usize,
}

/// A call's numbers (packets, loss, jitter, durations) are brought up to date in the
/// published table once a second: each publish sweeps the next of `1 s / interval` runs of
/// the table's chunks, so the work per publish is a fraction of the calls however much RTP
/// arrives, and SIP events (new calls, state changes) are published at once. Runs of whole
/// chunks, not one call in every chunk, so that a publish copies a tenth of the table's
/// chunks and a `calls` subscriber compares only those (issue 13: the sweep by call id
/// copied every chunk ten times a second).
const SWEEP_PERIOD: Duration = Duration::from_secs(1);

fn sweep_runs(interval: Duration) -> usize {
    let n = SWEEP_PERIOD.as_nanos() / interval.as_nanos().max(1);
    (n as usize).clamp(1, 100)
}

/// Whether the pipeline publishes a snapshot now: every interval, and soon after a new call
/// so a client that just saw its INVITE can list (and listen to) it. "Soon" is a tenth of the
/// interval after the previous publish: in a burst of INVITEs every batch has a new call, and
/// publishing after each one would cost the whole table per batch.
fn publish_due(since_last: Duration, interval: Duration, new_call: bool) -> bool {
    since_last >= interval || (new_call && since_last >= interval / 10)
}

/// Everything the engine's sink touches, kept apart from the engine so both can be borrowed.
struct Hub {
    refs: HashMap<CallKey, CallRef>,
    by_ref: HashMap<CallRef, CallKey>,
    /// Every call's packets go to the fan-out (it keeps the rewind); without rewind, only
    /// listened calls'.
    keep_rewind: bool,
    /// The packets, formats and ended calls not yet handed to the fan-out.
    batch: PacketBatch,
    /// How many of each call's formats the fan-out has been sent (calls it knows of).
    formats_sent: HashMap<CallKey, usize>,
    /// Formats and ended calls were dropped: the fan-out needs the whole picture again.
    resync: bool,
    /// When (monotonic ns) the oldest packet still in `batch` was put there.
    batch_since: Option<i64>,
    /// [`MAX_METADATA`], lowered by tests.
    max_metadata: usize,
    counters: Arc<SensorCounters>,
    new_calls: Vec<CallKey>,
    /// Calls the engine reported an event for since the last publish: their summaries are
    /// rebuilt from the call, text included.
    dirty: HashSet<CallKey>,
    /// The pipeline's working copy of the published table.
    listing: Listing,
    /// Publishes per sweep of the table (see [`SWEEP_PERIOD`]), and the chunk the next one
    /// starts at.
    sweep_runs: usize,
    sweep_from: u64,
    /// The fan-out thread, and the calls it has listeners for, each with the ticket of the
    /// latest subscription sent to it.
    link: FanoutLink,
    listened: HashMap<CallKey, u64>,
    next_ticket: u64,
    /// Calls already counted as ended, so a call is counted once however it goes.
    ended: HashSet<CallKey>,
}

/// Farthest one frame moves the pipeline's clock forward: a replay at full speed stays within
/// it frame by frame, a forged or corrupt capture time does not get further.
const CLOCK_STEP_NS: i64 = 1_000_000_000;

/// The clocks as the thread read them when it handed the pipeline its latest input. The
/// pipeline never reads a clock itself, so a test drives it with whatever time it likes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Now {
    /// Monotonic nanoseconds since the pipeline started.
    pub mono_ns: i64,
    /// Wall-clock nanoseconds since 1970: the time before any frame has been seen.
    pub wall_ns: i64,
}

impl Now {
    /// Both clocks, read now (the thread's job).
    fn read(started: Instant) -> Self {
        Now {
            mono_ns: i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX),
            wall_ns: Timestamp::now().nanos(),
        }
    }
}

/// The pipeline's "now" (expiry, listings, rewind): capture time that keeps moving between
/// packets, monotonic, and moved by at most [`CLOCK_STEP_NS`] per frame (see
/// [`crate::clock`]). Before the first frame, the wall clock.
struct Clock {
    bounded: BoundedClock,
    counters: Arc<SensorCounters>,
    read: Now,
}

impl Clock {
    fn new(counters: Arc<SensorCounters>) -> Self {
        Clock {
            bounded: BoundedClock::monotonic(CLOCK_STEP_NS),
            counters,
            read: Now::default(),
        }
    }

    fn now_ns(&self) -> i64 {
        self.bounded
            .now(self.read.mono_ns)
            .unwrap_or(self.read.wall_ns)
    }

    fn observe(&mut self, frames: &[earshot_wire::Frame<'_>]) {
        let mono = self.read.mono_ns;
        let before = self.bounded.clamped();
        for f in frames {
            self.bounded.observe(f.ts.nanos(), mono);
        }
        let clamped = self.bounded.clamped() - before;
        if clamped > 0 {
            SensorCounters::add(&self.counters.clock_clamped, clamped);
        }
    }
}

impl Worker {
    fn new(cfg: PipelineConfig, shared: Arc<Shared>, link: FanoutLink) -> Self {
        let refs_gen = CallRefGenerator::new()
            .unwrap_or_else(|_| CallRefGenerator::from_seed(Timestamp::now().nanos() as u64));
        let clock = Clock::new(shared.counters.clone());
        Worker {
            engine: Engine::new(cfg.engine.clone()),
            hub: Hub {
                refs: HashMap::new(),
                by_ref: HashMap::new(),
                keep_rewind: cfg.rewind_ns > 0 && cfg.rewind_budget_bytes > 0,
                batch: PacketBatch::default(),
                formats_sent: HashMap::new(),
                resync: false,
                batch_since: None,
                max_metadata: MAX_METADATA,
                counters: shared.counters.clone(),
                new_calls: Vec::new(),
                dirty: HashSet::new(),
                listing: Listing::default(),
                sweep_runs: sweep_runs(cfg.snapshot_interval),
                sweep_from: 0,
                link,
                listened: HashMap::new(),
                next_ticket: 0,
                ended: HashSet::new(),
            },
            cfg,
            shared,
            refs_gen,
            clock,
            spare_frames: Vec::new(),
            new_since_publish: false,
            last_publish: PublishStats::default(),
            published_at: 0,
            expired_at: 0,
            drops_seen: 0,
            drops_seen_at: 0,
        }
    }

    /// The thread: it only moves messages to the `on_*` methods and reads the clocks.
    fn run(
        &mut self,
        frames: &Receiver<FrameBatch>,
        control: &Receiver<Control>,
        gone: &Receiver<CallGone>,
    ) {
        let started = Instant::now();
        loop {
            match frames.recv_timeout(Duration::from_millis(10)) {
                Ok(batch) => {
                    self.on_batch(batch, Now::read(started));
                    if frames.is_empty() {
                        self.on_input_drained();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.on_input_closed(Now::read(started));
                    return;
                }
            }
            while let Ok(msg) = control.try_recv() {
                if !self.on_control(msg, Now::read(started)) {
                    return;
                }
            }
            while let Ok(g) = gone.try_recv() {
                self.on_gone(g);
            }
            self.on_tick(Now::read(started));
        }
    }

    /// A batch of captured frames.
    pub(crate) fn on_batch(&mut self, batch: FrameBatch, now: Now) {
        self.clock.read = now;
        self.process(batch);
    }

    /// Every frame queued so far has been processed: what is batched for the fan-out goes now,
    /// one hand-off for a burst of frame batches (a ring block's worth) instead of one each.
    pub(crate) fn on_input_drained(&mut self) {
        self.hub.flush();
    }

    /// A request from the manager; false when the pipeline has stopped (`Shutdown`: every
    /// listener was told and the last table published).
    pub(crate) fn on_control(&mut self, msg: Control, now: Now) -> bool {
        self.clock.read = now;
        if self.control(msg) {
            return true;
        }
        self.finish(EndReason::ServerShutdown, "sensor shutting down");
        false
    }

    /// Every source has ended: listeners are told, the last table is published.
    pub(crate) fn on_input_closed(&mut self, now: Now) {
        self.clock.read = now;
        self.finish(EndReason::ServerShutdown, "capture ended");
    }

    /// The fan-out has no listener left on a call.
    pub(crate) fn on_gone(&mut self, gone: CallGone) {
        self.hub.forget_listened(gone);
    }

    /// Time passed: calls are aged once a second (and listeners sent their quality), the
    /// table published when due.
    pub(crate) fn on_tick(&mut self, now: Now) {
        self.clock.read = now;
        if now.mono_ns.saturating_sub(self.expired_at) >= 1_000_000_000 {
            self.expired_at = now.mono_ns;
            self.note_own_drops();
            self.engine
                .expire(Timestamp(self.clock.now_ns()), &mut self.hub);
            crate::memory::after_expire(self.engine.table_sizes().calls);
            self.send_quality();
            // Calls the expiry removed are forgotten by the fan-out now, not at the next frame.
            self.hub.flush();
        }
        if self.hub.resync {
            self.resync_fanout();
        }
        self.hub.flush_when_due(now.mono_ns);
        let since = now.mono_ns.saturating_sub(self.published_at).max(0);
        if self.maybe_publish(Duration::from_nanos(since as u64)) {
            self.published_at = now.mono_ns;
        }
    }

    /// Tells the engine about drops of the sensor's own since the last look (once a second).
    fn note_own_drops(&mut self) {
        let c = &self.shared.counters;
        let drops = SensorCounters::get(&c.kernel_drops) + SensorCounters::get(&c.internal_drops);
        let now = self.clock.now_ns();
        if drops > self.drops_seen {
            // The drops happened since the last look, or up to a second before it: libpcap's
            // counters are read once a second (`live::STATS_INTERVAL`). A first look has no
            // start, so the second before it stands for it.
            let last = if self.drops_seen_at > 0 {
                self.drops_seen_at
            } else {
                now
            };
            let from = last.saturating_sub(1_000_000_000);
            self.engine
                .note_capture_gap(Timestamp(from), Timestamp(now), drops - self.drops_seen);
        }
        self.drops_seen = drops;
        self.drops_seen_at = now;
    }

    /// After the hand-off dropped formats and ended calls (a fan-out stalled through a million
    /// of them), tells the fan-out which calls still exist, so that it frees the others'
    /// rewind, and every call's formats again, so that it can read their packets. O(calls),
    /// once per such loss; if this is lost too, the next tick sends it again.
    fn resync_fanout(&mut self) {
        self.hub.resync = false;
        let calls = self.engine.calls();
        let mut live: Vec<CallKey> = calls.iter().map(|c| c.id).collect();
        live.sort_unstable();
        self.hub.batch.retain_only(live);
        for call in calls {
            if self.hub.feeds_fanout(call.id) {
                self.hub.sync_formats(call);
            }
        }
        self.hub.flush();
    }

    fn finish(&mut self, reason: EndReason, detail: &str) {
        self.end_all(reason, detail);
        self.publish();
    }

    /// Publishes when [`publish_due`]; true when it did.
    fn maybe_publish(&mut self, since_last: Duration) -> bool {
        let due = publish_due(
            since_last,
            self.cfg.snapshot_interval,
            self.new_since_publish,
        );
        if due {
            self.publish();
        }
        due
    }

    fn process(&mut self, batch: FrameBatch) {
        let n = batch.len() as u64;
        let mut frames = reuse_frame_list(std::mem::take(&mut self.spare_frames));
        frames.extend(batch.frames());
        self.clock.observe(&frames);
        self.engine.handle_frames(&frames, &mut self.hub);
        self.spare_frames = reuse_frame_list(frames);
        self.hub.flush_when_due(self.clock.read.mono_ns);
        self.register_new_calls();
        SensorCounters::add(&self.shared.counters.processed, n);
    }

    /// Gives the calls the engine started a reference each, and asks for a publish.
    fn register_new_calls(&mut self) {
        for id in self.hub.new_calls.drain(..) {
            let r = self.refs_gen.next_ref();
            self.hub.refs.insert(id, r);
            self.hub.by_ref.insert(r, id);
            self.new_since_publish = true;
        }
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
            Control::Unsubscribe { id } => self.hub.send_audio(AudioMsg::Unsubscribe { id }),
            Control::SipLog { callref, reply } => {
                let call = self
                    .hub
                    .by_ref
                    .get(&callref)
                    .and_then(|id| self.engine.call(*id));
                let detail = CallDetail {
                    sip: call.map(|c| c.sip_log.clone()).unwrap_or_default(),
                    quality: call
                        .map(|c| crate::summary::timelines(c, self.engine.capture_gaps()))
                        .unwrap_or_default(),
                };
                let _ = reply.send(detail);
            }
            Control::KeyLog(lines) => {
                self.engine.key_log_mut().feed(&lines);
                self.engine.read_waiting_tls(&mut self.hub);
                self.register_new_calls();
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
        tx: FrameTx,
    ) {
        let Some(&call_id) = self.hub.by_ref.get(&callref) else {
            return end_listener(&tx, EndReason::Error, Some("call not found"));
        };
        let call = self.engine.call(call_id);
        // A call that already ended (lingering in the table) gets no more audio: a listener
        // from its start (or its last seconds, counted back from its last packet) hears what
        // the rewind kept and then ends; one from now, or without rewind, ends at once
        // instead of waiting forever.
        let ended = call
            .filter(|c| c.state.is_final())
            .map(|c| CallEvent::Ended {
                ts_ns: c.last_packet.nanos(),
                state: c.state.as_str().to_string(),
                code: c.sip_code,
            });
        if ended.is_some() && (from == StreamFrom::Now || !self.hub.keep_rewind) {
            return end_listener(&tx, EndReason::CallEnded, None);
        }
        // The listener limits were checked by the connection before it asked. The fan-out
        // takes the rewind from its store: everything handed over before this message.
        if let Some(call) = call {
            self.hub.sync_formats(call);
        }
        self.hub.flush();
        let ticket = self.hub.next_ticket;
        self.hub.next_ticket += 1;
        let now_ns = match &ended {
            Some(CallEvent::Ended { ts_ns, .. }) => *ts_ns,
            _ => self.clock.now_ns(),
        };
        let msg = AudioMsg::Subscribe {
            call: call_id,
            id,
            ticket,
            format,
            from,
            now_ns,
            on_hold: ended.is_none() && call.is_some_and(|c| c.on_hold),
            tx: tx.clone(),
        };
        if self.hub.link.audio.try_send(msg).is_err() {
            return end_listener(&tx, EndReason::Error, Some("sensor busy: try again"));
        }
        match ended {
            // Nothing more will come: the fan-out ends the listener once its replay has
            // played, as for a call that ends while a replay plays.
            Some(event) => {
                let msg = AudioMsg::Ended {
                    call: call_id,
                    event,
                };
                if self.hub.link.audio.try_send(msg).is_err() {
                    end_listener(&tx, EndReason::Error, Some("sensor busy: try again"));
                }
            }
            None => {
                self.hub.listened.insert(call_id, ticket);
            }
        }
    }

    fn send_quality(&mut self) {
        let now = self.clock.now_ns();
        let listened: Vec<CallKey> = self.hub.listened.keys().copied().collect();
        for id in listened {
            let Some(call) = self.engine.call(id) else {
                continue;
            };
            // The hold state once a second too: a listener's status follows the call even if
            // a hold or resume event was lost to a full queue.
            self.hub.send_audio(AudioMsg::OnHold {
                call: id,
                on_hold: call.on_hold,
            });
            for report in quality(call, now) {
                self.hub.send_audio(AudioMsg::Broadcast {
                    call: id,
                    frame: Frame::Quality(report),
                });
            }
        }
    }

    fn end_all(&mut self, reason: EndReason, detail: &str) {
        // A blocking send, bounded by the fan-out's own loop: this is shutdown, not capture.
        let msg = AudioMsg::EndAll {
            reason,
            detail: detail.to_string(),
        };
        self.hub.flush();
        let _ = self
            .hub
            .link
            .audio
            .send_timeout(msg, Duration::from_millis(500));
        self.hub.listened.clear();
    }

    fn publish(&mut self) {
        self.publish_at(self.clock.now_ns());
    }

    /// Publishes the table as of `now` (the running durations).
    fn publish_at(&mut self, now: i64) {
        self.new_since_publish = false;
        let mut stats = PublishStats::default();
        self.rebuild_dirty(now, &mut stats);
        self.sweep(now, &mut stats);
        self.last_publish = stats;
        self.shared.publish(Snapshot {
            calls: self.hub.listing.clone(),
            taken_ns: now,
            capture: self.engine.counters(),
            listeners: self.shared.active_listeners.load(Ordering::Relaxed) as usize,
            rewind_bytes: SensorCounters::get(&self.shared.counters.rewind_bytes) as usize,
            active_streams: self.engine.table_sizes().flows,
        });
    }
}

impl Worker {
    /// Summaries built from the calls that had a SIP event (text included); a new call is
    /// appended to the table, in start order with the others new since the last publish.
    fn rebuild_dirty(&mut self, now: i64, stats: &mut PublishStats) {
        let mut dirty: Vec<&Call> = self
            .hub
            .dirty
            .drain()
            .filter_map(|id| self.engine.call(id))
            .collect();
        dirty.sort_by_key(|c| (c.start, c.id));
        for call in dirty {
            let Some(&r) = self.hub.refs.get(&call.id) else {
                continue;
            };
            let fresh = Arc::new(crate::summary::summary_of(
                call,
                r,
                self.cfg.sensor_id,
                now,
                self.engine.capture_gaps(),
            ));
            stats.rebuilt += 1;
            self.hub.listing.put(fresh);
        }
    }

    /// The next run of the table's chunks brought up to date: numbers refreshed (text shared)
    /// where they changed, the same summary where not.
    fn sweep(&mut self, now: i64, stats: &mut PublishStats) {
        let hub = &mut self.hub;
        let count = hub.listing.chunks().len().div_ceil(hub.sweep_runs);
        let engine = &self.engine;
        hub.sweep_from = hub.listing.update_chunks(hub.sweep_from, count, |prev| {
            // A call the engine no longer has is being removed from the table by its sink.
            let call = engine.call(prev.id)?;
            if crate::summary::is_current(prev, call, now) {
                stats.reused += 1;
                return None;
            }
            stats.refreshed += 1;
            Some(Arc::new(crate::summary::refreshed(
                prev,
                call,
                now,
                engine.capture_gaps(),
            )))
        });
    }
}

/// Tells a listener the pipeline will not serve it that it has ended, and why.
fn end_listener(tx: &FrameTx, reason: EndReason, detail: Option<&str>) {
    let end = earshot_manager::stream_proto::EndFrame {
        reason,
        detail: detail.map(str::to_string),
    };
    let _ = tx.try_send(Frame::End(end));
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
                // The same rule as listcalls and analyze: unknown is null, never "perfect".
                jitter_ms: s
                    .quality_unknown()
                    .is_none_or(QualityUnknown::jitter_known)
                    .then(|| s.stats.jitter_ms()),
                mos: s.mos_if_known(),
                quality_unknown: s.quality_unknown().map(|u| u.as_str().to_string()),
            })
        })
        .collect()
}

impl Hub {
    /// Hands work to the fan-out thread without waiting; a full queue costs listeners audio,
    /// never capture, and is counted.
    /// The packets before it are handed over first, so the fan-out sees everything in order.
    fn send_audio(&mut self, msg: AudioMsg) {
        self.flush();
        if self.link.audio.try_send(msg).is_err() {
            SensorCounters::add(&self.counters.audio_drops, 1);
        }
    }

    /// Hands the batch to the fan-out without waiting. Past the hand-off's byte bound, or with
    /// its queue full, the packets are dropped (counted: the rewind and listeners miss them);
    /// the formats and ended calls are kept for the next try.
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.batch_since = None;
        let in_flight = self.link.in_flight.load(Ordering::Relaxed);
        if in_flight + self.batch.bytes() > HANDOFF_BYTES {
            self.drop_packets();
        }
        let next = self.link.spares.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        let bytes = batch.bytes();
        self.link.in_flight.fetch_add(bytes, Ordering::Relaxed);
        if let Err(e) = self.link.audio.try_send(AudioMsg::Packets(batch)) {
            self.link.in_flight.fetch_sub(bytes, Ordering::Relaxed);
            if let AudioMsg::Packets(kept) = e.into_inner() {
                self.batch = kept;
                self.drop_packets();
                let metadata = self.batch.metadata();
                if metadata > self.max_metadata {
                    SensorCounters::add(&self.counters.audio_drops, metadata as u64);
                    self.batch.clear();
                    self.formats_sent.clear();
                    self.resync = true;
                }
            }
        }
    }

    /// Hands the batch over if it is big enough or its oldest packet has waited
    /// [`HANDOFF_LATENCY_NS`] (`mono_ns`: now).
    fn flush_when_due(&mut self, mono_ns: i64) {
        if self.batch.is_empty() {
            return;
        }
        let since = *self.batch_since.get_or_insert(mono_ns);
        if self.batch.bytes() >= BATCH_BYTES || mono_ns.saturating_sub(since) >= HANDOFF_LATENCY_NS
        {
            self.flush();
        }
    }

    fn drop_packets(&mut self) {
        let lost = self.batch.packets() as u64;
        SensorCounters::add(&self.counters.handoff_drops, lost);
        self.batch.drop_packets();
    }

    /// Whether the call's packets (and so its formats) go to the fan-out: every call's with
    /// rewind on, only listened calls' without.
    fn feeds_fanout(&self, call: CallKey) -> bool {
        // Without rewind most of the time nobody listens: skip hashing the call id then.
        self.keep_rewind || (!self.listened.is_empty() && self.listened.contains_key(&call))
    }

    /// Sends the call's formats to the fan-out if it has more than the fan-out was sent:
    /// packets name their format by position in them.
    fn sync_formats(&mut self, call: &Call) {
        let sent = self.formats_sent.get(&call.id).copied().unwrap_or(0);
        if call.formats.len() != sent {
            self.batch
                .set_formats(call.id, call.formats.as_slice().into());
            self.formats_sent.insert(call.id, call.formats.len());
        }
    }

    fn broadcast(&mut self, call: CallKey, frame: Frame) {
        if self.listened.contains_key(&call) {
            self.send_audio(AudioMsg::Broadcast { call, frame });
        }
    }

    fn count_ended(&mut self, call: &Call) {
        if self.ended.insert(call.id) {
            self.counters.metrics.calls_ended.add(call.sip_code);
        }
    }

    /// The fan-out has no listener left on a call. A subscription sent after the one it had
    /// seen is still in its queue and needs the call's packets, so the call stays listened.
    fn forget_listened(&mut self, gone: CallGone) {
        if self.listened.get(&gone.call) == Some(&gone.ticket) {
            self.listened.remove(&gone.call);
        }
    }

    fn finish_call(&mut self, call: CallKey, event: CallEvent) {
        if self.listened.remove(&call).is_some() {
            self.send_audio(AudioMsg::Ended { call, event });
        }
    }
}

impl Sink for Hub {
    /// SRTP payloads are decrypted only for calls whose packets go to the fan-out (every call
    /// with rewind on, only listened ones without): the rest are authenticated, not decrypted.
    fn wants_payload(&self, call: CallKey) -> bool {
        self.feeds_fanout(call)
    }

    fn rtp(&mut self, p: &RtpPacket<'_>) {
        if self.feeds_fanout(p.call) {
            self.batch.push(p);
            if self.batch.bytes() >= BATCH_BYTES {
                self.flush();
            }
        }
    }

    fn event(&mut self, event: &Event, call: &Call) {
        self.dirty.insert(call.id);
        if !matches!(event, Event::CallRemoved(_)) && self.feeds_fanout(call.id) {
            self.sync_formats(call);
        }
        match event {
            Event::CallNew(id) => {
                self.new_calls.push(*id);
                SensorCounters::add(&self.counters.metrics.calls_started, 1);
            }
            Event::CallState(id, state) => {
                let ts_ns = call.last_packet.nanos();
                match state {
                    CallState::Answered => {
                        let code = call.sip_code.unwrap_or(200);
                        self.broadcast(*id, Frame::Event(CallEvent::Answered { ts_ns, code }));
                    }
                    s if s.is_final() || call.timed_out => {
                        self.count_ended(call);
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
            // Moved media is the engine's business; listeners hear of re-INVITEs and holds.
            // Text for the listing only (the call is dirty, so its summary is rebuilt).
            Event::MediaChanged(_) | Event::Grouped(_) => {}
            Event::Hold(id) => {
                let ts_ns = call.last_sip.nanos();
                self.broadcast(*id, Frame::Event(CallEvent::Hold { ts_ns }));
            }
            Event::Resume(id) => {
                let ts_ns = call.last_sip.nanos();
                self.broadcast(*id, Frame::Event(CallEvent::Resume { ts_ns }));
            }
            Event::Reinvite { call: id, codec } => {
                let ts_ns = call.last_sip.nanos();
                let codec = codec.clone();
                self.broadcast(*id, Frame::Event(CallEvent::Reinvite { ts_ns, codec }));
            }
            Event::CodecChange {
                call: id,
                party,
                payload_type,
            } => {
                // Only listened calls build the event (and its codec name).
                if self.listened.contains_key(id) {
                    let codec = call
                        .codec_name(*payload_type)
                        .map_or_else(|| format!("PT{payload_type}"), str::to_string);
                    let ev = CallEvent::CodecChange {
                        ts_ns: call.last_packet.nanos(),
                        party: party.as_str().to_string(),
                        codec,
                        payload_type: *payload_type,
                    };
                    self.broadcast(*id, Frame::Event(ev));
                }
            }
            Event::CallRemoved(id) => {
                self.count_ended(call);
                self.ended.remove(id);
                let ended = CallEvent::Ended {
                    ts_ns: call.last_packet.nanos(),
                    state: call.state.as_str().to_string(),
                    code: call.sip_code,
                };
                self.finish_call(*id, ended);
                if self.formats_sent.remove(id).is_some() || self.keep_rewind {
                    self.batch.forget(*id);
                }
                self.dirty.remove(id);
                if let Some(r) = self.refs.remove(id) {
                    self.by_ref.remove(&r);
                    self.listing.remove(r);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use earshot_wire::{Packet, Transport};

    pub(super) fn worker() -> (Worker, Arc<Shared>, Receiver<AudioMsg>) {
        let shared = Shared::new(Arc::new(SensorCounters::default()));
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let link = FanoutLink {
            audio: tx,
            spares: crossbeam_channel::never(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        };
        let w = Worker::new(PipelineConfig::default(), shared.clone(), link);
        (w, shared, rx)
    }

    /// The capture clock for publishing: fixed, so durations do not tick during a test.
    const NOW: i64 = 1_700_000_000_500_000_000;
    const CALLER: &str = "192.0.2.10:5060";
    const CALLED: &str = "192.0.2.20:5060";

    fn sip(call_id: &str, first_line: &str, cseq: &str) -> Vec<u8> {
        let body = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
                    m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
        format!(
            "{first_line}\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{call_id}\r\n\
             From: <sip:1001@example.com>;tag=a\r\nTo: <sip:2002@example.com>\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq}\r\nContact: <sip:1001@{CALLER}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    pub(super) fn feed(w: &mut Worker, t_ms: i64, src: &str, dst: &str, payload: &[u8]) {
        let p = Packet {
            ts: Timestamp(1_700_000_000_000_000_000 + t_ms * 1_000_000),
            src: src.parse().expect("address"),
            dst: dst.parse().expect("address"),
            vlan: None,
            transport: Transport::Udp,
            payload,
            from_hep: false,
        };
        w.engine.handle_packet(&p, &mut w.hub);
        w.register_new_calls();
    }

    fn invite(w: &mut Worker, t_ms: i64, call_id: &str) {
        let m = sip(call_id, "INVITE sip:2002@example.com SIP/2.0", "1 INVITE");
        feed(w, t_ms, CALLER, CALLED, &m);
    }

    fn rtp(w: &mut Worker, t_ms: i64, seq: u16) {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]);
        feed(w, t_ms, "192.0.2.10:40000", "192.0.2.20:50000", &p);
    }

    #[test]
    fn publishing_is_due_each_interval_or_after_a_new_call() {
        let i = Duration::from_millis(100);
        assert!(!publish_due(Duration::from_millis(99), i, false));
        assert!(publish_due(Duration::from_millis(100), i, false));
        assert!(publish_due(Duration::from_millis(10), i, true));
        assert!(
            !publish_due(Duration::from_millis(9), i, true),
            "a burst is rate-limited"
        );
    }

    #[test]
    fn a_new_call_is_published_without_waiting_an_interval() {
        let (mut w, shared, _rx) = worker();
        let soon = w.cfg.snapshot_interval / 10;
        assert!(!w.maybe_publish(soon), "nothing new, interval not over");
        invite(&mut w, 0, "new-1@example.com");
        assert!(
            w.maybe_publish(soon),
            "a new call publishes before the interval"
        );
        let snap = shared.snapshot();
        assert_eq!(snap.calls.len(), 1);
        let first = snap.calls.iter().next().expect("a call");
        assert_eq!(&*first.text.call_id, "new-1@example.com");
        assert!(snap.find(first.callref).is_some());
        assert!(!w.maybe_publish(soon), "published once, not on every loop");
    }

    fn listed(shared: &Shared) -> Vec<Arc<CallSummary>> {
        shared.snapshot().calls.iter().cloned().collect()
    }

    #[test]
    fn publishing_rebuilds_only_what_changed() {
        let (mut w, shared, _rx) = worker();
        invite(&mut w, 0, "a@example.com");
        invite(&mut w, 1, "b@example.com");
        w.publish_at(NOW);
        assert_eq!(w.last_publish.rebuilt, 2);
        let first = listed(&shared);
        assert_eq!(
            first.iter().map(|c| &*c.text.call_id).collect::<Vec<_>>(),
            ["a@example.com", "b@example.com"],
            "in start order"
        );

        // Nothing happened: the same summaries, not copies.
        w.publish_at(NOW);
        assert_eq!(w.last_publish.rebuilt + w.last_publish.refreshed, 0);
        let second = listed(&shared);
        assert!(first.iter().zip(&second).all(|(a, b)| Arc::ptr_eq(a, b)));

        // RTP on one call: within one sweep (a second of publishes) its numbers are new, its
        // text is the old text; the other call is untouched.
        rtp(&mut w, 2, 1);
        let mut refreshed = 0;
        for _ in 0..w.hub.sweep_runs {
            w.publish_at(NOW);
            assert_eq!(w.last_publish.rebuilt, 0);
            refreshed += w.last_publish.refreshed;
        }
        assert_eq!(refreshed, 1, "the call with RTP, once");
        let third = listed(&shared);
        let changed: Vec<_> = second
            .iter()
            .zip(&third)
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .collect();
        assert_eq!(changed.len(), 1);
        for (old, new) in changed {
            assert!(Arc::ptr_eq(&old.text, &new.text), "text shared");
            assert!(new.last_packet_ns > old.last_packet_ns);
        }

        // A SIP message for a call: that call's summary is rebuilt from the call, at once.
        let ringing = sip("a@example.com", "SIP/2.0 180 Ringing", "1 INVITE");
        feed(&mut w, 3, CALLED, CALLER, &ringing);
        w.publish_at(NOW);
        assert_eq!(w.last_publish.rebuilt, 1);
        let fourth = shared.snapshot();
        let a = fourth
            .calls
            .iter()
            .find(|c| &*c.text.call_id == "a@example.com")
            .expect("call a");
        assert_eq!(a.last_sip_code, Some(180));
    }

    #[test]
    fn a_publish_looks_at_the_changed_calls_and_one_run_of_chunks_only() {
        let (mut w, shared, _rx) = worker();
        for i in 0..1000 {
            invite(&mut w, i, &format!("c{i}@example.com"));
        }
        w.publish_at(NOW);
        assert_eq!(w.last_publish.rebuilt, 1000);
        let runs = w.hub.sweep_runs;
        let chunks = 1000usize.div_ceil(earshot_manager::listing::CHUNK);
        let per_run = chunks.div_ceil(runs) * earshot_manager::listing::CHUNK;
        let mut looked = 0;
        for _ in 0..runs {
            w.publish_at(NOW);
            let s = w.last_publish;
            assert_eq!(s.rebuilt, 0);
            assert!(
                s.reused + s.refreshed <= per_run,
                "a run of chunks, not the table: {s:?}"
            );
            looked += s.reused + s.refreshed;
        }
        assert!(looked >= 1000, "every call once a sweep: {looked}");
        assert_eq!(shared.snapshot().calls.len(), 1000);
        // Five seconds later every call's duration has changed: a publish copies the run of
        // chunks it refreshed, and shares the rest with the version before it.
        let later = NOW + 5_000_000_000;
        w.publish_at(later);
        let before = shared.snapshot();
        w.publish_at(later);
        let after = shared.snapshot();
        let copied = before
            .calls
            .chunks()
            .iter()
            .zip(after.calls.chunks())
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .count();
        assert!(
            (1..=chunks.div_ceil(runs)).contains(&copied),
            "{copied} of {chunks} chunks copied by one publish"
        );
        // A call that ends leaves the table (and its bucket) at once.
        let bye = sip(
            "c7@example.com",
            "BYE sip:2002@example.com SIP/2.0",
            "2 BYE",
        );
        feed(&mut w, 2000, CALLER, CALLED, &bye);
        w.publish_at(NOW);
        assert_eq!(w.last_publish.rebuilt, 1, "the ended call's new state");
    }
}

/// The pipeline as a state machine: frames, requests and time in, audio messages and
/// published tables out, with no thread, socket or sleep.
#[cfg(test)]
mod machine {
    use super::tests::worker;
    use super::*;
    use crate::queue::{channel, FrameRx, MemoryBudget};
    use earshot_wire::LinkType;

    /// Capture time of the first frame; the pipeline's monotonic clock starts at 0.
    const T0: i64 = 1_700_000_000_000_000_000;
    const A: [u8; 4] = [192, 0, 2, 10];
    const B: [u8; 4] = [192, 0, 2, 20];

    fn at(ms: i64) -> Now {
        Now {
            mono_ns: ms * 1_000_000,
            wall_ns: T0 + ms * 1_000_000,
        }
    }

    /// An Ethernet/IPv4/UDP frame (checksums zero: the engine does not need them).
    fn udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 8 + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&src.0);
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.1.to_be_bytes());
        f.extend_from_slice(&dst.1.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    fn sip(first_line: &str, cseq: &str, body: &str) -> Vec<u8> {
        format!(
            "{first_line}\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKm1\r\n\
             From: <sip:1001@example.com>;tag=a\r\nTo: <sip:2002@example.com>;tag=b\r\n\
             Call-ID: machine@example.com\r\nCSeq: {cseq}\r\n\
             Contact: <sip:1001@192.0.2.10:5060>\r\n{}Content-Length: {}\r\n\r\n{body}",
            if body.is_empty() {
                ""
            } else {
                "Content-Type: application/sdp\r\n"
            },
            body.len()
        )
        .into_bytes()
    }

    fn sdp(ip: &str, port: u16) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
        )
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]);
        p
    }

    /// Frames at capture times `T0 + ms`, in one batch.
    fn batch(frames: &[(i64, Vec<u8>)]) -> FrameBatch {
        let mut b = FrameBatch::with_capacity(frames.len());
        for (ms, f) in frames {
            b.push(Timestamp(T0 + ms * 1_000_000), LinkType::ETHERNET, f);
        }
        b
    }

    /// An answered call at 0–1 ms with `packets` RTP packets from the caller, 20 ms apart.
    fn answered_call(packets: u16) -> FrameBatch {
        let mut frames = vec![
            (
                0,
                udp(
                    (A, 5060),
                    (B, 5060),
                    &sip(
                        "INVITE sip:2002@example.com SIP/2.0",
                        "1 INVITE",
                        &sdp("192.0.2.10", 40000),
                    ),
                ),
            ),
            (
                1,
                udp(
                    (B, 5060),
                    (A, 5060),
                    &sip("SIP/2.0 200 OK", "1 INVITE", &sdp("192.0.2.20", 50000)),
                ),
            ),
        ];
        for i in 0..packets {
            let ms = 2 + 20 * i64::from(i);
            frames.push((ms, udp((A, 40000), (B, 50000), &rtp(i))));
        }
        batch(&frames)
    }

    fn bye(ms: i64) -> FrameBatch {
        let m = sip("BYE sip:2002@example.com SIP/2.0", "2 BYE", "");
        batch(&[(ms, udp((A, 5060), (B, 5060), &m))])
    }

    fn listener() -> (FrameTx, FrameRx) {
        channel(1 << 20, MemoryBudget::new(64 << 20))
    }

    fn subscribe(callref: CallRef, from: StreamFrom, tx: FrameTx) -> Control {
        Control::Subscribe {
            id: 1,
            callref,
            format: AudioFormat::pcm(8000, 1),
            from,
            tx,
        }
    }

    fn only_call(shared: &Shared) -> CallRef {
        let snap = shared.snapshot();
        assert_eq!(snap.calls.len(), 1);
        let r = snap.calls.iter().next().map(|c| c.callref);
        r.expect("a call")
    }

    /// A pipeline with one answered call (with `packets` RTP packets), published.
    fn listed_call(packets: u16) -> (Worker, Arc<Shared>, Receiver<AudioMsg>, CallRef) {
        let (mut w, shared, rx) = worker();
        w.on_batch(answered_call(packets), at(0));
        w.on_tick(at(20));
        let r = only_call(&shared);
        (w, shared, rx, r)
    }

    fn drain(rx: &Receiver<AudioMsg>) -> Vec<AudioMsg> {
        rx.try_iter().collect()
    }

    #[test]
    fn a_call_is_listed_at_the_next_tick_and_leaves_after_it_ended_and_lingered() {
        let (mut w, shared, _rx) = worker();
        w.on_batch(answered_call(10), at(0));
        w.on_tick(at(20));
        let r = only_call(&shared);
        assert_eq!(
            shared.snapshot().find(r).map(|c| c.state),
            Some(CallState::Answered)
        );
        w.on_batch(bye(400), at(400));
        w.on_tick(at(500));
        assert_eq!(
            shared.snapshot().find(r).map(|c| c.state),
            Some(CallState::Ended)
        );
        // Time passes with no traffic: the ended call lingers (10 s), then is gone; the
        // pipeline's clock follows the thread's monotonic readings between frames.
        for s in 1..=12 {
            w.on_tick(at(400 + s * 1000));
            if s == 5 {
                assert!(
                    shared.snapshot().find(r).is_some(),
                    "still lingering at 5 s"
                );
            }
        }
        assert!(
            shared.snapshot().calls.is_empty(),
            "removed after its linger"
        );
    }

    #[test]
    fn a_subscription_that_arrives_after_the_call_ended_is_ended_at_once() {
        let (mut w, _shared, rx, r) = listed_call(5);
        // The BYE is processed before the request that raced it.
        w.on_batch(bye(200), at(200));
        let (tx, mut frames) = listener();
        assert!(w.on_control(subscribe(r, StreamFrom::Now, tx), at(201)));
        match frames.try_recv() {
            Some(Frame::End(e)) => assert_eq!(e.reason, EndReason::CallEnded),
            other => panic!("expected the end of the call, got {other:?}"),
        }
        assert!(
            drain(&rx)
                .iter()
                .all(|m| !matches!(m, AudioMsg::Subscribe { .. })),
            "no listener was started for an ended call"
        );
    }

    #[test]
    fn a_subscription_just_before_the_end_gets_the_end_after_it() {
        let (mut w, _shared, rx, r) = listed_call(5);
        let (tx, _frames) = listener();
        assert!(w.on_control(subscribe(r, StreamFrom::Now, tx), at(100)));
        w.on_batch(bye(200), at(200));
        let msgs = drain(&rx);
        let subscribed = msgs
            .iter()
            .position(|m| matches!(m, AudioMsg::Subscribe { .. }))
            .expect("subscribed");
        let ended = msgs
            .iter()
            .position(|m| matches!(m, AudioMsg::Ended { .. }))
            .expect("the fan-out is told the call ended");
        assert!(subscribed < ended, "in that order");
    }

    /// The fan-out state machine, fed by hand with what a pipeline sent.
    fn fanout(shared: &Arc<Shared>) -> (crate::fanout::Fanout, Receiver<CallGone>) {
        let (gone_tx, gone_rx) = crossbeam_channel::bounded(64);
        let (spares, _) = crossbeam_channel::bounded(4);
        let handoff = Handoff {
            spares,
            in_flight: Arc::new(AtomicUsize::new(0)),
        };
        let limits = fanout_limits(&PipelineConfig::default());
        let f = crate::fanout::Fanout::new(gone_tx, handoff, shared.clone(), limits);
        (f, gone_rx)
    }

    fn deliver(rx: &Receiver<AudioMsg>, f: &mut crate::fanout::Fanout, mono_ns: i64) {
        for m in drain(rx) {
            assert!(f.on_msg(m, mono_ns));
        }
    }

    fn audio_samples(frames: &mut FrameRx) -> usize {
        std::iter::from_fn(|| frames.try_recv())
            .map(|f| match f {
                Frame::Audio(a) => a.samples.len(),
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn a_call_that_ended_plays_from_its_start_and_then_ends() {
        let (mut w, shared, rx, r) = listed_call(50);
        let (mut f, _gone) = fanout(&shared);
        w.on_batch(bye(1_100), at(1_100));
        w.on_tick(at(1_200));
        deliver(&rx, &mut f, 1_200_000_000);
        // Lingering, ended: a listener from its start hears the second of audio kept.
        let (tx, mut frames) = listener();
        assert!(w.on_control(subscribe(r, StreamFrom::Start, tx), at(5_000)));
        deliver(&rx, &mut f, 5_000_000_000);
        let mut samples = 0;
        let mut end = None;
        for i in 0..400 {
            f.on_tick(5_000_000_000 + i * 5_000_000);
            while let Some(frame) = frames.try_recv() {
                match frame {
                    Frame::Audio(a) => samples += a.samples.len(),
                    Frame::End(e) => end = Some(e.reason),
                    _ => {}
                }
            }
            if end.is_some() {
                break;
            }
        }
        assert!(samples >= 45 * 160, "{samples} samples of the 8,000 kept");
        assert_eq!(end, Some(EndReason::CallEnded), "and then the end");
    }

    #[test]
    fn a_subscription_from_the_start_replays_every_kept_packet() {
        let (mut w, shared, rx, r) = listed_call(50);
        let (mut f, _gone) = fanout(&shared);
        // The pipeline handed the packets over as it processed them; the fan-out keeps them.
        deliver(&rx, &mut f, 0);
        let call = w.hub.by_ref[&r];
        let mut kept = f.rewind().snapshot(call, Timestamp(i64::MIN));
        let mut seqs = Vec::new();
        while kept.next_packet(|p| {
            assert_eq!(p.format.map(|f| f.encoding.as_str()), Some("PCMA"));
            seqs.push(p.seq)
        }) {}
        assert_eq!(seqs, (0..50).collect::<Vec<u16>>());
        // A listener from the start gets the whole second of audio, then what follows live.
        let (tx, mut frames) = listener();
        assert!(w.on_control(subscribe(r, StreamFrom::Start, tx), at(1000)));
        deliver(&rx, &mut f, 1_000_000_000);
        for i in 0..20 {
            f.on_tick(1_000_000_000 + i * 5_000_000);
        }
        let replayed = audio_samples(&mut frames);
        assert!(
            replayed >= 45 * 160,
            "{replayed} samples of the 8,000 kept played back"
        );
        let more = batch(&[(1100, udp((A, 40000), (B, 50000), &rtp(50)))]);
        w.on_batch(more, at(1100));
        w.on_tick(at(1105));
        deliver(&rx, &mut f, 1_105_000_000);
        let mut kept = f.rewind().snapshot(call, Timestamp(i64::MIN));
        let mut last = None;
        while kept.next_packet(|p| last = Some(p.seq)) {}
        assert_eq!(last, Some(50), "later packets are kept as they come");
    }

    fn packets_handed_over(rx: &Receiver<AudioMsg>) -> usize {
        drain(rx)
            .iter()
            .map(|m| match m {
                AudioMsg::Packets(b) => b.packets(),
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn packets_reach_the_fanout_once_the_input_is_drained_or_five_milliseconds_late() {
        let (mut w, _shared, rx, _r) = listed_call(10);
        assert_eq!(packets_handed_over(&rx), 10, "the call's first packets");
        // Frame batches 1 ms apart while more are queued (between the once-a-second
        // expiries, which hand over too): one hand-off, not one per frame batch.
        let more = |w: &mut Worker, t: i64, seq: u16| {
            w.on_batch(batch(&[(t, udp((A, 40000), (B, 50000), &rtp(seq)))]), at(t));
            w.on_tick(at(t));
        };
        for i in 0..4u16 {
            more(&mut w, 100 + i64::from(i), 10 + i);
            assert_eq!(packets_handed_over(&rx), 0, "held at {} ms", 100 + i);
        }
        w.on_tick(at(105));
        assert_eq!(
            packets_handed_over(&rx),
            4,
            "all four, 5 ms after the first"
        );
        // The end of a burst hands over what it brought at once.
        more(&mut w, 200, 14);
        more(&mut w, 201, 15);
        assert_eq!(packets_handed_over(&rx), 0);
        w.on_input_drained();
        assert_eq!(packets_handed_over(&rx), 2);
    }

    #[test]
    fn a_full_batch_is_handed_over_at_once() {
        let (mut w, _shared, rx, _r) = listed_call(10);
        drain(&rx);
        // ~1,300 records of ~200 bytes pass BATCH_BYTES.
        let many: Vec<(i64, Vec<u8>)> = (0..1_400u16)
            .map(|i| (1_000, udp((A, 40000), (B, 50000), &rtp(10 + i))))
            .collect();
        w.on_batch(batch(&many), at(1_000));
        let sent = packets_handed_over(&rx);
        assert!(sent >= 1_000, "{sent} of 1,400 handed over without a tick");
        w.on_tick(at(1_005));
        assert_eq!(sent + packets_handed_over(&rx), 1_400);
    }

    #[test]
    fn an_ended_call_is_forgotten_by_the_fanout_after_its_last_packets() {
        let (mut w, shared, rx, r) = listed_call(5);
        let (mut f, _gone) = fanout(&shared);
        let call = w.hub.by_ref[&r];
        w.on_batch(bye(200), at(200));
        for s in 1..=12 {
            w.on_tick(at(200 + s * 1000));
        }
        assert!(
            shared.snapshot().calls.is_empty(),
            "the call left the table"
        );
        deliver(&rx, &mut f, 13_000_000_000);
        assert!(f.rewind().snapshot(call, Timestamp(i64::MIN)).is_empty());
        assert_eq!(f.rewind().bytes(), 0, "its rewind is freed");
    }

    #[test]
    fn a_full_handoff_drops_packets_counted_but_not_the_ended_calls() {
        let (mut w, shared, rx, r) = listed_call(5);
        let (mut f, _gone) = fanout(&shared);
        deliver(&rx, &mut f, 0);
        let call = w.hub.by_ref[&r];
        assert!(f.rewind().bytes() > 0, "the call's first packets are kept");
        // From here the fan-out takes nothing: the hand-off stays at its bound.
        w.hub.link.in_flight.store(HANDOFF_BYTES, Ordering::Relaxed);
        let mut frames: Vec<(i64, Vec<u8>)> = (5..25)
            .map(|i| {
                (
                    100 + i64::from(i) * 20,
                    udp((A, 40000), (B, 50000), &rtp(i)),
                )
            })
            .collect();
        let m = sip("BYE sip:2002@example.com SIP/2.0", "2 BYE", "");
        frames.push((700, udp((A, 5060), (B, 5060), &m)));
        w.on_batch(batch(&frames), at(700));
        for s in 1..=12 {
            w.on_tick(at(700 + s * 1000));
        }
        assert!(
            shared.snapshot().calls.is_empty(),
            "the call left the table"
        );
        let dropped = shared.counters.handoff_drops.load(Ordering::Relaxed);
        assert_eq!(dropped, 20, "every packet past the bound is counted");
        deliver(&rx, &mut f, 13_000_000_000);
        assert!(f.rewind().snapshot(call, Timestamp(i64::MIN)).is_empty());
        assert_eq!(f.rewind().bytes(), 0, "the ended call was still forgotten");
    }

    /// Fills the pipeline's queue to the fan-out and lets it keep no formats or ended calls
    /// past a failed hand-off, as after a long stall with a million of them waiting.
    fn stall_fanout(w: &mut Worker) {
        w.hub.max_metadata = 0;
        while w
            .hub
            .link
            .audio
            .try_send(AudioMsg::Packets(PacketBatch::default()))
            .is_ok()
        {}
    }

    #[test]
    fn an_ended_call_lost_in_a_stalled_handoff_is_still_forgotten_by_the_fanout() {
        let (mut w, shared, rx, _r) = listed_call(5);
        let (mut f, _gone) = fanout(&shared);
        deliver(&rx, &mut f, 0);
        assert!(f.rewind().bytes() > 0, "the call's packets are kept");
        stall_fanout(&mut w);
        w.on_batch(bye(700), at(700));
        for s in 1..=12 {
            w.on_tick(at(700 + s * 1000));
        }
        assert!(shared.snapshot().calls.is_empty(), "the call ended");
        assert!(
            shared.counters.audio_drops.load(Ordering::Relaxed) >= 1,
            "the lost forget is counted"
        );
        // The fan-out catches up; the next tick tells it which calls are left.
        deliver(&rx, &mut f, 13_000_000_000);
        w.on_tick(at(14_000));
        deliver(&rx, &mut f, 14_000_000_000);
        assert_eq!(f.rewind().bytes(), 0, "the ended call's rewind was freed");
    }

    #[test]
    fn a_call_whose_formats_were_lost_in_a_stalled_handoff_gets_them_again() {
        let (mut w, shared, rx) = worker();
        let (mut f, _gone) = fanout(&shared);
        stall_fanout(&mut w);
        // The call and its formats arrive while the fan-out takes nothing.
        w.on_batch(answered_call(5), at(0));
        w.on_tick(at(20));
        let call = w.hub.by_ref[&only_call(&shared)];
        for m in drain(&rx) {
            assert!(f.on_msg(m, 0));
        }
        assert!(f.rewind().formats(call).is_empty(), "the formats were lost");
        w.on_tick(at(1_100));
        let later: Vec<(i64, Vec<u8>)> = (5..10)
            .map(|i| {
                (
                    1_100 + i64::from(i) * 20,
                    udp((A, 40000), (B, 50000), &rtp(i)),
                )
            })
            .collect();
        w.on_batch(batch(&later), at(1_300));
        w.on_tick(at(1_305));
        deliver(&rx, &mut f, 1_305_000_000);
        assert_eq!(f.rewind().formats(call).len(), 1, "PCMA, sent again");
        let mut s = f.rewind().snapshot(call, Timestamp(i64::MIN));
        let mut formats = Vec::new();
        while s.next_packet(|p| formats.push(p.format_index)) {}
        assert_eq!(formats, vec![Some(0); 5], "the later packets name it");
    }

    #[test]
    fn a_capture_time_far_ahead_moves_the_clock_one_step_and_is_counted() {
        let (mut w, shared, _rx) = worker();
        w.on_batch(answered_call(3), at(0));
        // A forged time a day ahead: the clock moves by at most a step per frame.
        let day = 86_400_000;
        w.on_batch(
            batch(&[(day, udp((A, 40000), (B, 50000), &rtp(3)))]),
            at(100),
        );
        assert!(shared.counters.clock_clamped.load(Ordering::Relaxed) >= 1);
        let now = w.clock.now_ns();
        assert!(now < T0 + 2 * CLOCK_STEP_NS, "clock at {now}");
        // The call was not aged out by the forged time.
        w.on_tick(at(200));
        assert_eq!(shared.snapshot().calls.len(), 1);
    }

    #[test]
    fn shutdown_tells_every_listener_and_stops() {
        let (mut w, _shared, rx, r) = listed_call(5);
        let (tx, _frames) = listener();
        assert!(w.on_control(subscribe(r, StreamFrom::Now, tx), at(30)));
        assert!(!w.on_control(Control::Shutdown, at(40)), "stopped");
        let msgs = drain(&rx);
        assert!(msgs.iter().any(|m| matches!(
            m,
            AudioMsg::EndAll {
                reason: EndReason::ServerShutdown,
                ..
            }
        )));
        assert!(w.hub.listened.is_empty());
    }
}

/// Figures for BENCHMARKS.md, not a check: `cargo test --release -p earshot-sensor --lib
/// publish_cost -- --ignored --nocapture`.
#[cfg(test)]
mod publish_cost {
    use super::tests::{feed, worker};
    use super::*;

    fn ip(i: u32) -> String {
        format!("10.{}.{}.{}", 64 + (i >> 16), (i >> 8) & 255, i & 255)
    }

    /// An answered call from its own address, with one RTP packet.
    fn call_with_rtp(w: &mut Worker, i: u32) {
        let (a, b) = (ip(i), ip(i + 200_000));
        let body = format!(
            "v=0\r\no=- 1 1 IN IP4 {a}\r\ns=-\r\nc=IN IP4 {a}\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
        );
        let msg = |first: &str| {
            format!(
                "{first}\r\nVia: SIP/2.0/UDP {a}:5060;branch=z9hG4bK{i}\r\n\
                 From: <sip:{i}@example.com>;tag=a\r\nTo: <sip:9{i}@example.com>;tag=b\r\n\
                 Call-ID: bench-{i}@example.com\r\nCSeq: 1 INVITE\r\n\
                 Contact: <sip:{i}@{a}:5060>\r\nContent-Type: application/sdp\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let (sa, sb) = (format!("{a}:5060"), format!("{b}:5060"));
        feed(
            w,
            0,
            &sa,
            &sb,
            msg("INVITE sip:9@example.com SIP/2.0").as_bytes(),
        );
        feed(w, 1, &sb, &sa, msg("SIP/2.0 200 OK").as_bytes());
        rtp_for(w, i, 1);
    }

    fn rtp_for(w: &mut Worker, i: u32, seq: u16) {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&i.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]);
        let (a, b) = (ip(i), ip(i + 200_000));
        feed(
            w,
            2 + i64::from(seq),
            &format!("{a}:40000"),
            &format!("{b}:50000"),
            &p,
        );
    }

    #[test]
    #[ignore = "a benchmark: prints figures"]
    fn publish_cost() {
        for n in [1_000u32, 10_000, 100_000] {
            let (mut w, _shared, _rx) = worker();
            for i in 0..n {
                call_with_rtp(&mut w, i);
            }
            let now = 1_700_000_000_500_000_000;
            // A whole sweep (a second of publishes), so every bucket is timed once.
            let sweep = |w: &mut Worker| {
                let runs = w.hub.sweep_runs;
                let t = Instant::now();
                let mut worst = 0f64;
                for _ in 0..runs {
                    let one = Instant::now();
                    w.publish_at(now);
                    worst = worst.max(one.elapsed().as_secs_f64() * 1e3);
                }
                (t.elapsed().as_secs_f64() * 1e3 / runs as f64, worst)
            };
            w.publish_at(now);
            let (unchanged, unchanged_max) = sweep(&mut w);
            // Every call got a packet: over the sweep each has its numbers refreshed once.
            for i in 0..n {
                rtp_for(&mut w, i, 2);
            }
            let (refreshed, refreshed_max) = sweep(&mut w);
            println!(
                "| {n} | {refreshed:.2} ms (max {refreshed_max:.2}) | {unchanged:.3} ms (max {unchanged_max:.3}) |"
            );
        }
    }
}
