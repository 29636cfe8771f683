//! TLS to PostgreSQL (`sslmode` in the URL, `storage.postgres_ca_file`): against a real
//! PostgreSQL serving a self-signed certificate, a node trusting that certificate connects
//! over TLS (the server's own view of the connection says so), one trusting only the system's
//! authorities is refused with a clear error instead of connecting unverified, and
//! `sslmode=require` against a server without TLS is refused too.

mod common;

use common::postgres::Postgres;
use server::store::GroupStore;
use server::store::postgres::{PgBlocking, PgSettings};

fn settings(url: &str, ca_file: &std::path::Path) -> PgSettings {
    PgSettings { ca_file: ca_file.to_owned(), ..PgSettings::new(url) }
}

#[test]
fn a_node_talks_tls_to_a_database_whose_certificate_it_trusts_and_refuses_one_it_does_not() {
    let pair = server::tls::self_signed::generate(&["127.0.0.1".to_owned()]).unwrap();
    let pg = Postgres::start_with_tls(&pair.cert_pem, &pair.key_pem);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pair.cert_pem).unwrap();
    let url = format!("{}?sslmode=require", pg.url);

    let store = PgBlocking::open(&settings(&url, &ca)).expect("trusted: connected");
    assert!(store.groups().unwrap().is_empty(), "answers");
    // The database's own view: this session is encrypted.
    let ssl = futures::executor::block_on(store.spawn({
        let pg_store = store.store().clone();
        async move { pg_store.session_uses_tls().await.unwrap() }
    }))
    .unwrap();
    assert!(ssl, "pg_stat_ssl says TLS");
    drop(store);

    // The system's authorities do not know the self-signed certificate: refused, not plain.
    let err = PgBlocking::open(&settings(&url, std::path::Path::new(""))).err().expect("refused");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
    // A CA file that is not one is named.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let err = PgBlocking::open(&settings(&url, &bad)).err().expect("refused");
    assert!(err.to_string().contains("bad.pem"), "{err}");
}

#[test]
fn sslmode_require_refuses_a_database_without_tls() {
    let pg = Postgres::start();
    let url = format!("{}?sslmode=require", pg.url);
    assert!(PgBlocking::open(&PgSettings::new(url)).is_err(), "no TLS offered: refused");
    // The default (prefer) connects in plain text to a server that offers no TLS.
    assert!(PgBlocking::open(&PgSettings::new(&pg.url)).is_ok());
}
