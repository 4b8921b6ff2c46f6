//! Quality over time in `active_call_info`: each stream's per-second points, as the sensor's
//! engine keeps them (its last `Config::timeline` seconds, 120 by default), so a page can draw
//! a dip at 0:42 where it happened. Bounded: at most [`MAX_STREAMS`] streams of at most
//! [`MAX_POINTS`] points each, whatever the engine holds.

use earshot_rtp::Party;
use serde_json::{json, Value};

/// Streams listed per call (a call holds at most 64).
pub const MAX_STREAMS: usize = 64;
/// Points listed per stream: the newest are kept.
pub const MAX_POINTS: usize = 3600;

/// One second of a stream.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct QualitySecond {
    /// Capture second (Unix).
    pub sec: i64,
    pub packets: u16,
    pub lost: i16,
    pub jitter_ms: f64,
    /// `None` for a second without packets, or a stream without a MOS (see `quality_unknown`).
    pub mos: Option<f64>,
    /// The sensor's own drop counters rose in this second: its loss may be the sensor's.
    pub capture_gap: bool,
}

/// One stream's points, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamTimeline {
    pub party: Option<Party>,
    pub ssrc: u32,
    pub points: Vec<QualitySecond>,
    /// Seconds closed but no longer kept (older than the ring), or not listed.
    pub left_out: u64,
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

/// `{"streams":[{"party","ssrc","start","points":[[packets, lost, jitter_ms, mos, gap]…],
/// "points_left_out"}]}`: points as arrays, one a second from `start` (Unix seconds), so two
/// minutes of a call are a few kilobytes.
pub fn quality_json(streams: &[StreamTimeline]) -> Value {
    let list: Vec<Value> = streams
        .iter()
        .take(MAX_STREAMS)
        .map(|s| {
            let skip = s.points.len().saturating_sub(MAX_POINTS);
            let points: Vec<Value> = s
                .points
                .iter()
                .skip(skip)
                .map(|p| {
                    json!([
                        p.packets,
                        p.lost,
                        round(p.jitter_ms, 1),
                        p.mos.map(|m| round(m, 2)),
                        u8::from(p.capture_gap)
                    ])
                })
                .collect();
            json!({
                "party": s.party.map(Party::as_str),
                "ssrc": s.ssrc,
                "start": s.points.get(skip).map(|p| p.sec),
                "points": points,
                "points_left_out": s.left_out.saturating_add(skip as u64),
            })
        })
        .collect();
    json!({ "streams": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_compact_arrays_and_bounded() {
        let p = |sec| QualitySecond {
            sec,
            packets: 50,
            lost: 1,
            jitter_ms: 3.125,
            mos: Some(4.123),
            capture_gap: sec == 11,
        };
        let s = StreamTimeline {
            party: Some(Party::Caller),
            ssrc: 7,
            points: (10..(10 + MAX_POINTS as i64 + 2)).map(p).collect(),
            left_out: 3,
        };
        let v = quality_json(&[s]);
        let st = &v["streams"][0];
        assert_eq!(st["party"], "caller");
        assert_eq!(st["start"], 12);
        assert_eq!(st["points_left_out"], 5);
        assert_eq!(st["points"].as_array().map(Vec::len), Some(MAX_POINTS));
        assert_eq!(st["points"][0], json!([50, 1, 3.1, 4.12, 0]));
    }
}
