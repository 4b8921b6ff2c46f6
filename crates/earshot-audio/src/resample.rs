//! Band-limited sample-rate conversion: a rational polyphase FIR whose taps
//! are a Kaiser-windowed sinc. Every rate pair used in telephony reduces to a
//! small ratio (8 k → 48 k is 6/1, 44.1 k → 48 k is 160/147), so one table of
//! `up` phases is exact and cheap; no interpolation between phases, hence no
//! sample repetition or linear interpolation anywhere.
//!
//! The converter is streaming but time-aligned: output sample `k` sits at
//! time `k / out_rate` after input sample 0, exactly. It waits for the input
//! it needs after that instant (half the filter length), and `finish` assumes
//! silence past the end, so a run of `n` input samples always yields
//! `ceil(n * out / in)` output samples.

/// Half the number of taps, in input samples at the narrower bandwidth.
/// 16 gives > 60 dB stop-band with the Kaiser beta below: ample for speech.
const HALF_TAPS: usize = 16;
const KAISER_BETA: f64 = 7.0;
/// Cut-off as a fraction of the lower Nyquist frequency: leaves room for the
/// transition band so that images above it are attenuated.
const CUTOFF: f64 = 0.92;

/// Converts one mono stream from `in_rate` to `out_rate`.
pub struct Resampler {
    up: u64,
    down: u64,
    /// Taps per phase, `phases[p][j]` multiplies input `i - half + 1 + j`.
    phases: Vec<Vec<f32>>,
    half: usize,
    /// Input not yet fully consumed; `buf[0]` is input number `buf_start`.
    buf: Vec<f32>,
    buf_start: u64,
    fed: u64,
    produced: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        let f = half / k as f64;
        term *= f * f;
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

fn kaiser(x: f64, half_width: f64) -> f64 {
    let r = x / half_width;
    if r.abs() >= 1.0 {
        return 0.0;
    }
    bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / bessel_i0(KAISER_BETA)
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

impl Resampler {
    /// `None` when a rate is 0.
    pub fn new(in_rate: u32, out_rate: u32) -> Option<Self> {
        if in_rate == 0 || out_rate == 0 {
            return None;
        }
        let g = gcd(u64::from(in_rate), u64::from(out_rate));
        let up = u64::from(out_rate) / g;
        let down = u64::from(in_rate) / g;
        // When decimating, the filter must cut at the output's Nyquist, which
        // in input samples means proportionally wider taps.
        let scale = (up as f64 / down as f64).min(1.0);
        let half = (HALF_TAPS as f64 / scale).ceil() as usize;
        let fc = CUTOFF * scale;
        let phases = (0..up)
            .map(|p| Self::phase_taps(p as f64 / up as f64, half, fc))
            .collect();
        Some(Self {
            up,
            down,
            phases,
            half,
            buf: Vec::new(),
            buf_start: 0,
            fed: 0,
            produced: 0,
        })
    }

    fn phase_taps(frac: f64, half: usize, fc: f64) -> Vec<f32> {
        let mut taps: Vec<f64> = (0..2 * half)
            .map(|j| {
                // Distance from the output instant to input `i - half + 1 + j`.
                let x = (j as f64 - half as f64 + 1.0) - frac;
                fc * sinc(fc * x) * kaiser(x, half as f64)
            })
            .collect();
        // Unity gain at DC for every phase, so a constant stays constant.
        let sum: f64 = taps.iter().sum();
        if sum.abs() > 1e-9 {
            taps.iter_mut().for_each(|t| *t /= sum);
        }
        taps.into_iter().map(|t| t as f32).collect()
    }

    /// Input samples consumed so far.
    pub fn fed(&self) -> u64 {
        self.fed
    }

    /// Output samples this run will have produced once finished.
    fn total_out(&self) -> u64 {
        (self.fed * self.up).div_ceil(self.down)
    }

    /// Feeds input and appends every output sample now computable.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.buf.extend(input.iter().map(|&s| f32::from(s)));
        self.fed += input.len() as u64;
        self.drain(false, out);
    }

    /// Appends the outputs that were waiting for look-ahead, treating what
    /// follows the input as silence.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        self.drain(true, out);
    }

    fn drain(&mut self, at_end: bool, out: &mut Vec<i16>) {
        let half = self.half as u64;
        loop {
            if at_end && self.produced >= self.total_out() {
                break;
            }
            let pos = self.produced * self.down;
            let i = pos / self.up;
            let phase = (pos % self.up) as usize;
            if !at_end && i + half >= self.fed {
                break;
            }
            out.push(self.output_at(i, phase));
            self.produced += 1;
        }
        self.trim();
    }

    fn output_at(&self, i: u64, phase: usize) -> i16 {
        let Some(taps) = self.phases.get(phase) else {
            return 0;
        };
        let first = i as i64 - self.half as i64 + 1;
        let acc: f32 = taps
            .iter()
            .enumerate()
            .map(|(j, &t)| t * self.input(first + j as i64))
            .sum();
        acc.round().clamp(-32768.0, 32767.0) as i16
    }

    /// Input sample `n`, silence outside what is buffered.
    fn input(&self, n: i64) -> f32 {
        if n < self.buf_start as i64 {
            return 0.0;
        }
        usize::try_from(n - self.buf_start as i64)
            .ok()
            .and_then(|k| self.buf.get(k))
            .copied()
            .unwrap_or(0.0)
    }

    fn trim(&mut self) {
        let next_i = self.produced * self.down / self.up;
        let keep_from = next_i.saturating_sub(self.half as u64);
        if keep_from > self.buf_start {
            let drop = usize::try_from(keep_from - self.buf_start)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            self.buf.drain(..drop);
            self.buf_start += drop as u64;
        }
    }
}
