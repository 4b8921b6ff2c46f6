//! What legs of one call through a B2BUA are grouped by: the `[correlation]` section of the
//! sensor's configuration and the `--correlate-*` options of `sensor` and `analyze`.

use anyhow::{anyhow, Result};
use earshot_core::Correlation;
use serde::Deserialize;

/// `[correlation]`: X-CID, X-Call-ID, Session-ID and P-Charging-Vector are always read.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct CorrelationSection {
    /// false: no call is grouped with another.
    pub enabled: Option<bool>,
    /// More headers whose value is the A-leg's Call-ID (VoIPmonitor's `callidmerge_header`).
    pub headers: Option<Vec<String>>,
    /// VoIPmonitor's `callidmerge_secret`: those headers' values are base64 of the A-leg's
    /// Call-ID XORed with this string.
    pub header_secret: Option<String>,
    /// A header and an expression whose first group (else whole match) is a key both legs
    /// carry: `regex_header = "X-Info"`, `regex = "corr=([0-9a-f]+)"`.
    pub regex_header: Option<String>,
    pub regex: Option<String>,
    /// Keys the index holds at most (default 262144).
    pub max_keys: Option<usize>,
}

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

/// The engine's correlation settings from the file's section and the command line.
pub fn build(file: &CorrelationSection, args: &CorrelationArgs) -> Result<Correlation> {
    let mut c = Correlation {
        enabled: file.enabled.unwrap_or(true) && !args.no_correlation,
        headers: file.headers.clone().unwrap_or_default(),
        ..Correlation::default()
    };
    c.headers.extend(args.headers.iter().cloned());
    c.secret = args
        .secret
        .as_ref()
        .or(file.header_secret.as_ref())
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec());
    if let Some(n) = file.max_keys {
        c.max_keys = n;
    }
    let regex = match (&args.regex, &file.regex_header, &file.regex) {
        (Some(spec), _, _) => {
            let (h, re) = spec
                .split_once(':')
                .ok_or_else(|| anyhow!("--correlate-regex {spec:?}: expected HEADER:REGEX"))?;
            Some((h.trim().to_owned(), re.to_owned()))
        }
        (None, Some(h), Some(re)) => Some((h.clone(), re.clone())),
        (None, None, None) => None,
        (None, _, _) => return Err(anyhow!("[correlation] regex_header and regex go together")),
    };
    if let Some((h, re)) = regex {
        c.regex = Some(Correlation::header_regex(&h, &re)?);
    }
    c.validate()?;
    Ok(c)
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
