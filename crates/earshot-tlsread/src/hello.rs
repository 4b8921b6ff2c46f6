//! The few handshake fields a reader needs: ClientHello.random, and from the ServerHello its
//! random, cipher suite, and whether it chose TLS 1.3 (supported_versions, RFC 8446 §4.2.1)
//! or encrypt-then-MAC (RFC 7366).
//!
//! Read by hand with bounds checks rather than with a parser crate such as `tls-parser`: six
//! fields at fixed or length-prefixed places are less code than adapting a general parser's
//! types (and its nom dependency), and each read here is a checked `get`, so no input panics.

/// Handshake message types (RFC 8446 §4).
pub(crate) const CLIENT_HELLO: u8 = 1;
pub(crate) const SERVER_HELLO: u8 = 2;
pub(crate) const FINISHED: u8 = 20;
pub(crate) const KEY_UPDATE: u8 = 24;

/// The ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3): not a real ServerHello.
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

const EXT_ENCRYPT_THEN_MAC: u16 = 22;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const TLS13: u16 = 0x0304;

/// What a ServerHello says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServerHello {
    pub random: [u8; 32],
    pub suite: u16,
    pub tls13: bool,
    pub encrypt_then_mac: bool,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn random_at(body: &[u8], at: usize) -> Option<[u8; 32]> {
    body.get(at..at + 32)?.try_into().ok()
}

/// ClientHello.random: after the 2-byte legacy_version.
pub(crate) fn client_random(body: &[u8]) -> Option<[u8; 32]> {
    random_at(body, 2)
}

/// The fields of a ServerHello body; `None` for a HelloRetryRequest or a body too short.
pub(crate) fn server_hello(body: &[u8]) -> Option<ServerHello> {
    let random = random_at(body, 2)?;
    if random == HELLO_RETRY_RANDOM {
        return None;
    }
    let session_id_len = usize::from(*body.get(34)?);
    let at = 35 + session_id_len;
    let suite = be16(body, at)?;
    // compression_method (1 byte), then extensions, which TLS 1.2 may leave out entirely.
    let ext_start = at + 3;
    let mut hello = ServerHello {
        random,
        suite,
        tls13: false,
        encrypt_then_mac: false,
    };
    let Some(ext_len) = be16(body, ext_start) else {
        return Some(hello);
    };
    let exts = body.get(ext_start + 2..ext_start + 2 + usize::from(ext_len))?;
    let mut rest = exts;
    while rest.len() >= 4 {
        let typ = be16(rest, 0)?;
        let len = usize::from(be16(rest, 2)?);
        let data = rest.get(4..4 + len)?;
        match typ {
            // In a ServerHello it holds the one selected version.
            EXT_SUPPORTED_VERSIONS => hello.tls13 = be16(data, 0) == Some(TLS13),
            EXT_ENCRYPT_THEN_MAC => hello.encrypt_then_mac = true,
            _ => {}
        }
        rest = &rest[4 + len..];
    }
    Some(hello)
}

/// Handshake bytes in, whole messages out (type and body, the body cut at [`MAX_KEPT`]).
/// A message's 24-bit length is only counted down, never allocated: a hostile length costs
/// nothing but the bytes that really come.
#[derive(Default)]
pub(crate) struct HandshakeReader {
    head: [u8; 4],
    head_len: usize,
    /// Body bytes still to come of the current message.
    remaining: usize,
    body: Vec<u8>,
}

/// Body bytes kept of one handshake message: a ServerHello (even with post-quantum key
/// shares) is well within this, and of a ClientHello only the first 34 bytes matter.
pub(crate) const MAX_KEPT: usize = 8192;

impl HandshakeReader {
    pub(crate) fn push(&mut self, mut bytes: &[u8], on_message: &mut dyn FnMut(u8, &[u8])) {
        while !bytes.is_empty() {
            if self.head_len < 4 {
                let take = (4 - self.head_len).min(bytes.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&bytes[..take]);
                self.head_len += take;
                bytes = &bytes[take..];
                if self.head_len < 4 {
                    return;
                }
                self.remaining = usize::from(self.head[1]) << 16
                    | usize::from(self.head[2]) << 8
                    | usize::from(self.head[3]);
                self.body.clear();
            }
            let take = self.remaining.min(bytes.len());
            let room = MAX_KEPT.saturating_sub(self.body.len()).min(take);
            self.body.extend_from_slice(&bytes[..room]);
            self.remaining -= take;
            bytes = &bytes[take..];
            if self.remaining == 0 {
                on_message(self.head[0], &self.body);
                self.head_len = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_hello_body(exts: &[u8]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(32);
        b.extend_from_slice(&[1; 32]);
        b.extend_from_slice(&[0x13, 0x01, 0]);
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend_from_slice(exts);
        b
    }

    #[test]
    fn a_tls13_server_hello_is_read() {
        let h = server_hello(&server_hello_body(&[0, 43, 0, 2, 3, 4])).expect("hello");
        assert_eq!((h.random, h.suite, h.tls13), ([7; 32], 0x1301, true));
    }

    #[test]
    fn truncated_or_lying_extensions_are_refused_without_panic() {
        let mut body = server_hello_body(&[0, 43, 0, 2, 3, 4]);
        for cut in 0..body.len() {
            let _ = server_hello(&body[..cut]);
        }
        let n = body.len();
        body[n - 3] = 0xFF;
        assert!(server_hello(&body).is_none());
    }

    #[test]
    fn a_hello_retry_request_is_not_a_server_hello() {
        let mut body = server_hello_body(&[]);
        body[2..34].copy_from_slice(&HELLO_RETRY_RANDOM);
        assert!(server_hello(&body).is_none());
    }

    #[test]
    fn a_huge_announced_length_is_counted_down_not_allocated() {
        let mut r = HandshakeReader::default();
        let mut seen = 0;
        r.push(&[1, 0xFF, 0xFF, 0xFF], &mut |_, _| seen += 1);
        for _ in 0..100 {
            r.push(&[0; 1000], &mut |_, _| seen += 1);
        }
        assert_eq!(seen, 0);
        assert!(r.body.capacity() <= 2 * MAX_KEPT);
    }

    #[test]
    fn messages_split_anywhere_come_out_whole() {
        let msgs = [0x01u8, 0, 0, 3, 9, 9, 9, 0x14, 0, 0, 1, 5];
        for cut in 1..msgs.len() {
            let mut r = HandshakeReader::default();
            let mut got = Vec::new();
            for c in msgs.chunks(cut) {
                r.push(c, &mut |t, b| got.push((t, b.to_vec())));
            }
            assert_eq!(got, vec![(1, vec![9, 9, 9]), (20, vec![5])], "cut {cut}");
        }
    }
}
