//! `a=crypto` values (RFC 4568 §9.1): keys, lifetimes, MKIs, session parameters.

use super::super::*;

/// Bytes 1–30 (an AES-128 counter-mode key and salt), base64.
const KEY_1_30: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e";
/// Bytes 31–60.
const KEY_31_60: &str = "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8";

fn err(v: &str) -> SdesError {
    SdesKeys::parse(v).expect_err(v)
}

#[test]
fn sdes_attributes_give_the_key_or_say_why_not() {
    let k = SdesKeys::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_1_30}|2^31"))
        .expect("a key");
    assert_eq!(
        (k.tag, k.suite, k.mki_len()),
        (1, Suite::AesCm128HmacSha1_80, 0)
    );
    let [key] = k.keys() else {
        panic!("one key: {k:?}")
    };
    assert_eq!(key.key(), (1..=16).collect::<Vec<u8>>());
    assert_eq!(key.salt(), (17..=30).collect::<Vec<u8>>());
    assert_eq!(key.lifetime(), Some(1 << 31));
    assert!(!format!("{k:?}").contains("inline"), "no key in Debug");
    assert!(!format!("{k:?}").contains("[1, 2, 3"), "no key in Debug");

    assert_eq!(err("1 AES_CM_128_HMAC_SHA1_80"), SdesError::Syntax);
    assert_eq!(
        err(&format!("x AES_CM_128_HMAC_SHA1_80 inline:{KEY_1_30}")),
        SdesError::Syntax,
        "the tag is a number"
    );
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
}

/// Every suite's name and its key and salt lengths: RFC 7714's AES-GCM takes a 96-bit salt.
#[test]
fn each_suite_takes_its_key_and_salt_lengths() {
    use base64::Engine as _;
    for (name, key_salt) in [
        ("AES_CM_128_HMAC_SHA1_80", 30),
        ("AES_CM_128_HMAC_SHA1_32", 30),
        ("AES_256_CM_HMAC_SHA1_80", 46),
        ("AES_256_CM_HMAC_SHA1_32", 46),
        ("AEAD_AES_128_GCM", 28),
        ("AEAD_AES_256_GCM", 44),
    ] {
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        let k = SdesKeys::parse(&format!("3 {name} inline:{}", b64(key_salt))).expect(name);
        assert_eq!(k.suite.name(), name);
        assert_eq!(k.suite.key_len() + k.suite.salt_len(), key_salt, "{name}");
        assert_eq!(
            err(&format!("3 {name} inline:{}", b64(key_salt + 2))),
            SdesError::KeyLength {
                got: key_salt + 2,
                want: key_salt
            }
        );
    }
}

/// RFC 4568's `inline:KEY|LIFETIME|MKI:LENGTH`, several key parameters separated by `;`: each
/// key with its MKI (the decimal value as LENGTH big-endian bytes) and lifetime.
#[test]
fn several_keys_each_with_its_mki_and_lifetime() {
    let k = SdesKeys::parse(&format!(
        "7 AES_CM_128_HMAC_SHA1_32 inline:{KEY_1_30}|2^20|1:4;inline:{KEY_31_60}|1048576|258:4"
    ))
    .expect("two keys");
    assert_eq!((k.tag, k.mki_len()), (7, 4));
    let [first, second] = k.keys() else {
        panic!("two keys: {k:?}")
    };
    assert_eq!(first.mki(), [0, 0, 0, 1]);
    assert_eq!(second.mki(), [0, 0, 1, 2]);
    assert_eq!(first.lifetime(), Some(1 << 20));
    assert_eq!(second.lifetime(), Some(1_048_576));
    assert_eq!(second.key(), (31..=46).collect::<Vec<u8>>());
    // An MKI without a lifetime; a long one (RFC 4568: up to 128 bytes).
    let k =
        SdesKeys::parse("1 AEAD_AES_128_GCM inline:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHA==|5:1")
            .expect("an MKI alone");
    assert_eq!(k.keys()[0].mki(), [5]);
    let long = SdesKeys::parse(&format!(
        "1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_1_30}|18446744073709551617:128"
    ))
    .expect("a 128-byte MKI");
    let mki = long.keys()[0].mki();
    assert_eq!(mki.len(), 128);
    assert_eq!(mki[119..], [1, 0, 0, 0, 0, 0, 0, 0, 1], "2^64 + 1");
    assert!(mki[..119].iter().all(|&b| b == 0));
}

#[test]
fn mkis_and_lifetimes_are_checked() {
    let line = |params: &str| format!("1 AES_CM_128_HMAC_SHA1_80 {params}");
    let one = |tail: &str| line(&format!("inline:{KEY_1_30}{tail}"));
    // Two keys need MKIs, of one length.
    assert_eq!(
        err(&line(&format!("inline:{KEY_1_30};inline:{KEY_31_60}"))),
        SdesError::MkiNeeded
    );
    assert_eq!(
        err(&line(&format!(
            "inline:{KEY_1_30}|1:4;inline:{KEY_31_60}|2:2"
        ))),
        SdesError::MkiNeeded
    );
    assert_eq!(
        err(&line(&format!("inline:{KEY_1_30}|1:4;inline:{KEY_31_60}"))),
        SdesError::MkiNeeded
    );
    for bad in [
        "|256:1", "|1:0", "|1:129", "|:4", "|x:4", "|1:", "|-1:4", "|1:4:4",
    ] {
        assert!(matches!(err(&one(bad)), SdesError::Mki(_)), "{bad}");
    }
    assert!(
        matches!(
            err(&one(&format!("|{}:2", "0".repeat(100)))),
            SdesError::Mki(_)
        ),
        "a value far longer than its length holds"
    );
    for bad in ["|2^64", "|2^", "|^20", "|20x", "|99999999999999999999999"] {
        assert!(matches!(err(&one(bad)), SdesError::Lifetime(_)), "{bad}");
    }
    // RFC 4568's order is lifetime then MKI, each at most once.
    for bad in ["|1:4|2^20", "|2^20|2^20", "|1:4|2:4", "|2^20|1:4|", "|"] {
        assert!(
            matches!(err(&one(bad)), SdesError::Syntax | SdesError::Lifetime(_)),
            "{bad}"
        );
    }
    let many = vec![format!("inline:{KEY_1_30}|1:1"); MAX_KEYS + 1].join(";");
    assert_eq!(err(&line(&many)), SdesError::TooManyKeys);
    let most = (0..MAX_KEYS)
        .map(|i| format!("inline:{KEY_1_30}|{i}:1"))
        .collect::<Vec<_>>()
        .join(";");
    assert_eq!(
        SdesKeys::parse(&line(&most)).map(|k| k.keys().len()),
        Ok(MAX_KEYS)
    );
}

/// Session parameters that would make the receiver decrypt clear payloads (noise) or trust
/// untagged packets leave the media encrypted; the harmless ones are accepted.
#[test]
fn session_parameters_that_change_the_packets_are_refused() {
    let with = |p: &str| format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_1_30} {p}");
    for p in [
        "UNENCRYPTED_SRTP",
        "UNAUTHENTICATED_SRTP",
        "KDR=20",
        "KDR=1",
    ] {
        assert_eq!(err(&with(p)), SdesError::SessionParameter(p.into()), "{p}");
    }
    for p in [
        "UNENCRYPTED_SRTCP",
        "KDR=0",
        "WSH=128",
        "FEC_ORDER=FEC_SRTP",
        "X-FOO",
    ] {
        assert!(SdesKeys::parse(&with(p)).is_ok(), "{p}");
    }
    assert!(SdesKeys::parse(&with("UNENCRYPTED_SRTCP WSH=64")).is_ok());
}
