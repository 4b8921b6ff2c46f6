//! `PT=NAME/RATE[/CHANNELS]`: a payload type named by hand, in the rtpmap syntax with `=` after
//! the payload type, for streams no SDP on the wire describes (`extract --codec`, the sensor's
//! `--codec` and `[codecs] payload_types`).

use anyhow::Result;
use earshot_core::PayloadFormat;

/// Parses one spec; `option` names where it came from in the error ("--codec", "[codecs]
/// payload_types"). The rules are the sensor configuration's, so `extract` and the sensor agree.
pub fn parse(option: &str, spec: &str) -> Result<PayloadFormat> {
    Ok(earshot_sensor::config::payload_format(option, spec)?)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn specs_as_in_an_rtpmap() {
        let f = parse("--codec", "99=opus/48000/2").unwrap();
        assert_eq!(
            (f.pt, f.encoding.as_str(), f.clock_rate, f.channels),
            (99, "opus", 48000, 2)
        );
        assert_eq!(parse("--codec", "96=L16/16000").unwrap().channels, 0);
        for bad in [
            "",
            "96",
            "96=",
            "96=/8000",
            "96=AMR",
            "96=AMR/0",
            "200=AMR/8000",
            "96=AMR/8000/1/2",
        ] {
            let e = parse("--codec", bad).unwrap_err().to_string();
            assert!(e.contains("PT=NAME/RATE"), "{bad}: {e}");
        }
    }
}
