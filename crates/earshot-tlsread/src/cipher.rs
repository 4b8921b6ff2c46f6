//! Cipher suites, record keys from logged secrets, and opening one protected record. The
//! primitives are RustCrypto's; what is written here is TLS's record protection around them:
//! TLS 1.3's per-record nonce and inner content type (RFC 8446 §5.2–5.3), TLS 1.2's key block
//! (RFC 5246 §6.3), AES-GCM's implicit salt and explicit nonce (RFC 5288), ChaCha20-Poly1305
//! (RFC 7905), and CBC with HMAC, MAC-then-encrypt (RFC 5246 §6.2.3.2) or encrypt-then-MAC
//! (RFC 7366).

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use cbc::cipher::{block_padding::NoPadding, BlockDecryptMut, KeyIvInit};
use chacha20poly1305::ChaCha20Poly1305;
use earshot_keylog::derive::{hkdf_expand_label, tls12_prf, PrfHash, TLS13};
use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

/// The bulk cipher (and MAC) of a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bulk {
    /// AES-128-GCM (RFC 5288 in TLS 1.2, RFC 8446 §5.3 nonces in TLS 1.3).
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 7905; TLS 1.3's `TLS_CHACHA20_POLY1305_SHA256`).
    ChaCha20Poly1305,
    /// TLS 1.2 AES-128-CBC with the HMAC named, MAC-then-encrypt unless the hellos agreed on
    /// encrypt-then-MAC (RFC 7366).
    Aes128Cbc(MacHash),
    /// TLS 1.2 AES-256-CBC with the HMAC named, as [`Bulk::Aes128Cbc`].
    Aes256Cbc(MacHash),
}

/// The HMAC of a CBC suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacHash {
    /// HMAC-SHA1, 20-byte MAC (the `…_CBC_SHA` suites).
    Sha1,
    /// HMAC-SHA256, 32-byte MAC (the `…_CBC_SHA256` suites).
    Sha256,
    /// HMAC-SHA384, 48-byte MAC (the `…_CBC_SHA384` suites).
    Sha384,
}

impl MacHash {
    fn len(self) -> usize {
        match self {
            MacHash::Sha1 => 20,
            MacHash::Sha256 => 32,
            MacHash::Sha384 => 48,
        }
    }
}

/// A cipher suite this reader can open: its bulk cipher and the hash of its PRF or HKDF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    /// The two-byte `CipherSuite` value the ServerHello carried (IANA TLS registry).
    pub id: u16,
    /// How its records are protected.
    pub bulk: Bulk,
    /// The hash of TLS 1.2's PRF or TLS 1.3's HKDF for this suite.
    pub hash: PrfHash,
}

impl Suite {
    /// The suite a ServerHello names, for the version it chose; `None` for suites not read
    /// here (the connection is then counted as undecryptable).
    pub fn from_id(id: u16, tls13: bool) -> Option<Suite> {
        use Bulk::*;
        use MacHash::*;
        let (bulk, hash) = match (tls13, id) {
            (true, 0x1301) => (Aes128Gcm, PrfHash::Sha256),
            (true, 0x1302) => (Aes256Gcm, PrfHash::Sha384),
            (true, 0x1303) => (ChaCha20Poly1305, PrfHash::Sha256),
            (true, _) => return None,
            // RSA, DHE_RSA, ECDHE_ECDSA and ECDHE_RSA key exchanges with AES-GCM.
            (false, 0x009C | 0x009E | 0xC02B | 0xC02F) => (Aes128Gcm, PrfHash::Sha256),
            (false, 0x009D | 0x009F | 0xC02C | 0xC030) => (Aes256Gcm, PrfHash::Sha384),
            (false, 0xCCA8..=0xCCAA) => (ChaCha20Poly1305, PrfHash::Sha256),
            (false, 0x002F | 0x0033 | 0xC009 | 0xC013) => (Aes128Cbc(Sha1), PrfHash::Sha256),
            (false, 0x0035 | 0x0039 | 0xC00A | 0xC014) => (Aes256Cbc(Sha1), PrfHash::Sha256),
            (false, 0x003C | 0x0067 | 0xC023 | 0xC027) => (Aes128Cbc(Sha256), PrfHash::Sha256),
            (false, 0x003D | 0x006B) => (Aes256Cbc(Sha256), PrfHash::Sha256),
            (false, 0xC024 | 0xC028) => (Aes256Cbc(Sha384), PrfHash::Sha384),
            (false, _) => return None,
        };
        Some(Suite { id, bulk, hash })
    }

    fn key_len(self) -> usize {
        match self.bulk {
            Bulk::Aes128Gcm | Bulk::Aes128Cbc(_) => 16,
            Bulk::Aes256Gcm | Bulk::ChaCha20Poly1305 | Bulk::Aes256Cbc(_) => 32,
        }
    }

    fn mac_len(self) -> usize {
        match self.bulk {
            Bulk::Aes128Cbc(m) | Bulk::Aes256Cbc(m) => m.len(),
            _ => 0,
        }
    }

    /// TLS 1.2's fixed IV: GCM's 4-byte salt, ChaCha20's 12-byte IV; CBC records carry
    /// their own IV, so none is taken from the key block.
    fn tls12_fixed_iv_len(self) -> usize {
        match self.bulk {
            Bulk::Aes128Gcm | Bulk::Aes256Gcm => 4,
            Bulk::ChaCha20Poly1305 => 12,
            Bulk::Aes128Cbc(_) | Bulk::Aes256Cbc(_) => 0,
        }
    }
}

pub(crate) enum Aead {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl Aead {
    fn new(bulk: Bulk, key: &[u8]) -> Option<Aead> {
        Some(match bulk {
            Bulk::Aes128Gcm => Aead::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            Bulk::Aes256Gcm => Aead::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            Bulk::ChaCha20Poly1305 => {
                Aead::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?))
            }
            Bulk::Aes128Cbc(_) | Bulk::Aes256Cbc(_) => return None,
        })
    }

    /// Decrypts `buf` (ciphertext then a 16-byte tag) in place; `false` if the tag is wrong.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> bool {
        let Some(split) = buf.len().checked_sub(TAG) else {
            return false;
        };
        let (data, tag) = buf.split_at_mut(split);
        let tag = aes_gcm::Tag::from_slice(tag);
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        match self {
            Aead::Aes128(c) => c.decrypt_in_place_detached(nonce, aad, data, tag).is_ok(),
            Aead::Aes256(c) => c.decrypt_in_place_detached(nonce, aad, data, tag).is_ok(),
            Aead::ChaCha(c) => c.decrypt_in_place_detached(nonce, aad, data, tag).is_ok(),
        }
    }
}

const TAG: usize = 16;
const CBC_BLOCK: usize = 16;

/// One direction's record protection.
pub(crate) enum Protection {
    Tls13 { aead: Aead, iv: [u8; 12] },
    Tls12Gcm { aead: Aead, salt: [u8; 4] },
    Tls12ChaCha { aead: Aead, iv: [u8; 12] },
    Tls12Cbc(Box<CbcKeys>),
}

pub(crate) struct CbcKeys {
    key: Zeroizing<Vec<u8>>,
    mac_key: Zeroizing<Vec<u8>>,
    mac: MacHash,
    encrypt_then_mac: bool,
}

/// Why a record did not open.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("the record's authentication failed: wrong key, or bytes changed in the capture")]
    Authentication,
}

/// A record opened in place: its content type and where its plaintext lies in the buffer.
pub(crate) struct Opened {
    pub content_type: u8,
    pub start: usize,
    pub end: usize,
}

/// The per-record nonce of TLS 1.3 and TLS 1.2 ChaCha20: the IV with the sequence number
/// XORed into its last 8 bytes.
fn xor_nonce(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut nonce = *iv;
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    nonce
}

/// TLS 1.2's additional data: seq, type, version, plaintext length.
fn tls12_aad(seq: u64, content_type: u8, version: [u8; 2], len: usize) -> [u8; 13] {
    let mut aad = [0u8; 13];
    aad[..8].copy_from_slice(&seq.to_be_bytes());
    aad[8] = content_type;
    aad[9..11].copy_from_slice(&version);
    aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
    aad
}

impl Protection {
    /// TLS 1.3 keys of one direction from its traffic secret.
    pub(crate) fn tls13(suite: Suite, secret: &[u8]) -> Option<Protection> {
        let key = hkdf_expand_label(suite.hash, TLS13, secret, b"key", b"", suite.key_len())?;
        let iv = hkdf_expand_label(suite.hash, TLS13, secret, b"iv", b"", 12)?;
        Some(Protection::Tls13 {
            aead: Aead::new(suite.bulk, &key)?,
            iv: iv.as_slice().try_into().ok()?,
        })
    }

    /// TLS 1.2 keys of both directions (client's, server's) from the master secret.
    pub(crate) fn tls12(
        suite: Suite,
        master: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
        encrypt_then_mac: bool,
    ) -> Option<[Protection; 2]> {
        let (mac, key, iv) = (suite.mac_len(), suite.key_len(), suite.tls12_fixed_iv_len());
        let mut seed = [0u8; 64];
        seed[..32].copy_from_slice(server_random);
        seed[32..].copy_from_slice(client_random);
        let block = tls12_prf(
            suite.hash,
            master,
            b"key expansion",
            &seed,
            2 * (mac + key + iv),
        )?;
        // client MAC key, server MAC key, client key, server key, client IV, server IV.
        let part = |at: usize, len: usize| block.get(at..at + len);
        let side = |i: usize| -> Option<Protection> {
            let mac_key = part(i * mac, mac)?;
            let k = part(2 * mac + i * key, key)?;
            let fixed = part(2 * (mac + key) + i * iv, iv)?;
            Some(match suite.bulk {
                Bulk::Aes128Gcm | Bulk::Aes256Gcm => Protection::Tls12Gcm {
                    aead: Aead::new(suite.bulk, k)?,
                    salt: fixed.try_into().ok()?,
                },
                Bulk::ChaCha20Poly1305 => Protection::Tls12ChaCha {
                    aead: Aead::new(suite.bulk, k)?,
                    iv: fixed.try_into().ok()?,
                },
                Bulk::Aes128Cbc(m) | Bulk::Aes256Cbc(m) => {
                    Protection::Tls12Cbc(Box::new(CbcKeys {
                        key: Zeroizing::new(k.to_vec()),
                        mac_key: Zeroizing::new(mac_key.to_vec()),
                        mac: m,
                        encrypt_then_mac,
                    }))
                }
            })
        };
        Some([side(0)?, side(1)?])
    }

    /// Opens the record of `header` (type, version, length) whose body is `buf`, the
    /// `seq`th of its direction under these keys.
    pub(crate) fn open(
        &self,
        header: &[u8; 5],
        seq: u64,
        buf: &mut [u8],
    ) -> Result<Opened, OpenError> {
        let outer_type = header[0];
        let version = [header[1], header[2]];
        match self {
            Protection::Tls13 { aead, iv } => {
                if !aead.open(&xor_nonce(iv, seq), header, buf) {
                    return Err(OpenError::Authentication);
                }
                let plain = &buf[..buf.len() - TAG];
                // TLSInnerPlaintext: content, the real type, then zero padding.
                let Some(type_at) = plain.iter().rposition(|&b| b != 0) else {
                    return Err(OpenError::Authentication);
                };
                Ok(Opened {
                    content_type: plain[type_at],
                    start: 0,
                    end: type_at,
                })
            }
            Protection::Tls12Gcm { aead, salt } => {
                let Some(explicit) = buf.get(..8) else {
                    return Err(OpenError::Authentication);
                };
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(salt);
                nonce[4..].copy_from_slice(explicit);
                let Some(len) = buf.len().checked_sub(8 + TAG) else {
                    return Err(OpenError::Authentication);
                };
                let aad = tls12_aad(seq, outer_type, version, len);
                if !aead.open(&nonce, &aad, &mut buf[8..]) {
                    return Err(OpenError::Authentication);
                }
                Ok(Opened {
                    content_type: outer_type,
                    start: 8,
                    end: 8 + len,
                })
            }
            Protection::Tls12ChaCha { aead, iv } => {
                let Some(len) = buf.len().checked_sub(TAG) else {
                    return Err(OpenError::Authentication);
                };
                let aad = tls12_aad(seq, outer_type, version, len);
                if !aead.open(&xor_nonce(iv, seq), &aad, buf) {
                    return Err(OpenError::Authentication);
                }
                Ok(Opened {
                    content_type: outer_type,
                    start: 0,
                    end: len,
                })
            }
            Protection::Tls12Cbc(keys) => keys.open(outer_type, version, seq, buf),
        }
    }
}

type HmacSha1 = Hmac<sha1::Sha1>;
type HmacSha256 = Hmac<sha2::Sha256>;
type HmacSha384 = Hmac<sha2::Sha384>;

impl CbcKeys {
    /// HMAC(mac_key, seq || type || version || length || data), compared with `tag`.
    fn mac_ok(
        &self,
        seq: u64,
        content_type: u8,
        version: [u8; 2],
        data: &[u8],
        tag: &[u8],
    ) -> bool {
        let aad = tls12_aad(seq, content_type, version, data.len());
        fn check<M: Mac + KeyInit>(key: &[u8], aad: &[u8], data: &[u8], tag: &[u8]) -> bool {
            let Ok(mut m) = <M as Mac>::new_from_slice(key) else {
                return false;
            };
            m.update(aad);
            m.update(data);
            m.verify_slice(tag).is_ok()
        }
        match self.mac {
            MacHash::Sha1 => check::<HmacSha1>(&self.mac_key, &aad, data, tag),
            MacHash::Sha256 => check::<HmacSha256>(&self.mac_key, &aad, data, tag),
            MacHash::Sha384 => check::<HmacSha384>(&self.mac_key, &aad, data, tag),
        }
    }

    /// AES-CBC decryption in place of `buf` (a whole number of blocks) with `iv`.
    fn decrypt(&self, iv: &[u8], buf: &mut [u8]) -> bool {
        match self.key.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&self.key, iv)
                .ok()
                .and_then(|d| d.decrypt_padded_mut::<NoPadding>(buf).ok())
                .is_some(),
            32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(&self.key, iv)
                .ok()
                .and_then(|d| d.decrypt_padded_mut::<NoPadding>(buf).ok())
                .is_some(),
            _ => false,
        }
    }

    /// A CBC record: the IV block, then the ciphertext; the MAC inside the ciphertext
    /// (MAC-then-encrypt) or after it (encrypt-then-MAC).
    fn open(
        &self,
        content_type: u8,
        version: [u8; 2],
        seq: u64,
        buf: &mut [u8],
    ) -> Result<Opened, OpenError> {
        let mac_len = self.mac.len();
        let auth = Err(OpenError::Authentication);
        let cipher_end = match self.encrypt_then_mac {
            true => match buf.len().checked_sub(mac_len) {
                Some(end) => end,
                None => return auth,
            },
            false => buf.len(),
        };
        if cipher_end < 2 * CBC_BLOCK || cipher_end % CBC_BLOCK != 0 {
            return auth;
        }
        if self.encrypt_then_mac {
            let (data, tag) = buf.split_at(cipher_end);
            if !self.mac_ok(seq, content_type, version, data, tag) {
                return auth;
            }
        }
        let (iv, body) = buf[..cipher_end].split_at_mut(CBC_BLOCK);
        if !self.decrypt(iv, body) {
            return auth;
        }
        // Padding: its length byte last, and that many bytes of the same value before it.
        let pad = usize::from(body[body.len() - 1]);
        let Some(unpadded) = body.len().checked_sub(pad + 1) else {
            return auth;
        };
        if body[unpadded..].iter().any(|&b| usize::from(b) != pad) {
            return auth;
        }
        let mut end = unpadded;
        if !self.encrypt_then_mac {
            let Some(content_end) = unpadded.checked_sub(mac_len) else {
                return auth;
            };
            let (data, rest) = body.split_at(content_end);
            if !self.mac_ok(seq, content_type, version, data, &rest[..mac_len]) {
                return auth;
            }
            end = content_end;
        }
        Ok(Opened {
            content_type,
            start: CBC_BLOCK,
            end: CBC_BLOCK + end,
        })
    }
}

/// TLS 1.3's next application traffic secret after a KeyUpdate (RFC 8446 §7.2).
pub(crate) fn next_traffic_secret(suite: Suite, secret: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    hkdf_expand_label(
        suite.hash,
        TLS13,
        secret,
        b"traffic upd",
        b"",
        suite.hash.output_len(),
    )
}
