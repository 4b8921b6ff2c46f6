//! Decodes RTP streams from the public captures and compares them with
//! independent reference decodes (Wireshark, GStreamer). See
//! /work/shared/pcaps/CATALOGUE.md for the captures and references.

mod common;

use common::*;
use earshot_audio::{decoder_for, decoder_with, Codec, DecoderOptions, G726Order};
use std::path::Path;

/// Decodes every payload of the stream with PT `pt` back to back, as
/// Wireshark does for its references (no fill for lost packets).
fn decode_stream(pcap: &Path, id: &StreamId, codec: &Codec, pt: u8) -> Vec<i16> {
    let mut dec = decoder_for(codec).expect("decoder");
    let mut pcm = Vec::new();
    for pkt in rtp_stream(pcap, id).iter().filter(|p| p.pt == pt) {
        dec.decode(&pkt.payload, &mut pcm)
            .unwrap_or_else(|e| panic!("{id:?} seq {}: {e}", pkt.seq));
    }
    pcm
}

fn assert_bit_exact(name: &str, reference: &[i16], decoded: &[i16]) {
    assert_eq!(
        decoded.len(),
        reference.len(),
        "{name}: decoded {} samples, reference has {}",
        decoded.len(),
        reference.len()
    );
    if let Some(i) = decoded.iter().zip(reference).position(|(a, b)| a != b) {
        panic!(
            "{name}: first difference at sample {i}: decoded {} reference {} (SNR {:.1} dB)",
            decoded[i],
            reference[i],
            snr_db(reference, decoded)
        );
    }
}

/// G.711 streams: the codec follows from the static PT in the stream.
fn check_g711_capture(capture: &str) {
    let Some(shared) = shared_dir() else { return };
    let pcap = capture_path(&shared, capture);
    let refs = references(&shared, capture);
    assert!(!refs.is_empty(), "no references for {capture}");
    for (wav_path, id) in refs {
        let wav = read_wav(&wav_path);
        let packets = rtp_stream(&pcap, &id);
        let pt = packets
            .iter()
            .map(|p| p.pt)
            .find(|pt| *pt == 0 || *pt == 8)
            .unwrap_or_else(|| panic!("{id:?}: no G.711 packets"));
        let codec = Codec::from_static_pt(pt).unwrap();
        let decoded = decode_stream(&pcap, &id, &codec, pt);
        let name = wav_path.file_name().unwrap().to_string_lossy();
        assert_bit_exact(&name, &wav.samples, &decoded);
    }
}

#[test]
fn g711_sip_rtp_g711() {
    check_g711_capture("sip-rtp-g711");
}

#[test]
fn g711_sip_dtmf2() {
    check_g711_capture("SIP_DTMF2");
}

#[test]
fn g711_magicjack() {
    check_g711_capture("MagicJack-_short_call");
}

#[test]
fn g711_asterisk_zfone_xlite() {
    check_g711_capture("Asterisk_ZFONE_XLITE");
}

#[test]
fn g711_rtp_rtcp_sip_ipv4_udp() {
    check_g711_capture("rtp_rtcp_sip_ipv4_udp");
}

#[test]
fn g711_aaa() {
    check_g711_capture("aaa");
}

#[test]
fn g722_bit_exact() {
    let Some(shared) = shared_dir() else { return };
    let pcap = capture_path(&shared, "sip-rtp-g722");
    for (wav_path, id) in references(&shared, "sip-rtp-g722") {
        let wav = read_wav(&wav_path);
        assert_eq!(wav.rate, 16000);
        let decoded = decode_stream(&pcap, &id, &Codec::G722, 9);
        assert_bit_exact(&wav_path.to_string_lossy(), &wav.samples, &decoded);
    }
}

/// Which sender port carries which G.726 variant, read from the 200 OK SDP
/// answers of sip-rtp-g726.pcap:
/// `tshark -r sip-rtp-g726.pcap -Y sdp -T fields -e ip.src -e sip.Status-Code
///  -e sdp.media.port -e sdp.media_attr` (all streams use dynamic PT 99).
const G726_STREAMS: [(u16, u8, bool); 8] = [
    (26326, 2, false), // G726-16
    (28354, 3, false), // G726-24
    (18180, 4, false), // G726-32
    (31690, 5, false), // G726-40
    (22606, 2, true),  // AAL2-G726-16
    (23040, 3, true),  // AAL2-G726-24
    (27442, 4, true),  // AAL2-G726-32
    (16984, 5, true),  // AAL2-G726-40
];

#[test]
fn g726_all_rates_both_bit_orders_bit_exact() {
    let Some(shared) = shared_dir() else { return };
    let pcap = capture_path(&shared, "sip-rtp-g726");
    let refs = references(&shared, "sip-rtp-g726");
    assert_eq!(refs.len(), 8);
    for (wav_path, id) in refs {
        let &(_, bits, aal2) = G726_STREAMS
            .iter()
            .find(|(port, _, _)| *port == id.sport)
            .unwrap_or_else(|| panic!("no SDP mapping for {id:?}"));
        let codec = Codec::G726 { bits, aal2 };
        let wav = read_wav(&wav_path);
        let decoded = decode_stream(&pcap, &id, &codec, 99);
        assert_bit_exact(&format!("{codec}"), &wav.samples, &decoded);
    }
}

/// The AAL2-ordered streams of sip-rtp-g726.pcap, decoded as if their SDP had said the RFC 3551
/// name (as baresip and many devices do): with the default `auto` order the bit order is
/// detected at 16, 24 and 40 kbit/s and the audio matches Wireshark's AAL2 decode (bit-exact
/// after the first second; overall SNR far above the wrong order's); at 32 kbit/s only the
/// forced `aal2` order (the option) gets it right. Forced `rfc3551` gives the wrong-order
/// noise; forced `aal2` is bit-exact. And the RFC-ordered streams stay
/// bit-exact under `auto` and under forced `rfc3551`.
#[test]
fn g726_aal2_order_under_the_rfc_name_is_detected() {
    let Some(shared) = shared_dir() else { return };
    let pcap = capture_path(&shared, "sip-rtp-g726");
    for (wav_path, id) in references(&shared, "sip-rtp-g726") {
        let &(_, bits, aal2) = G726_STREAMS
            .iter()
            .find(|(port, _, _)| *port == id.sport)
            .unwrap_or_else(|| panic!("no SDP mapping for {id:?}"));
        let wav = read_wav(&wav_path);
        let named_rfc = Codec::G726 { bits, aal2: false };
        let decode = |order: G726Order| {
            let mut dec = decoder_with(&named_rfc, &DecoderOptions { g726_order: order }).unwrap();
            let mut pcm = Vec::new();
            for pkt in rtp_stream(&pcap, &id).iter().filter(|p| p.pt == 99) {
                dec.decode(&pkt.payload, &mut pcm).unwrap();
            }
            pcm
        };
        let auto = decode(G726Order::Auto);
        let forced = if aal2 {
            G726Order::Aal2
        } else {
            G726Order::Rfc3551
        };
        if aal2 && bits == 4 {
            // At 32 kbit/s the two orders only swap the nibbles of each octet and decode to
            // audio too alike to tell apart: auto keeps the named order, the option forces it.
            assert_eq!(
                auto,
                decode(G726Order::Rfc3551),
                "G726-32 keeps the named order"
            );
            assert_bit_exact("AAL2 G726-32 forced", &wav.samples, &decode(forced));
            continue;
        }
        let name = format!(
            "{}G726-{} sent as G726-{}",
            if aal2 { "AAL2-" } else { "" },
            bits * 8,
            bits * 8
        );
        assert_eq!(auto.len(), wav.samples.len(), "{name}");
        // After the first second the detector has decided: from there on, bit-exact.
        assert_bit_exact(&name, &wav.samples[8000..], &auto[8000..]);
        let snr = snr_db(&wav.samples, &auto);
        eprintln!("{name}: auto SNR {snr:.1} dB");
        assert_bit_exact(&name, &wav.samples, &decode(forced));
        if aal2 {
            let wrong = snr_db(&wav.samples, &decode(G726Order::Rfc3551));
            eprintln!("{name}: read in RFC 3551 order, SNR {wrong:.1} dB");
            assert!(
                wrong < 3.0,
                "{name}: the wrong order must not pass for right ({wrong:.1} dB)"
            );
            assert!(
                snr > wrong + 10.0,
                "{name}: auto {snr:.1} dB, wrong order {wrong:.1} dB"
            );
        } else {
            assert_bit_exact(&name, &wav.samples, &auto);
        }
    }
}

/// Largest lead-in offset searched when a reference decoder starts its output
/// a few samples early or late.
const MAX_LAG: usize = 400;

#[test]
fn gsm_matches_libgsm_reference() {
    let Some(shared) = shared_dir() else { return };
    let pcap = capture_path(&shared, "sip-rtp-gsm");
    for (wav_path, id) in references(&shared, "sip-rtp-gsm") {
        let wav = read_wav(&wav_path);
        let decoded = decode_stream(&pcap, &id, &Codec::Gsm, 3);
        let (lag, snr) = best_alignment(&wav.samples, &decoded, MAX_LAG);
        eprintln!("GSM: lag {lag}, SNR {snr:.1} dB");
        let (r, d) = aligned(&wav.samples, &decoded, lag);
        let n = r.len().min(d.len());
        assert!(n + MAX_LAG >= wav.samples.len(), "too little overlap");
        assert_bit_exact("GSM", &r[..n], &d[..n]);
    }
}

#[cfg(feature = "g729")]
#[test]
fn g729_snr_against_bcg729_reference() {
    let Some(shared) = shared_dir() else { return };
    let pcap = capture_path(&shared, "sip-rtp-g729a");
    for (wav_path, id) in references(&shared, "sip-rtp-g729a") {
        let wav = read_wav(&wav_path);
        let decoded = decode_stream(&pcap, &id, &Codec::G729, 18);
        assert_eq!(decoded.len(), wav.samples.len());
        let snr = snr_db(&wav.samples, &decoded);
        eprintln!("G.729: SNR {snr:.1} dB");
        assert!(snr >= 20.0, "G.729 SNR {snr:.1} dB < 20 dB");
    }
}

#[test]
fn opus_snr_against_libopus_reference() {
    let Some(shared) = shared_dir() else { return };
    let pcap = capture_path(&shared, "sip-rtp-opus");
    for (wav_path, id) in references(&shared, "sip-rtp-opus") {
        let wav = read_wav(&wav_path);
        // The GStreamer reference is 48 kHz stereo; decode to the same.
        assert_eq!((wav.rate, wav.channels), (48000, 2));
        let codec = Codec::Opus { channels: 2 };
        let decoded = decode_stream(&pcap, &id, &codec, 99);
        let (lag, snr) = best_alignment(&wav.samples, &decoded, 2 * MAX_LAG);
        eprintln!(
            "Opus: {} vs {} samples, lag {lag}, SNR {snr:.1} dB",
            decoded.len(),
            wav.samples.len()
        );
        assert!(snr >= 30.0, "Opus SNR {snr:.1} dB < 30 dB");
    }
}

fn aligned<'a>(reference: &'a [i16], test: &'a [i16], lag: isize) -> (&'a [i16], &'a [i16]) {
    if lag >= 0 {
        (reference, test.get(lag as usize..).unwrap_or_default())
    } else {
        (reference.get((-lag) as usize..).unwrap_or_default(), test)
    }
}

/// sip-rtp-dvi4 has no reference decode, but its DVI4/8000 call plays the
/// same prompt as the PCMU call of sip-rtp-g711. A wrong nibble order still
/// gives speech-like audio (correlation ~0.67), the right one ~0.995.
#[test]
fn dvi4_matches_the_same_prompt_sent_as_g711() {
    let Some(shared) = shared_dir() else { return };
    let g711 = read_wav(&shared.join(
        "pcaps/reference/sip-rtp-g711/10.0.2.15_27942_10.0.2.20_6000_0x343DA99B.wireshark.wav",
    ));
    let pcap = capture_path(&shared, "sip-rtp-dvi4");
    let (id, _) = stream_ids(&pcap)
        .into_iter()
        .find(|(_, pt)| *pt == 5)
        .expect("DVI4/8000 stream");
    let decoded = decode_stream(&pcap, &id, &Codec::Dvi4 { rate: 8000 }, 5);
    assert_eq!(decoded.len(), g711.samples.len());
    let corr = correlation(&g711.samples, &decoded);
    assert!(corr > 0.98, "correlation with the G.711 prompt {corr:.3}");
}

fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1.0)
}
