//! G.722 (ITU-T G.722, 64 kbit/s mode): the decoder (two ADPCM sub-bands joined
//! by the receive QMF) and the encoder (transmit QMF, then the same sub-band
//! quantisers), sharing the predictor and scale-factor blocks. The arithmetic follows the ITU fixed-point blocks
//! (as in the public-domain spandsp/CMU implementation, which Wireshark,
//! FreeSWITCH and Asterisk use), so the output matches them bit for bit.

use crate::fade::Fade;
use crate::{DecodeError, Decoder};

const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [usize; 4] = [2, 1, 2, 1];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// Encoder: low-band decision levels (Q6), and the codes for negative and
/// positive differences (ILN/ILP) and high-band codes (IHN/IHP).
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
const ILN: [u8; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
const ILP: [u8; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
const IHN: [u8; 3] = [0, 1, 0];
const IHP: [u8; 3] = [0, 3, 2];
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

fn sat(v: i32) -> i32 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// Predictor state of one sub-band (ITU blocks 4L/4H).
#[derive(Default, Clone)]
struct Band {
    s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    nb: i32,
    det: i32,
}

impl Band {
    fn new(det: i32) -> Self {
        Self {
            det,
            ..Self::default()
        }
    }

    /// Block 4: pole/zero predictor adaptation and the next prediction.
    fn adapt(&mut self, d: i32) {
        self.d[0] = d;
        self.r[0] = sat(self.s + d);
        self.p[0] = sat(self.sz + d);

        // UPPOL2
        let sg0 = self.p[0] >> 15;
        let sg1 = self.p[1] >> 15;
        let sg2 = self.p[2] >> 15;
        let wd1 = sat(self.a[1] << 2);
        let wd2 = (if sg0 == sg1 { -wd1 } else { wd1 }).min(32767);
        let mut wd3 = (wd2 >> 7) + if sg0 == sg2 { 128 } else { -128 };
        wd3 += (self.a[2] * 32512) >> 15;
        self.ap[2] = wd3.clamp(-12288, 12288);

        // UPPOL1
        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        let limit = sat(15360 - self.ap[2]);
        self.ap[1] = sat(wd1 + wd2).max(-limit).min(limit);

        // UPZERO
        let step = if d == 0 { 0 } else { 128 };
        let sgd = d >> 15;
        for i in 1..7 {
            let wd2 = if self.d[i] >> 15 == sgd { step } else { -step };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.bp[i] = sat(wd2 + wd3);
        }

        // DELAYA
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }

        // FILTEP, FILTEZ, PREDIC
        let wd1 = (self.a[1] * sat(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * sat(self.r[2] + self.r[2])) >> 15;
        self.sp = sat(wd1 + wd2);
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * sat(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = sat(sz);
        self.s = sat(self.sp + self.sz);
    }

    /// Block 3: log scale factor adaptation and its linear form.
    fn scale(&mut self, wl: i32, nb_max: i32, shift_base: i32) {
        self.nb = (((self.nb * 127) >> 7) + wl).clamp(0, nb_max);
        let wd1 = ((self.nb >> 6) & 31) as usize;
        let wd2 = shift_base - (self.nb >> 11);
        let ilb = ILB.get(wd1).copied().unwrap_or(0);
        let wd3 = if wd2 < 0 { ilb << -wd2 } else { ilb >> wd2 };
        self.det = wd3 << 2;
    }
}

pub(crate) struct G722Decoder {
    low: Band,
    high: Band,
    qmf: [i32; 24],
    fade: Fade,
}

impl G722Decoder {
    pub(crate) fn new() -> Self {
        Self {
            low: Band::new(32),
            high: Band::new(8),
            qmf: [0; 24],
            fade: Fade::new(16000, 1),
        }
    }

    fn low_band(&mut self, code: u8) -> i32 {
        let ilow = usize::from(code & 0x3F);
        let wd2 = QM6.get(ilow).copied().unwrap_or(0);
        let rlow = (self.low.s + ((self.low.det * wd2) >> 15)).clamp(-16384, 16383);
        let ilr = ilow >> 2;
        let dlowt = (self.low.det * QM4.get(ilr).copied().unwrap_or(0)) >> 15;
        let wl = WL
            .get(RL42.get(ilr).copied().unwrap_or(0))
            .copied()
            .unwrap_or(0);
        self.low.scale(wl, 18432, 8);
        self.low.adapt(dlowt);
        rlow
    }

    fn high_band(&mut self, code: u8) -> i32 {
        let ihigh = usize::from(code >> 6);
        let dhigh = (self.high.det * QM2.get(ihigh).copied().unwrap_or(0)) >> 15;
        let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
        let wh = WH
            .get(RH2.get(ihigh).copied().unwrap_or(0))
            .copied()
            .unwrap_or(0);
        self.high.scale(wh, 22528, 10);
        self.high.adapt(dhigh);
        rhigh
    }

    /// Receive QMF: each code yields two 16 kHz output samples.
    fn synthesize(&mut self, rlow: i32, rhigh: i32, out: &mut Vec<i16>) {
        self.qmf.copy_within(2.., 0);
        self.qmf[22] = rlow + rhigh;
        self.qmf[23] = rlow - rhigh;
        let mut xout1 = 0;
        let mut xout2 = 0;
        for (i, c) in QMF.iter().enumerate() {
            xout2 += self.qmf[2 * i] * c;
            xout1 += self.qmf[2 * i + 1] * QMF[11 - i];
        }
        out.push(sat(xout1 >> 11) as i16);
        out.push(sat(xout2 >> 11) as i16);
    }
}

/// G.722 encoder at 64 kbit/s: 16 kHz PCM in, one code byte per two samples
/// out (the RTP payload format of RFC 3551). Used to generate traffic; the
/// arithmetic is the ITU fixed-point one, so [`crate::decoder_for`] decodes it.
pub struct G722Encoder {
    low: Band,
    high: Band,
    /// Transmit QMF delay line.
    x: [i32; 24],
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    pub fn new() -> Self {
        Self {
            low: Band::new(32),
            high: Band::new(8),
            x: [0; 24],
        }
    }

    /// Encodes 16 kHz mono PCM, appending `pcm.len() / 2` bytes; a trailing
    /// odd sample is ignored, so give whole packets (20 ms = 320 samples).
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        out.reserve(pcm.len() / 2);
        for pair in pcm.chunks_exact(2) {
            let (xlow, xhigh) = self.analyse(pair[0], pair[1]);
            let ilow = self.quantise_low(xlow);
            let ihigh = self.quantise_high(xhigh);
            out.push((ihigh << 6) | ilow);
        }
    }

    /// Transmit QMF: two input samples become one low-band and one high-band sample.
    fn analyse(&mut self, a: i16, b: i16) -> (i32, i32) {
        self.x.copy_within(2.., 0);
        self.x[22] = i32::from(a);
        self.x[23] = i32::from(b);
        let (mut odd, mut even) = (0, 0);
        for (i, c) in QMF.iter().enumerate() {
            odd += self.x[2 * i] * c;
            even += self.x[2 * i + 1] * QMF[11 - i];
        }
        ((even + odd) >> 14, (even - odd) >> 14)
    }

    /// Blocks 1L-4L: 6-bit quantisation of the low-band prediction error.
    fn quantise_low(&mut self, xlow: i32) -> u8 {
        let el = sat(xlow - self.low.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 && wd >= (Q6[i] * self.low.det) >> 12 {
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        let ril = usize::from(ilow >> 2);
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.scale(WL[RL42[ril]], 18432, 8);
        self.low.adapt(dlow);
        ilow
    }

    /// Blocks 1H-4H: 2-bit quantisation of the high-band prediction error.
    fn quantise_high(&mut self, xhigh: i32) -> u8 {
        let eh = sat(xhigh - self.high.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (564 * self.high.det) >> 12 {
            2
        } else {
            1
        };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
        let dhigh = (self.high.det * QM2[usize::from(ihigh)]) >> 15;
        self.high.scale(WH[RH2[usize::from(ihigh)]], 22528, 10);
        self.high.adapt(dhigh);
        ihigh
    }
}

impl Decoder for G722Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        let start = out.len();
        out.reserve(payload.len() * 2);
        for &code in payload {
            let rlow = self.low_band(code);
            let rhigh = self.high_band(code);
            self.synthesize(rlow, rhigh, out);
        }
        self.fade.remember(&out[start..]);
        Ok(payload.len() * 2)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.fade.conceal(samples, out);
    }

    fn channels(&self) -> u8 {
        1
    }

    fn sample_rate(&self) -> u32 {
        16000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signal-to-noise ratio of `got` against `want` in dB, after aligning by `delay` samples.
    fn snr_db(want: &[i16], got: &[i16], delay: usize) -> f64 {
        let (mut sig, mut noise) = (0.0f64, 0.0f64);
        for (w, g) in want.iter().zip(&got[delay..]) {
            let (w, g) = (f64::from(*w), f64::from(*g));
            sig += w * w;
            noise += (w - g) * (w - g);
        }
        10.0 * (sig / noise.max(1.0)).log10()
    }

    fn round_trip(pcm: &[i16]) -> Vec<i16> {
        let mut codes = Vec::new();
        G722Encoder::new().encode(pcm, &mut codes);
        assert_eq!(codes.len(), pcm.len() / 2);
        let mut out = Vec::new();
        G722Decoder::new().decode(&codes, &mut out).unwrap();
        out
    }

    /// The QMF pair delays the signal by 22 samples; find the best alignment around it rather
    /// than trusting the figure.
    fn best_snr(pcm: &[i16], out: &[i16]) -> (usize, f64) {
        (0..40)
            .map(|d| (d, snr_db(&pcm[..pcm.len() - 40], out, d)))
            .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a })
    }

    #[test]
    fn tones_survive_a_round_trip_through_our_decoder() {
        for hz in [300.0, 1000.0, 3000.0, 6000.0] {
            let pcm: Vec<i16> = (0..16000)
                .map(|n| {
                    (8000.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / 16000.0).sin()) as i16
                })
                .collect();
            let out = round_trip(&pcm);
            // Skip the first 50 ms while the adaptive quantisers settle.
            let (delay, snr) = best_snr(&pcm[800..], &out[800..]);
            eprintln!("{hz} Hz: SNR {snr:.1} dB at delay {delay}");
            assert!(snr > 25.0, "{hz} Hz: SNR {snr:.1} dB at delay {delay}");
        }
    }

    /// A sweep is not periodic, so the best alignment is the codec's true delay: the transmit
    /// and receive QMFs together delay by 22 samples.
    #[test]
    fn a_sweep_round_trips_with_the_qmf_delay() {
        let pcm: Vec<i16> = (0..32000)
            .map(|n| {
                let t = n as f64 / 16000.0;
                // 200 Hz to 5 kHz over 2 s.
                let phase = 2.0 * std::f64::consts::PI * (200.0 * t + 1200.0 * t * t);
                (8000.0 * phase.sin()) as i16
            })
            .collect();
        let out = round_trip(&pcm);
        let (delay, snr) = best_snr(&pcm[800..], &out[800..]);
        eprintln!("sweep: SNR {snr:.1} dB at delay {delay}");
        assert_eq!(delay, 22);
        assert!(snr > 25.0, "sweep: SNR {snr:.1} dB");
    }

    #[test]
    fn silence_stays_silent() {
        let out = round_trip(&[0i16; 3200]);
        assert!(
            out.iter().all(|s| s.abs() < 64),
            "max {:?}",
            out.iter().max()
        );
    }
}
