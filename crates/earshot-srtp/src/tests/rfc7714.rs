//! RFC 7714's test vectors (§16 SRTP, §17 SRTCP): session keys given, the packets protected by
//! AEAD_AES_128_GCM and AEAD_AES_256_GCM must open to the clear ones, through the same path as
//! a captured packet (the ROC of the SRTP one found by its tag from a fresh stream).

use super::super::*;
use super::hex;
use crate::session::{GcmKeys, SessionKeys};
use crate::srtp::KeyRing;

const KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const KEY_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// "Quid pro quo".
const SALT: &str = "517569642070726f2071756f";

/// §16.1: ROC 0, SEQ 0xf17b, SSRC 0x5501a0b2; the payload "Gallia est omnis divisa in
/// partes tres".
const RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
                   69736120 696e2070 61727465 73207472 6573";
const SRTP_128: &str = "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca
                        be633bd5 0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1
                        6a9152cf 765ee439 0cce";
/// §16.2.
const SRTP_256: &str = "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa
                        b1801238 9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff
                        d6b0f9bb 7878d7a7 6c13";
/// §17.1: a sender report of SSRC "Mars", SRTCP index 0x5d4, encrypted (E set).
const RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
                    4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";
const SRTCP_128: &str = "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7
                         6c06f32d c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458
                         96cf4d2f c5abf872 45d9eade 800005d4";
/// §17.2.
const SRTCP_256: &str = "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d
                         bffe0a50 a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c
                         4446839f 57ff6f6c b26ac3be 800005d4";

fn keys(key: &str) -> (Suite, SessionKeys) {
    let salt = hex(SALT).try_into().expect("12 bytes");
    let gcm = GcmKeys::from_session(&hex(key), salt).expect("a 128- or 256-bit key");
    let suite = match key.len() {
        32 => Suite::AeadAes128Gcm,
        _ => Suite::AeadAes256Gcm,
    };
    (suite, SessionKeys::Gcm(gcm))
}

#[test]
fn the_ivs_are_rfc_7714s() {
    let (_, SessionKeys::Gcm(k)) = keys(KEY_128) else {
        unreachable!("GCM keys")
    };
    // §16.1.1: SSRC, ROC 0 and SEQ 0xf17b; §17.1.1: SSRC, SRTCP index 0x5d4.
    assert_eq!(
        k.iv(0x5501_a0b2, 0xf17b).to_vec(),
        hex("51753c6580c2726f20718414")
    );
    assert_eq!(
        k.iv(0x4d61_7273, 0x5d4).to_vec(),
        hex("517524055203726f207170bb")
    );
}

#[test]
fn srtp_packets_open_to_rfc_7714s_clear_packet() {
    for (key, protected) in [(KEY_128, SRTP_128), (KEY_256, SRTP_256)] {
        let (suite, k) = keys(key);
        let mut s = SrtpStream::from_ring(KeyRing::single(suite, k));
        let mut out = Vec::new();
        s.unprotect(&hex(protected), &mut out).expect("opens");
        assert_eq!(out, hex(RTP), "{suite}");
        assert_eq!(s.roc(), Some(0), "{suite}");
        // One bit of the tag, of the ciphertext or of the header (associated data) changed:
        // refused, nothing written.
        for at in [hex(protected).len() - 1, 20, 1] {
            let mut bad = hex(protected);
            bad[at] ^= 0x10;
            assert_eq!(s.unprotect(&bad, &mut out), Err(SrtpError::Authentication));
            assert!(out.is_empty());
        }
        assert_eq!(
            s.counters,
            SrtpCounters {
                decrypted: 1,
                auth_failures: 3
            }
        );
    }
}

#[test]
fn srtcp_packets_open_to_rfc_7714s_clear_packet() {
    for (key, protected) in [(KEY_128, SRTCP_128), (KEY_256, SRTCP_256)] {
        let (suite, k) = keys(key);
        let mut s = SrtcpStream::from_ring(KeyRing::single(suite, k));
        let mut out = Vec::new();
        assert_eq!(
            s.unprotect_rtcp(&hex(protected), &mut out),
            Ok(0x5d4),
            "{suite}"
        );
        assert_eq!(out, hex(RTCP), "{suite}");
        // The index is authenticated (associated data): another index, or the E flag cleared,
        // does not verify; nor does a changed tag.
        let len = hex(protected).len();
        for at in [len - 1, len - 4, len - 5] {
            let mut bad = hex(protected);
            bad[at] ^= 0x80;
            assert_eq!(
                s.unprotect_rtcp(&bad, &mut out),
                Err(SrtpError::Authentication),
                "{suite}: byte {at}"
            );
            assert!(out.is_empty());
        }
    }
}
