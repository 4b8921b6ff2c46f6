//! Against libsrtp2: tests/captures/srtp/ was protected by Cisco's libsrtp2 (pylibsrtp, see
//! make.py there), with the SDES keys its SDP carries. Every packet must authenticate and
//! decrypt to G.711 A-law of the tone under it, in every suite; a stream joined past a ROC wrap
//! too; with two keys, each packet's MKI picks its key; SRTCP sender reports open to RTCP.

use super::super::*;
use std::path::PathBuf;

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/captures/srtp")
        .join(name)
}

/// The UDP payloads of a capture (Ethernet, IPv4, UDP as make.py writes them) from `port`.
fn udp_from(name: &str, port: u16) -> Vec<Vec<u8>> {
    let mut reader = earshot_wire::CaptureReader::open(&capture(name)).expect("the capture");
    let mut out = Vec::new();
    while let Some(frame) = reader.next_frame() {
        let data = frame.expect("a frame").data;
        let ipv4_udp = data.len() > 42 && data[12..14] == [8, 0] && data[23] == 17;
        if ipv4_udp && u16::from_be_bytes([data[34], data[35]]) == port {
            out.push(data[42..].to_vec());
        }
    }
    out
}

/// ITU-T G.711 A-law to linear (the decoder's definition, for this test only).
fn alaw(a: u8) -> i16 {
    let a = a ^ 0x55;
    let (seg, mant) = ((a >> 4) & 7, i16::from(a & 0x0f));
    let mag = if seg == 0 {
        (mant << 4) + 8
    } else {
        ((mant << 4) + 0x108) << (seg - 1)
    };
    if a & 0x80 != 0 {
        mag
    } else {
        -mag
    }
}

/// Zero crossings per second of a signal: the frequency of a clean tone.
fn tone_hz(x: &[i16], rate: f64) -> f64 {
    let crossings = x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (x.len() as f64 / rate)
}

fn caller_key() -> SdesKeys {
    MasterKey::new(
        Suite::AesCm128HmacSha1_80,
        &(1..=16).collect::<Vec<u8>>(),
        &(17..=30).collect::<Vec<u8>>(),
    )
    .expect("the caller's key")
    .into()
}

/// The caller's `a=crypto` line in a capture's INVITE (the first one in the file).
fn caller_line(name: &str) -> SdesKeys {
    let bytes = std::fs::read(capture(name)).expect("the capture");
    let text = String::from_utf8_lossy(&bytes);
    let at = text.find("a=crypto:").expect("an a=crypto line") + "a=crypto:".len();
    let line = text[at..].split("\r\n").next().expect("a line");
    SdesKeys::parse(line).expect("the caller's keys")
}

#[test]
fn libsrtp2s_packets_authenticate_and_decrypt_to_the_tone() {
    let packets = udp_from("sdes_aes_cm_80.pcap", 38010);
    assert_eq!(packets.len(), 200);
    let mut s = SrtpStream::new(&caller_key());
    let (mut out, mut pcm) = (Vec::new(), Vec::new());
    for p in &packets {
        s.unprotect(p, &mut out).expect("authenticates");
        assert_eq!(out.len(), p.len() - 10, "the tag is gone");
        assert_eq!(out[..12], p[..12], "the header is clear");
        pcm.extend(out[12..].iter().map(|&b| alaw(b)));
    }
    assert_eq!(
        s.counters,
        SrtpCounters {
            decrypted: 200,
            auth_failures: 0
        }
    );
    assert_eq!(s.roc(), Some(0));
    let hz = tone_hz(&pcm, 8000.0);
    assert!(
        (hz - 400.0).abs() < 5.0,
        "the caller's 400 Hz tone: {hz:.1} Hz"
    );

    // The callee's key does not open the caller's packets; a flipped bit in a tag fails.
    let callee: SdesKeys = MasterKey::new(
        Suite::AesCm128HmacSha1_80,
        &(101..=116).collect::<Vec<u8>>(),
        &(117..=130).collect::<Vec<u8>>(),
    )
    .expect("the callee's key")
    .into();
    assert_eq!(
        SrtpStream::new(&callee).unprotect(&packets[0], &mut out),
        Err(SrtpError::Authentication)
    );
    let mut corrupted = packets[5].clone();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 1;
    assert_eq!(
        s.unprotect(&corrupted, &mut out),
        Err(SrtpError::Authentication)
    );
    assert_eq!(s.counters.auth_failures, 1);
}

/// late_join.pcap: libsrtp2 protected 70,100 packets of one stream; the capture holds the last
/// 100 (sequence numbers 4,464–4,563 after one wrap, ROC 1). A receiver starting there finds
/// the ROC from the first packet's tag and decrypts every one.
#[test]
fn a_stream_joined_past_a_wrap_finds_its_roc() {
    let packets = udp_from("late_join.pcap", 38010);
    assert_eq!(packets.len(), 100);
    let mut s = SrtpStream::new(&caller_key());
    let mut out = Vec::new();
    for p in &packets {
        s.unprotect(p, &mut out).expect("authenticates");
    }
    assert_eq!(s.roc(), Some(1));
    assert_eq!(s.counters.decrypted, 100);
}

/// The caller's 200 packets of `name` decrypted with the key its SDP gives: every one
/// authenticates, loses its MKI and tag, and the payloads are the 400 Hz tone.
fn decrypts_to_the_tone(name: &str) -> SrtpStream {
    let keys = caller_line(name);
    let packets = udp_from(name, 38010);
    assert_eq!(packets.len(), 200, "{name}");
    let mut s = SrtpStream::new(&keys);
    let (mut out, mut pcm) = (Vec::new(), Vec::new());
    for p in &packets {
        s.unprotect(p, &mut out)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.len(), 12 + 160, "{name}: header and payload only");
        assert_eq!(out[..12], p[..12], "{name}: the header is clear");
        pcm.extend(out[12..].iter().map(|&b| alaw(b)));
    }
    assert_eq!(s.counters.decrypted, 200, "{name}");
    let hz = tone_hz(&pcm, 8000.0);
    assert!((hz - 400.0).abs() < 5.0, "{name}: 400 Hz, not {hz:.1} Hz");
    s
}

/// RFC 6188's AES-256 counter mode and RFC 7714's AES-GCM (both key sizes), as libsrtp2
/// protects them: the key derivation (AES-256's PRF; AES-CM's with GCM's 96-bit salt), the IVs,
/// the tags.
#[test]
fn every_suite_of_libsrtp2_decrypts_to_the_tone() {
    for name in [
        "sdes_aes_256_cm_80.pcap",
        "sdes_aes_256_cm_32.pcap",
        "sdes_aead_aes_128_gcm.pcap",
        "sdes_aead_aes_256_gcm.pcap",
    ] {
        decrypts_to_the_tone(name);
    }
}

/// sdes_mki.pcap: two keys per side, a 4-byte MKI in every packet, the caller moving to its
/// second key at packet 100 (sdes_mki_gcm.pcap: AES-GCM, a 1-byte MKI after the tag, at 120).
/// Each packet opens with the key its MKI names; with the first key alone the packets of the
/// second are refused by MKI; a packet whose MKI is changed to the other key's is refused by
/// its tag.
#[test]
fn each_packets_mki_picks_its_key() {
    for (name, switch) in [("sdes_mki.pcap", 100), ("sdes_mki_gcm.pcap", 120)] {
        decrypts_to_the_tone(name);
        let both = caller_line(name);
        let (mki_len, [first, second]) = (both.mki_len(), both.keys()) else {
            panic!("{name}: two keys")
        };
        let packets = udp_from(name, 38010);
        let mki_at = |p: &[u8]| match both.suite.is_aead() {
            true => p.len() - mki_len..p.len(),
            false => p.len() - 10 - mki_len..p.len() - 10,
        };
        assert!(
            packets[..switch]
                .iter()
                .all(|p| p[mki_at(p)] == *first.mki()),
            "{name}"
        );
        assert!(
            packets[switch..]
                .iter()
                .all(|p| p[mki_at(p)] == *second.mki()),
            "{name}"
        );

        let only_first = SdesKeys::new(both.tag, vec![first.clone()]).expect("one key");
        let mut s = SrtpStream::new(&only_first);
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let want = if i < switch {
                Ok(())
            } else {
                Err(SrtpError::UnknownMki)
            };
            assert_eq!(s.unprotect(p, &mut out), want, "{name}: packet {i}");
        }
        assert_eq!(s.counters.auth_failures, 200 - switch as u64, "{name}");

        let mut s = SrtpStream::new(&both);
        let mut relabelled = packets[0].clone();
        let at = mki_at(&relabelled);
        relabelled[at].copy_from_slice(second.mki());
        assert_eq!(
            s.unprotect(&relabelled, &mut out),
            Err(SrtpError::Authentication)
        );
        assert_eq!(s.unprotect(&packets[0], &mut out), Ok(()));
    }
}

/// late_join_gcm.pcap: late_join.pcap's stream (70,100 packets, the last 100 captured, ROC 1)
/// under AEAD_AES_128_GCM. The first packet's ROC is found by trying candidates against the
/// GCM tag, and every packet decrypts.
#[test]
fn a_gcm_stream_joined_past_a_wrap_finds_its_roc() {
    let keys = caller_line("late_join_gcm.pcap");
    assert_eq!(keys.suite, Suite::AeadAes128Gcm);
    let packets = udp_from("late_join_gcm.pcap", 38010);
    assert_eq!(packets.len(), 100);
    let mut s = SrtpStream::new(&keys);
    let mut out = Vec::new();
    for p in &packets {
        s.unprotect(p, &mut out).expect("authenticates");
    }
    assert_eq!(s.roc(), Some(1));
    assert_eq!(s.counters.decrypted, 100);
}

/// The sender reports of every capture with SRTCP (three a call from the caller, one a second
/// from port 38011) open with the caller's key to RTCP: a sender report of its SSRC with 50,
/// 100, 150 packets sent, then SDES with its CNAME; SRTCP indexes 1, 2, 3. Encrypted SRTCP
/// (AES-CM, GCM, with MKI) and SRTCP sent in the clear but authenticated (UNENCRYPTED_SRTCP:
/// the _32 and AES-256-GCM captures) alike; a flipped bit anywhere is refused, `out` left empty.
#[test]
fn srtcp_sender_reports_open_to_rtcp() {
    for name in [
        "sdes_aes_256_cm_80.pcap",
        "sdes_aes_256_cm_32.pcap",
        "sdes_aead_aes_128_gcm.pcap",
        "sdes_aead_aes_256_gcm.pcap",
        "sdes_mki.pcap",
        "sdes_mki_gcm.pcap",
    ] {
        let mut s = SrtcpStream::new(&caller_line(name));
        let reports = udp_from(name, 38011);
        assert_eq!(reports.len(), 3, "{name}");
        let mut out = Vec::new();
        for (i, p) in reports.iter().enumerate() {
            assert_eq!(
                s.unprotect_rtcp(p, &mut out),
                Ok(i as u32 + 1),
                "{name}: {i}"
            );
            assert_eq!(out.len(), 56, "{name}: sender report and SDES, no trailer");
            assert_eq!(out[..2], [0x80, 200], "{name}: a sender report");
            assert_eq!(out[4..8], 0x7777_AAAAu32.to_be_bytes(), "{name}: its SSRC");
            let sent = u32::from_be_bytes([out[20], out[21], out[22], out[23]]);
            assert_eq!(sent, 50 * (i as u32 + 1), "{name}: packets sent");
            assert_eq!(out[28..30], [0x81, 202], "{name}: then SDES");
            assert_eq!(&out[38..54], b"caller@127.0.0.1", "{name}: its CNAME");
        }
        assert_eq!(s.counters.decrypted, 3);
        for at in [0, 4, 9, 40, reports[0].len() - 1] {
            let mut bad = reports[0].clone();
            bad[at] ^= 0x04;
            out.extend_from_slice(b"stale");
            assert!(
                s.unprotect_rtcp(&bad, &mut out).is_err(),
                "{name}: byte {at}"
            );
            assert!(out.is_empty(), "{name}: nothing to read as RTCP");
        }
        // SRTP keys (labels 0-2) are not SRTCP's (3-5).
        let mut wrong = SrtpStream::new(&caller_line(name));
        assert!(wrong.unprotect(&reports[0], &mut out).is_err(), "{name}");
    }
}

/// `authenticate` is `unprotect` without the keystream: on every capture's caller stream (each
/// suite, MKIs, a late join past a wrap) it accepts and refuses the same packets, finds the
/// same ROC and counts the same; a packet authenticated and then one unprotected decrypt as
/// with `unprotect` alone (the ROC state is the same).
#[test]
fn authenticating_alone_accepts_refuses_and_tracks_the_roc_as_unprotect_does() {
    for name in [
        "sdes_aes_cm_80.pcap",
        "sdes_aes_cm_32.pcap",
        "sdes_aes_256_cm_80.pcap",
        "sdes_aes_256_cm_32.pcap",
        "sdes_aead_aes_128_gcm.pcap",
        "sdes_aead_aes_256_gcm.pcap",
        "sdes_mki.pcap",
        "sdes_mki_gcm.pcap",
        "late_join.pcap",
        "late_join_gcm.pcap",
    ] {
        let keys = caller_line(name);
        let mut packets = udp_from(name, 38010);
        // Corrupted tags (the last byte is the tag's, or the MKI's with GCM and an MKI: both
        // refuse) and a forged first packet.
        for i in [0, 7, 50] {
            let last = packets[i].len() - 1;
            packets[i][last] ^= 0x40;
        }
        let (mut full, mut lazy) = (SrtpStream::new(&keys), SrtpStream::new(&keys));
        let (mut clear, mut scratch, mut mixed_out) = (Vec::new(), Vec::new(), Vec::new());
        let mut mixed = SrtpStream::new(&keys);
        for (i, p) in packets.iter().enumerate() {
            let want = full.unprotect(p, &mut clear);
            assert_eq!(
                lazy.authenticate(p, &mut scratch),
                want,
                "{name}: packet {i}"
            );
            assert_eq!(lazy.roc(), full.roc(), "{name}: packet {i}");
            // Every third packet decrypted, the others only authenticated: the decrypted ones
            // are what `unprotect` alone gives.
            if i % 3 == 0 {
                assert_eq!(mixed.unprotect(p, &mut mixed_out), want, "{name}: {i}");
                assert_eq!(mixed_out, clear, "{name}: packet {i} decrypts the same");
            } else {
                assert_eq!(mixed.authenticate(p, &mut scratch), want, "{name}: {i}");
            }
        }
        assert_eq!(lazy.counters, full.counters, "{name}");
        assert_eq!(mixed.counters, full.counters, "{name}");
        assert_eq!(full.counters.auth_failures, 3, "{name}");
    }
}

/// srtcp_rr.pcap (make.py's `srtcp_receiver_reports`): the callee's receiver reports, which
/// libsrtp2 protected with the callee's key (AES_CM_128_HMAC_SHA1_80, encrypted), open to
/// exactly the clear twin's RTCP, byte for byte, SRTCP indexes 1–4.
#[test]
fn srtcp_receiver_reports_open_to_the_clear_twins_rtcp() {
    let bytes = std::fs::read(capture("srtcp_rr.pcap")).expect("the capture");
    let text = String::from_utf8_lossy(&bytes);
    // The answer's a=crypto line: the second in the file.
    let line = text
        .match_indices("a=crypto:")
        .nth(1)
        .map(|(at, _)| &text[at + "a=crypto:".len()..])
        .and_then(|rest| rest.split("\r\n").next())
        .expect("the callee's a=crypto line");
    let mut s = SrtcpStream::new(&SdesKeys::parse(line).expect("the callee's keys"));
    let (secure, clear) = (
        udp_from("srtcp_rr.pcap", 38021),
        udp_from("srtcp_rr_clear.pcap", 38021),
    );
    assert_eq!((secure.len(), clear.len()), (4, 4));
    let mut out = Vec::new();
    for (i, (p, want)) in secure.iter().zip(&clear).enumerate() {
        assert_eq!(p[..8], want[..8], "the first header and SSRC stay clear");
        assert_ne!(p[8..want.len()], want[8..], "the rest is encrypted");
        assert_eq!(s.unprotect_rtcp(p, &mut out), Ok(i as u32 + 1));
        assert_eq!(&out, want, "report {i}");
    }
}
