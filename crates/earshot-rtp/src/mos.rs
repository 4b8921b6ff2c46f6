//! MOS estimate from the ITU-T G.107 E-model, reduced to what a passive probe can know.
//!
//! R = 93.2 − Id − Ie,eff, with
//! * Id (delay impairment) = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3), where d is an assumed
//!   one-way mouth-to-ear delay: a 40 ms baseline (packetisation plus codec look-ahead) plus
//!   twice the jitter, the depth an adaptive jitter buffer would need to absorb it;
//! * Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl + Bpl) (G.107 §7.2 with BurstR = 1, random loss),
//!   Ie and Bpl from G.113 Appendix I for the codec;
//! * MOS = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R), clamped to 1.0–4.5.
//!
//! The mouth-to-ear delay of a real call is not visible to a probe, which is why this is an
//! estimate for ranking and alerting, not a measured listening-quality score.

/// Equipment impairment (Ie) and packet-loss robustness (Bpl) of a codec.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Impairment {
    pub ie: f64,
    pub bpl: f64,
}

/// G.113 Appendix I values by SDP encoding name (case-insensitive), for any name: G.723.1 and
/// iLBC at their usual mode, anything else unknown as G.711-like (Ie 0). Whatever shows a score
/// to people asks [`known_impairment`] first (earshot-core's `Stream::mos_if_known` does).
pub fn codec_impairment(encoding: &str) -> Impairment {
    if let Some(known) = known_impairment(encoding) {
        return known;
    }
    let (ie, bpl) = match encoding.to_ascii_lowercase().as_str() {
        "g723" => (15.0, 16.1),
        "ilbc" => (11.0, 32.0),
        _ => (0.0, 10.0),
    };
    Impairment { ie, bpl }
}

/// G.113 Appendix I values for the codecs earshot decodes, by SDP encoding name
/// (case-insensitive); `None` for any other. Wideband codecs are scored on the narrowband
/// scale with the figures of their closest narrowband relative, so their scores stay
/// comparable with G.711 calls on the same dashboard.
///
/// Codecs that change bit rate by mode have no entry even where G.113 lists one: AMR, AMR-WB,
/// EVS, iLBC and G.723.1 (each mode its own Ie, and the mode may change with every frame), so
/// any figure would be a guess presented as a measurement. Of those, the ones earshot decodes
/// are named by [`mode_dependent`].
pub fn known_impairment(encoding: &str) -> Option<Impairment> {
    let e = encoding.to_ascii_lowercase();
    let (ie, bpl) = match e.as_str() {
        "pcmu" | "pcma" | "g722" | "opus" => (0.0, 25.1),
        "l16" => (0.0, 4.3),
        "g729" | "g729a" => (11.0, 19.0),
        "gsm" => (20.0, 10.0),
        "speex" => (11.0, 20.0),
        "dvi4" | "g721" | "g726-32" | "aal2-g726-32" => (7.0, 10.0),
        "g726-40" | "aal2-g726-40" => (2.0, 10.0),
        "g726-24" | "aal2-g726-24" => (25.0, 10.0),
        "g726-16" | "aal2-g726-16" => (50.0, 10.0),
        _ => return None,
    };
    Some(Impairment { ie, bpl })
}

/// Codecs earshot decodes but does not score, because their impairment depends on the mode
/// (see [`known_impairment`]), by SDP encoding name: AMR and AMR-WB, and G.723.1 (5.3 or 6.3
/// kbit/s, switching by frame) and iLBC (20 or 30 ms), which a build with libavcodec decodes.
/// A build without it names them too: their MOS is unknown for this reason first, and the
/// listener is told separately that the build cannot decode them.
pub fn mode_dependent(encoding: &str) -> bool {
    ["AMR", "AMR-WB", "G723", "iLBC"]
        .iter()
        .any(|n| encoding.eq_ignore_ascii_case(n))
}

/// The transmission rating factor R for a codec, a loss percentage (0–100) and a jitter in ms.
pub fn r_factor(imp: Impairment, loss_percent: f64, jitter_ms: f64) -> f64 {
    let loss = loss_percent.clamp(0.0, 100.0);
    let d = 40.0 + 2.0 * jitter_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ie_eff = imp.ie + (95.0 - imp.ie) * loss / (loss + imp.bpl);
    93.2 - id - ie_eff
}

/// G.107 Annex B mapping from R to a MOS on the 1–4.5 conversational scale.
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 || r.is_nan() {
        return 1.0;
    }
    if r >= 100.0 {
        return 4.5;
    }
    (1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)).clamp(1.0, 4.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mos(codec: &str, loss: f64, jitter: f64) -> f64 {
        mos_from_r(r_factor(codec_impairment(codec), loss, jitter))
    }

    #[test]
    fn clean_g711_is_near_the_top_of_the_scale() {
        let m = mos("PCMU", 0.0, 0.0);
        assert!((4.38..=4.42).contains(&m), "{m}");
    }

    #[test]
    fn loss_jitter_and_codec_lower_the_score() {
        assert!(mos("PCMA", 5.0, 0.0) < mos("PCMA", 1.0, 0.0));
        assert!(mos("PCMA", 0.0, 120.0) < mos("PCMA", 0.0, 5.0));
        assert!(mos("G729", 0.0, 0.0) < mos("PCMA", 0.0, 0.0));
        assert_eq!(mos("PCMA", 100.0, 500.0), 1.0);
    }

    #[test]
    fn codecs_whose_impairment_follows_their_mode_are_named() {
        for name in ["AMR", "amr-wb", "G723", "ilbc", "iLBC"] {
            assert!(mode_dependent(name), "{name}");
        }
        for name in ["EVS", "PCMA", "G729", "opus", ""] {
            assert!(!mode_dependent(name), "{name}");
        }
    }

    #[test]
    fn codecs_earshot_cannot_decode_have_no_known_impairment() {
        for name in [
            "AMR",
            "AMR-WB",
            "EVS",
            "iLBC",
            "G723",
            "codec2",
            "telephone-event",
            "",
        ] {
            assert_eq!(known_impairment(name), None, "{name}");
        }
        for name in [
            "PCMU", "pcma", "G722", "opus", "G729", "GSM", "G726-32", "speex", "L16",
        ] {
            assert!(known_impairment(name).is_some(), "{name}");
        }
    }

    #[test]
    fn r_to_mos_matches_g107_reference_points() {
        // G.107 Annex B: R = 50 → MOS ≈ 2.58, R = 80 → ≈ 4.02, R = 93.2 → ≈ 4.41.
        assert!((mos_from_r(50.0) - 2.58).abs() < 0.01);
        assert!((mos_from_r(80.0) - 4.02).abs() < 0.01);
        assert!((mos_from_r(93.2) - 4.41).abs() < 0.01);
    }
}
