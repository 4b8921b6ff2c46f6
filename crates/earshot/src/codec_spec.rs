//! `PT=NAME/RATE[/CHANNELS]`: a payload type named by hand, in the rtpmap syntax with `=` after
//! the payload type, for streams no SDP on the wire describes (`extract --codec`, the sensor's
//! `--codec` and `[codecs] payload_types`).

use anyhow::Result;
use earshot_core::PayloadFormat;

/// Parses one spec; `option` names where it came from in the error ("--codec", "[codecs]
/// payload_types").
pub fn parse(option: &str, spec: &str) -> Result<PayloadFormat> {
    let usage = || {
        anyhow::anyhow!(
            "{option} {spec}: expected PT=NAME/RATE[/CHANNELS] as in an SDP rtpmap, e.g. 99=opus/48000/2 or 96=L16/16000"
        )
    };
    let (pt, map) = spec.split_once('=').ok_or_else(usage)?;
    let pt: u8 = pt.trim().parse().map_err(|_| usage())?;
    if pt > 127 {
        return Err(usage());
    }
    let mut parts = map.split('/');
    let name = parts
        .next()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(usage)?;
    let rate: u32 = parts
        .next()
        .and_then(|r| r.trim().parse().ok())
        .filter(|&r| r > 0)
        .ok_or_else(usage)?;
    let channels: u8 = match parts.next() {
        Some(c) => c.trim().parse().ok().filter(|&c| c > 0).ok_or_else(usage)?,
        None => 0,
    };
    if parts.next().is_some() {
        return Err(usage());
    }
    Ok(PayloadFormat {
        pt,
        encoding: name.to_owned(),
        clock_rate: rate,
        channels,
        encrypted: false,
        fmtp: None,
    })
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
