//! Concealment for codecs without their own: replay the tail of the last
//! decoded audio while ramping it down, then silence. A hard cut to zero
//! clicks; a ramp over ~10 ms does not.

pub(crate) struct Fade {
    channels: usize,
    fade_frames: usize,
    tail: Vec<i16>,
}

impl Fade {
    pub(crate) fn new(rate: u32, channels: u8) -> Self {
        let fade_frames = (rate / 100).max(1) as usize;
        Self {
            channels: usize::from(channels.max(1)),
            fade_frames,
            tail: Vec::with_capacity(fade_frames * usize::from(channels.max(1))),
        }
    }

    /// Keeps the last ~10 ms of freshly decoded, interleaved output.
    pub(crate) fn remember(&mut self, decoded: &[i16]) {
        let keep = self.fade_frames * self.channels;
        if decoded.len() >= keep {
            self.tail.clear();
            self.tail
                .extend_from_slice(decoded.get(decoded.len() - keep..).unwrap_or_default());
        } else {
            self.tail.extend_from_slice(decoded);
            let excess = self.tail.len().saturating_sub(keep);
            self.tail.drain(..excess);
        }
    }

    /// Appends `frames` frames: the remembered tail fading out, then zeros.
    /// The tail is used up, so a second gap in a row is pure silence.
    pub(crate) fn conceal(&mut self, frames: usize, out: &mut Vec<i16>) {
        let tail_frames = self.tail.len() / self.channels;
        let ramp = tail_frames.min(frames);
        for frame in 0..ramp {
            let gain = (ramp - frame) as i32;
            for ch in 0..self.channels {
                let s = self
                    .tail
                    .get(frame * self.channels + ch)
                    .copied()
                    .unwrap_or(0);
                out.push((i32::from(s) * gain / (ramp as i32 + 1)) as i16);
            }
        }
        out.resize(out.len() + (frames - ramp) * self.channels, 0);
        self.tail.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fades_then_silence() {
        let mut f = Fade::new(8000, 1);
        f.remember(&[1000; 200]);
        let mut out = Vec::new();
        f.conceal(160, &mut out);
        assert_eq!(out.len(), 160);
        assert!(out[0] > 900 && out[79] < 20 && out[80..].iter().all(|&s| s == 0));
        out.clear();
        f.conceal(10, &mut out);
        assert_eq!(out, vec![0; 10]);
    }
}
