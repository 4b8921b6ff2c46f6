//! What a HEP receiver checks before decoding an envelope: the sender's auth key.
//!
//! HEP3 carries an optional "authenticate key" chunk (vendor 0, type 14) that agents which
//! support it fill with a shared secret (heplify calls it the HEP node password). HEP v1 and v2
//! have no such field.

/// The generic chunk type of HEP3's auth key.
pub const AUTH_KEY_CHUNK: u16 = 14;

/// The auth key of a HEP3 datagram: `None` when the datagram is not HEP3, is cut short or
/// malformed, or has no key chunk. Only the envelope's declared length is walked, one chunk at
/// a time (each at least 6 bytes), so the work is bounded by the datagram's size.
pub fn auth_key(datagram: &[u8]) -> Option<&[u8]> {
    if !datagram.starts_with(b"HEP3") {
        return None;
    }
    let total = usize::from(be16(datagram, 4)?);
    let d = datagram.get(..total)?;
    let mut at = 6;
    while at < d.len() {
        let vendor = be16(d, at)?;
        let ctype = be16(d, at + 2)?;
        let len = usize::from(be16(d, at + 4)?);
        if len < 6 {
            return None;
        }
        let value = d.get(at + 6..at + len)?;
        if vendor == 0 && ctype == AUTH_KEY_CHUNK {
            return Some(value);
        }
        at += len;
    }
    None
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    let b = d.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(vendor: u16, ctype: u16, val: &[u8]) -> Vec<u8> {
        let mut c = vendor.to_be_bytes().to_vec();
        c.extend_from_slice(&ctype.to_be_bytes());
        c.extend_from_slice(&((6 + val.len()) as u16).to_be_bytes());
        c.extend_from_slice(val);
        c
    }

    fn hep3(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut h = b"HEP3".to_vec();
        h.extend_from_slice(&((6 + body.len()) as u16).to_be_bytes());
        h.extend(body);
        h
    }

    #[test]
    fn finds_the_key_among_other_chunks() {
        let d = hep3(&[
            chunk(0, 1, &[2]),
            chunk(0x1234, 14, b"vendor's, not the key"),
            chunk(0, 14, b"s3cret"),
            chunk(0, 15, b"INVITE"),
        ]);
        assert_eq!(auth_key(&d), Some(&b"s3cret"[..]));
    }

    #[test]
    fn no_key_in_other_datagrams() {
        assert_eq!(auth_key(&hep3(&[chunk(0, 15, b"INVITE")])), None);
        assert_eq!(auth_key(b""), None);
        assert_eq!(auth_key(b"HEP3"), None);
        assert_eq!(auth_key(&[2, 16, 2, 17, 0, 0]), None, "HEP v2 has no key");
        // A chunk claiming fewer than its own 6 header bytes, or running past the end.
        let mut bad = hep3(&[chunk(0, 14, b"k")]);
        bad[10] = 0;
        bad[11] = 3;
        assert_eq!(auth_key(&bad), None);
        let mut short = hep3(&[chunk(0, 14, b"key")]);
        short.truncate(short.len() - 1);
        assert_eq!(auth_key(&short), None);
    }

    #[test]
    fn only_the_declared_length_is_read() {
        let mut d = hep3(&[chunk(0, 1, &[2])]);
        d.extend(chunk(0, 14, b"after the end"));
        assert_eq!(auth_key(&d), None);
    }
}
