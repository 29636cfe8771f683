//! TLS as a client (to an external MQTT broker, to PostgreSQL): the certificate authorities
//! trusted are a CA file's, or the system's when none is named.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error("cannot read the CA file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the CA file {0} holds no certificate")]
    Empty(String),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS settings of a client trusting `ca_file`'s certificates (PEM), or the system's
/// certificate authorities when `ca_file` is empty.
pub fn config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, ClientTlsError> {
    let mut roots = rustls::RootCertStore::empty();
    if ca_file.as_os_str().is_empty() {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    } else {
        let path = ca_file.display().to_string();
        let pem =
            std::fs::read(ca_file).map_err(|source| ClientTlsError::Read { path: path.clone(), source })?;
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            roots.add(cert)?;
        }
    }
    if roots.is_empty() {
        return Err(ClientTlsError::Empty(ca_file.display().to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}
