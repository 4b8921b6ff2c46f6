//! The key derivations a reader of someone else's TLS or DTLS needs once a key log gave it the
//! session's secret: TLS 1.2's PRF (RFC 5246 §5) and its exporter (RFC 5705, which DTLS-SRTP's
//! keys come from, RFC 5764 §4.2), and TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) and
//! exporter (§7.5). Only the protocol around RustCrypto's HMAC, SHA-2 and HKDF is written here.

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};
use zeroize::Zeroizing;

/// The hash a session's cipher suite names for its PRF or HKDF (SHA-256 unless the suite ends
/// in `_SHA384`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrfHash {
    /// SHA-256: every suite whose name does not end in `_SHA384`.
    Sha256,
    /// SHA-384: `TLS_AES_256_GCM_SHA384` and the TLS 1.2 `…_SHA384` suites.
    Sha384,
}

impl PrfHash {
    /// The hash's output length in bytes (RFC 8446's `Hash.length`): 32 or 48.
    pub fn output_len(self) -> usize {
        match self {
            PrfHash::Sha256 => 32,
            PrfHash::Sha384 => 48,
        }
    }
}

/// The most any derivation here is asked for; a caller never needs more (a TLS 1.2 key block
/// is at most 2 × (64 + 32 + 16) bytes), so a bad request cannot make it loop long.
pub const MAX_OUTPUT: usize = 256;

/// TLS 1.2 PRF(secret, label, seed) of `len` bytes (at most [`MAX_OUTPUT`]; `None` past it).
pub fn tls12_prf(
    hash: PrfHash,
    secret: &[u8],
    label: &[u8],
    seed: &[u8],
    len: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    if len > MAX_OUTPUT {
        return None;
    }
    let mut label_seed = Vec::with_capacity(label.len() + seed.len());
    label_seed.extend_from_slice(label);
    label_seed.extend_from_slice(seed);
    Some(match hash {
        PrfHash::Sha256 => p_hash::<Hmac<Sha256>>(secret, &label_seed, len),
        PrfHash::Sha384 => p_hash::<Hmac<Sha384>>(secret, &label_seed, len),
    })
}

/// P_hash of RFC 5246 §5: A(i) = HMAC(secret, A(i-1)), output HMAC(secret, A(i) + seed)...
fn p_hash<M: Mac + hmac::digest::KeyInit + Clone>(
    secret: &[u8],
    seed: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    let Ok(keyed) = <M as hmac::digest::KeyInit>::new_from_slice(secret) else {
        // HMAC takes keys of any length; unreachable, but no panic on a secret from outside.
        return out;
    };
    let mut a = Zeroizing::new(seed.to_vec());
    while out.len() < len {
        let mut m = keyed.clone();
        m.update(&a);
        *a = m.finalize().into_bytes().to_vec();
        let mut m = keyed.clone();
        m.update(&a);
        m.update(seed);
        let block = m.finalize().into_bytes();
        let take = (len - out.len()).min(block.len());
        out.extend_from_slice(&block[..take]);
    }
    out
}

/// TLS 1.2's exporter (RFC 5705 §4) without a context: PRF(master, label, client_random +
/// server_random). DTLS-SRTP uses it with the label `EXTRACTOR-dtls_srtp`.
pub fn tls12_export(
    hash: PrfHash,
    master: &[u8],
    label: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    len: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    let mut seed = [0u8; 64];
    seed[..32].copy_from_slice(client_random);
    seed[32..].copy_from_slice(server_random);
    tls12_prf(hash, master, label, &seed, len)
}

/// HKDF-Expand-Label(secret, label, context, len) of RFC 8446 §7.1 (`"tls13 "` prefixed), or
/// DTLS 1.3's (RFC 9147 §5.9, `"dtls13"`) when `prefix` says so. `None` for a secret shorter
/// than the hash or an output longer than [`MAX_OUTPUT`].
pub fn hkdf_expand_label(
    hash: PrfHash,
    prefix: &[u8],
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    let full_label = prefix.len() + label.len();
    if len > MAX_OUTPUT || full_label > 255 || context.len() > 255 {
        return None;
    }
    let mut info = Vec::with_capacity(4 + full_label + context.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(full_label as u8);
    info.extend_from_slice(prefix);
    info.extend_from_slice(label);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    let mut out = Zeroizing::new(vec![0u8; len]);
    let ok = match hash {
        PrfHash::Sha256 => hkdf::Hkdf::<Sha256>::from_prk(secret)
            .ok()
            .and_then(|h| h.expand(&info, &mut out).ok()),
        PrfHash::Sha384 => hkdf::Hkdf::<Sha384>::from_prk(secret)
            .ok()
            .and_then(|h| h.expand(&info, &mut out).ok()),
    };
    ok.map(|()| out)
}

/// The TLS 1.3 label prefix.
pub const TLS13: &[u8] = b"tls13 ";
/// The DTLS 1.3 label prefix (RFC 9147 §5.9).
pub const DTLS13: &[u8] = b"dtls13";

/// TLS 1.3's exporter (RFC 8446 §7.5) without a context, from a key log's `EXPORTER_SECRET`:
/// HKDF-Expand-Label(Derive-Secret(secret, label, ""), "exporter", Hash(""), len).
pub fn tls13_export(
    hash: PrfHash,
    prefix: &[u8],
    exporter_secret: &[u8],
    label: &[u8],
    len: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    let empty_hash = empty_hash(hash);
    let derived = hkdf_expand_label(
        hash,
        prefix,
        exporter_secret,
        label,
        &empty_hash,
        hash.output_len(),
    )?;
    hkdf_expand_label(hash, prefix, &derived, b"exporter", &empty_hash, len)
}

fn empty_hash(hash: PrfHash) -> Vec<u8> {
    use sha2::Digest;
    match hash {
        PrfHash::Sha256 => Sha256::digest(b"").to_vec(),
        PrfHash::Sha384 => Sha384::digest(b"").to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// The TLS 1.2 PRF (SHA-256) test vector published with RFC 5246's errata by the IETF TLS
    /// working group (www.ietf.org/mail-archive/web/tls/current/msg03416.html).
    #[test]
    fn the_tls12_prf_matches_the_published_sha256_vector() {
        let out = tls12_prf(
            PrfHash::Sha256,
            &hex("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35"),
            b"test label",
            &hex("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c"),
            100,
        )
        .expect("100 bytes");
        assert_eq!(
            out.as_slice(),
            hex(
                "e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4 e6 1e db 5a
                 6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17 ab fd 37 97 c0 56 4b ab
                 4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01
                 87 34 7b 66"
            )
        );
    }

    /// The same vector set's SHA-384 case.
    #[test]
    fn the_tls12_prf_matches_the_published_sha384_vector() {
        let out = tls12_prf(
            PrfHash::Sha384,
            &hex("b8 0b 73 3d 6c ee fc dc 71 56 6e a4 8e 55 67 df"),
            b"test label",
            &hex("cd 66 5c f6 a8 44 7d d6 ff 8b 27 55 5e db 74 65"),
            148,
        )
        .expect("148 bytes");
        assert_eq!(
            &out[..16],
            hex("7b 0c 18 e9 ce d4 10 ed 18 04 f2 cf a3 4a 33 6a").as_slice()
        );
        assert_eq!(out.len(), 148);
    }

    /// RFC 8448 §3 (a simple 1-RTT handshake): the server's handshake traffic key and IV from
    /// its handshake traffic secret.
    #[test]
    fn hkdf_expand_label_matches_rfc_8448() {
        let secret = hex(
            "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38",
        );
        let key = hkdf_expand_label(PrfHash::Sha256, TLS13, &secret, b"key", b"", 16).expect("key");
        let iv = hkdf_expand_label(PrfHash::Sha256, TLS13, &secret, b"iv", b"", 12).expect("iv");
        assert_eq!(
            key.as_slice(),
            hex("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc").as_slice()
        );
        assert_eq!(
            iv.as_slice(),
            hex("5d 31 3e b2 67 12 76 ee 13 00 0b 30").as_slice()
        );
    }

    #[test]
    fn outputs_past_the_bound_are_refused_not_computed() {
        assert!(tls12_prf(PrfHash::Sha256, b"k", b"l", b"s", MAX_OUTPUT + 1).is_none());
        assert!(
            hkdf_expand_label(PrfHash::Sha256, TLS13, &[0; 32], b"x", b"", MAX_OUTPUT + 1)
                .is_none()
        );
        // A "secret" shorter than the hash is not a PRK.
        assert!(hkdf_expand_label(PrfHash::Sha256, TLS13, &[0; 4], b"x", b"", 16).is_none());
    }
}
