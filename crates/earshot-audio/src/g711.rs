//! G.711 µ-law and A-law (ITU-T G.711), expanded to 16-bit linear PCM with
//! the usual tables (same values as Sun's g711.c, Wireshark and sox).

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
