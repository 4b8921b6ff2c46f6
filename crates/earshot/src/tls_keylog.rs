//! `--tls-keylog FILE`: key log files (NSS `SSLKEYLOGFILE` format) read into the engine before a
//! capture is, so SIP over TLS and DTLS-SRTP media in it can be read.

use anyhow::{Context, Result};
use earshot_core::Engine;
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct KeyLogArgs {
    /// A TLS key log (the SSLKEYLOGFILE format curl, browsers, OpenSSL, GnuTLS, Python's ssl
    /// and Wireshark write) with the secrets of the capture's SIP-over-TLS and DTLS-SRTP
    /// sessions. Repeatable.
    #[arg(long = "tls-keylog", id = "tls_keylog", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

impl KeyLogArgs {
    /// Reads every file whole into the engine's key log; says on stderr what was skipped.
    pub fn load_into(&self, engine: &mut Engine) -> Result<()> {
        for path in &self.files {
            let bytes = std::fs::read(path).with_context(|| {
                format!(
                    "cannot read the TLS key log {}: check the path and that this user may read it",
                    path.display()
                )
            })?;
            let log = engine.key_log_mut();
            let before = log.stats();
            log.feed(&bytes);
            log.finish();
            let after = log.stats();
            if after.secrets == before.secrets {
                eprintln!(
                    "earshot: {}: no secrets in this key log (expected lines like `CLIENT_RANDOM <hex> <hex>`)",
                    path.display()
                );
            }
            let malformed = after.malformed - before.malformed;
            if malformed > 0 {
                eprintln!(
                    "earshot: {}: skipped {malformed} malformed line(s)",
                    path.display()
                );
            }
        }
        Ok(())
    }
}
