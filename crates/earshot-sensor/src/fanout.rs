//! The fan-out thread: the rewind store, and decoding, playout and mixing for listeners, off
//! the packet path.
//!
//! The pipeline thread only appends RTP packets to a [`PacketBatch`] (one sequential copy per
//! packet) and hands the batch over through a queue bounded in bytes (counting what does not
//! fit); keeping each call's rewind and everything that costs CPU per listener happens here,
//! on another core. So neither the rewind of 10,000 calls nor a crowd of listeners, nor one
//! that stalls, can slow capture: they can only lose rewind or audio, and that is counted.
//!
//! [`Fanout`] is a state machine: the thread only moves messages to [`Fanout::on_msg`] and
//! reads the clock for [`Fanout::on_tick`], so tests drive it in memory.

use crate::clock::BoundedClock;
use crate::counters::SensorCounters;
use crate::listener::{AudioFormat, Listener};
use crate::pipeline::Shared;
use crate::queue::FrameTx;
use crate::rewind::{record_packet, PacketBatch, Rewind, RewindLimits, PRIME_NS};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender as CbSender};
use earshot_core::CallKey;
use earshot_manager::stream_proto::{CallEvent, EndFrame, EndReason, Frame};
use earshot_manager::StreamFrom;
use earshot_wire::Timestamp;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often listeners' clocks advance between packets. Output leaves once the capture clock
/// passes a block's end plus the playout hold, so this adds up to one period to the latency.
const POLL: Duration = Duration::from_millis(5);

/// Farthest one packet moves the fan-out's clock forward. Between packets the clock runs with
/// the wall, so in-order live traffic never needs a step; a replay at full speed advances a
/// packet time (tens of ms) per packet. A packet from the far future (a forged HEP envelope,
/// a corrupt capture) moves its listeners' clock by this much, not to its time.
const CLOCK_STEP_NS: i64 = 100_000_000;

/// A call left without listeners, and the ticket of the last subscription to it the fan-out
/// had seen: the pipeline stops sending the call's packets only if it has not subscribed
/// anyone since (that subscription is still on its way here and needs the packets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CallGone {
    pub call: CallKey,
    pub ticket: u64,
}

/// Work for the fan-out thread.
pub(crate) enum AudioMsg {
    Subscribe {
        call: CallKey,
        id: u64,
        /// Numbers the pipeline's subscriptions, in the order it sent them.
        ticket: u64,
        format: AudioFormat,
        /// Where the subscriber's audio starts. The rewind to play first is taken here from
        /// the store (everything the pipeline handed over before this message) and decoded a
        /// batch at a time; "from now" gets the call's recent past, decoded only to warm the
        /// decoders, and may share a listener of the same format that already plays live.
        from: StreamFrom,
        /// The pipeline's capture clock when it subscribed: "now" for `from`.
        now_ns: i64,
        /// The call is on hold as the subscription is made (later changes come as events).
        on_hold: bool,
        tx: FrameTx,
    },
    Unsubscribe {
        id: u64,
    },
    /// RTP packets of every call (with rewind on) or of listened calls, in arrival order.
    Packets(PacketBatch),
    /// An event or quality report for every listener of a call.
    Broadcast {
        call: CallKey,
        frame: Frame,
    },
    /// Whether the call is on hold, for the listeners' status (sent once a second).
    OnHold {
        call: CallKey,
        on_hold: bool,
    },
    /// The call ended: play out what is left, then the end frame.
    Ended {
        call: CallKey,
        event: CallEvent,
    },
    EndAll {
        reason: EndReason,
        detail: String,
    },
}

/// Limits the fan-out enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_listeners: usize,
    pub max_listeners_per_call: usize,
    pub decoder: earshot_audio::DecoderOptions,
    pub rewind: RewindLimits,
}

/// The pipeline's side of the hand-off: where read batches come back for reuse, and the
/// bytes of packet records on their way (the pipeline drops packets rather than exceed its
/// bound; this thread subtracts what it took).
pub(crate) struct Handoff {
    pub spares: CbSender<PacketBatch>,
    pub in_flight: Arc<AtomicUsize>,
}

pub(crate) fn spawn(
    rx: Receiver<AudioMsg>,
    gone: CbSender<CallGone>,
    handoff: Handoff,
    shared: Arc<Shared>,
    limits: Limits,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("earshot-audio".into())
        .spawn(move || {
            let started = Instant::now();
            let mono = || i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
            let mut f = Fanout::new(gone, handoff, shared, limits);
            let mut last_poll = Instant::now();
            loop {
                // With nobody to send audio to there is nothing to time: wait for work only,
                // instead of waking 200 times a second for nothing.
                let next = if f.has_listeners() {
                    rx.recv_timeout(POLL)
                } else {
                    rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
                };
                match next {
                    Ok(msg) => {
                        if !f.on_msg(msg, mono()) {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        f.end_all(EndReason::ServerShutdown, "sensor stopped");
                        return;
                    }
                }
                if last_poll.elapsed() >= POLL {
                    last_poll = Instant::now();
                    f.on_tick(mono());
                }
            }
        })
}

pub(crate) struct Fanout {
    /// Every call's recent RTP, for listeners who start in the past (and the calls' formats).
    rewind: Rewind,
    handoff: Handoff,
    /// Keyed by the engine's call numbers, which no packet chooses (a fast hash is safe).
    listeners: FxHashMap<CallKey, Vec<Listener>>,
    /// Listeners of ended calls still playing their rewind; they end once it has played.
    draining: Vec<Listener>,
    /// Per call the pipeline sends packets of, the ticket of its latest subscription.
    tickets: FxHashMap<CallKey, u64>,
    shared: Arc<Shared>,
    limits: Limits,
    /// Calls that lost their last listener, so the pipeline stops sending their packets.
    gone: CbSender<CallGone>,
    /// The listeners' playout clock: the latest packet's capture time (a step ahead at most)
    /// plus the wall time since it was seen. It follows packets back, as the listeners' audio
    /// is placed by their times: a clock that stayed ahead would make all of it late.
    clock: BoundedClock,
    /// The monotonic time (ns, any origin) of the latest message or tick.
    mono_ns: i64,
    count: usize,
}

impl Fanout {
    pub(crate) fn new(
        gone: CbSender<CallGone>,
        handoff: Handoff,
        shared: Arc<Shared>,
        limits: Limits,
    ) -> Self {
        Fanout {
            rewind: Rewind::new(limits.rewind),
            handoff,
            listeners: FxHashMap::default(),
            draining: Vec::new(),
            tickets: FxHashMap::default(),
            shared,
            limits,
            gone,
            clock: BoundedClock::following(CLOCK_STEP_NS),
            mono_ns: 0,
            count: 0,
        }
    }

    /// Whether any listener (of a live call, or still playing an ended call's rewind) waits
    /// for audio: only then do ticks matter.
    pub(crate) fn has_listeners(&self) -> bool {
        !self.listeners.is_empty() || !self.draining.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn rewind(&self) -> &Rewind {
        &self.rewind
    }

    /// Time passed (`mono_ns`: a monotonic reading): listeners' clocks advance and due audio
    /// leaves.
    pub(crate) fn on_tick(&mut self, mono_ns: i64) {
        self.mono_ns = mono_ns;
        self.poll();
    }

    /// One message from the pipeline; false once the fan-out has stopped (`EndAll`).
    pub(crate) fn on_msg(&mut self, msg: AudioMsg, mono_ns: i64) -> bool {
        self.mono_ns = mono_ns;
        self.handle(msg)
    }

    fn now_ns(&self) -> Option<i64> {
        self.clock.now(self.mono_ns)
    }

    /// Takes in a batch: the calls' formats, every packet into its call's rewind and to its
    /// call's listeners, then the ended calls' rewind is freed. The batch goes back for reuse.
    fn take_packets(&mut self, mut batch: PacketBatch) {
        self.handoff
            .in_flight
            .fetch_sub(batch.bytes(), Ordering::Relaxed);
        if let Some(live) = batch.retain() {
            self.rewind.retain_only(live);
        }
        for (call, formats) in batch.formats() {
            self.rewind.set_formats(*call, formats.clone());
        }
        let listening = !self.listeners.is_empty();
        for (call, record) in batch.records() {
            self.rewind.push_record(call, record);
            if listening {
                self.feed_listeners(call, record);
            }
        }
        for &call in batch.forgets() {
            self.rewind.forget(call);
        }
        let counters = &self.shared.counters;
        let (bytes, overflow) = (self.rewind.bytes() as u64, self.rewind.overflow());
        counters.rewind_bytes.store(bytes, Ordering::Relaxed);
        counters.rewind_overflow.store(overflow, Ordering::Relaxed);
        batch.clear();
        let _ = self.handoff.spares.try_send(batch);
        if listening {
            self.tidy();
        }
    }

    /// One packet to its call's listeners, if it has any, on the fan-out's clock: its capture
    /// time, unless that is more than a step ahead of the clock; then a step ahead (counted).
    /// The listeners see the same time, so no single packet moves their audio further than
    /// the clock.
    fn feed_listeners(&mut self, call: CallKey, record: &[u8]) {
        let Some(ls) = self.listeners.get_mut(&call) else {
            return;
        };
        let Some(mut p) = record_packet(record, call, self.rewind.formats(call)) else {
            return;
        };
        let before = self.clock.clamped();
        let at = self.clock.observe(p.ts.nanos(), self.mono_ns);
        if self.clock.clamped() != before {
            SensorCounters::add(&self.shared.counters.clock_clamped, 1);
        }
        p.ts = Timestamp(at);
        ls.retain_mut(|l| l.push(&p).is_ok());
    }

    fn handle(&mut self, msg: AudioMsg) -> bool {
        match msg {
            AudioMsg::Subscribe {
                call,
                id,
                ticket,
                format,
                from,
                now_ns,
                on_hold,
                tx,
            } => {
                self.tickets.insert(call, ticket);
                self.subscribe(call, id, format, (from, now_ns), tx);
                self.set_on_hold(call, on_hold);
                // A refused subscription may leave the call without listeners.
                self.tidy();
            }
            AudioMsg::Unsubscribe { id } => {
                for ls in self.listeners.values_mut() {
                    ls.retain_mut(|l| !l.unsubscribe(id) || l.subscribers() > 0);
                }
                self.tidy();
            }
            AudioMsg::Packets(batch) => self.take_packets(batch),
            AudioMsg::Broadcast { call, frame } => {
                self.broadcast(call, &frame);
                self.tidy();
            }
            AudioMsg::OnHold { call, on_hold } => self.set_on_hold(call, on_hold),
            AudioMsg::Ended { call, event } => {
                self.broadcast(call, &Frame::Event(event));
                if let Some(ls) = self.listeners.remove(&call) {
                    for mut l in ls {
                        if !l.finish_after_replay(EndReason::CallEnded, None) {
                            self.draining.push(l);
                        }
                    }
                }
                self.tidy();
            }
            AudioMsg::EndAll { reason, detail } => {
                self.end_all(reason, &detail);
                return false;
            }
        }
        true
    }

    fn subscribe(
        &mut self,
        call: CallKey,
        id: u64,
        format: AudioFormat,
        (from, now_ns): (StreamFrom, i64),
        tx: FrameTx,
    ) {
        let per_call: usize = self
            .listeners
            .get(&call)
            .map_or(0, |ls| ls.iter().map(Listener::subscribers).sum());
        if self.count >= self.limits.max_listeners || per_call >= self.limits.max_listeners_per_call
        {
            let end = EndFrame {
                reason: EndReason::Error,
                detail: Some("too many listeners".into()),
            };
            let _ = tx.try_send(Frame::End(end));
            return;
        }
        // A listener joining mid-call first decodes up to PRIME_NS of the call's past (output
        // discarded), so stateful decoders are warm when it starts.
        let now = Timestamp(now_ns);
        let rewind = match from {
            StreamFrom::Now => self.rewind.primed_snapshot(call, now, PRIME_NS),
            StreamFrom::Start => self.rewind.snapshot(call, Timestamp(i64::MIN)),
            StreamFrom::SecondsAgo(s) => {
                let back = i64::from(s).saturating_mul(1_000_000_000);
                let since = Timestamp(now_ns.saturating_sub(back));
                self.rewind.primed_snapshot(call, since, PRIME_NS)
            }
        };
        let from_now = matches!(from, StreamFrom::Now);
        let rewind = Some(rewind).filter(|r| !r.is_empty());
        if from_now || rewind.is_none() {
            // A listener from now on already running has warm decoders: join it.
            if let Some(l) = self
                .listeners
                .get_mut(&call)
                .and_then(|ls| ls.iter_mut().find(|l| l.can_share(&format)))
            {
                l.subscribe(id, tx);
                return;
            }
        }
        let counters = self.shared.counters.clone();
        let decoder = self.limits.decoder;
        let made = match rewind {
            Some(prime) if from_now => {
                Listener::from_now(id, format, tx.clone(), prime, counters, decoder)
            }
            rewind => Listener::with_decoder(id, format, tx.clone(), rewind, counters, decoder),
        };
        let listener = match made {
            Ok(l) => l,
            Err(e) => {
                let _ = tx.try_send(Frame::End(EndFrame {
                    reason: EndReason::Error,
                    detail: Some(e),
                }));
                return;
            }
        };
        self.listeners.entry(call).or_default().push(listener);
    }

    fn poll(&mut self) {
        // Before any packet there is no clock, but a rewind can still be played.
        let now = self.now_ns();
        for ls in self.listeners.values_mut() {
            ls.retain_mut(|l| l.advance(now).is_ok());
        }
        self.draining.retain_mut(|l| l.advance(now).is_ok());
        self.tidy();
    }

    fn set_on_hold(&mut self, call: CallKey, on_hold: bool) {
        for l in self.listeners.get_mut(&call).into_iter().flatten() {
            l.set_on_hold(on_hold);
        }
    }

    fn broadcast(&mut self, call: CallKey, frame: &Frame) {
        match frame {
            Frame::Event(CallEvent::Hold { .. }) => self.set_on_hold(call, true),
            Frame::Event(CallEvent::Resume { .. }) => self.set_on_hold(call, false),
            _ => {}
        }
        if let Some(ls) = self.listeners.get_mut(&call) {
            ls.retain_mut(|l| l.send(frame.clone()).is_ok());
        }
    }

    pub(crate) fn end_all(&mut self, reason: EndReason, detail: &str) {
        let draining = std::mem::take(&mut self.draining);
        for mut l in self
            .listeners
            .drain()
            .flat_map(|(_, ls)| ls)
            .chain(draining)
        {
            l.finish(reason.clone(), Some(detail.to_string()));
        }
        self.tidy();
    }

    /// Forgets calls without listeners (telling the pipeline) and updates the gauge.
    fn tidy(&mut self) {
        self.listeners.retain(|_, ls| !ls.is_empty());
        let (listeners, gone) = (&self.listeners, &self.gone);
        self.tickets.retain(|&call, &mut ticket| {
            let keep = listeners.contains_key(&call);
            if !keep {
                let _ = gone.try_send(CallGone { call, ticket });
            }
            keep
        });
        self.count = self
            .listeners
            .values()
            .flatten()
            .chain(&self.draining)
            .map(Listener::subscribers)
            .sum();
        self.shared
            .active_listeners
            .store(self.count as u64, Ordering::Relaxed);
    }
}
