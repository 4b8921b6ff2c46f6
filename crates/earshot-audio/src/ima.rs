//! DVI4 (RFC 3551 §4.5.1): IMA ADPCM blocks, each packet starting with a
//! 4-octet header (predicted value, big-endian; step index; reserved) that
//! resynchronises the decoder, so every packet decodes on its own.

use crate::fade::Fade;
use crate::{DecodeError, Decoder};

pub(crate) const STEPS: [i32; 89] = [
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60, 66,
    73, 80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371, 408, 449,
    494, 544, 598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272,
    2499, 2749, 3024, 3327, 3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845, 8630, 9493,
    10442, 11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794, 32767,
];
const INDEX_ADJUST: [i32; 8] = [-1, -1, -1, -1, 2, 4, 6, 8];

struct Ima {
    predicted: i32,
    index: usize,
}

impl Ima {
    fn step(&mut self, nibble: u8) -> i16 {
        let step = STEPS.get(self.index).copied().unwrap_or(7);
        let mut diff = step >> 3;
        if nibble & 4 != 0 {
            diff += step;
        }
        if nibble & 2 != 0 {
            diff += step >> 1;
        }
        if nibble & 1 != 0 {
            diff += step >> 2;
        }
        let next = if nibble & 8 != 0 {
            self.predicted - diff
        } else {
            self.predicted + diff
        };
        self.predicted = next.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
        let adjust = INDEX_ADJUST
            .get(usize::from(nibble & 7))
            .copied()
            .unwrap_or(0);
        self.index = (self.index as i32 + adjust).clamp(0, 88) as usize;
        self.predicted as i16
    }
}

pub(crate) struct Dvi4Decoder {
    rate: u32,
    fade: Fade,
}

impl Dvi4Decoder {
    pub(crate) fn new(rate: u32) -> Option<Self> {
        (rate > 0).then(|| Self {
            rate,
            fade: Fade::new(rate, 1),
        })
    }
}

impl Decoder for Dvi4Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        let (header, data) = match payload {
            [p0, p1, index, _reserved, data @ ..] => ([*p0, *p1, *index], data),
            _ => {
                return Err(DecodeError::BadLength {
                    codec: "DVI4",
                    len: payload.len(),
                    expected: "at least the 4-byte block header",
                })
            }
        };
        if header[2] > 88 {
            return Err(DecodeError::Malformed {
                codec: "DVI4",
                reason: format!("step index {} out of range 0..=88", header[2]),
            });
        }
        let mut ima = Ima {
            predicted: i32::from(i16::from_be_bytes([header[0], header[1]])),
            index: usize::from(header[2]),
        };
        let start = out.len();
        // RFC 3551: the first sample of each pair is in the high nibble.
        for &byte in data {
            out.push(ima.step(byte >> 4));
            out.push(ima.step(byte & 0x0F));
        }
        self.fade.remember(&out[start..]);
        Ok(data.len() * 2)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.fade.conceal(samples, out);
    }

    fn channels(&self) -> u8 {
        1
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }
}
