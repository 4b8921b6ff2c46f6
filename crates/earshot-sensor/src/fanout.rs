//! The audio fan-out thread: decoding, playout and mixing for listeners, off the packet path.
//!
//! The pipeline thread only copies the RTP packets of listened calls into a bounded queue to
//! this thread (and counts what does not fit); everything that costs CPU per listener happens
//! here. So even a crowd of listeners, or one that stalls, can slow listening but never capture.

use crate::clock::BoundedClock;
use crate::counters::SensorCounters;
use crate::listener::{AudioFormat, Listener};
use crate::pipeline::Shared;
use crate::queue::FrameTx;
use crate::rewind::{KeptPacket, RewindSnapshot};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender as CbSender};
use earshot_core::CallId;
use earshot_manager::stream_proto::{CallEvent, EndFrame, EndReason, Frame};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
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
    pub call: CallId,
    pub ticket: u64,
}

/// Work for the fan-out thread.
pub(crate) enum AudioMsg {
    Subscribe {
        call: CallId,
        id: u64,
        /// Numbers the pipeline's subscriptions, in the order it sent them.
        ticket: u64,
        format: AudioFormat,
        /// The rewind buffer to play first (decoded here, a batch at a time, never on the
        /// pipeline thread). For "from now" (`from_now`), the call's recent past, decoded only
        /// to warm the decoders; None when nothing is kept.
        rewind: Option<RewindSnapshot>,
        /// The subscriber asked for audio from now on: it may share a listener of the same
        /// format that already plays live.
        from_now: bool,
        /// The call is on hold as the subscription is made (later changes come as events).
        on_hold: bool,
        tx: FrameTx,
    },
    Unsubscribe {
        id: u64,
    },
    Packet {
        call: CallId,
        packet: KeptPacket,
    },
    /// An event or quality report for every listener of a call.
    Broadcast {
        call: CallId,
        frame: Frame,
    },
    /// Whether the call is on hold, for the listeners' status (sent once a second).
    OnHold {
        call: CallId,
        on_hold: bool,
    },
    /// The call ended: play out what is left, then the end frame.
    Ended {
        call: CallId,
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
}

pub(crate) fn spawn(
    rx: Receiver<AudioMsg>,
    gone: CbSender<CallGone>,
    shared: Arc<Shared>,
    limits: Limits,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("earshot-audio".into())
        .spawn(move || {
            let mut f = Fanout {
                listeners: HashMap::new(),
                draining: Vec::new(),
                tickets: HashMap::new(),
                shared,
                limits,
                gone,
                clock: BoundedClock::following(CLOCK_STEP_NS),
                started: Instant::now(),
                count: 0,
            };
            f.run(&rx);
        })
}

struct Fanout {
    listeners: HashMap<CallId, Vec<Listener>>,
    /// Listeners of ended calls still playing their rewind; they end once it has played.
    draining: Vec<Listener>,
    /// Per call the pipeline sends packets of, the ticket of its latest subscription.
    tickets: HashMap<CallId, u64>,
    shared: Arc<Shared>,
    limits: Limits,
    /// Calls that lost their last listener, so the pipeline stops sending their packets.
    gone: CbSender<CallGone>,
    /// The listeners' playout clock: the latest packet's capture time (a step ahead at most)
    /// plus the wall time since it was seen. It follows packets back, as the listeners' audio
    /// is placed by their times: a clock that stayed ahead would make all of it late.
    clock: BoundedClock,
    /// Origin of the monotonic wall time the clock runs on.
    started: Instant,
    count: usize,
}

impl Fanout {
    fn run(&mut self, rx: &Receiver<AudioMsg>) {
        let mut last_poll = Instant::now();
        loop {
            match rx.recv_timeout(POLL) {
                Ok(msg) => {
                    if !self.handle(msg) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.end_all(EndReason::ServerShutdown, "sensor stopped");
                    return;
                }
            }
            if last_poll.elapsed() >= POLL {
                last_poll = Instant::now();
                self.poll();
            }
        }
    }

    fn mono_ns(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_nanos()).unwrap_or(i64::MAX)
    }

    fn now_ns(&self) -> Option<i64> {
        self.clock.now(self.mono_ns())
    }

    /// Puts a packet on the fan-out's clock: its capture time, unless that is more than a step
    /// ahead of the clock; then a step ahead (counted). The listeners see the same time, so no
    /// single packet moves their audio further than the clock.
    fn clocked(&mut self, mut packet: KeptPacket) -> KeptPacket {
        let before = self.clock.clamped();
        let at = self.clock.observe(packet.ts.nanos(), self.mono_ns());
        if self.clock.clamped() != before {
            SensorCounters::add(&self.shared.counters.clock_clamped, 1);
        }
        packet.ts = earshot_wire::Timestamp(at);
        packet
    }

    fn handle(&mut self, msg: AudioMsg) -> bool {
        match msg {
            AudioMsg::Subscribe {
                call,
                id,
                ticket,
                format,
                rewind,
                from_now,
                on_hold,
                tx,
            } => {
                self.tickets.insert(call, ticket);
                self.subscribe(call, id, format, rewind, from_now, tx);
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
            AudioMsg::Packet { call, packet } => {
                let packet = self.clocked(packet);
                if let Some(ls) = self.listeners.get_mut(&call) {
                    ls.retain_mut(|l| l.push(&packet.as_rtp(call)).is_ok());
                }
                self.tidy();
            }
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
        call: CallId,
        id: u64,
        format: AudioFormat,
        rewind: Option<RewindSnapshot>,
        from_now: bool,
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
        let rewind = rewind.filter(|r| !r.is_empty());
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

    fn set_on_hold(&mut self, call: CallId, on_hold: bool) {
        for l in self.listeners.get_mut(&call).into_iter().flatten() {
            l.set_on_hold(on_hold);
        }
    }

    fn broadcast(&mut self, call: CallId, frame: &Frame) {
        match frame {
            Frame::Event(CallEvent::Hold { .. }) => self.set_on_hold(call, true),
            Frame::Event(CallEvent::Resume { .. }) => self.set_on_hold(call, false),
            _ => {}
        }
        if let Some(ls) = self.listeners.get_mut(&call) {
            ls.retain_mut(|l| l.send(frame.clone()).is_ok());
        }
    }

    fn end_all(&mut self, reason: EndReason, detail: &str) {
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
