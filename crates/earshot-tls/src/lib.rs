//! TLS for the Manager API from PEM files: the sensor's server side, and the client side the
//! player and the CLI trust a sensor with (rustls with the `ring` provider, so it builds from
//! source with the Rust toolchain alone). A crate of its own so that the player, which talks
//! to sensors, does not depend on the sensor and through it on the engine and the codecs.

#![warn(missing_docs, unreachable_pub)]

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Why a TLS configuration could not be built from its files; the messages name the file so
/// that a misconfigured sensor or player says which path to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate file could not be read or is not valid PEM.
    #[error("cannot read the TLS certificate {path}: {reason}")]
    Certificate {
        /// The file as configured.
        path: String,
        /// What the PEM reader reported (I/O error or malformed block).
        reason: String,
    },
    /// The private key file could not be read, or holds no key in a format rustls takes.
    #[error("cannot read the TLS private key {path}: {reason} (a PEM file with one PKCS#8, PKCS#1 or SEC1 key)")]
    Key {
        /// The file as configured.
        path: String,
        /// What the PEM reader reported.
        reason: String,
    },
    /// A certificate file was read but held no `CERTIFICATE` block.
    #[error("{path} holds no certificate: expected PEM blocks `-----BEGIN CERTIFICATE-----`")]
    NoCertificate {
        /// The file as configured.
        path: String,
    },
    /// rustls refused the result: the key does not match the leaf certificate, a CA
    /// certificate is unusable as a trust anchor, or no protocol version is available.
    #[error("the TLS certificate and key do not fit together: {0}")]
    Config(String),
}

/// Every certificate of a PEM file; an error when there is none.
fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Certificate {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

/// Builds the server side from PEM files: the certificate chain (leaf first) and its key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = load_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Builds a client that trusts the certificates in `ca` (a CA, or the server's own
/// self-signed certificate), for `earshot calls`/`listen` and the player.
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(ca)? {
        roots.add(c).map_err(|e| TlsError::Config(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
