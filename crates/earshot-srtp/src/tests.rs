use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// RFC 3711 Appendix B.2: the AES-CM keystream for a session key and salt, ROC 0, SEQ 0,
/// SSRC 0 — the IV construction and the counter mode.
#[test]
fn the_keystream_is_rfc_3711_b2() {
    let keys = SessionKeys {
        suite: Suite::AesCm128HmacSha1_80,
        cipher: hex("2B7E151628AED2A6ABF7158809CF4F3C"),
        salt: hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD")
            .try_into()
            .expect("14 bytes"),
        auth: [0; AUTH_KEY_LEN],
    };
    let iv = keys.iv(0, 0);
    assert_eq!(iv.to_vec(), hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
    let mut stream = vec![0u8; 48];
    aes_ctr(&keys.cipher, &iv, &mut stream);
    assert_eq!(
        stream,
        hex(concat!(
            "E03EAD0935C95E80E166B16DD92B4EB4",
            "D23513162B02D0F72A43A2FE4A5F97AB",
            "41E95B3BB0A2E8DD477901E4FCA894C0"
        ))
    );
}

/// RFC 3711 Appendix B.3: the session keys derived from a master key and salt.
#[test]
fn key_derivation_is_rfc_3711_b3() {
    let master = MasterKey::new(
        Suite::AesCm128HmacSha1_80,
        &hex("E1F97A0D3E018BE0D64FA32C06DE4139"),
        &hex("0EC675AD498AFEEBB6960B3AABE6"),
    )
    .expect("a master key");
    let k = SessionKeys::derive(&master);
    assert_eq!(k.cipher, hex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(k.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    assert_eq!(
        k.auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

#[test]
fn sdes_attributes_give_the_key_or_say_why_not() {
    let k = MasterKey::from_sdes(
        "1 AES_CM_128_HMAC_SHA1_80 inline:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e|2^31",
    )
    .expect("a key");
    assert_eq!(k.suite, Suite::AesCm128HmacSha1_80);
    assert_eq!(k.key, (1..=16).collect::<Vec<u8>>());
    assert_eq!(k.salt.to_vec(), (17..=30).collect::<Vec<u8>>());
    assert!(!format!("{k:?}").contains("inline"), "no key in Debug");
    let err = |v: &str| MasterKey::from_sdes(v).unwrap_err();
    assert_eq!(err("1 AES_CM_128_HMAC_SHA1_80"), SdesError::Syntax);
    assert!(matches!(
        err("1 F8_128_HMAC_SHA1_80 inline:AAAA"),
        SdesError::Suite(_)
    ));
    assert_eq!(
        err("1 AES_CM_128_HMAC_SHA1_80 inline:!!!"),
        SdesError::Base64
    );
    assert!(matches!(
        err("1 AES_CM_128_HMAC_SHA1_80 inline:AQID"),
        SdesError::KeyLength { got: 3, want: 30 }
    ));
    assert_eq!(
        err("1 AES_CM_128_HMAC_SHA1_32 inline:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e|2^20|1:4"),
        SdesError::Mki
    );
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
    let master = MasterKey::new(Suite::AesCm128HmacSha1_80, &[1; 16], &[2; 14]).expect("key");
    let mut s = SrtpStream::new(&master);
    let mut out = Vec::new();
    for bad in [
        &[][..],
        &[0x80; 11][..],
        &[0x40; 40][..],                                                // version 1
        &[0x8f; 30][..],                                                // 15 CSRCs claimed
        &[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff][..], // extension past the end
    ] {
        assert_eq!(s.unprotect(bad, &mut out), Err(SrtpError::TooShort));
    }
    // Well formed, but the tag is not the key's: counted, nothing written.
    out.extend_from_slice(b"untouched");
    assert_eq!(
        s.unprotect(&[0x80; 40], &mut out),
        Err(SrtpError::Authentication)
    );
    assert_eq!(out, b"untouched");
    assert_eq!(s.counters.auth_failures, 1);
}

mod capture;
