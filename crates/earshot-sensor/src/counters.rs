//! Counters shared between capture threads, the pipeline and the manager, as relaxed atomics:
//! they are statistics, and reading them must never slow down the threads that bump them.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct SensorCounters {
    /// Frames taken from sources.
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    /// Frames the kernel dropped before libpcap saw them (from pcap_stats).
    pub kernel_drops: AtomicU64,
    /// Frames dropped because the pipeline queue was full: our own loss, never the network's.
    pub internal_drops: AtomicU64,
    /// Listeners dropped because they fell behind.
    pub listener_drops: AtomicU64,
    /// Packets or events for listeners lost because the audio fan-out queue was full.
    pub audio_drops: AtomicU64,
    /// Of the listener drops, those because all listeners' queues were at the memory budget.
    pub listener_budget_drops: AtomicU64,
    /// 20 ms blocks of audio the Opus encoder failed on (lost, seen as a gap in `seq`).
    pub listener_encode_errors: AtomicU64,
    /// Listeners refused by a listener limit (in total, per call, per client and call).
    pub listeners_refused: AtomicU64,
    /// RTP packets not kept for rewind because their call or the store was at its byte limit.
    pub rewind_overflow: AtomicU64,
    /// RTP packets the pipeline could not hand to the fan-out thread (which keeps the rewind
    /// and feeds listeners) because the hand-off between them was at its byte bound.
    pub handoff_drops: AtomicU64,
    /// Bytes the rewind store holds now (a gauge, set by the fan-out thread that owns it).
    pub rewind_bytes: AtomicU64,
    /// Audit lines lost: the writer's queue was full or the file could not be written.
    pub audit_drops: AtomicU64,
    /// Frames the pipeline has processed.
    pub processed: AtomicU64,
    /// HEP datagrams dropped on receipt: source not in the allow-list, or no (or a wrong) auth key.
    pub hep_refused_address: AtomicU64,
    pub hep_refused_auth_key: AtomicU64,
    /// Capture times more than a step ahead of the sensor's clock (pipeline or audio fan-out),
    /// which moved it by one step only.
    pub clock_clamped: AtomicU64,
    /// Times a listener's audio timeline was re-anchored after a jump in capture or RTP time
    /// (or a pause longer than the longest gap kept).
    pub audio_resyncs: AtomicU64,
    pub metrics: MetricCounters,
}

impl SensorCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The counters only `/metrics` reads (the rest of [`SensorCounters`] also feeds
/// `sniffer_stat`). Each is bumped where its event happens, with relaxed atomics.
#[derive(Debug)]
pub struct MetricCounters {
    pub calls_started: AtomicU64,
    /// Calls that ended, by their final SIP code.
    pub calls_ended: CodeCounts,
    /// Audio payloads the listeners' decoders rejected, by codec.
    pub decode_errors: CodecCounts,
    /// From the capture time of a frame's last sample to the moment the frame leaves for the
    /// listeners (live listeners only: a rewind is late on purpose).
    pub frame_latency: earshot_metrics::Histogram,
}

/// Bounds of the packet-to-frame latency histogram, in seconds: the live playout holds 40 to
/// 400 ms, so the buckets are dense there.
pub const FRAME_LATENCY_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 1.0, 2.0, 5.0,
];

impl Default for MetricCounters {
    fn default() -> Self {
        MetricCounters {
            calls_started: AtomicU64::new(0),
            calls_ended: CodeCounts::default(),
            decode_errors: CodecCounts::default(),
            frame_latency: earshot_metrics::Histogram::new(FRAME_LATENCY_BOUNDS),
        }
    }
}

/// One counter per SIP final code 100-699, plus one for calls that ended without a response:
/// a bounded label set, and no lock to bump it.
#[derive(Debug)]
pub struct CodeCounts(Box<[AtomicU64]>);

const CODE_MIN: u16 = 100;
const CODE_MAX: u16 = 699;

impl Default for CodeCounts {
    fn default() -> Self {
        CodeCounts(
            (CODE_MIN..=CODE_MAX + 1)
                .map(|_| AtomicU64::new(0))
                .collect(),
        )
    }
}

impl CodeCounts {
    /// Counts one call; codes outside 100-699 count as "none".
    pub fn add(&self, code: Option<u16>) {
        let slot = match code {
            Some(c) if (CODE_MIN..=CODE_MAX).contains(&c) => usize::from(c - CODE_MIN) + 1,
            _ => 0,
        };
        if let Some(c) = self.0.get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(label, count)` for every code seen at least once, "none" first.
    pub fn nonzero(&self) -> Vec<(String, u64)> {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                let label = match i {
                    0 => "none".to_string(),
                    _ => (CODE_MIN as usize + i - 1).to_string(),
                };
                (n > 0).then_some((label, n))
            })
            .collect()
    }
}

/// Codec labels of [`CodecCounts`]; anything else is "other".
pub const CODEC_LABELS: [&str; 15] = [
    "pcmu", "pcma", "g722", "g729", "opus", "gsm", "g726", "l16", "ilbc", "speex", "dvi4", "cn",
    "other", "amr", "g723",
];

#[derive(Debug, Default)]
pub struct CodecCounts([AtomicU64; CODEC_LABELS.len()]);

impl CodecCounts {
    pub fn add(&self, codec: &earshot_audio::Codec, n: u64) {
        if let Some(c) = self.0.get(codec_slot(codec)) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self, label: &str) -> u64 {
        CODEC_LABELS
            .iter()
            .position(|l| *l == label)
            .and_then(|i| self.0.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Every codec label with its count, zeros included, so dashboards see the series at once.
    pub fn all(&self) -> Vec<(&'static str, u64)> {
        CODEC_LABELS
            .iter()
            .zip(&self.0)
            .map(|(l, c)| (*l, c.load(Ordering::Relaxed)))
            .collect()
    }
}

fn codec_slot(codec: &earshot_audio::Codec) -> usize {
    use earshot_audio::Codec as C;
    match codec {
        C::Pcmu => 0,
        C::Pcma => 1,
        C::G722 => 2,
        C::G729 => 3,
        C::Opus { .. } => 4,
        C::Gsm => 5,
        C::G726 { .. } => 6,
        C::L16 { .. } => 7,
        C::Ilbc { .. } => 8,
        C::Speex { .. } => 9,
        C::Dvi4 { .. } => 10,
        C::Cn { .. } => 11,
        C::TelephoneEvent | C::Unsupported(_) => 12,
        C::Amr { .. } => 13,
        C::G723 => 14,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_codes_are_counted_by_code_and_odd_ones_as_none() {
        let c = CodeCounts::default();
        c.add(Some(200));
        c.add(Some(200));
        c.add(Some(487));
        c.add(None);
        c.add(Some(42));
        c.add(Some(699));
        c.add(Some(700));
        assert_eq!(
            c.nonzero(),
            vec![
                ("none".to_string(), 3),
                ("200".to_string(), 2),
                ("487".to_string(), 1),
                ("699".to_string(), 1)
            ]
        );
    }

    #[test]
    fn codecs_share_a_bounded_label_set() {
        let c = CodecCounts::default();
        c.add(&earshot_audio::Codec::G729, 2);
        c.add(&earshot_audio::Codec::Opus { channels: 2 }, 1);
        c.add(&earshot_audio::Codec::Unsupported("x-weird".into()), 5);
        assert_eq!(c.get("g729"), 2);
        assert_eq!(c.get("opus"), 1);
        assert_eq!(c.get("other"), 5);
        assert_eq!(c.all().len(), CODEC_LABELS.len());
        assert_eq!(c.all().iter().map(|(_, n)| n).sum::<u64>(), 8);
    }
}
