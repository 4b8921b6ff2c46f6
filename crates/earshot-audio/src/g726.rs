//! G.726 ADPCM at 16/24/32/40 kbit/s (ITU-T G.726, linear output).
//!
//! Written from the recommendation's block diagrams; state variables keep the
//! 16-bit widths of the reference implementations (Sun's g72x, spandsp) so
//! the output is bit-exact with them, including their 16-bit wrap-arounds.
//! Two bit orders exist in RTP: RFC 3551 "G726-xx" packs the first code word
//! into the least significant bits of an octet, ITU-T I.366.2 ("AAL2-G726-xx")
//! into the most significant bits.

use crate::fade::Fade;
use crate::{DecodeError, Decoder};

/// Per-rate tables: reconstruction log magnitude, scale factor multiplier,
/// and the speed-control input, indexed by code word.
struct Tables {
    dqln: &'static [i16],
    wi: &'static [i32],
    fi: &'static [i16],
    /// Mask of the magnitude bits kept when a negative difference is
    /// subtracted from the estimate (narrower than 15 bits below 40 kbit/s).
    dq_mask: i16,
}

const T16: Tables = Tables {
    dqln: &[116, 365, 365, 116],
    wi: &[-704, 14048, 14048, -704],
    fi: &[0x000, 0xE00, 0xE00, 0x000],
    dq_mask: 0x3FFF,
};
const T24: Tables = Tables {
    dqln: &[-2048, 135, 273, 373, 373, 273, 135, -2048],
    wi: &[-128, 960, 4384, 18624, 18624, 4384, 960, -128],
    fi: &[0x000, 0x200, 0x400, 0xE00, 0xE00, 0x400, 0x200, 0x000],
    dq_mask: 0x3FFF,
};
const T32: Tables = Tables {
    dqln: &[
        -2048, 4, 135, 213, 273, 323, 373, 425, 425, 373, 323, 273, 213, 135, 4, -2048,
    ],
    wi: &[
        -384, 576, 1312, 2048, 3584, 6336, 11360, 35904, 35904, 11360, 6336, 3584, 2048, 1312, 576,
        -384,
    ],
    fi: &[
        0x000, 0x000, 0x000, 0x200, 0x200, 0x200, 0x600, 0xE00, 0xE00, 0x600, 0x200, 0x200, 0x200,
        0x000, 0x000, 0x000,
    ],
    dq_mask: 0x3FFF,
};
const T40: Tables = Tables {
    dqln: &[
        -2048, -66, 28, 104, 169, 224, 274, 318, 358, 395, 429, 459, 488, 514, 539, 566, 566, 539,
        514, 488, 459, 429, 395, 358, 318, 274, 224, 169, 104, 28, -66, -2048,
    ],
    wi: &[
        448, 448, 768, 1248, 1280, 1312, 1856, 3200, 4512, 5728, 7008, 8960, 11456, 14080, 16928,
        22272, 22272, 16928, 14080, 11456, 8960, 7008, 5728, 4512, 3200, 1856, 1312, 1280, 1248,
        768, 448, 448,
    ],
    fi: &[
        0x000, 0x000, 0x000, 0x000, 0x000, 0x200, 0x200, 0x200, 0x200, 0x200, 0x400, 0x600, 0x800,
        0xA00, 0xC00, 0xC00, 0xC00, 0xC00, 0xA00, 0x800, 0x600, 0x400, 0x200, 0x200, 0x200, 0x200,
        0x200, 0x000, 0x000, 0x000, 0x000, 0x000,
    ],
    dq_mask: 0x7FFF,
};

/// Position of the highest set bit plus one (0 for 0): the exponent of the
/// G.726 "floating point" format.
fn exponent(v: i32) -> i32 {
    32 - (v as u32).leading_zeros() as i32
}

/// Multiplies a predictor coefficient by a value in the 4-bit exponent,
/// 6-bit mantissa format (FMULT).
fn fmult(an: i16, srn: i16) -> i16 {
    let an32 = i32::from(an);
    let srn32 = i32::from(srn);
    let anmag = if an32 > 0 { an32 } else { (-an32) & 0x1FFF };
    let anexp = exponent(anmag) - 6;
    let anmant = if anmag == 0 {
        32
    } else if anexp >= 0 {
        anmag >> anexp
    } else {
        anmag << -anexp
    };
    let wanexp = anexp + ((srn32 >> 6) & 0xF) - 13;
    let wanmant = (anmant * (srn32 & 0x3F) + 0x30) >> 4;
    let retval = if wanexp >= 0 {
        (wanmant << wanexp) & 0x7FFF
    } else {
        wanmant >> -wanexp
    };
    (if (an32 ^ srn32) < 0 { -retval } else { retval }) as i16
}

/// Converts a 16-bit value to the exponent/mantissa format (FLOAT A/B).
fn to_float(mag: i32, negative: bool) -> i16 {
    let exp = exponent(mag);
    let v = (exp << 6) + ((mag << 6) >> exp);
    (if negative { v - 0x400 } else { v }) as i16
}

struct State {
    yl: i32,
    yu: i16,
    dms: i16,
    dml: i16,
    ap: i16,
    a: [i16; 2],
    b: [i16; 6],
    pk: [i16; 2],
    dq: [i16; 6],
    sr: [i16; 2],
    td: bool,
    bits: u8,
}

impl State {
    fn new(bits: u8) -> Self {
        Self {
            yl: 34816,
            yu: 544,
            dms: 0,
            dml: 0,
            ap: 0,
            a: [0; 2],
            b: [0; 6],
            pk: [0; 2],
            dq: [32; 6],
            sr: [32; 2],
            td: false,
            bits,
        }
    }

    fn predictor_zero(&self) -> i16 {
        let mut sezi = 0i32;
        for (b, dq) in self.b.iter().zip(self.dq.iter()) {
            sezi += i32::from(fmult(b >> 2, *dq));
        }
        sezi as i16
    }

    fn predictor_pole(&self) -> i16 {
        (i32::from(fmult(self.a[1] >> 2, self.sr[1]))
            + i32::from(fmult(self.a[0] >> 2, self.sr[0]))) as i16
    }

    fn step_size(&self) -> i32 {
        if self.ap >= 256 {
            return i32::from(self.yu);
        }
        let mut y = self.yl >> 6;
        let dif = i32::from(self.yu) - y;
        let al = i32::from(self.ap >> 2);
        if dif > 0 {
            y += (dif * al) >> 6;
        } else if dif < 0 {
            y += (dif * al + 0x3F) >> 6;
        }
        y
    }

    /// Decodes one code word to a 14-bit sample.
    fn decode(&mut self, code: usize, t: &Tables) -> i16 {
        let sign_bit = 1usize << (self.bits - 1);
        let sezi = self.predictor_zero();
        let sei = sezi.wrapping_add(self.predictor_pole());
        let y = self.step_size();
        let dqln = t.dqln.get(code).copied().unwrap_or(0);
        let dq = reconstruct(code & sign_bit != 0, dqln, y);
        let se = sei >> 1;
        let sr = if dq < 0 {
            se.wrapping_sub(dq & t.dq_mask)
        } else {
            se.wrapping_add(dq)
        };
        let dqsez = sr.wrapping_add(sezi >> 1).wrapping_sub(se);
        let wi = t.wi.get(code).copied().unwrap_or(0);
        let fi = t.fi.get(code).copied().unwrap_or(0);
        self.update(y, wi, fi, dq, sr, dqsez);
        sr
    }

    fn update(&mut self, y: i32, wi: i32, fi: i16, dq: i16, sr: i16, dqsez: i16) {
        let pk0: i16 = i16::from(dqsez < 0);
        let mag = dq & 0x7FFF;

        // TRANS: a large difference after a data-like stretch means modem.
        let ylint = self.yl >> 15;
        let ylfrac = (self.yl >> 10) & 0x1F;
        let thr = if ylint > 9 {
            31 << 10
        } else {
            (32 + ylfrac) << ylint
        };
        let dqthr = (thr + (thr >> 1)) >> 1;
        let tr = self.td && i32::from(mag) > dqthr;

        // Quantizer scale factor adaptation.
        self.yu = (y + ((wi - y) >> 5)).clamp(544, 5120) as i16;
        self.yl += i32::from(self.yu) + ((-self.yl) >> 6);

        let mut a2p: i16 = 0;
        if tr {
            self.a = [0; 2];
            self.b = [0; 6];
        } else {
            a2p = self.update_poles(pk0, dqsez);
            self.update_zeros(dq);
        }

        self.dq.copy_within(0..5, 1);
        self.dq[0] = if mag == 0 {
            if dq >= 0 {
                0x20
            } else {
                0xFC20u16 as i16
            }
        } else {
            to_float(i32::from(mag), dq < 0)
        };

        self.sr[1] = self.sr[0];
        self.sr[0] = match sr {
            0 => 0x20,
            s if s > 0 => to_float(i32::from(s), false),
            i16::MIN => 0xFC20u16 as i16,
            s => to_float(-i32::from(s), true),
        };

        self.pk[1] = self.pk[0];
        self.pk[0] = pk0;

        // TONE: weak correlation hints at data.
        self.td = !tr && a2p < -11776;

        // Adaptation speed control.
        self.dms = self.dms.wrapping_add((fi.wrapping_sub(self.dms)) >> 5);
        self.dml = self
            .dml
            .wrapping_add(((fi << 2).wrapping_sub(self.dml)) >> 7);
        self.ap = if tr {
            256
        } else if y < 1536
            || self.td
            || (i32::from(self.dms) << 2)
                .wrapping_sub(i32::from(self.dml))
                .abs()
                >= i32::from(self.dml >> 3)
        {
            self.ap.wrapping_add((0x200 - self.ap) >> 4)
        } else {
            self.ap.wrapping_add((-self.ap) >> 4)
        };
    }

    /// UPA2/UPA1 and their limits; returns the new a2.
    fn update_poles(&mut self, pk0: i16, dqsez: i16) -> i16 {
        let pks1 = pk0 ^ self.pk[0];
        let mut a2p = self.a[1].wrapping_sub(self.a[1] >> 7);
        if dqsez != 0 {
            let fa1 = if pks1 != 0 {
                self.a[0]
            } else {
                self.a[0].wrapping_neg()
            };
            a2p = if fa1 < -8191 {
                a2p.wrapping_sub(0x100)
            } else if fa1 > 8191 {
                a2p.wrapping_add(0xFF)
            } else {
                a2p.wrapping_add(fa1 >> 5)
            };
            a2p = if pk0 ^ self.pk[1] != 0 {
                if a2p <= -12160 {
                    -12288
                } else if a2p >= 12416 {
                    12288
                } else {
                    a2p - 0x80
                }
            } else if a2p <= -12416 {
                -12288
            } else if a2p >= 12160 {
                12288
            } else {
                a2p + 0x80
            };
        }
        self.a[1] = a2p;

        self.a[0] = self.a[0].wrapping_sub(self.a[0] >> 8);
        if dqsez != 0 {
            self.a[0] = if pks1 == 0 {
                self.a[0].wrapping_add(192)
            } else {
                self.a[0].wrapping_sub(192)
            };
        }
        let a1ul = 15360 - a2p;
        self.a[0] = self.a[0].max(-a1ul).min(a1ul);
        a2p
    }

    /// UPB: sign-sign adaptation of the six zeros.
    fn update_zeros(&mut self, dq: i16) {
        let leak = if self.bits == 5 { 9 } else { 8 };
        for (b, dqi) in self.b.iter_mut().zip(self.dq.iter()) {
            *b = b.wrapping_sub(*b >> leak);
            if dq & 0x7FFF != 0 {
                *b = if (dq ^ dqi) >= 0 {
                    b.wrapping_add(128)
                } else {
                    b.wrapping_sub(128)
                };
            }
        }
    }
}

/// ADDA + ANTILOG: log-domain code word back to a signed difference.
fn reconstruct(negative: bool, dqln: i16, y: i32) -> i16 {
    let dql = (i32::from(dqln) + (y >> 2)) as i16;
    if dql < 0 {
        return if negative { i16::MIN } else { 0 };
    }
    let dex = (dql >> 7) & 15;
    let dqt = 128 + (dql & 127);
    let shift = 14 - i32::from(dex);
    let dq = if shift >= 0 {
        (i32::from(dqt) << 7) >> shift
    } else {
        (i32::from(dqt) << 7) << -shift
    } as i16;
    if negative {
        dq.wrapping_sub(i16::MIN)
    } else {
        dq
    }
}

/// Which bit order G.726 payloads are read in.
///
/// Many devices (baresip among them) send AAL2-ordered payloads under the RFC 3551 name
/// "G726-32"; Asterisk calls that `g726aal2`, Wireshark has a preference for it. `Auto` finds
/// out per stream (see [`Detector`]); the other two trust the configuration over the SDP name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum G726Order {
    /// Decode the first packets both ways and keep the order whose audio is plausible.
    #[default]
    Auto,
    /// The order the SDP name says: RFC 3551 for "G726-xx", AAL2 for "AAL2-G726-xx".
    Rfc3551,
    /// AAL2 (ITU-T I.366.2) order whatever the name says.
    Aal2,
}

impl G726Order {
    pub fn as_str(self) -> &'static str {
        match self {
            G726Order::Auto => "auto",
            G726Order::Rfc3551 => "rfc3551",
            G726Order::Aal2 => "aal2",
        }
    }
}

impl std::fmt::Display for G726Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for G726Order {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(G726Order::Auto),
            "rfc3551" | "rfc" => Ok(G726Order::Rfc3551),
            "aal2" | "i366" => Ok(G726Order::Aal2),
            other => Err(format!(
                "unknown G.726 bit order {other:?}: use auto, rfc3551 or aal2"
            )),
        }
    }
}

/// Calls `f` with each code word of `payload` in transmission order. RTP frames always end
/// on an octet boundary, so no bits carry over between packets.
fn for_each_code(payload: &[u8], bits: u8, aal2: bool, mut f: impl FnMut(usize)) {
    let bits = u32::from(bits);
    let mask = (1u32 << bits) - 1;
    let mut acc = 0u32;
    let mut have = 0u32;
    for &byte in payload {
        if aal2 {
            acc = (acc << 8) | u32::from(byte);
        } else {
            acc |= u32::from(byte) << have;
        }
        have += 8;
        while have >= bits {
            let code = if aal2 {
                (acc >> (have - bits)) & mask
            } else {
                let c = acc & mask;
                acc >>= bits;
                c
            };
            have -= bits;
            if aal2 {
                acc &= (1u32 << have) - 1;
            }
            f(code as usize);
        }
    }
}

/// One bit order's decoder state.
struct Lane {
    state: State,
    aal2: bool,
}

impl Lane {
    fn decode(&mut self, payload: &[u8], t: &'static Tables, out: &mut Vec<i16>) -> usize {
        let start = out.len();
        let bits = self.state.bits;
        let state = &mut self.state;
        for_each_code(payload, bits, self.aal2, |code| {
            out.push(state.decode(code, t).wrapping_shl(2));
        });
        out.len() - start
    }
}

/// Samples of audible (not near-silent) output after which the order is decided.
const DECIDE_AFTER: u64 = 4000;
/// Packets after which the order is decided whatever was heard: bounds the doubled work.
const DECIDE_WITHIN_PACKETS: u32 = 500;
/// How much less predictable the named order's audio must be for the other to be chosen.
const MARGIN: f64 = 2.0;
/// Below this mean square a packet is near silence and says little about the order.
const QUIET: f64 = 100.0 * 100.0;
/// Linear-prediction order of the plausibility measure.
const ORDER: usize = 8;

/// Decides a stream's bit order from its first packets, decoded both ways at once.
///
/// Speech and tones are predictable: a short linear predictor (the autocorrelation method,
/// order 8) removes most of their energy. Code words read in the wrong order drive the ADPCM
/// decoder with scrambled steps, and its output is nearer white noise, whose energy no
/// predictor removes. The other lane wins when its prediction error, relative to its energy
/// and summed over audible packets, is [`MARGIN`] times lower than the named lane's. Both lanes
/// keep decoding until then, so switching to the winner costs no restart; otherwise the named
/// order stays. Deterministic, and bounded: at most [`DECIDE_WITHIN_PACKETS`] packets are
/// decoded twice, at ORDER + 1 multiply-adds a sample each.
struct Detector {
    other: Lane,
    scratch: Vec<i16>,
    /// Autocorrelation sums of audible packets: [named lane, other lane].
    acf: [[f64; ORDER + 1]; 2],
    audible: u64,
    packets: u32,
    /// The other lane leads.
    other_leads: bool,
}

fn add_acf(acf: &mut [f64; ORDER + 1], pcm: &[i16]) {
    for (lag, sum) in acf.iter_mut().enumerate() {
        let a = pcm.iter().skip(lag);
        *sum += a
            .zip(pcm)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum::<f64>();
    }
}

/// The prediction error left by the best order-[`ORDER`] linear predictor, relative to the
/// energy (Levinson-Durbin): near 0 for tones and voiced speech, near 1 for white noise.
fn unpredictability(r: &[f64; ORDER + 1]) -> f64 {
    if r[0] <= 0.0 {
        return 1.0;
    }
    let mut a = [0.0f64; ORDER + 1];
    let mut err = r[0];
    for i in 1..=ORDER {
        let acc: f64 = (1..i).map(|j| a[j] * r[i - j]).sum();
        let k = (r[i] - acc) / err;
        if !k.is_finite() || k.abs() >= 1.0 {
            break;
        }
        let prev = a;
        a[i] = k;
        for j in 1..i {
            a[j] = prev[j] - k * prev[i - j];
        }
        err *= 1.0 - k * k;
    }
    err / r[0]
}

impl Detector {
    /// Adds one packet's output of both lanes; true once the order is decided.
    fn observe(&mut self, named: &[i16], other: &[i16]) -> bool {
        self.packets += 1;
        let n = named.len().max(1) as f64;
        let loud = |pcm: &[i16]| pcm.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / n;
        if loud(named).max(loud(other)) >= QUIET {
            add_acf(&mut self.acf[0], named);
            add_acf(&mut self.acf[1], other);
            self.audible += named.len() as u64;
        }
        let (u_named, u_other) = (
            unpredictability(&self.acf[0]),
            unpredictability(&self.acf[1]),
        );
        self.other_leads = self.audible > 0 && u_named > MARGIN * u_other;
        self.audible >= DECIDE_AFTER || self.packets >= DECIDE_WITHIN_PACKETS
    }
}

pub(crate) struct G726Decoder {
    lane: Lane,
    tables: &'static Tables,
    /// While the order of an `Auto` stream is undecided.
    detector: Option<Box<Detector>>,
    fade: Fade,
}

impl G726Decoder {
    /// `aal2`: the order the name says; `order`: what to do with it.
    pub(crate) fn new(bits: u8, aal2: bool, order: G726Order) -> Option<Self> {
        let tables = match bits {
            2 => &T16,
            3 => &T24,
            4 => &T32,
            5 => &T40,
            _ => return None,
        };
        let named = match order {
            G726Order::Aal2 => true,
            G726Order::Auto | G726Order::Rfc3551 => aal2,
        };
        // At 32 kbit/s the wrong order only swaps the two code words of each octet: on speech
        // the wrong decode can look as predictable as the right one (1.4 times more, on
        // Wireshark's sample), so guessing could break correctly labelled streams. Those keep
        // the named order; `g726_order = "aal2"` is the way to read such devices.
        let detect = order == G726Order::Auto && bits != 4;
        let detector = detect.then(|| {
            Box::new(Detector {
                other: Lane {
                    state: State::new(bits),
                    aal2: !named,
                },
                scratch: Vec::new(),
                acf: [[0.0; ORDER + 1]; 2],
                audible: 0,
                packets: 0,
                other_leads: false,
            })
        });
        Some(Self {
            lane: Lane {
                state: State::new(bits),
                aal2: named,
            },
            tables,
            detector,
            fade: Fade::new(8000, 1),
        })
    }

    /// The order in use now (for an undecided `Auto` stream, the leading one).
    #[cfg(test)]
    pub(crate) fn is_aal2(&self) -> bool {
        match &self.detector {
            Some(d) if d.other_leads => d.other.aal2,
            _ => self.lane.aal2,
        }
    }

    /// Whether an `Auto` stream's order is still being decided.
    #[cfg(test)]
    pub(crate) fn deciding(&self) -> bool {
        self.detector.is_some()
    }

    /// Decodes with both lanes; the leading lane's output goes to `out`.
    fn decode_both(&mut self, payload: &[u8], out: &mut Vec<i16>) -> usize {
        let start = out.len();
        let n = self.lane.decode(payload, self.tables, out);
        let Some(d) = self.detector.as_mut() else {
            return n;
        };
        // Lent out of the detector while it looks at it; reused, so no allocation per packet.
        let mut other = std::mem::take(&mut d.scratch);
        other.clear();
        d.other.decode(payload, self.tables, &mut other);
        let decided = d.observe(&out[start..], &other);
        if d.other_leads {
            out.truncate(start);
            out.extend_from_slice(&other);
        }
        d.scratch = other;
        if decided {
            if let Some(d) = self.detector.take() {
                if d.other_leads {
                    self.lane = d.other;
                }
            }
        }
        n
    }
}

impl Decoder for G726Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        let start = out.len();
        let n = self.decode_both(payload, out);
        self.fade.remember(&out[start..]);
        Ok(n)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.fade.conceal(samples, out);
    }

    fn channels(&self) -> u8 {
        1
    }

    fn sample_rate(&self) -> u32 {
        8000
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn silence_decides_within_the_packet_bound_and_keeps_the_named_order() {
        let mut d = G726Decoder::new(3, false, G726Order::Auto).unwrap();
        let mut out = Vec::new();
        for _ in 0..DECIDE_WITHIN_PACKETS - 1 {
            out.clear();
            d.decode(&[0xff; 60], &mut out).unwrap();
            assert!(d.deciding());
        }
        d.decode(&[0xff; 60], &mut out).unwrap();
        assert!(
            !d.deciding(),
            "decided after {DECIDE_WITHIN_PACKETS} packets"
        );
        assert!(!d.is_aal2());
    }

    #[test]
    fn forced_orders_and_32_kbits_do_not_detect() {
        assert!(!G726Decoder::new(4, false, G726Order::Auto)
            .unwrap()
            .deciding());
        assert!(!G726Decoder::new(2, false, G726Order::Rfc3551)
            .unwrap()
            .deciding());
        assert!(G726Decoder::new(2, false, G726Order::Aal2)
            .unwrap()
            .is_aal2());
        assert!(G726Decoder::new(5, true, G726Order::Rfc3551)
            .unwrap()
            .is_aal2());
        assert_eq!("AAL2".parse::<G726Order>(), Ok(G726Order::Aal2));
        assert!("lsb".parse::<G726Order>().is_err());
    }
}
