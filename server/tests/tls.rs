//! TLS on the running server, with the pair `server tls self-signed` writes: the dashboard
//! answers HTTPS only, devices publish over MQTT with TLS (plain MQTT stays unless
//! `mqtt.plain = false`), the session cookie is Secure, and a missing key file stops start-up
//! with its name.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::raw::{Answer, Raw};
use common::*;
use rumqttc::{TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const READING: &str = r#"{"telemetry":{"temperature":21.5},"timestamp":"2025-12-19T12:21:20"}"#;
/// 2025-12-19T12:21:20Z in milliseconds.
const READING_MS: i64 = 1_766_146_880_000;

/// Runs `server tls self-signed` into `dir`; answers the certificate and key paths it wrote.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["tls", "self-signed", "--out"])
        .arg(dir)
        .args(["--host", "dash.local"])
        .env_remove("IOT_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    assert!(text.contains("[tls]") && text.contains(&format!("cert = \"{}\"", cert.display())), "{text}");
    assert!(text.contains("IOT_TLS_KEY="), "{text}");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only the owner reads the key");
    (cert, key)
}

/// A TLS client that trusts exactly `cert` (as a device given it as its CA does).
fn client_config(cert: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// One HTTPS/1.0 exchange with `localhost` at `addr`; answers status, response headers
/// (lower case) and body.
fn https(
    tls: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(tls.clone(), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let host = format!("localhost:{}", addr.port());
    exchange(rustls::StreamOwned::new(conn, tcp), &host, method, path, "", headers, body.as_bytes())
}

/// What a plain-HTTP request to `addr` gets back (a broken connection counts as nothing).
fn plain_http_answer(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).into_owned()
}

fn start_with_tls(dir: &Path, cert: &Path, key: &Path) -> ServerProcess {
    ServerProcess::start(
        &dir.join("t.redb"),
        &[
            ("IOT_TLS_CERT", cert.display().to_string()),
            ("IOT_TLS_KEY", key.display().to_string()),
            ("IOT_MQTT_TLS_LISTEN", "127.0.0.1:0".into()),
            // The reading below is older than the default retention.
            ("IOT_RETENTION_DAYS", "0".into()),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_mqtt_over_tls_with_a_self_signed_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(&dir.path().join("tls"));
    let server = start_with_tls(dir.path(), &cert, &key);
    let tls = client_config(&cert);

    // The dashboard answers over HTTPS, to a client trusting the certificate ...
    let (status, _, body) = https(&tls, server.http, "GET", "/healthz", &[], "");
    assert_eq!(status, 200, "{body}");
    // ... and gives plain HTTP on that port no page.
    let answer = plain_http_answer(server.http);
    assert!(!answer.starts_with("HTTP/"), "plain HTTP got {answer:?}");

    // A device publishes over MQTT with TLS and gets its PUBACK once the reading is stored.
    let mqtts = server.mqtts.expect("MQTT over TLS listens");
    let transport = Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone()));
    let mut device = Device::connect(mqtts, "TLS_1", |o| {
        o.set_transport(transport);
    })
    .await;
    device.publish("app/device/TLS_1/telemetry", READING).await;
    let (status, _, body) = https(&tls, server.http, "GET", "/api/device?id=TLS_1", &[], "");
    assert_eq!(status, 200, "{body}");
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["device"]["message_count"], 1, "{body}");
    let metric = &d["device"]["metrics"][0];
    assert_eq!((metric["name"].as_str(), metric["value"].as_f64()), (Some("temperature"), Some(21.5)));
    assert_eq!(metric["ts"], READING_MS);

    // Plain MQTT stays on.
    let mut plain = Raw::connect(server.mqtt(), "PLAIN_1");
    assert_eq!(plain.publish(b"app/device/PLAIN_1/telemetry", READING.as_bytes()), Answer::PubAck);

    // The session cookie never goes out over plain HTTP.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let setup = format!("token={}&name=ann&password=correct+horse", server.setup_token());
    let (status, _, _) = https(&tls, server.http, "POST", "/auth/setup", &form, &setup);
    assert_eq!(status, 303);
    let (status, head, _) =
        https(&tls, server.http, "POST", "/auth/login", &form, "name=ann&password=correct+horse");
    assert_eq!(status, 303);
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie: __host-iot_session="))
        .expect("a __Host- session cookie");
    for attribute in ["httponly", "samesite=strict", "secure"] {
        assert!(cookie.split(';').any(|a| a.trim() == attribute), "{attribute} in {cookie}");
    }
    assert!(head.contains("strict-transport-security: max-age=31536000"), "HSTS over HTTPS: {head}");

    // And it stops as cleanly as without TLS.
    device.vanish();
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_plain_mqtt_off_devices_connect_over_tls_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(&dir.path().join("tls"));
    // A port that was free: plain MQTT would listen there if it were on.
    let plain_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = ServerProcess::start(
        &dir.path().join("t.redb"),
        &[
            ("IOT_TLS_CERT", cert.display().to_string()),
            ("IOT_TLS_KEY", key.display().to_string()),
            ("IOT_MQTT_TLS_LISTEN", "127.0.0.1:0".into()),
            ("IOT_MQTT_LISTEN", format!("127.0.0.1:{plain_port}")),
            ("IOT_MQTT_PLAIN", "false".into()),
        ],
    );
    assert_eq!(server.mqtt, None, "no plain MQTT address is printed");
    let refused = TcpStream::connect(("127.0.0.1", plain_port));
    assert!(refused.is_err(), "something listens on the plain MQTT port");
    let tls = client_config(&cert);
    let (status, _, body) = https(&tls, server.http, "GET", "/healthz", &[], "");
    assert_eq!(status, 200, "healthy over TLS only: {body}");

    let mqtts = server.mqtts.expect("MQTT over TLS listens");
    let transport = Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone()));
    let mut device = Device::connect(mqtts, "TLS_ONLY", |o| {
        o.set_transport(transport);
    })
    .await;
    device.publish("app/device/TLS_ONLY/telemetry", READING).await;
    device.vanish();
}

#[test]
fn a_missing_key_file_stops_start_up_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(&dir.path().join("tls"));
    let missing = dir.path().join("tls").join("missing-key.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .env("IOT_WEB_LISTEN", "127.0.0.1:0")
        .env("IOT_MQTT_LISTEN", "127.0.0.1:0")
        .env("IOT_MQTT_TLS_LISTEN", "127.0.0.1:0")
        .env("IOT_STORAGE_PATH", dir.path().join("t.redb"))
        .env("IOT_TLS_CERT", &cert)
        .env("IOT_TLS_KEY", &missing)
        .env("RUST_BACKTRACE", "0")
        .env_remove("IOT_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the server must not start: {stderr}");
    assert!(out.stdout.is_empty(), "no listener announced");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
