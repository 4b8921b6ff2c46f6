use super::*;
use crate::session::{aes_ctr, kdf, CmKeys};
use crate::srtp::estimate;

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_ascii_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// RFC 3711 Appendix B.2: the AES-CM keystream for a session key and salt, ROC 0, SEQ 0,
/// SSRC 0 — the IV construction and the counter mode.
#[test]
fn the_keystream_is_rfc_3711_b2() {
    let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C")
        .try_into()
        .expect("16 bytes");
    let salt = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD")
        .try_into()
        .expect("14 bytes");
    let keys = CmKeys::from_session(&key, salt, &[]);
    let iv = keys.iv(0, 0);
    assert_eq!(iv.to_vec(), hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
    let want = hex(concat!(
        "E03EAD0935C95E80E166B16DD92B4EB4",
        "D23513162B02D0F72A43A2FE4A5F97AB",
        "41E95B3BB0A2E8DD477901E4FCA894C0"
    ));
    let mut stream = vec![0u8; 48];
    aes_ctr(&key, &iv, &mut stream);
    assert_eq!(stream, want);
    // The per-packet path (the expanded key kept) gives the same keystream.
    let mut stream = vec![0u8; 48];
    keys.decrypt(0, 0, &mut stream);
    assert_eq!(stream, want);
}

/// The session keys derived from a master key and salt: RFC 3711 Appendix B.3 (AES-128) and
/// RFC 6188 §7.2 (AES_256_CM_PRF).
#[test]
fn key_derivation_is_rfc_3711_b3_and_rfc_6188() {
    for (suite, key, salt, cipher, session_salt, auth) in [
        (
            Suite::AesCm128HmacSha1_80,
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
            "C61E7A93744F39EE10734AFE3FF7A087",
            "30CBBC08863D8C85D49DB34A9AE1",
            "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4",
        ),
        (
            Suite::AesCm256HmacSha1_80,
            "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6",
            "3b04803de51ee7c96423ab5b78d2",
            "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4",
            "fa31791685ca444a9e07c6c64e93",
            "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05",
        ),
    ] {
        let master = MasterKey::new(suite, &hex(key), &hex(salt)).expect("a master key");
        let derived = |label, len| {
            let mut out = vec![0u8; len];
            kdf(&master, label, &mut out);
            out
        };
        assert_eq!(derived(0, suite.key_len()), hex(cipher), "{suite}");
        assert_eq!(derived(2, 14), hex(session_salt), "{suite}");
        assert_eq!(derived(1, 20), hex(auth), "{suite}");
    }
}

#[test]
fn the_roc_estimate_follows_wraps_both_ways() {
    assert_eq!(estimate(100, 0, 101)[0], Some(0));
    assert_eq!(estimate(65530, 0, 3)[0], Some(1), "wrapped forward");
    assert_eq!(
        estimate(3, 1, 65530)[0],
        Some(0),
        "a late packet from before the wrap"
    );
    assert_eq!(estimate(3, 0, 65530)[0], Some(0), "never below 0");
}

#[test]
fn short_and_malformed_packets_are_refused_not_read_past() {
    for suite in Suite::ALL {
        let master = MasterKey::new(suite, &vec![1; suite.key_len()], &vec![2; suite.salt_len()])
            .expect("key");
        let mut s = SrtpStream::new(&master.into());
        let mut out = Vec::new();
        for bad in [
            &[][..],
            &[0x80; 11][..],
            &[0x40; 40][..], // version 1
            &[0x8f; 30][..], // 15 CSRCs claimed
            &[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff][..], // extension past the end
            &[0x80; 12 + 3][..], // a header and less than a tag
        ] {
            assert_eq!(
                s.unprotect(bad, &mut out),
                Err(SrtpError::TooShort),
                "{suite}"
            );
        }
        // Well formed, but the tag is not the key's: counted, nothing left in `out`.
        out.extend_from_slice(b"the previous packet");
        assert_eq!(
            s.unprotect(&[0x80; 40], &mut out),
            Err(SrtpError::Authentication),
            "{suite}"
        );
        assert!(out.is_empty(), "{suite}");
        assert_eq!(s.counters.auth_failures, 1, "{suite}");
    }
}

mod capture;
mod rfc7714;
mod sdes;
