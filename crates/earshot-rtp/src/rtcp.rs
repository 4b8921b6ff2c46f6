//! RTCP report blocks (RFC 3550 §6.4): what a receiver says it got of a sender's stream.
//!
//! Only sender and receiver reports are read, and only their report blocks: the far end's
//! cumulative loss and extended highest sequence number are what tells a packet the sensor
//! missed from one the network lost. A compound packet is read only if every packet in it
//! is well formed and their lengths cover it exactly: SRTCP (encrypted after the first 8
//! bytes, with an index and tag after the last packet) and other noise then read as nothing,
//! instead of as reports full of random numbers. Nothing allocates; the work is bounded by
//! the datagram's length.

const SR: u8 = 200;
const RR: u8 = 201;
const BLOCK_LEN: usize = 24;

/// One report block: a receiver's view of the stream `ssrc`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReportBlock {
    /// The SSRC of the reporter (the packet's sender).
    pub reporter: u32,
    /// The SSRC of the stream reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed: duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles in the high 16 bits).
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

/// The report blocks of a compound RTCP packet, in order; none if it is not well formed.
pub fn report_blocks(buf: &[u8]) -> impl Iterator<Item = ReportBlock> + '_ {
    let ok = well_formed(buf);
    Packets {
        rest: if ok { buf } else { &[] },
    }
    .flat_map(blocks_of)
}

/// True when `buf` is a sequence of RTCP packets whose lengths add up to exactly its size.
fn well_formed(buf: &[u8]) -> bool {
    let mut rest = buf;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        match split_packet(rest) {
            Some((_, tail)) => rest = tail,
            None => return false,
        }
    }
    true
}

/// The first RTCP packet of `buf` and what follows it.
fn split_packet(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let head = buf.get(..4)?;
    if head[0] >> 6 != 2 || !(192..=223).contains(&head[1]) {
        return None;
    }
    let len = (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1) * 4;
    if len > buf.len() {
        return None;
    }
    Some(buf.split_at(len))
}

struct Packets<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Packets<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (p, tail) = split_packet(self.rest)?;
        self.rest = tail;
        Some(p)
    }
}

/// The report blocks of one SR or RR (at most 31: the count is 5 bits), within its length.
fn blocks_of(p: &[u8]) -> impl Iterator<Item = ReportBlock> + '_ {
    let count = usize::from(p.first().copied().unwrap_or(0) & 0x1f);
    let start = match p.get(1).copied() {
        Some(SR) => 28,
        Some(RR) => 8,
        _ => p.len(),
    };
    let reporter = p
        .get(4..8)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    p.get(start..)
        .unwrap_or_default()
        .chunks_exact(BLOCK_LEN)
        .take(count)
        .map(move |b| block(reporter, b))
}

fn block(reporter: u32, b: &[u8]) -> ReportBlock {
    let word = |i: usize| {
        b.get(i..i + 4)
            .map_or(0, |w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    let lost24 = word(4) & 0x00ff_ffff;
    // Sign-extend the 24-bit count.
    let cumulative_lost = ((lost24 << 8) as i32) >> 8;
    ReportBlock {
        reporter,
        ssrc: word(0),
        fraction_lost: b.get(4).copied().unwrap_or(0),
        cumulative_lost,
        highest_seq: word(8),
        jitter: word(12),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(reporter: u32, blocks: &[(u32, i32, u32)]) -> Vec<u8> {
        let mut v = vec![0x80 | blocks.len() as u8, RR, 0, 0];
        v.extend_from_slice(&reporter.to_be_bytes());
        for &(ssrc, lost, high) in blocks {
            v.extend_from_slice(&ssrc.to_be_bytes());
            let l = (lost as u32) & 0x00ff_ffff;
            v.extend_from_slice(&(l | 0x1000_0000).to_be_bytes());
            v.extend_from_slice(&high.to_be_bytes());
            v.extend_from_slice(&[0; 12]);
        }
        let words = (v.len() / 4 - 1) as u16;
        v[2..4].copy_from_slice(&words.to_be_bytes());
        v
    }

    #[test]
    fn reads_receiver_report_blocks() {
        let p = rr(7, &[(0xdead_beef, 12, 0x0001_0005), (9, -3, 4)]);
        let b: Vec<_> = report_blocks(&p).collect();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].reporter, 7);
        assert_eq!(b[0].ssrc, 0xdead_beef);
        assert_eq!(b[0].cumulative_lost, 12);
        assert_eq!(b[0].fraction_lost, 0x10);
        assert_eq!(b[0].highest_seq, 0x0001_0005);
        assert_eq!(b[1].cumulative_lost, -3);
    }

    #[test]
    fn reads_a_compound_sender_report_and_sdes() {
        let mut p = vec![0x81, SR, 0, 12];
        p.extend_from_slice(&5u32.to_be_bytes());
        p.extend_from_slice(&[0; 20]);
        p.extend_from_slice(&rr(0, &[(1, 2, 3)])[8..]);
        p.extend_from_slice(&[0x81, 202, 0, 1, 0, 0, 0, 5]);
        let b: Vec<_> = report_blocks(&p).collect();
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].reporter, b[0].ssrc, b[0].cumulative_lost), (5, 1, 2));
    }

    #[test]
    fn malformed_or_trailing_bytes_read_as_nothing() {
        let mut p = rr(7, &[(1, 2, 3)]);
        p.extend_from_slice(&[0x80, 0, 0, 1, 1, 2, 3, 4, 5, 6]); // an SRTCP index and tag
        assert_eq!(report_blocks(&p).count(), 0);
        let mut short = rr(7, &[(1, 2, 3)]);
        short[0] = 0x80 | 31; // claims 31 blocks, holds 1
        assert_eq!(report_blocks(&short).count(), 1);
        assert_eq!(report_blocks(&[]).count(), 0);
        assert_eq!(report_blocks(&[0x80, RR, 0xff, 0xff]).count(), 0);
    }
}
