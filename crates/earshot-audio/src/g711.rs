//! G.711 µ-law and A-law (ITU-T G.711), expanded to 16-bit linear PCM with
//! the usual tables (same values as Sun's g711.c, Wireshark and sox), and the
//! matching compressors for generating traffic.

use crate::fade::Fade;
use crate::{DecodeError, Decoder};

pub(crate) fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

pub(crate) fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0F);
    let magnitude = match exponent {
        0 => (mantissa << 4) + 8,
        e => ((mantissa << 4) + 0x108) << (e - 1),
    };
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// G.711 µ-law compressor (the classic Sun/ITU reference algorithm).
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(pcm);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let top = (s >> 7) as u32;
    let exponent = if top == 0 {
        0
    } else {
        31 - top.leading_zeros()
    } as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// G.711 A-law compressor (the classic Sun/ITU reference algorithm, 13-bit input).
pub fn linear_to_alaw(pcm: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut v = i32::from(pcm) >> 3;
    let mask: u8 = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    match SEG_END.iter().position(|&end| v <= end) {
        None => 0x7F ^ mask,
        Some(seg) => {
            let mant = if seg < 2 { v >> 1 } else { v >> seg } & 0x0F;
            (((seg as i32) << 4) | mant) as u8 ^ mask
        }
    }
}

pub(crate) struct G711Decoder {
    table: [i16; 256],
    fade: Fade,
}

impl G711Decoder {
    fn with(expand: fn(u8) -> i16) -> Self {
        let mut table = [0i16; 256];
        for (code, slot) in (0..=255u8).zip(table.iter_mut()) {
            *slot = expand(code);
        }
        Self {
            table,
            fade: Fade::new(8000, 1),
        }
    }

    pub(crate) fn ulaw() -> Self {
        Self::with(ulaw_to_linear)
    }

    pub(crate) fn alaw() -> Self {
        Self::with(alaw_to_linear)
    }
}

impl Decoder for G711Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, DecodeError> {
        let start = out.len();
        out.extend(payload.iter().map(|&b| self.table[usize::from(b)]));
        self.fade.remember(&out[start..]);
        Ok(payload.len())
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
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }
}

#[cfg(test)]
mod encoder_tests {
    use super::*;

    #[test]
    fn compressors_match_reference_points() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-8), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_survives_expand_then_compress() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law {code:#04x}"
            );
            // µ-law has two zeros (0x7F and 0xFF); both expand to 0, which compresses to 0xFF.
            if code != 0x7F {
                assert_eq!(
                    linear_to_ulaw(ulaw_to_linear(code)),
                    code,
                    "µ-law {code:#04x}"
                );
            }
        }
    }
}
