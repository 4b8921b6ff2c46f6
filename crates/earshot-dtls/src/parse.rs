//! The few DTLS 1.2 structures a DTLS-SRTP observer reads (RFC 6347 §4.1 and §4.2.2, RFC 5246
//! §7.4.1, RFC 5764 §4.1.1), parsed by hand.
//!
//! Why not a TLS parsing crate: an observer needs a record header, a handshake fragment
//! header, 34 bytes of the ClientHello and the ServerHello's suite and `use_srtp` extension.
//! That is a few dozen lines over a bounds-checked cursor, with every length checked against
//! the bytes actually present, and keeps the sensor's outside-input surface small and ours to
//! fuzz (`fuzz/fuzz_targets/dtls.rs`).

/// A read-only cursor over outside bytes: every read is checked, none panics.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }

    pub(crate) fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(
            usize::from(*b.first()?) << 16 | usize::from(*b.get(1)?) << 8 | usize::from(*b.get(2)?),
        )
    }

    /// A vector with a one-byte length (`opaque x<0..2^8-1>`).
    pub(crate) fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A vector with a two-byte length (`opaque x<0..2^16-1>`).
    pub(crate) fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// DTLS record content types (RFC 6347 §4.1, RFC 9146 for `tls12_cid`).
pub(crate) const HANDSHAKE: u8 = 22;
const TLS12_CID: u8 = 25;

/// One DTLS record of a datagram.
pub(crate) struct Record<'a> {
    pub content_type: u8,
    pub epoch: u16,
    pub body: &'a [u8],
}

/// What the next record of a datagram is.
pub(crate) enum NextRecord<'a> {
    Record(Record<'a>),
    /// A record this observer cannot delimit: DTLS 1.3's unified header (RFC 9147 §4, first
    /// byte 001xxxxx) or a connection-ID record (its CID length is negotiated): both are
    /// encrypted, and the rest of the datagram is skipped.
    Opaque,
    /// A header cut short or a length past the datagram's end.
    Malformed,
}

/// The records of one datagram, in order (RFC 6347 §4.1.1: a datagram may carry several).
pub(crate) fn next_record<'a>(r: &mut Reader<'a>) -> Option<NextRecord<'a>> {
    if r.is_empty() {
        return None;
    }
    let Some(content_type) = r.u8() else {
        return Some(NextRecord::Malformed);
    };
    if content_type & 0xe0 == 0x20 || content_type == TLS12_CID {
        return Some(NextRecord::Opaque);
    }
    let header = (|| {
        let _version = r.u16()?;
        let epoch = r.u16()?;
        let _sequence = r.take(6)?;
        let body = r.vec16()?;
        Some(Record {
            content_type,
            epoch,
            body,
        })
    })();
    Some(match header {
        Some(record) => NextRecord::Record(record),
        None => NextRecord::Malformed,
    })
}

/// One handshake message fragment (RFC 6347 §4.2.2): `length` is the whole message's, the
/// fragment holds `fragment.len()` bytes of it from `offset`.
pub(crate) struct Fragment<'a> {
    pub msg_type: u8,
    pub length: usize,
    pub message_seq: u16,
    pub offset: usize,
    pub fragment: &'a [u8],
}

/// The next handshake fragment of a record's body; `None` at its end, `Some(None)` for a
/// header cut short or a fragment that claims bytes it does not hold or reaches past its
/// message's length.
pub(crate) fn next_fragment<'a>(r: &mut Reader<'a>) -> Option<Option<Fragment<'a>>> {
    if r.is_empty() {
        return None;
    }
    Some((|| {
        let msg_type = r.u8()?;
        let length = r.u24()?;
        let message_seq = r.u16()?;
        let offset = r.u24()?;
        let fragment_length = r.u24()?;
        let fragment = r.take(fragment_length)?;
        (offset.checked_add(fragment_length)? <= length).then_some(Fragment {
            msg_type,
            length,
            message_seq,
            offset,
            fragment,
        })
    })())
}

/// Handshake message types (RFC 5246 §7.4).
pub(crate) const CLIENT_HELLO: u8 = 1;
pub(crate) const SERVER_HELLO: u8 = 2;

/// DTLS 1.2's version on the wire (RFC 6347 §4.1: the one's complement of 1.2, 254.253).
pub(crate) const DTLS_1_2: u16 = 0xfefd;

/// The bytes of a ClientHello an observer needs: client_version and random.
pub(crate) const CLIENT_HELLO_PREFIX: usize = 2 + 32;

/// The ClientHello's random, from the first [`CLIENT_HELLO_PREFIX`] bytes of its body.
pub(crate) fn client_random(prefix: &[u8]) -> Option<[u8; 32]> {
    prefix.get(2..CLIENT_HELLO_PREFIX)?.try_into().ok()
}

/// What an observer needs from a ServerHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerHello {
    pub version: u16,
    pub random: [u8; 32],
    pub cipher_suite: u16,
    /// The `use_srtp` extension's one profile (RFC 5764 §4.1.1: the server picks one).
    pub srtp_profile: Option<u16>,
    /// Bytes of MKI the server's `use_srtp` asks for in every SRTP packet.
    pub mki_len: usize,
    /// A `supported_versions` extension: DTLS 1.3 (RFC 9147), whose keys are not the PRF's.
    pub tls13: bool,
}

/// Extension types (RFC 5764 §4.1.1, RFC 8446 §4.2).
const USE_SRTP: u16 = 14;
const SUPPORTED_VERSIONS: u16 = 43;

/// A whole ServerHello body (RFC 5246 §7.4.1.3); `None` when it does not parse.
pub(crate) fn server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut r = Reader::new(body);
    let version = r.u16()?;
    let random: [u8; 32] = r.take(32)?.try_into().ok()?;
    let _session_id = r.vec8()?;
    let cipher_suite = r.u16()?;
    let _compression = r.u8()?;
    let mut hello = ServerHello {
        version,
        random,
        cipher_suite,
        srtp_profile: None,
        mki_len: 0,
        tls13: false,
    };
    // Extensions are optional: a hello that ends after the compression method has none.
    if r.is_empty() {
        return Some(hello);
    }
    let mut extensions = Reader::new(r.vec16()?);
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        match kind {
            USE_SRTP => {
                let mut d = Reader::new(data);
                let mut profiles = Reader::new(d.vec16()?);
                hello.srtp_profile = Some(profiles.u16()?);
                hello.mki_len = d.vec8()?.len();
            }
            SUPPORTED_VERSIONS => hello.tls13 = true,
            _ => {}
        }
    }
    Some(hello)
}

/// The cipher suites whose PRF is SHA-384 (RFC 5246 §5: every other TLS 1.2 suite uses
/// SHA-256). The TLS 1.2 suites ending in `_SHA384` that OpenSSL 3.0 knows (`openssl ciphers
/// -V ALL:COMPLEMENTOFALL`). A suite missing here derives wrong keys, whose packets then fail
/// authentication and are counted, never played.
pub(crate) fn prf_is_sha384(suite: u16) -> bool {
    matches!(
        suite,
        0x009d
            | 0x009f
            | 0x00a3
            | 0x00a7
            | 0x00a9
            | 0x00ab
            | 0x00ad
            | 0x00af
            | 0x00b1
            | 0x00b3
            | 0x00b5
            | 0x00b7
            | 0x00b9
            | 0xc024
            | 0xc028
            | 0xc02c
            | 0xc030
            | 0xc038
            | 0xc03b
            | 0xc051
            | 0xc053
            | 0xc057
            | 0xc05d
            | 0xc061
            | 0xc06b
            | 0xc06d
            | 0xc06f
            | 0xc073
            | 0xc077
            | 0xc095
            | 0xc097
            | 0xc099
            | 0xc09b
    )
}
