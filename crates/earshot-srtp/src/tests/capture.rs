//! Against libsrtp2: tests/captures/srtp/ was protected by Cisco's libsrtp2 (pylibsrtp, see
//! make.py there), with the SDES keys its SDP carries. Every packet must authenticate and
//! decrypt to G.711 A-law of the tone under it; a stream joined past a ROC wrap too.

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

fn caller_key() -> MasterKey {
    MasterKey::new(
        Suite::AesCm128HmacSha1_80,
        &(1..=16).collect::<Vec<u8>>(),
        &(17..=30).collect::<Vec<u8>>(),
    )
    .expect("the caller's key")
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
    let callee = MasterKey::new(
        Suite::AesCm128HmacSha1_80,
        &(101..=116).collect::<Vec<u8>>(),
        &(117..=130).collect::<Vec<u8>>(),
    )
    .expect("the callee's key");
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
