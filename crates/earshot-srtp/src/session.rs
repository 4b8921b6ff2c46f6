//! Session keys derived from a master key, and what a packet needs of them: the IV, the HMAC
//! check and counter-mode decryption, or AES-GCM's authenticated decryption.

use crate::{MasterKey, Suite};
use aes::cipher::consts::{U12, U16};
use aes::cipher::{
    BlockCipher, BlockEncrypt, BlockSizeUser, InnerIvInit, KeyInit, KeyIvInit, StreamCipher,
    StreamCipherCoreWrapper,
};
use aes_gcm::aead::AeadInPlace;
use hmac::{Hmac, Mac};

type HmacSha1 = Hmac<sha1::Sha1>;
// Counter mode and GCM only ever encrypt blocks: the encryption key schedule alone.
type Aes128Gcm = aes_gcm::AesGcm<aes::Aes128Enc, U12>;
type Aes256Gcm = aes_gcm::AesGcm<aes::Aes256Enc, U12>;

/// Counter mode's session salt (112 bits).
const CM_SALT_LEN: usize = 14;
/// AES-GCM's session salt (96 bits, RFC 7714 §12).
const GCM_SALT_LEN: usize = 12;
/// HMAC-SHA1 session authentication key length (160 bits).
const AUTH_KEY_LEN: usize = 20;
/// SHA-1's block: HMAC pads a shorter key with zeros to it (RFC 2104 §2).
const SHA1_BLOCK: usize = 64;
/// The AES-GCM tag length of every suite here.
pub(crate) const GCM_TAG_LEN: usize = 16;

/// Key derivation labels (RFC 3711 §4.3.1 for SRTP, §4.3.2 for SRTCP).
#[derive(Clone, Copy)]
pub(crate) struct Labels {
    cipher: u8,
    auth: u8,
    salt: u8,
}

pub(crate) const SRTP_LABELS: Labels = Labels {
    cipher: 0,
    auth: 1,
    salt: 2,
};
pub(crate) const SRTCP_LABELS: Labels = Labels {
    cipher: 3,
    auth: 4,
    salt: 5,
};

/// One direction's session keys (key derivation rate 0: derived once per stream), set up so a
/// packet costs no key schedule: the AES key expanded, the HMAC keyed.
#[derive(Clone)]
pub(crate) enum SessionKeys {
    Cm(CmKeys),
    Gcm(GcmKeys),
}

impl SessionKeys {
    pub(crate) fn derive(master: &MasterKey, labels: Labels) -> SessionKeys {
        if master.suite.is_aead() {
            SessionKeys::Gcm(GcmKeys::derive(master, labels))
        } else {
            SessionKeys::Cm(CmKeys::derive(master, labels))
        }
    }
}

/// AES counter mode with HMAC-SHA1 (RFC 3711 §4.1.1, §4.2).
#[derive(Clone)]
pub(crate) struct CmKeys {
    cipher: CmCipher,
    salt: [u8; CM_SALT_LEN],
    /// Keyed once; each packet authenticates with a copy (keying costs two SHA-1 blocks).
    mac: HmacSha1,
}

/// The expanded key: hundreds of bytes (the constant-time software fallback's too). Inline,
/// not boxed, on purpose: a stream's keys are one allocation, and a packet follows no pointer
/// to reach them (see `KeyRing`); the 256 bytes AES-128 streams leave unused are cheaper than
/// a cache miss per packet.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum CmCipher {
    Aes128(aes::Aes128Enc),
    Aes256(aes::Aes256Enc),
}

impl CmKeys {
    fn derive(master: &MasterKey, labels: Labels) -> CmKeys {
        let mut salt = [0u8; CM_SALT_LEN];
        kdf(master, labels.salt, &mut salt);
        // HMAC's zero padding done here makes keying infallible (RFC 2104: the same MAC).
        let mut auth = [0u8; SHA1_BLOCK];
        kdf(master, labels.auth, &mut auth[..AUTH_KEY_LEN]);
        let mac = <HmacSha1 as KeyInit>::new(&auth.into());
        let cipher = match master.suite.key_len() {
            16 => {
                let mut k = [0u8; 16];
                kdf(master, labels.cipher, &mut k);
                CmCipher::Aes128(aes::Aes128Enc::new(&k.into()))
            }
            _ => {
                let mut k = [0u8; 32];
                kdf(master, labels.cipher, &mut k);
                CmCipher::Aes256(aes::Aes256Enc::new(&k.into()))
            }
        };
        CmKeys { cipher, salt, mac }
    }

    /// Keys given as session keys (the test vectors' way), not derived.
    #[cfg(test)]
    pub(crate) fn from_session(key: &[u8; 16], salt: [u8; CM_SALT_LEN], auth: &[u8]) -> CmKeys {
        let mut padded = [0u8; SHA1_BLOCK];
        padded[..auth.len()].copy_from_slice(auth);
        CmKeys {
            cipher: CmCipher::Aes128(aes::Aes128Enc::new(key.into())),
            salt,
            mac: <HmacSha1 as KeyInit>::new(&padded.into()),
        }
    }

    /// RFC 3711 §4.1.1: IV = (k_s · 2^16) XOR (SSRC · 2^64) XOR (i · 2^16), with i the 48-bit
    /// packet index (ROC · 2^16 + SEQ), or the 31-bit SRTCP index.
    pub(crate) fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..CM_SALT_LEN].copy_from_slice(&self.salt);
        xor_ssrc_index(&mut iv[4..14], ssrc, index);
        iv
    }

    /// Whether `tag` authenticates `authenticated` followed by `trailer` (SRTP's ROC; nothing
    /// for SRTCP, whose index is in the authenticated bytes). Constant time.
    pub(crate) fn verifies(&self, authenticated: &[u8], trailer: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(authenticated);
        mac.update(trailer);
        mac.verify_truncated_left(tag).is_ok()
    }

    /// Counter-mode decryption of `data` in place, for the packet `ssrc` and `index` name.
    pub(crate) fn decrypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let iv = self.iv(ssrc, index);
        match &self.cipher {
            CmCipher::Aes128(c) => keystream(c, &iv, data),
            CmCipher::Aes256(c) => keystream(c, &iv, data),
        }
    }
}

/// AES-GCM (RFC 7714): the cipher authenticates; a 16-byte tag.
#[derive(Clone)]
pub(crate) struct GcmKeys {
    cipher: GcmCipher,
    salt: [u8; GCM_SALT_LEN],
}

/// The expanded key and GHASH key, inline as for counter mode.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum GcmCipher {
    Aes128(Aes128Gcm),
    Aes256(Aes256Gcm),
}

impl GcmKeys {
    /// RFC 7714 §11: AES-CM's key derivation (AES-256's for AEAD_AES_256_GCM, RFC 6188); no
    /// authentication key, a 96-bit session salt.
    fn derive(master: &MasterKey, labels: Labels) -> GcmKeys {
        let mut salt = [0u8; GCM_SALT_LEN];
        kdf(master, labels.salt, &mut salt);
        let cipher = match master.suite {
            Suite::AeadAes128Gcm => {
                let mut k = [0u8; 16];
                kdf(master, labels.cipher, &mut k);
                GcmCipher::Aes128(Aes128Gcm::new(&k.into()))
            }
            _ => {
                let mut k = [0u8; 32];
                kdf(master, labels.cipher, &mut k);
                GcmCipher::Aes256(Aes256Gcm::new(&k.into()))
            }
        };
        GcmKeys { cipher, salt }
    }

    /// Keys given as session keys (RFC 7714's vectors' way), not derived.
    #[cfg(test)]
    pub(crate) fn from_session(key: &[u8], salt: [u8; GCM_SALT_LEN]) -> Option<GcmKeys> {
        let cipher = match key.len() {
            16 => GcmCipher::Aes128(Aes128Gcm::new_from_slice(key).ok()?),
            _ => GcmCipher::Aes256(Aes256Gcm::new_from_slice(key).ok()?),
        };
        Some(GcmKeys { cipher, salt })
    }

    /// RFC 7714 §8.1: IV = (0x0000 || SSRC || ROC || SEQ) XOR salt, the 48-bit index after the
    /// SSRC; §9.1 for SRTCP: (0x0000 || SSRC || 0x0000 || 0 || SRTCP index) XOR salt, which
    /// is the same with the 31-bit index in those 48 bits.
    pub(crate) fn iv(&self, ssrc: u32, index: u64) -> [u8; GCM_SALT_LEN] {
        let mut iv = self.salt;
        xor_ssrc_index(&mut iv[2..12], ssrc, index);
        iv
    }

    /// Authenticates `aad` and the ciphertext `data` with `tag` and, only when they verify,
    /// decrypts `data` in place. On failure `data` holds anything: the caller copies the
    /// ciphertext again before another try.
    pub(crate) fn open(
        &self,
        ssrc: u32,
        index: u64,
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> bool {
        let Ok(tag) = <[u8; GCM_TAG_LEN]>::try_from(tag) else {
            return false;
        };
        let (nonce, tag) = (self.iv(ssrc, index).into(), tag.into());
        match &self.cipher {
            GcmCipher::Aes128(c) => c.decrypt_in_place_detached(&nonce, aad, data, &tag),
            GcmCipher::Aes256(c) => c.decrypt_in_place_detached(&nonce, aad, data, &tag),
        }
        .is_ok()
    }
}

/// XORs the SSRC into the first 4 bytes of `at` and the 48-bit `index` into the last 6, the
/// IV layout both counter mode and GCM use (at different offsets).
fn xor_ssrc_index(at: &mut [u8], ssrc: u32, index: u64) {
    for (b, s) in at[..4].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    for (b, s) in at[4..].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
}

/// RFC 3711 §4.3.1 with key_derivation_rate 0: x = (label || 0^48) XOR master_salt, and the
/// key is AES-CM(master_key, x · 2^16) of the wanted length. The label sits in byte 7, 48 bits
/// of index after it. AES-GCM's 96-bit master salt fills the first 12 bytes of the 112-bit
/// field and the last two are zero, as libsrtp2 (the reference implementation) derives them.
pub(crate) fn kdf(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    let salt = master.salt();
    iv[..salt.len()].copy_from_slice(salt);
    iv[7] ^= label;
    out.fill(0);
    aes_ctr(master.key(), &iv, out);
}

/// AES in counter mode from `iv` over `data` in place, with an expanded key (borrowed: no key
/// schedule, no copy of the round keys per packet).
fn keystream<C>(cipher: C, iv: &[u8; 16], data: &mut [u8])
where
    C: BlockEncrypt + BlockCipher + BlockSizeUser<BlockSize = U16>,
{
    let core = ctr::CtrCore::<C, ctr::flavors::Ctr128BE>::inner_iv_init(cipher, iv.into());
    StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
}

/// AES in counter mode from `iv`, over `data` in place, with a 128- or 256-bit key.
pub(crate) fn aes_ctr(key: &[u8], iv: &[u8; 16], data: &mut [u8]) {
    // Both key lengths were checked when the master key was made.
    if let Ok(mut c) = ctr::Ctr128BE::<aes::Aes128>::new_from_slices(key, iv) {
        c.apply_keystream(data);
    } else if let Ok(mut c) = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(key, iv) {
        c.apply_keystream(data);
    }
}
