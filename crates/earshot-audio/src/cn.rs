//! RFC 3389 comfort noise. A CN packet only says how loud the background is
//! (and, optionally, its spectral shape); how long it lasts follows from the
//! RTP timestamps of the packets after it. So `decode` records the level and
//! emits nothing, and the caller fills the gap with `conceal`, which yields
//! white noise at that level. The spectral envelope is not reproduced: for
//! listening to a call, a flat noise floor is close enough.

use crate::{DecodeError, Decoder};

pub(crate) struct CnDecoder {
    rate: u32,
    /// Target RMS amplitude; 0 until the first CN packet.
    rms: f32,
    seed: u32,
}

impl CnDecoder {
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            rate: if rate == 0 { 8000 } else { rate },
            rms: 0.0,
            seed: 0x2545_F491,
        }
    }

    /// xorshift32: deterministic, cheap, and plenty random for a noise floor.
    fn next_uniform(&mut self) -> f32 {
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        (x as f32 / u32::MAX as f32) * 2.0 - 1.0
    }
}

impl Decoder for CnDecoder {
    fn decode(&mut self, payload: &[u8], _out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        let level = payload.first().ok_or(DecodeError::BadLength {
            codec: "CN",
            len: 0,
            expected: "at least the noise level byte",
        })?;
        // Level is -dBov in 0..=127 (the top bit is reserved).
        let dbov = f32::from(level & 0x7F);
        self.rms = 32767.0 * 10f32.powf(-dbov / 20.0);
        Ok(0)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        // Uniform noise in [-a, a] has RMS a/sqrt(3).
        let amplitude = self.rms * 3f32.sqrt();
        for _ in 0..samples {
            let v = self.next_uniform() * amplitude;
            out.push(v.clamp(-32768.0, 32767.0) as i16);
        }
    }

    fn channels(&self) -> u8 {
        1
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }
}
