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
