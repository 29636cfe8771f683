//! A self-signed certificate and key for trying TLS out: valid for `localhost`, `127.0.0.1`,
//! `::1` and the names given, for 397 days (the longest browsers accept). Clients trust it by
//! taking the certificate itself as their CA.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Utc};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};

use super::TlsError;

/// The names every generated certificate holds.
pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate and its private key, both PEM.
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A new pair for `hosts` (DNS names or IP addresses) besides [`LOCAL_NAMES`].
pub fn generate(hosts: &[String]) -> Result<Pair, TlsError> {
    let mut names: Vec<String> = hosts.to_vec();
    for local in LOCAL_NAMES {
        if !names.iter().any(|n| n == local) {
            names.push(local.to_owned());
        }
    }
    let mut params = CertificateParams::new(names.clone())?;
    params.distinguished_name.push(DnType::CommonName, names[0].clone());
    params.distinguished_name.push(DnType::OrganizationName, "IoT dashboard (self-signed)");
    // From yesterday, so a device whose clock is a little behind still accepts it.
    let day = |d: chrono::DateTime<Utc>| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    let start = Utc::now() - chrono::Duration::days(1);
    params.not_before = day(start);
    params.not_after = day(start + chrono::Duration::days(397));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Pair { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Writes a new pair to `dir/cert.pem` and `dir/key.pem` (readable by the owner only), creating
/// `dir` if needed; refuses to replace either file. Answers their paths.
pub fn write(dir: &Path, hosts: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    for path in [&cert, &key] {
        if path.exists() {
            return Err(TlsError::Exists { path: path.clone() });
        }
    }
    let pair = generate(hosts)?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.to_owned(), source })?;
    write_new(&key, &pair.key_pem, 0o600)?;
    write_new(&cert, &pair.cert_pem, 0o644)?;
    Ok((cert, key))
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write().map_err(|source| TlsError::Write { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_key_is_private_and_nothing_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tls");
        let (cert, key) = write(&out, &["dash.local".into()]).unwrap();
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(std::fs::read_to_string(&cert).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
        let before = std::fs::read(&key).unwrap();
        let err = write(&out, &[]).unwrap_err().to_string();
        assert!(err.contains("cert.pem") && err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&key).unwrap(), before);
    }
}
