//! DTLS-SRTP (RFC 5764) as a passive sensor hears it: two endpoints run a DTLS 1.2 handshake
//! on their media 5-tuple, then protect their RTP with SRTP keys exported from the session.
//! A sensor terminates neither end, so it needs the session's master secret from a key log
//! (one endpoint's `SSLKEYLOGFILE`, [`earshot_keylog::KeyLog`]) and the handshake's clear
//! hellos, which [`DtlsObserver`] reads:
//!
//! * the ClientHello: the client random (the key log's name for the session) and which side
//!   is the DTLS client (it sends with `client_write_key`);
//! * the ServerHello: the server random, the cipher suite (its PRF hash, SHA-256 or SHA-384)
//!   and the `use_srtp` profile the server chose.
//!
//! Then `EXTRACTOR-dtls_srtp` (RFC 5764 §4.2) gives client_write_key | server_write_key |
//! client_write_salt | server_write_salt, two SRTP master keys ([`SrtpKeys`]).
//!
//! Sans-IO: datagrams in ([`DtlsObserver::on_datagram`], those [`is_dtls`] says are DTLS by
//! RFC 7983's first-byte demultiplexing), keys out. Handshake messages may come in fragments:
//! only the two hellos are reassembled, into fixed buffers ([`MAX_SERVER_HELLO`] bytes at
//! most), so no length a packet claims makes the observer allocate or wait for more. The rest
//! of the handshake (certificates, key exchange, the encrypted epoch 1) is skipped.

#![warn(missing_docs, unreachable_pub)]

mod parse;

use earshot_keylog::derive::{tls12_export, PrfHash};
use earshot_keylog::{KeyLog, Label};
use earshot_srtp::{MasterKey, Suite};
use std::net::SocketAddr;
use thiserror::Error;
use zeroize::Zeroizing;

/// True when a media datagram is DTLS by RFC 7983 §7: its first byte is 20–63 (STUN is 0–3,
/// TURN ChannelData 64–79, RTP and RTCP 128–191).
pub fn is_dtls(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(20..=63))
}

/// The SRTP protection profile a DTLS-SRTP session negotiated (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (0x0001): AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    AesCm128HmacSha1_80,
    /// `SRTP_AES128_CM_HMAC_SHA1_32` (0x0002): as above with a 32-bit tag on SRTP.
    AesCm128HmacSha1_32,
    /// `SRTP_AEAD_AES_128_GCM` (0x0007, RFC 7714): AES-128-GCM with a 16-byte tag.
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM` (0x0008, RFC 7714): AES-256-GCM with a 16-byte tag.
    AeadAes256Gcm,
    /// A profile number this observer has no key lengths for.
    Other(u16),
}

impl Profile {
    /// The profile a `use_srtp` extension's two-byte `SRTPProtectionProfile` names.
    pub fn from_id(id: u16) -> Profile {
        match id {
            0x0001 => Profile::AesCm128HmacSha1_80,
            0x0002 => Profile::AesCm128HmacSha1_32,
            0x0007 => Profile::AeadAes128Gcm,
            0x0008 => Profile::AeadAes256Gcm,
            other => Profile::Other(other),
        }
    }

    /// The name RFC 5764 and RFC 7714 give it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::AesCm128HmacSha1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
            Profile::AesCm128HmacSha1_32 => "SRTP_AES128_CM_HMAC_SHA1_32",
            Profile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Profile::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
            Profile::Other(_) => "unknown SRTP profile",
        }
    }

    /// Master key and master salt lengths (RFC 5764 §4.1.2; RFC 7714 §12: 96-bit salts).
    fn key_and_salt_len(self) -> Option<(usize, usize)> {
        match self {
            Profile::AesCm128HmacSha1_80 | Profile::AesCm128HmacSha1_32 => Some((16, 14)),
            Profile::AeadAes128Gcm => Some((16, 12)),
            Profile::AeadAes256Gcm => Some((32, 12)),
            Profile::Other(_) => None,
        }
    }

    /// The earshot-srtp suite that decrypts this profile, if it has one yet.
    pub fn suite(self) -> Option<Suite> {
        match self {
            Profile::AesCm128HmacSha1_80 => Some(Suite::AesCm128HmacSha1_80),
            Profile::AesCm128HmacSha1_32 => Some(Suite::AesCm128HmacSha1_32),
            Profile::AeadAes128Gcm => Some(Suite::AeadAes128Gcm),
            Profile::AeadAes256Gcm => Some(Suite::AeadAes256Gcm),
            Profile::Other(_) => None,
        }
    }
}

/// Why a side's SRTP master key cannot be made.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// The negotiated profile (by its RFC name) has no earshot-srtp suite.
    #[error("{0} is not a profile earshot decrypts yet: its packets stay encrypted (silence)")]
    UnsupportedProfile(&'static str),
    /// The sender asked for is neither the DTLS client nor the server.
    #[error("{0} took no part in this DTLS handshake: look for its stream's other address")]
    NotAnEndpoint(SocketAddr),
    /// earshot-srtp refused the exported key or salt (what it said).
    #[error("the exported key does not fit the SRTP suite: {0}")]
    Key(String),
}

/// The SRTP master keys of one DTLS-SRTP session, one per sending side.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The profile the ServerHello's `use_srtp` extension chose.
    pub profile: Profile,
    /// The DTLS client's address: it sends with the client write key.
    pub client: SocketAddr,
    /// The DTLS server's address: it sends with the server write key.
    pub server: SocketAddr,
    /// The exporter's output: client key | server key | client salt | server salt.
    material: Zeroizing<Vec<u8>>,
    key_len: usize,
    salt_len: usize,
}

impl std::fmt::Debug for SrtpKeys {
    // Keys are secrets: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("profile", &self.profile)
            .field("client", &self.client)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl SrtpKeys {
    /// The master key and salt `sender` protects its SRTP with.
    pub fn key_and_salt(&self, sender: SocketAddr) -> Result<(&[u8], &[u8]), KeyError> {
        let (k, s) = (self.key_len, self.salt_len);
        let (key_at, salt_at) = if sender == self.client {
            (0, 2 * k)
        } else if sender == self.server {
            (k, 2 * k + s)
        } else {
            return Err(KeyError::NotAnEndpoint(sender));
        };
        let key = self.material.get(key_at..key_at + k);
        let salt = self.material.get(salt_at..salt_at + s);
        match (key, salt) {
            (Some(key), Some(salt)) => Ok((key, salt)),
            // The material is exported at exactly 2 (k + s) bytes; unreachable.
            _ => Err(KeyError::Key("short keying material".into())),
        }
    }

    /// The SRTP master key `sender` protects its packets with, for earshot-srtp.
    pub fn master_key(&self, sender: SocketAddr) -> Result<MasterKey, KeyError> {
        let (key, salt) = self.key_and_salt(sender)?;
        let suite = self
            .profile
            .suite()
            .ok_or(KeyError::UnsupportedProfile(self.profile.name()))?;
        MasterKey::new(suite, key, salt).map_err(|e| KeyError::Key(e.to_string()))
    }
}

/// The longest ServerHello reassembled. A DTLS 1.2 ServerHello is under 200 bytes (a 32-byte
/// session ID, a handful of small extensions); a longer one is counted and not read.
pub const MAX_SERVER_HELLO: usize = 1024;

/// What an observer has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObserverStats {
    /// Datagrams given to [`DtlsObserver::on_datagram`].
    pub datagrams: u64,
    /// Records with epoch 0 handshake messages, read.
    pub handshake_records: u64,
    /// Records of later epochs, alerts, application data: encrypted or of no interest.
    pub other_records: u64,
    /// Records or fragments that do not parse (cut short, lengths past their end), and hellos
    /// that do not.
    pub malformed: u64,
    /// ServerHellos longer than [`MAX_SERVER_HELLO`], not read.
    pub oversized: u64,
    /// Pairs of hellos read: handshakes whose keys a key log can give.
    pub handshakes: u64,
    /// ServerHellos of a version other than DTLS 1.2 (DTLS 1.0's PRF, DTLS 1.3's key
    /// schedule): not keyed.
    pub unsupported_version: u64,
}

/// What a datagram changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// A new pair of hellos was read: a handshake (or a new one replacing the last, whose
    /// keys are then forgotten).
    pub handshake: bool,
}

/// What [`DtlsObserver::look_up`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Nothing new: no handshake yet, no secret for it in the key log, or the same keys.
    Unchanged,
    /// Keys derived for this handshake; `first` unless they replace others derived before
    /// (a key log that corrected a secret).
    Keyed {
        /// True for the session's first keys, false when they replace keys derived before.
        first: bool,
    },
}

/// A hello being reassembled from fragments into a fixed buffer: bytes past `N` are not kept
/// (the ClientHello's random sits in its first 34, a ServerHello is far shorter than `N`).
#[derive(Clone)]
struct Reassembly<const N: usize> {
    /// The message's sequence number and length, as its first fragment said.
    message: Option<(u16, usize)>,
    buf: [u8; N],
    /// Per byte of `buf`: received.
    have: [bool; N],
    done: bool,
}

impl<const N: usize> Reassembly<N> {
    fn new() -> Self {
        Reassembly {
            message: None,
            buf: [0; N],
            have: [false; N],
            done: false,
        }
    }

    /// Adds a fragment of a message `length` bytes long; the first `need` bytes (at most `N`)
    /// once they are all there, the first time they are.
    fn add(
        &mut self,
        seq: u16,
        length: usize,
        offset: usize,
        bytes: &[u8],
        need: usize,
    ) -> Option<&[u8]> {
        if self.message != Some((seq, length)) {
            // Another message (a ClientHello resent with a cookie is a new message_seq):
            // start over.
            self.message = Some((seq, length));
            self.have.fill(false);
            self.done = false;
        }
        if self.done {
            return None;
        }
        let need = need.min(N);
        for (i, &b) in bytes.iter().enumerate() {
            let at = offset.saturating_add(i);
            if at >= need {
                break;
            }
            if let (Some(slot), Some(have)) = (self.buf.get_mut(at), self.have.get_mut(at)) {
                *slot = b;
                *have = true;
            }
        }
        let complete = self.have.get(..need).is_some_and(|h| h.iter().all(|&b| b));
        self.done = complete;
        if complete {
            self.buf.get(..need)
        } else {
            None
        }
    }
}

/// The DTLS 1.2 handshake on one media 5-tuple, as a third party sees it.
#[derive(Clone)]
pub struct DtlsObserver {
    client_hello: Reassembly<{ parse::CLIENT_HELLO_PREFIX }>,
    server_hello: Box<Reassembly<MAX_SERVER_HELLO>>,
    /// The client's address and random, once a ClientHello was read.
    client: Option<(SocketAddr, [u8; 32])>,
    /// The server's address and hello.
    server: Option<(SocketAddr, parse::ServerHello)>,
    keys: Option<SrtpKeys>,
    /// The key log generation last looked at for this handshake: the key log is searched
    /// again only when it has grown since.
    looked_at: Option<u64>,
    stats: ObserverStats,
}

impl std::fmt::Debug for DtlsObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsObserver")
            .field("client", &self.client.map(|(a, _)| a))
            .field("server", &self.server.as_ref().map(|(a, _)| a))
            .field("keys", &self.keys)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for DtlsObserver {
    fn default() -> Self {
        DtlsObserver::new()
    }
}

impl DtlsObserver {
    /// An observer that has seen nothing.
    pub fn new() -> DtlsObserver {
        DtlsObserver {
            client_hello: Reassembly::new(),
            server_hello: Box::new(Reassembly::new()),
            client: None,
            server: None,
            keys: None,
            looked_at: None,
            stats: ObserverStats::default(),
        }
    }

    /// What it has seen so far.
    pub fn stats(&self) -> ObserverStats {
        self.stats
    }

    /// The keys, once a key log gave the handshake's master secret.
    pub fn keys(&self) -> Option<&SrtpKeys> {
        self.keys.as_ref()
    }

    /// The DTLS client's address, once its ClientHello was read.
    pub fn client(&self) -> Option<SocketAddr> {
        self.client.map(|(a, _)| a)
    }

    /// The client random naming the session in a key log, once the ClientHello was read.
    pub fn client_random(&self) -> Option<&[u8; 32]> {
        self.client.as_ref().map(|(_, r)| r)
    }

    /// The profile the server chose, once its ServerHello was read (`None` without `use_srtp`).
    pub fn profile(&self) -> Option<Profile> {
        let (_, hello) = self.server.as_ref()?;
        hello.srtp_profile.map(Profile::from_id)
    }

    /// Reads one UDP datagram of the 5-tuple (`src` sent it to `dst`). Anything may come in:
    /// what is not a DTLS record is counted as malformed and skipped.
    pub fn on_datagram(&mut self, src: SocketAddr, dst: SocketAddr, datagram: &[u8]) -> Seen {
        self.stats.datagrams += 1;
        let mut seen = Seen::default();
        let mut records = parse::Reader::new(datagram);
        while let Some(next) = parse::next_record(&mut records) {
            match next {
                parse::NextRecord::Record(r)
                    if r.content_type == parse::HANDSHAKE && r.epoch == 0 =>
                {
                    self.stats.handshake_records += 1;
                    seen.handshake |= self.on_handshake_record(src, dst, r.body);
                }
                parse::NextRecord::Record(_) => self.stats.other_records += 1,
                parse::NextRecord::Opaque => {
                    self.stats.other_records += 1;
                    break;
                }
                parse::NextRecord::Malformed => {
                    self.stats.malformed += 1;
                    break;
                }
            }
        }
        seen
    }

    /// The handshake fragments of one epoch 0 record; true when they completed a hello pair.
    fn on_handshake_record(&mut self, src: SocketAddr, dst: SocketAddr, body: &[u8]) -> bool {
        let mut r = parse::Reader::new(body);
        let mut handshake = false;
        while let Some(fragment) = parse::next_fragment(&mut r) {
            let Some(f) = fragment else {
                self.stats.malformed += 1;
                break;
            };
            handshake |= match f.msg_type {
                parse::CLIENT_HELLO => self.on_client_hello(src, &f),
                parse::SERVER_HELLO => self.on_server_hello(src, dst, &f),
                _ => false,
            };
        }
        handshake
    }

    fn on_client_hello(&mut self, src: SocketAddr, f: &parse::Fragment<'_>) -> bool {
        let need = parse::CLIENT_HELLO_PREFIX;
        if f.length < need {
            self.stats.malformed += 1;
            return false;
        }
        let Some(prefix) =
            self.client_hello
                .add(f.message_seq, f.length, f.offset, f.fragment, need)
        else {
            return false;
        };
        let Some(random) = parse::client_random(prefix) else {
            self.stats.malformed += 1;
            return false;
        };
        if self.client.is_some_and(|(a, r)| a == src && r == random) {
            // A retransmission, or the same hello again with the server's cookie.
            return false;
        }
        // A new handshake on this 5-tuple: what the last one gave no longer applies.
        self.client = Some((src, random));
        self.server = None;
        self.server_hello.message = None;
        self.forget_keys();
        false
    }

    fn on_server_hello(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        f: &parse::Fragment<'_>,
    ) -> bool {
        if f.length > MAX_SERVER_HELLO {
            if f.offset == 0 {
                self.stats.oversized += 1;
            }
            return false;
        }
        let Some(body) =
            self.server_hello
                .add(f.message_seq, f.length, f.offset, f.fragment, f.length)
        else {
            return false;
        };
        let Some(hello) = parse::server_hello(body) else {
            self.stats.malformed += 1;
            return false;
        };
        if self
            .server
            .as_ref()
            .is_some_and(|(a, h)| *a == src && *h == hello)
        {
            return false;
        }
        if hello.version != parse::DTLS_1_2 || hello.tls13 {
            self.stats.unsupported_version += 1;
            return false;
        }
        // The server answers the client: a hello pair only when the ClientHello came from the
        // address this one goes to. Any other (a capture that missed the ClientHello, a hello
        // from the client's own address) has no random to key, and is not kept.
        if self.client.is_none_or(|(a, _)| a != dst) {
            return false;
        }
        self.forget_keys();
        self.server = Some((src, hello));
        self.stats.handshakes += 1;
        true
    }

    fn forget_keys(&mut self) {
        self.keys = None;
        self.looked_at = None;
    }

    /// Looks the handshake's master secret up in `log` and derives the SRTP keys; cheap when
    /// the key log has not grown since the last look (one comparison), so a caller may ask
    /// for every packet still waiting for a key.
    pub fn look_up(&mut self, log: &KeyLog) -> Lookup {
        if self.looked_at == Some(log.generation()) {
            return Lookup::Unchanged;
        }
        let (Some((client, client_random)), Some((server, hello))) = (&self.client, &self.server)
        else {
            return Lookup::Unchanged;
        };
        self.looked_at = Some(log.generation());
        let Some(master) = log.secret(client_random, Label::ClientRandom) else {
            return Lookup::Unchanged;
        };
        let Some(profile) = hello.srtp_profile.map(Profile::from_id) else {
            return Lookup::Unchanged;
        };
        let Some(keys) = export(master, *client, *server, client_random, hello, profile) else {
            return Lookup::Unchanged;
        };
        if self.keys.as_ref() == Some(&keys) {
            return Lookup::Unchanged;
        }
        let first = self.keys.is_none();
        self.keys = Some(keys);
        Lookup::Keyed { first }
    }
}

/// RFC 5764 §4.2: the SRTP keying material exported from the session's master secret.
fn export(
    master: &[u8],
    client: SocketAddr,
    server: SocketAddr,
    client_random: &[u8; 32],
    hello: &parse::ServerHello,
    profile: Profile,
) -> Option<SrtpKeys> {
    let (key_len, salt_len) = profile.key_and_salt_len()?;
    let hash = if parse::prf_is_sha384(hello.cipher_suite) {
        PrfHash::Sha384
    } else {
        PrfHash::Sha256
    };
    let len = 2 * (key_len + salt_len);
    let material = tls12_export(
        hash,
        master,
        b"EXTRACTOR-dtls_srtp",
        client_random,
        &hello.random,
        len,
    )?;
    Some(SrtpKeys {
        profile,
        client,
        server,
        material,
        key_len,
        salt_len,
    })
}

#[cfg(test)]
mod tests;
