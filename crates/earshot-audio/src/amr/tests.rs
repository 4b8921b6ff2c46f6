use super::*;

/// Writes bits MSB first, for building payloads the way RFC 4867 lays them out.
#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
    bits: usize,
}

impl Writer {
    fn put(&mut self, n: usize, value: u32) {
        for i in (0..n).rev() {
            if self.bits % 8 == 0 {
                self.bytes.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= bit << (7 - self.bits % 8);
            self.bits += 1;
        }
    }

    fn align(&mut self) {
        self.bits = self.bits.div_ceil(8) * 8;
    }
}

/// A frame's bits: a recognisable pattern, different per frame.
fn pattern(n: usize, seed: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| ((i * 7 + seed) % 3 == 0) as u32)
        .collect()
}

fn payload(band: AmrBand, octet: bool, frames: &[(u8, bool, u32)]) -> Vec<u8> {
    let mut w = Writer::default();
    w.put(4, 15); // CMR: no request
    if octet {
        w.put(4, 0);
    }
    for (i, &(ft, q, _)) in frames.iter().enumerate() {
        let more = i + 1 < frames.len();
        w.put(1, more as u32);
        w.put(4, u32::from(ft));
        w.put(1, q as u32);
        if octet {
            w.put(2, 0);
        }
    }
    for &(ft, _, seed) in frames {
        if octet {
            w.align();
        }
        for b in pattern(band.frame_bits(ft).unwrap(), seed) {
            w.put(1, b);
        }
    }
    w.bytes
}

fn storage_bits(f: &StorageFrame, n: usize) -> Vec<u32> {
    let b = &f.as_bytes()[1..];
    (0..n)
        .map(|i| u32::from((b[i / 8] >> (7 - i % 8)) & 1))
        .collect()
}

#[test]
fn both_payload_formats_give_the_same_storage_frames() {
    for band in [AmrBand::Narrow, AmrBand::Wide] {
        let frames = [(7, true, 1), (2, false, 2), (NO_DATA, true, 0)];
        let mut got = [Vec::new(), Vec::new()];
        for (i, octet) in [false, true].into_iter().enumerate() {
            let p = payload(band, octet, &frames);
            split_payload(band, octet, &p, &mut got[i]).expect("valid payload");
            assert_eq!(got[i].len(), 3);
            for (f, &(ft, q, seed)) in got[i].iter().zip(&frames) {
                assert_eq!(f.frame_type(), ft);
                assert_eq!(f.as_bytes()[0] & 0x04 != 0, q, "quality bit");
                let n = band.frame_bits(ft).unwrap();
                assert_eq!(f.as_bytes().len(), 1 + n.div_ceil(8));
                assert_eq!(
                    storage_bits(f, n),
                    pattern(n, seed),
                    "{band:?} octet={octet} ft={ft}"
                );
            }
        }
        let bytes =
            |v: &Vec<StorageFrame>| v.iter().map(|f| f.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(bytes(&got[0]), bytes(&got[1]));
    }
}

#[test]
fn a_frame_past_the_payload_or_a_reserved_type_is_refused_whole() {
    let band = AmrBand::Wide;
    let good = payload(band, false, &[(8, true, 3)]);
    let mut frames = Vec::new();
    for cut in 0..good.len() {
        assert!(
            split_payload(band, false, &good[..cut], &mut frames).is_err(),
            "cut at {cut}"
        );
        assert!(frames.is_empty());
    }
    // FT 12 is reserved in AMR-WB.
    let reserved = payload(AmrBand::Narrow, true, &[(0, true, 0)]);
    let mut bad = reserved.clone();
    bad[1] = (bad[1] & !0x78) | (12 << 3);
    assert!(split_payload(AmrBand::Wide, true, &bad, &mut frames).is_err());
}

#[test]
fn a_table_of_contents_that_never_ends_stops_at_sixteen_entries() {
    // Every entry says "more follows" and NO_DATA: no frame bits, only entries.
    let mut p = vec![0xf0];
    p.extend(std::iter::repeat_n(0b1111_1100, 64));
    let mut frames = Vec::new();
    let err = split_payload(AmrBand::Narrow, true, &p, &mut frames).expect_err("unbounded");
    assert!(err.to_string().contains("more than 16 frames"), "{err}");
    assert!(frames.capacity() <= MAX_FRAMES.max(frames.capacity()));
}

#[test]
fn no_data_frames_decode_to_a_frame_of_samples_each() {
    for band in [AmrBand::Narrow, AmrBand::Wide] {
        let mut dec = AmrDecoder::new(band, true).expect("decoder");
        let p = payload(band, true, &[(NO_DATA, true, 0), (NO_DATA, true, 0)]);
        let mut out = Vec::new();
        let n = dec.decode(&p, &mut out).expect("decodes");
        assert_eq!(n, 2 * band.frame_samples());
        assert_eq!(out.len(), n);
        let mut lost = Vec::new();
        dec.conceal(band.frame_samples() + 7, &mut lost);
        assert_eq!(lost.len(), band.frame_samples() + 7);
    }
}
