//! HTTPS and MQTT over TLS: the certificate and key named in `[tls]`, read once at start-up
//! (a bad file stops the server with its name), and the HTTPS listener; [`self_signed`] makes
//! the pair `server tls self-signed` writes for trying it out; [`client`]: TLS as a client (to
//! an external broker, to PostgreSQL).

pub mod client;
pub mod self_signed;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{InvalidMessage, ServerConfig};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::info;

use crate::log_limit::LogLimit;

/// Longest a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, server certificate first; empty: no TLS.
    pub cert: PathBuf,
    /// PEM private key of that certificate; empty: no TLS.
    pub key: PathBuf,
}

impl TlsConfig {
    /// The certificate and key files, when both are set.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        let set = |p: &PathBuf| !p.as_os_str().is_empty();
        (set(&self.cert) && set(&self.key)).then_some((self.cert.as_path(), self.key.as_path()))
    }

    /// Whether only one of the two is set (a mistake).
    pub fn half_set(&self) -> bool {
        self.cert.as_os_str().is_empty() != self.key.as_os_str().is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {}: {source}", path.display())]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the TLS {what} {} holds no PEM {expected}: {message}", path.display())]
    Pem { what: &'static str, path: PathBuf, expected: &'static str, message: String },
    #[error("the TLS certificate {} and key {} do not make a pair: {source}", cert.display(), key.display())]
    Pair { cert: PathBuf, key: PathBuf, source: rustls::Error },
    #[error("{} already exists: remove it or choose another folder", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.to_owned(), source })
}

/// The rustls configuration for `cert` and `key` (ring provider), or why they cannot serve.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let pem_error = |what, path: &Path, expected, message: String| TlsError::Pem {
        what,
        path: path.to_owned(),
        expected,
        message,
    };
    let chain = CertificateDer::pem_slice_iter(&read("certificate", cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate", cert, "CERTIFICATE", e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error("certificate", cert, "CERTIFICATE", "none found".into()));
    }
    let private_key = PrivateKeyDer::from_pem_slice(&read("key", key)?)
        .map_err(|e| pem_error("key", key, "PRIVATE KEY", e.to_string()))?;
    let pair = |source| TlsError::Pair { cert: cert.to_owned(), key: key.to_owned(), source };
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(pair)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(pair)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The HTTPS listener: TCP connections that completed a TLS handshake. Handshakes run side by
/// side, so a slow or silent client holds up nobody; one that fails (plain HTTP, an untrusted
/// certificate) is logged (a few lines a minute, [`LogLimit`]) and closed.
pub struct HttpsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
    log: Arc<LogLimit>,
}

impl HttpsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> HttpsListener {
        let log = Arc::default();
        HttpsListener { tcp, acceptor: TlsAcceptor::from(config), handshakes: JoinSet::new(), log }
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // Both branches are cancel-safe: a handshake under way stays in the set.
            tokio::select! {
                (mut tcp, addr) = axum::serve::Listener::accept(&mut self.tcp) => {
                    crate::tcp::no_delay(&mut tcp);
                    self.handshakes.spawn(handshake(self.acceptor.clone(), tcp, addr, self.log.clone()));
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// One client's TLS handshake; `None` (logged) when it fails or takes too long.
async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
    log: Arc<LogLimit>,
) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
    let logged = || log.check("TLS handshake failed", &addr.ip().to_string(), Instant::now()).is_some();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some((tls, addr)),
        Ok(Err(e)) => {
            let plain = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()).is_some_and(|e| {
                matches!(e, rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType))
            });
            let hint = if plain { " (plain HTTP? This port speaks HTTPS only)" } else { "" };
            if logged() {
                info!(%addr, "TLS handshake failed: {e}{hint}");
            }
            None
        }
        Err(_) => {
            if logged() {
                info!(%addr, "TLS handshake timed out");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_serves_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed::write(dir.path(), &[]).unwrap();
        assert!(server_config(&cert, &key).is_ok());

        let missing = dir.path().join("missing.pem");
        let err = server_config(&cert, &missing).unwrap_err().to_string();
        assert!(err.contains("key") && err.contains("missing.pem"), "{err}");
        let err = server_config(&key, &key).unwrap_err().to_string();
        assert!(err.contains("certificate") && err.contains("key.pem"), "{err}");

        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = self_signed::write(other.path(), &[]).unwrap();
        let err = server_config(&cert, &other_key).unwrap_err().to_string();
        assert!(err.contains("do not make a pair"), "{err}");
    }

    #[test]
    fn both_files_or_neither() {
        let off = TlsConfig::default();
        assert!(off.files().is_none() && !off.half_set());
        let half = TlsConfig { cert: "c.pem".into(), key: PathBuf::new() };
        assert!(half.files().is_none() && half.half_set());
        let on = TlsConfig { cert: "c.pem".into(), key: "k.pem".into() };
        assert_eq!(on.files(), Some((Path::new("c.pem"), Path::new("k.pem"))));
    }
}
