//! What legs of one call through a B2BUA are grouped by: the `[correlation]` section of the
//! sensor's configuration and the `--correlate-*` options of `sensor` and `analyze`.

use anyhow::Result;
use earshot_core::Correlation;
use earshot_sensor::config::CorrelationOverrides;

pub use earshot_sensor::config::CorrelationSection;

/// The same on the command line (added to the file's settings).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct CorrelationArgs {
    /// A header whose value is the A-leg's Call-ID, in addition to X-CID and X-Call-ID, like
    /// VoIPmonitor's callidmerge_header (repeatable). [correlation] headers.
    #[arg(long = "correlate-header", value_name = "NAME")]
    pub headers: Vec<String>,
    /// The --correlate-header values are base64 of the Call-ID XORed with SECRET
    /// (VoIPmonitor's callidmerge_secret). [correlation] header_secret.
    #[arg(long = "correlate-secret", value_name = "SECRET")]
    pub secret: Option<String>,
    /// HEADER:REGEX: the expression's first group (else its match) in HEADER's value is a key
    /// legs of one call share. [correlation] regex_header, regex.
    #[arg(long = "correlate-regex", value_name = "HEADER:REGEX")]
    pub regex: Option<String>,
    /// Group no calls (A/B legs stay separate calls). [correlation] enabled = false.
    #[arg(long)]
    pub no_correlation: bool,
}

impl CorrelationArgs {
    /// The options as the sensor's configuration takes them.
    pub fn overrides(&self) -> CorrelationOverrides {
        CorrelationOverrides {
            headers: self.headers.clone(),
            secret: self.secret.clone(),
            regex: self.regex.clone(),
            no_correlation: self.no_correlation,
        }
    }
}

/// The engine's correlation settings from the file's section and the command line (the rules
/// are `earshot_sensor::config::correlation`, shared with the sensor).
pub fn build(file: &CorrelationSection, args: &CorrelationArgs) -> Result<Correlation> {
    Ok(earshot_sensor::config::correlation(
        file,
        &args.overrides(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_flags_merge() {
        let file: CorrelationSection = toml::from_str(
            "headers = [\"X-Orig\"]\nregex_header = \"X-Info\"\nregex = \"c=(\\\\w+)\"",
        )
        .expect("parses");
        let args = CorrelationArgs {
            headers: vec!["X-Other".into()],
            ..CorrelationArgs::default()
        };
        let c = build(&file, &args).expect("valid");
        assert_eq!(c.headers, ["X-Orig", "X-Other"]);
        assert_eq!(c.regex.as_ref().map(|r| r.header.as_str()), Some("X-Info"));
        assert!(c.enabled);
        let bad = CorrelationArgs {
            regex: Some("X-Info:(".into()),
            ..CorrelationArgs::default()
        };
        assert!(build(&CorrelationSection::default(), &bad).is_err());
        let half: CorrelationSection = toml::from_str("regex = \"x\"").expect("parses");
        assert!(build(&half, &CorrelationArgs::default()).is_err());
    }
}
