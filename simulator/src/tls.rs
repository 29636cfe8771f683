//! MQTT over TLS: a client configuration trusting exactly the given CA certificate(s), such as
//! the `cert.pem` of `server tls self-signed`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub fn client_config(ca: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let read = || format!("cannot read a PEM certificate from {}", ca.display());
    for cert in CertificateDer::pem_file_iter(ca).with_context(read)? {
        roots.add(cert.with_context(read)?).with_context(read)?;
    }
    if roots.is_empty() {
        anyhow::bail!("no certificate in {}", ca.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
