//! Attacks on the running server, from outside, as an attacker would try them: other host
//! names (DNS rebinding), guessing the setup token and passwords, forged last wills and
//! forwarded addresses, devices acting beyond their key, oversized and hostile input, log
//! forging, cached data, and secrets left readable. Each test checks what the attacker sees.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use common::raw::{Answer, Connect, Raw, Refused};
use common::*;
use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const FORM: &str = "application/x-www-form-urlencoded";

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A form field's value, URL-encoded.
fn form_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn location(head: &str) -> String {
    head.lines().find_map(|l| l.strip_prefix("location: ")).unwrap_or_default().trim().to_owned()
}

/// The session cookie a response set, as a `Cookie` header value.
fn session_cookie(head: &str) -> String {
    let line = head.lines().find(|l| l.starts_with("set-cookie: iot_session=")).expect("a session cookie");
    line.trim_start_matches("set-cookie: ").split(';').next().unwrap().to_owned()
}

fn post_form(
    server: &ServerProcess,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    http_full(server.http, "POST", path, FORM, headers, body.as_bytes())
}

/// A POST whose body the server may refuse before reading it all (as it should a huge one).
fn post_big(server: &ServerProcess, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let line = format!("POST {path} HTTP/1.0");
    let host = server.http.to_string();
    let (status, _, text) =
        send(server.http, &line, &[("Host", &host), ("Content-Type", content_type)], body);
    (status, text)
}

/// Signs in through the form; answers the session cookie.
fn sign_in(server: &ServerProcess, name: &str, password: &str) -> String {
    let body = format!("name={name}&password={}", form_value(password));
    let (status, head, _) = post_form(server, "/auth/login", &[], &body);
    assert_eq!((status, location(&head).as_str()), (303, "/"), "{name} signs in");
    session_cookie(&head)
}

fn get_with(server: &ServerProcess, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    http_full(server.http, "GET", path, "", headers, b"")
}

/// A device as a signed-in user sees it.
fn device_as(server: &ServerProcess, cookie: &str, id: &str) -> Value {
    let (status, _, body) = get_with(server, &format!("/api/device?id={id}"), &[("Cookie", cookie)]);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["device"].clone()
}

/// One request with exactly the request line and headers given (no `Host` unless among them).
fn send(
    addr: SocketAddr,
    request_line: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut req = format!("{request_line}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    http_raw(addr, &bytes)
}

/// The headers of a WebSocket upgrade (without `Host`).
const UPGRADE: [(&str, &str); 4] = [
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// A reading for HTTP ingest.
fn reading(device: &str, ms: i64) -> String {
    let mut item: Value = serde_json::from_str(&seed_payload(21.0, 40.0, 3.9, ms)).unwrap();
    item["device_id"] = device.into();
    item.to_string()
}

// ---------------------------------------------------------------------------------------------
// DNS rebinding

#[test]
fn other_host_names_get_421_for_pages_data_files_posts_and_websockets() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("IOT_WEB_HOSTS", "dash.home, iot.lan".to_owned()),
        ("IOT_ALLOWED_ORIGINS", "https://proxy.example.com".to_owned()),
    ];
    let server = ServerProcess::start(&dir.path().join("t.redb"), &env);
    let port = server.http.port();
    let evil = format!("evil.example:{port}");
    let evil_origin = format!("http://{evil}");
    let body = reading("REBIND_1", now_ms() - 1_000);

    // A page on the attacker's name that now points here: same-origin as far as the browser
    // knows, so only the name gives it away.
    let none: &[u8] = b"";
    // (request line, headers, body)
    type Request<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8]);
    let refused: Vec<Request> = vec![
        ("GET / HTTP/1.0", vec![("Host", evil.as_str())], none),
        ("GET /api/devices HTTP/1.0", vec![("Host", "localhost.evil.example")], none),
        ("GET /api/devices HTTP/1.0", vec![("Host", "127.0.0.1.nip.io")], none),
        ("GET /manifest.webmanifest HTTP/1.0", vec![("Host", "evil.example")], none),
        ("GET /pkg/iot-dashboard.js HTTP/1.0", vec![("Host", "EVIL.example")], none),
        (
            "POST /api/telemetry HTTP/1.0",
            vec![
                ("Host", evil.as_str()),
                ("Origin", evil_origin.as_str()),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        ),
        (
            "GET /ws/live HTTP/1.1",
            [("Host", evil.as_str()), ("Origin", evil_origin.as_str())].into_iter().chain(UPGRADE).collect(),
            none,
        ),
    ];
    for (line, headers, body) in refused {
        let (status, head, text) = send(server.http, line, &headers, body);
        assert_eq!(status, 421, "{line} {headers:?}: {head}\n{text}");
        assert!(head.contains("content-type: text/plain"), "{line}: {head}");
        assert!(text.contains("web.hosts (IOT_WEB_HOSTS)"), "{line}: {text}");
    }
    // The request line's own authority names the host too.
    let target = "GET http://evil.example/api/devices HTTP/1.1";
    let own = server.http.to_string();
    let (status, _, _) = send(server.http, target, &[("Host", own.as_str()), ("Connection", "close")], b"");
    assert_eq!(status, 421, "{target}");
    assert!(server.device("REBIND_1").is_null(), "nothing stored through the rebound name");

    // The names this server is reached by: any port, any case, a trailing dot.
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_owned();
    let mut allowed = vec![
        "dash.home".to_owned(),
        "DASH.Home:3000".to_owned(),
        "dash.home.".to_owned(),
        "iot.lan".to_owned(),
        "proxy.example.com".to_owned(),
        "localhost".to_owned(),
        "localhost:9".to_owned(),
        "app.localhost".to_owned(),
        own.clone(),
        "[::1]:80".to_owned(),
        "10.1.2.3".to_owned(),
    ];
    if !machine.is_empty() && machine != "localhost" {
        allowed.push(format!("{machine}:{port}"));
        allowed.push(format!("{machine}.local"));
    }
    for host in &allowed {
        let (status, _, text) =
            send(server.http, "GET /api/devices HTTP/1.0", &[("Host", host.as_str())], b"");
        assert_eq!(status, 200, "Host: {host}: {text}");
    }
    let (status, _, _) = send(server.http, "GET /api/devices HTTP/1.0", &[], b"");
    assert_eq!(status, 200, "no Host at all");
}

// ---------------------------------------------------------------------------------------------
// The first admin

#[test]
fn the_first_admin_needs_the_printed_token_and_guessing_it_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let token = server.setup_token();
    assert!(token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    let setup = |body: &str| {
        let (status, head, _) = post_form(&server, "/auth/setup", &[], body);
        (status, location(&head), head)
    };
    let (status, to, _) = setup("name=eve&password=correct+horse");
    assert_eq!((status, to.as_str()), (303, "/setup?error=token"), "no token");
    let (status, to, _) = setup("token=00000000000000000000000000000000&name=eve&password=correct+horse");
    assert_eq!((status, to.as_str()), (303, "/setup?error=token"), "a wrong token");
    let (status, to, head) = setup(&format!("token={token}&name=ann&password=correct+horse"));
    assert_eq!((status, to.as_str()), (303, "/"));
    let cookie = session_cookie(&head);
    let (_, _, who) = get_with(&server, "/api/whoami", &[("Cookie", cookie.as_str())]);
    assert!(who.contains("\"name\":\"ann\""), "{who}");
    let (status, to, _) = setup(&format!("token={token}&name=eve&password=correct+horse"));
    assert_eq!((status, to.as_str()), (303, "/setup?error=done"), "the token works once");
    server.stop();

    // A fixed token; an attacker guessing it from one address is stopped after 20 tries,
    // even with the right one, while the owner elsewhere gets in.
    let dir = tempfile::tempdir().unwrap();
    let env =
        [("IOT_SETUP_TOKEN", "let-me-in-0123".to_owned()), ("IOT_TRUSTED_PROXIES", "127.0.0.1".to_owned())];
    let server = ServerProcess::start(&dir.path().join("t.redb"), &env);
    assert_eq!(server.setup_token(), "let-me-in-0123");
    let setup_from = |address: &str, token: &str| {
        let body = format!("token={token}&name=eve&password=correct+horse");
        let (status, head, _) = post_form(&server, "/auth/setup", &[("X-Forwarded-For", address)], &body);
        (status, location(&head), head)
    };
    for i in 0..20 {
        let (status, to, _) = setup_from("10.0.0.66", &format!("guess{i}"));
        assert_eq!((status, to.as_str()), (303, "/setup?error=token"), "guess {i}");
    }
    let (status, _, head) = setup_from("10.0.0.66", "let-me-in-0123");
    assert_eq!(status, 429, "the 21st try is refused, right token or not: {head}");
    assert!(head.contains("retry-after"), "{head}");
    let (status, to, _) = setup_from("10.0.0.1", "let-me-in-0123");
    assert_eq!((status, to.as_str()), (303, "/"), "the owner, elsewhere, is not locked out");
}

// ---------------------------------------------------------------------------------------------
// Last wills

#[test]
fn a_device_cannot_leave_a_last_will_on_another_device_s_status() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    let victim_key = cli(&db, &["device", "key", "VICTIM"], "");
    let own_key = cli(&db, &["device", "key", "MALLORY"], "");
    let server = ServerProcess::start(&db, &[]);
    let addr = server.mqtt();
    let admin = sign_in(&server, "root", "admin password");

    let victim_will = Connect {
        login: Some(("VICTIM", victim_key.as_str())),
        will: Some(("app/device/VICTIM/status", b"offline")),
        ..Connect::new("VICTIM")
    };
    let mut victim = Raw::try_connect_with(addr, &victim_will).expect("the victim connects");
    assert_eq!(victim.publish(b"app/device/VICTIM/status", b"online"), Answer::PubAck);
    assert_eq!(
        victim.publish(
            telemetry_topic("VICTIM").as_bytes(),
            seed_payload(20.0, 50.0, 3.9, now_ms() - 1_000).as_bytes()
        ),
        Answer::PubAck
    );

    // The attacker, with its own valid key, leaves a will on the victim's status.
    let forged = Connect {
        login: Some(("MALLORY", own_key.as_str())),
        will: Some(("app/device/VICTIM/status", b"offline")),
        ..Connect::new("MALLORY")
    };
    assert_eq!(Raw::try_connect_with(addr, &forged).err(), Some(Refused::Code(5)));
    assert_eq!(server.metric("iot_mqtt_connections_refused_total{reason=\"will_not_own_status\"}"), 1);
    // Wildcards would reach every device's status: refused even on its own branch.
    for topic in ["app/device/+/status", "app/device/MALLORY/#", "#"] {
        let wild = Connect {
            login: Some(("MALLORY", own_key.as_str())),
            will: Some((topic, b"offline")),
            ..Connect::new("MALLORY")
        };
        assert_eq!(Raw::try_connect_with(addr, &wild).err(), Some(Refused::Code(5)), "will on {topic}");
    }

    // Its own status is fine: the will arrives when it drops, and the victim is untouched.
    let honest = Connect {
        login: Some(("MALLORY", own_key.as_str())),
        will: Some(("app/device/MALLORY/status", b"offline")),
        ..Connect::new("MALLORY")
    };
    let mut mallory = Raw::try_connect_with(addr, &honest).expect("a will on its own status");
    assert_eq!(mallory.publish(b"app/device/MALLORY/status", b"online"), Answer::PubAck);
    let reading = seed_payload(20.0, 50.0, 3.9, now_ms() - 1_000);
    assert_eq!(mallory.publish(telemetry_topic("MALLORY").as_bytes(), reading.as_bytes()), Answer::PubAck);
    drop(mallory);
    eventually("the attacker's own will", || {
        (device_as(&server, &admin, "MALLORY")["status"]["online"] == false).then_some(())
    });
    assert_eq!(device_as(&server, &admin, "VICTIM")["status"]["online"], true, "the victim is still online");
    assert_eq!(
        victim.publish(
            telemetry_topic("VICTIM").as_bytes(),
            seed_payload(21.0, 50.0, 3.9, now_ms()).as_bytes()
        ),
        Answer::PubAck
    );
}

#[test]
fn a_will_refused_when_it_fires_reaches_no_subscriber() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let victim_key = cli(&db, &["device", "key", "VICTIM"], "");
    let mallory_key = cli(&db, &["device", "key", "MALLORY"], "");
    let server = ServerProcess::start(&db, &[]);
    let addr = server.mqtt();

    // A will that stands is delivered as usual.
    let mut watcher = Raw::connect(addr, "WATCHER");
    assert_eq!(watcher.subscribe("app/device/HONEST/#"), 1);
    let honest = Connect { will: Some(("app/device/HONEST/status", b"offline")), ..Connect::new("HONEST") };
    drop(Raw::try_connect_with(addr, &honest).expect("a will on its own status"));
    let (topic, said) = watcher.next_message(Duration::from_secs(5)).expect("an honest will is delivered");
    assert_eq!((topic.as_str(), said.as_slice()), ("app/device/HONEST/status", b"offline".as_slice()));

    // While the dashboard is open, wills on any plain topic are taken at CONNECT: one from an
    // anonymous client, one from a device with a key, both on the victim's status.
    let mut victim =
        Raw::try_connect_as(addr, "VICTIM", Some(("VICTIM", victim_key.as_str()))).expect("the victim");
    assert_eq!(victim.subscribe("app/device/VICTIM/status"), 1, "a device reads its own status");
    assert_eq!(victim.publish(b"app/device/VICTIM/status", b"online"), Answer::PubAck);
    let (topic, said) = victim.next_message(Duration::from_secs(5)).expect("its own status comes back");
    assert_eq!((topic.as_str(), said.as_slice()), ("app/device/VICTIM/status", b"online".as_slice()));
    let reading = seed_payload(20.0, 50.0, 3.9, now_ms() - 1_000);
    assert_eq!(victim.publish(telemetry_topic("VICTIM").as_bytes(), reading.as_bytes()), Answer::PubAck);
    fn forged<'a>(client: &'a str, login: Option<(&'a str, &'a str)>) -> Connect<'a> {
        Connect { login, will: Some(("app/device/VICTIM/status", b"offline")), ..Connect::new(client) }
    }
    let anonymous = Raw::try_connect_with(addr, &forged("MALLORY_A", None)).expect("open: a will anywhere");
    let keyed = Raw::try_connect_with(addr, &forged("MALLORY", Some(("MALLORY", &mallory_key))))
        .expect("open: a keyed device's will anywhere");

    // Sign-in becomes required: the anonymous client is ended and its will fires; then the
    // keyed one drops off and its will, on a status not its own, fires too.
    let body = format!("token={}&name=ann&password=correct+horse", server.setup_token());
    let (status, head, _) = post_form(&server, "/auth/setup", &[], &body);
    assert_eq!((status, location(&head).as_str()), (303, "/"));
    let admin = session_cookie(&head);
    let mut anonymous = anonymous;
    assert!(anonymous.closed_within(Duration::from_secs(5)), "the anonymous client is ended");
    drop(keyed);

    // Neither will is recorded, nor delivered to the victim's subscription.
    let heard = victim.next_message(Duration::from_secs(3));
    assert_eq!(heard, None, "a refused will reached a subscriber");
    assert_eq!(device_as(&server, &admin, "VICTIM")["status"]["online"], true, "the victim is still online");
    // The subscription still works: silence above was not a dead connection.
    assert_eq!(victim.publish(b"app/device/VICTIM/status", b"online"), Answer::PubAck);
    let (topic, _) = victim.next_message(Duration::from_secs(5)).expect("the victim's own status");
    assert_eq!(topic, "app/device/VICTIM/status");
}

// ---------------------------------------------------------------------------------------------
// Rights are checked again while connected

#[test]
fn replacing_or_revoking_a_key_ends_the_device_s_live_connection() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    let old_key = cli(&db, &["device", "key", "DEV_K"], "");
    let server = ServerProcess::start(&db, &[]);
    let addr = server.mqtt();
    let admin = sign_in(&server, "root", "admin password");
    let as_admin = [("Cookie", admin.as_str())];

    let mut stolen =
        Raw::try_connect_as(addr, "DEV_K", Some(("DEV_K", old_key.as_str()))).expect("the key works");
    assert_eq!(
        stolen.publish(
            telemetry_topic("DEV_K").as_bytes(),
            seed_payload(1.0, 2.0, 3.0, now_ms() - 3_000).as_bytes()
        ),
        Answer::PubAck
    );

    // The admin replaces the (leaked) key: whoever holds the old one is cut off at once.
    let (status, _, body) = post_form(&server, "/api/admin/device_keys/issue", &as_admin, "device=DEV_K");
    assert_eq!(status, 200, "{body}");
    let issued: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(issued["replaced"], true, "{body}");
    let new_key = issued["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    assert!(stolen.closed_within(Duration::from_secs(5)), "the old key's connection ends");
    assert_eq!(stolen.publish(telemetry_topic("DEV_K").as_bytes(), b"{}"), Answer::Disconnected);
    let again = Connect { login: Some(("DEV_K", old_key.as_str())), ..Connect::new("DEV_K") };
    assert_eq!(Raw::try_connect_with(addr, &again).err(), Some(Refused::Code(4)), "the old key is refused");

    // (The broker may still be ending the old session: "server unavailable" until it has.)
    let with_new = Connect { login: Some(("DEV_K", new_key.as_str())), ..Connect::new("DEV_K") };
    let mut device = eventually("the new key connects", || match Raw::try_connect_with(addr, &with_new) {
        Err(Refused::Code(3)) => None,
        other => Some(other.expect("the new key")),
    });
    assert_eq!(
        device.publish(
            telemetry_topic("DEV_K").as_bytes(),
            seed_payload(1.0, 2.0, 3.0, now_ms() - 2_000).as_bytes()
        ),
        Answer::PubAck
    );

    // Revoked: cut off too, and it cannot come back.
    let (status, _, body) =
        post_form(&server, "/api/admin/device_keys/revoke", &as_admin, "device=DEV_K&confirm=yes");
    assert_eq!(status, 200, "{body}");
    assert!(device.closed_within(Duration::from_secs(5)), "a revoked key's connection ends");
    let again = Connect { login: Some(("DEV_K", new_key.as_str())), ..Connect::new("DEV_K") };
    assert!(
        matches!(Raw::try_connect_with(addr, &again), Err(Refused::Code(4 | 5))),
        "the revoked key is refused"
    );
    assert_eq!(device_as(&server, &admin, "DEV_K")["message_count"], 2);
}

#[test]
fn creating_the_first_admin_ends_anonymous_mqtt_connections_but_not_keyed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let key = cli(&db, &["device", "key", "DEV_K"], "");
    let server = ServerProcess::start(&db, &[]);
    let addr = server.mqtt();

    // Open: anyone connects, but a wildcard will is refused even now.
    let wild = Connect { will: Some(("app/device/+/status", b"offline")), ..Connect::new("ANON_W") };
    assert_eq!(Raw::try_connect_with(addr, &wild).err(), Some(Refused::Code(5)), "a wildcard will");
    let mut anonymous = Raw::connect(addr, "ANON_1");
    assert_eq!(
        anonymous.publish(
            telemetry_topic("ANON_1").as_bytes(),
            seed_payload(1.0, 2.0, 3.0, now_ms() - 3_000).as_bytes()
        ),
        Answer::PubAck
    );
    let mut keyed =
        Raw::try_connect_as(addr, "DEV_K", Some(("DEV_K", key.as_str()))).expect("a device with its key");
    assert_eq!(
        keyed.publish(
            telemetry_topic("DEV_K").as_bytes(),
            seed_payload(1.0, 2.0, 3.0, now_ms() - 3_000).as_bytes()
        ),
        Answer::PubAck
    );

    let body = format!("token={}&name=ann&password=correct+horse", server.setup_token());
    let (status, head, _) = post_form(&server, "/auth/setup", &[], &body);
    assert_eq!((status, location(&head).as_str()), (303, "/"));
    let admin = session_cookie(&head);

    assert!(anonymous.closed_within(Duration::from_secs(5)), "the anonymous connection ends");
    assert_eq!(anonymous.publish(telemetry_topic("ANON_1").as_bytes(), b"{}"), Answer::Disconnected);
    assert_eq!(Raw::try_connect_with(addr, &Connect::new("ANON_2")).err(), Some(Refused::Code(5)));
    assert!(!keyed.closed_within(Duration::from_secs(1)), "the keyed device stays connected");
    assert_eq!(
        keyed.publish(
            telemetry_topic("DEV_K").as_bytes(),
            seed_payload(1.0, 2.0, 3.0, now_ms() - 1_000).as_bytes()
        ),
        Answer::PubAck
    );
    assert_eq!(device_as(&server, &admin, "DEV_K")["message_count"], 2);
    assert_eq!(device_as(&server, &admin, "ANON_1")["message_count"], 1);
}

#[test]
fn subscriptions_made_while_open_deliver_only_what_rights_allow_once_sign_in_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let reader_key = cli(&db, &["device", "key", "READER"], "");
    let sensor_key = cli(&db, &["device", "key", "SENSOR"], "");
    let server = ServerProcess::start(&db, &[]);
    let addr = server.mqtt();

    // While open, anyone reads anything: an anonymous `#`, a client claiming a device's name
    // without a password, and a device with its key reading every device.
    let mut anonymous = Raw::connect(addr, "ANON_SUB");
    assert_eq!(anonymous.subscribe("#"), 1);
    let claim = Connect { user: Some("SENSOR"), ..Connect::new("CLAIMER") };
    let mut claimer = Raw::try_connect_with(addr, &claim).expect("open: a user name without a password");
    assert_eq!(claimer.subscribe("app/device/SENSOR/#"), 1);
    let mut reader =
        Raw::try_connect_as(addr, "READER", Some(("READER", reader_key.as_str()))).expect("the reader's key");
    assert_eq!(reader.subscribe("#"), 1);
    let mut sensor =
        Raw::try_connect_as(addr, "SENSOR", Some(("SENSOR", sensor_key.as_str()))).expect("the sensor's key");
    let reading = |ms: i64| seed_payload(20.0, 50.0, 3.9, ms);
    assert_eq!(
        sensor.publish(telemetry_topic("SENSOR").as_bytes(), reading(now_ms() - 2_000).as_bytes()),
        Answer::PubAck
    );
    for (who, client) in [("anonymous", &mut anonymous), ("claimer", &mut claimer), ("reader", &mut reader)] {
        let heard = client.next_message(Duration::from_secs(5));
        assert_eq!(heard.map(|(t, _)| t), Some(telemetry_topic("SENSOR")), "{who} reads while open");
    }

    let body = format!("token={}&name=ann&password=correct+horse", server.setup_token());
    let (status, head, _) = post_form(&server, "/auth/setup", &[], &body);
    assert_eq!((status, location(&head).as_str()), (303, "/"));

    // The sensor goes on; none of them hears it any more. The keyless ones are ended; the
    // keyed reader stays connected, but its `#` now brings only its own topics.
    assert_eq!(
        sensor.publish(telemetry_topic("SENSOR").as_bytes(), reading(now_ms() - 1_000).as_bytes()),
        Answer::PubAck
    );
    for (who, client) in [("anonymous", &mut anonymous), ("claimer", &mut claimer), ("reader", &mut reader)] {
        assert_eq!(client.next_message(Duration::from_secs(2)), None, "{who} still reads another device");
    }
    assert!(anonymous.closed_within(Duration::from_secs(5)), "the anonymous reader is ended");
    assert!(claimer.closed_within(Duration::from_secs(5)), "a name without a key is ended");
    assert!(!reader.closed_within(Duration::from_millis(500)), "the keyed reader stays connected");
    assert_eq!(reader.publish(b"app/device/READER/status", b"online"), Answer::PubAck);
    let heard = reader.next_message(Duration::from_secs(5));
    assert_eq!(
        heard.map(|(t, _)| t).as_deref(),
        Some("app/device/READER/status"),
        "its own topics still arrive"
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile arguments

#[test]
fn hostile_query_arguments_get_4xx_not_500() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let (status, body) = server.get(&format!(
        "/api/history_between?device=d&metric=t&from={}&to={}&max_points=1000",
        i64::MIN,
        i64::MAX
    ));
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    assert!(error.to_string().contains("from"), "names the problem: {body}");

    for path in [
        "/api/history?device=d&metric=t&span_secs=0&max_points=10",
        "/api/history?device=d&metric=t&span_secs=-9223372036854775808&max_points=10",
        "/api/history?device=d",
    ] {
        let (status, body) = server.get(path);
        assert_eq!(status, 400, "{path}: {body}");
    }
    let host = server.http.to_string();
    let headers: Vec<(&str, &str)> = [("Host", host.as_str())].into_iter().chain(UPGRADE).collect();
    let (status, _, body) = send(server.http, "GET /ws/live?device=a/b HTTP/1.1", &headers, b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("device"), "{body}");
}

/// The release build panics on an overflow in our server code (the history server functions
/// live in `app`) instead of wrapping into a wrong answer; the browser's WASM keeps its size.
#[test]
fn release_builds_check_overflows_in_server_code_but_not_in_the_wasm() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo: toml::Table = std::fs::read_to_string(manifest).unwrap().parse().unwrap();
    let profile = |name: &str, package: &str| {
        cargo["profile"][name]
            .get("package")
            .and_then(|p| p.get(package))
            .and_then(|p| p.get("overflow-checks"))
            .and_then(toml::Value::as_bool)
    };
    for package in ["server", "telemetry", "app"] {
        assert_eq!(profile("release", package), Some(true), "{package} in release");
    }
    assert_eq!(cargo["profile"]["wasm-release"]["inherits"].as_str(), Some("release"));
    for package in ["telemetry", "app"] {
        assert_eq!(profile("wasm-release", package), Some(false), "{package} in the WASM");
    }
}

// ---------------------------------------------------------------------------------------------
// Body sizes

#[test]
fn oversized_bodies_get_413_never_500() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let host = server.http.to_string();
    let big_json = format!(r#"{{"dashboard": {{"id": "x", "name": "{}"}}}}"#, "x".repeat(300 * 1024));
    let (status, body) = post_big(&server, "/api/dashboards/save", "application/json", big_json.as_bytes());
    assert_eq!(status, 413, "{body}");
    let (status, body) = post_big(&server, "/nowhere", "application/json", big_json.as_bytes());
    assert_eq!(status, 413, "any path: {body}");
    let huge_form = format!("name={}&password=x", "a".repeat(2 * 1024 * 1024));
    let (status, body) = post_big(&server, "/auth/login", FORM, huge_form.as_bytes());
    assert_eq!(status, 413, "{body}");

    // Without a length up front (chunked): counted as it comes.
    let chunked = |path: &str, total: usize| {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..total / chunk.len() {
            req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            req.extend_from_slice(&chunk);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        http_raw(server.http, &req).0
    };
    assert_eq!(chunked("/api/dashboards/save", 320 * 1024), 413);
    assert_eq!(chunked("/api/telemetry", 1536 * 1024), 413);

    let huge_readings = vec![b' '; 1536 * 1024];
    let (status, _) = post_big(&server, "/api/telemetry", "application/json", &huge_readings);
    assert_eq!(status, 413);

    // Below the limits: answered on their merits.
    let name = format!("name={}&password=x", "a".repeat(200 * 1024));
    let (status, _, _) = post_form(&server, "/auth/login", &[], &name);
    assert_eq!(status, 303, "a long name is just a wrong name");
    let start = now_ms() - 600_000;
    let at = |ms: i64| chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap().to_rfc3339();
    let pad = "p".repeat(2_000);
    let items: Vec<Value> = (0..300)
        .map(|i| {
            let ts = at(start + i * 1_000);
            serde_json::json!({"device_id": "BIG_1", "telemetry": {"t": i}, "timestamp": ts, "pad": pad})
        })
        .collect();
    let batch = serde_json::to_vec(&items).unwrap();
    assert!(batch.len() > 512 * 1024 && batch.len() < 1024 * 1024);
    let (status, body) = server.post_json("/api/telemetry", &batch);
    assert_eq!(status, 202, "readings may be larger than forms: {body}");
}

/// A dashboard with `widgets` line charts, each naming `devices` devices and `metrics` metrics,
/// placed on every layout.
fn dashboard(id: &str, widgets: usize, devices: usize, metrics: usize) -> Value {
    let names = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    let widget = |i: usize| {
        serde_json::json!({"id": format!("w{i}"), "kind": "line_chart", "title": format!("Chart {i}"),
            "devices": names("DB_", devices), "metrics": names("m", metrics)})
    };
    let place = |cols: usize, w: usize| {
        (0..widgets)
            .map(|i| serde_json::json!({"widget": format!("w{i}"), "x": (i * w) % cols, "y": (i * w) / cols * 4, "w": w, "h": 4}))
            .collect::<Vec<_>>()
    };
    serde_json::json!({"dashboard": {"id": id, "name": id, "widgets": (0..widgets).map(widget).collect::<Vec<_>>(),
        "layouts": {"wide": place(12, 6), "medium": place(6, 6), "phone": place(1, 1)},
        "range": {"type": "last", "secs": 86400}}})
}

#[test]
fn dashboards_past_their_bounds_are_refused_and_the_biggest_page_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    // Some history for the charts to draw: 50 devices, 20 metrics each, a few readings.
    let start = now_ms() - 3_600_000;
    let items: Vec<Value> = (0..50)
        .flat_map(|d| {
            (0..3).map(move |k| {
                let values: serde_json::Map<String, Value> =
                    (0..20).map(|m| (format!("m{m}"), Value::from(m + k))).collect();
                let ts = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(start + k * 600_000)
                    .unwrap()
                    .to_rfc3339();
                serde_json::json!({"device_id": format!("DB_{d}"), "telemetry": values, "timestamp": ts})
            })
        })
        .collect();
    let (status, body) = server.post_json("/api/telemetry", &serde_json::to_vec(&items).unwrap());
    assert_eq!(status, 202, "{body}");

    // The review's attack: one chart naming 2,000 devices by 2,000 metrics, in 34 KB.
    let attack = serde_json::to_vec(&dashboard("attack", 1, 2_000, 2_000)).unwrap();
    assert!(attack.len() < 64 * 1024, "{} bytes", attack.len());
    let rss = server.rss_kib();
    for path in ["/api/dashboards/create", "/api/dashboards/save"] {
        let (status, body) = server.post_json(path, &attack);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("at most 50 devices and 20 metrics"), "{path}: {body}");
    }
    let (status, body) = server
        .post_json("/api/dashboards/create", &serde_json::to_vec(&dashboard("many", 101, 1, 1)).unwrap());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most 100 widgets"), "{body}");
    let (status, _) = server.get("/d/attack");
    assert_ne!(status, 500);

    // The biggest dashboard allowed: 100 charts, each 50 devices by 20 metrics.
    let biggest = serde_json::to_vec(&dashboard("biggest", 100, 50, 20)).unwrap();
    let (status, body) = server.post_json("/api/dashboards/create", &biggest);
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
    let (status, _, page) = get_with(&server, &format!("/d/{id}"), &[("Accept", "text/html")]);
    assert_eq!(status, 200);
    assert!(page.contains("Chart 99"), "the page shows every chart");
    let grown = server.rss_kib().saturating_sub(rss);
    // The review measured 434 MB more for one such page before charts cut their lists.
    assert!(grown < 64 * 1024, "the server grew by {grown} KiB for one page view");
}

// ---------------------------------------------------------------------------------------------
// Password guessing

#[test]
fn password_guessing_is_throttled_per_name_and_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "ann"], "correct horse");
    let server = ServerProcess::start(&db, &[("IOT_TRUSTED_PROXIES", "127.0.0.1".to_owned())]);
    let login = |forwarded: &str, name: &str, password: &str| {
        let body = format!("name={name}&password={}", form_value(password));
        let (status, head, _) = post_form(&server, "/auth/login", &[("X-Forwarded-For", forwarded)], &body);
        (status, location(&head))
    };
    // Five wrong passwords for ann from the attacker's address lock ann out there only.
    for _ in 0..5 {
        assert_eq!(login("10.0.0.66", "ann", "wrong").0, 303);
    }
    assert_eq!(login("10.0.0.66", "ann", "correct horse").0, 429, "ann, from the attacker's address");
    assert_eq!(login("10.0.0.1", "ann", "correct horse"), (303, "/".to_owned()), "ann at home gets in");
    // Guessing other names: 20 failures lock the address out for every name.
    for i in 0..15 {
        assert_eq!(login("10.0.0.66", &format!("user{i}"), "wrong").0, 303, "guess {i}");
    }
    assert_eq!(login("10.0.0.66", "bob", "wrong").0, 429, "the address is locked out");
    assert_eq!(login("10.0.0.67", "bob", "wrong").0, 303, "another address is not");
    // The proxy appends the address it saw: a forged first entry does not help.
    assert_eq!(login("10.0.0.1, 10.0.0.66", "ann", "correct horse").0, 429);
    server.stop();

    // No trusted proxy: X-Forwarded-For is the attacker's own text and changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "ann"], "correct horse");
    let server = ServerProcess::start(&db, &[]);
    let login = |forwarded: &str, name: &str, password: &str| {
        let body = format!("name={name}&password={}", form_value(password));
        post_form(&server, "/auth/login", &[("X-Forwarded-For", forwarded)], &body).0
    };
    for i in 0..5 {
        assert_eq!(login(&format!("10.9.0.{i}"), "ann", "wrong"), 303);
    }
    assert_eq!(login("10.9.0.99", "ann", "wrong"), 429, "a new forged address per try does not escape");
    for i in 0..15 {
        assert_eq!(login(&format!("10.8.0.{i}"), &format!("user{i}"), "wrong"), 303);
    }
    assert_eq!(login("10.7.7.7", "zed", "wrong"), 429);
}

#[test]
fn devices_are_acknowledged_while_sign_ins_are_hammered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "ann"], "correct horse");
    let key = cli(&db, &["device", "key", "BUSY_1"], "");
    let server = ServerProcess::start(&db, &[("IOT_TRUSTED_PROXIES", "127.0.0.1".to_owned())]);
    let mut device = Raw::try_connect_as(server.mqtt(), "BUSY_1", Some(("BUSY_1", key.as_str()))).unwrap();
    let start = now_ms() - 60_000;
    let mut sent = 0;
    let mut publish = |device: &mut Raw| {
        let began = Instant::now();
        let reading = seed_payload(1.0, 2.0, 3.0, start + sent);
        sent += 1;
        assert_eq!(device.publish(telemetry_topic("BUSY_1").as_bytes(), reading.as_bytes()), Answer::PubAck);
        began.elapsed()
    };
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };

    // The same device, same pace, with nobody signing in: the baseline.
    let quiet: Vec<Duration> = (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            publish(&mut device)
        })
        .collect();

    let http = server.http;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(51));
    let attackers: Vec<_> = (0..50)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (0..3)
                    .map(|j| {
                        let from = format!("10.2.{j}.{i}");
                        let body = format!("name=ann&password=guess{i}x{j}");
                        http_full(
                            http,
                            "POST",
                            "/auth/login",
                            FORM,
                            &[("X-Forwarded-For", &from)],
                            body.as_bytes(),
                        )
                        .0
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    barrier.wait();
    let mut storm = Vec::new();
    while storm.len() < 50 && !attackers.iter().all(|a| a.is_finished()) {
        storm.push(publish(&mut device));
        std::thread::sleep(Duration::from_millis(50));
    }
    let answers: Vec<u16> = attackers.into_iter().flat_map(|a| a.join().unwrap()).collect();
    assert!(answers.iter().all(|s| [303, 429, 503].contains(s)), "{answers:?}");
    assert!(answers.contains(&303), "some wrong passwords were checked: {answers:?}");
    assert!(storm.len() >= 3, "the device published while the sign-ins ran");
    // Generous on purpose (the machine is shared): a storm may slow a PUBACK a little, never
    // by the seconds 150 Argon2 checks at once would take.
    let (quiet_median, storm_median) = (median(quiet), median(storm.clone()));
    let slowest = storm.iter().max().copied().unwrap_or_default();
    assert!(
        storm_median <= quiet_median * 5 + Duration::from_millis(100),
        "PUBACK median {storm_median:?} during the storm, {quiet_median:?} when quiet"
    );
    assert!(slowest < Duration::from_secs(2), "a PUBACK took {slowest:?} during the storm");
}

// ---------------------------------------------------------------------------------------------
// Logs

#[test]
fn attackers_cannot_forge_log_lines_or_flood_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    cli(&db, &["device", "key", "LOGDEV"], "");
    let (server, log) = ServerProcess::start_logged(&db, &[]);
    let addr = server.mqtt();

    // A client id carrying a line of its own.
    let forged = "evil\nINFO forged: admin signed in";
    assert_eq!(Raw::try_connect_with(addr, &Connect::new(forged)).err(), Some(Refused::Code(5)));
    let long = format!("LONGID{}\nINFO forged: {}", "x".repeat(100), "y".repeat(60_000));
    let long_id = Connect { client_id: long.as_bytes(), ..Connect::new("") };
    assert!(Raw::try_connect_with(addr, &long_id).is_err(), "a 60 KB client id is refused");
    // A huge user name, and a long one that gets as far as the password check.
    let huge = format!("name={}%0AINFO forged&password=x", "n".repeat(2 << 20));
    assert_eq!(post_big(&server, "/auth/login", FORM, huge.as_bytes()).0, 413);
    let name = format!("{}%0AINFO forged: {}", "m".repeat(100), "n".repeat(100_000));
    let (status, _, _) = post_form(&server, "/auth/login", &[], &format!("name={name}&password=x"));
    assert_eq!(status, 303);
    // Quotes in headers.
    let (status, _, _) = http_full(
        server.http,
        "POST",
        "/api/telemetry",
        "application/json",
        &[("Origin", "https://e\"vil.example/\" forged=\"1")],
        b"{}",
    );
    assert_eq!(status, 403);
    let (status, _, _) = send(server.http, "GET / HTTP/1.0", &[("Host", "e\"vil\" forged=\"1")], b"");
    assert_eq!(status, 421);
    // A device hammering with a wrong key.
    for _ in 0..30 {
        assert!(Raw::try_connect_as(addr, "LOGDEV", Some(("LOGDEV", "wrong"))).is_err());
    }

    log.wait_for("the forged client id, escaped", |l| l.contains("evil\\nINFO forged"));
    log.wait_for("the long user name, cut short", |l| l.contains("mmmm") && l.contains("bytes)"));
    log.wait_for("the quoted origin, escaped", |l| l.contains("e\\\"vil.example"));
    log.wait_for("the wrong key", |l| l.contains("LOGDEV"));
    std::thread::sleep(Duration::from_millis(500));
    let lines = log.lines();
    for line in &lines {
        let shown: String = line.chars().take(200).collect();
        assert!(line.len() <= 2048, "a {} byte log line: {shown}…", line.len());
        let start = line.trim_start();
        assert!(!start.starts_with("INFO forged") && !start.starts_with("yyyy"), "a forged line: {line}");
        assert!(!line.contains("forged=\"1"), "a forged field: {line}");
    }
    let about_device = lines.iter().filter(|l| l.contains("LOGDEV")).count();
    assert!(about_device <= 3, "30 refusals took {about_device} lines:\n{}", lines.join("\n"));
    // The 60 KB client id was refused: that is logged too, cut short (logged as it happens, so
    // before LOGDEV's lines).
    assert!(
        lines.iter().any(|l| l.contains("LONGIDxxxx") && l.contains("bytes)")),
        "the refused 60 KB client id is not in the log:\n{}",
        lines.join("\n")
    );
}

#[test]
fn a_thousand_varied_bad_requests_leave_a_few_dozen_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("IOT_TRUSTED_PROXIES", "127.0.0.1".to_owned())];
    let (server, log) = ServerProcess::start_logged(&dir.path().join("t.redb"), &env);
    let token = server.setup_token();
    let from = |i: usize| format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256);
    let mut sent = 0;

    // Wrong setup tokens, each from another address (so the per-address throttle never bites).
    for i in 0..200 {
        let (status, _, _) = post_form(
            &server,
            "/auth/setup",
            &[("X-Forwarded-For", &from(i))],
            &format!("token=guess{i}&name=eve&password=correct+horse"),
        );
        assert_eq!(status, 303);
        sent += 1;
    }
    let body = format!("token={token}&name=root&password=admin+password");
    let (status, head, _) = post_form(&server, "/auth/setup", &[("X-Forwarded-For", "10.200.0.1")], &body);
    assert_eq!((status, location(&head).as_str()), (303, "/"));
    let root = session_cookie(&head);
    let (status, _, body) = post_form(
        &server,
        "/api/admin/users/add",
        &[("Cookie", root.as_str())],
        "name=val&password=viewer+password&role=viewer",
    );
    assert_eq!(status, 200, "{body}");
    let viewer = sign_in(&server, "val", "viewer password");
    let before = log.lines().len();

    // Names that cannot exist (a space, over 64 characters), all from one address: no Argon2,
    // but no free pass either.
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..200 {
        let name = if i % 2 == 0 { format!("no+such+user+{i}") } else { format!("{}{i}", "n".repeat(70)) };
        let (status, _, _) = post_form(
            &server,
            "/auth/login",
            &[("X-Forwarded-For", "10.201.0.1")],
            &format!("name={name}&password=x"),
        );
        *statuses.entry(status).or_default() += 1;
        sent += 1;
    }
    assert_eq!(statuses.get(&303), Some(&20), "20 failures, then the address is refused: {statuses:?}");
    // Wrong passwords for names that could exist, each from another address.
    for i in 0..100 {
        let (status, _, _) = post_form(
            &server,
            "/auth/login",
            &[("X-Forwarded-For", &from(1000 + i))],
            &format!("name=user{i}&password=wrong"),
        );
        assert!([303, 503].contains(&status), "{status}");
        sent += 1;
    }
    // Other host names and other origins, a new one each time.
    for i in 0..200 {
        let (status, _, _) =
            send(server.http, "GET / HTTP/1.0", &[("Host", &format!("evil{i}.example"))], b"");
        assert_eq!(status, 421);
        sent += 1;
    }
    for i in 0..100 {
        let origin = format!("http://evil{i}.example");
        let (status, _, _) = http_full(
            server.http,
            "POST",
            "/api/telemetry",
            "application/json",
            &[("Origin", &origin)],
            b"{}",
        );
        assert_eq!(status, 403);
        sent += 1;
    }
    // A viewer trying to change things and to reach the admin page, a new path each time.
    for i in 0..100 {
        let (status, _, _) =
            post_form(&server, &format!("/api/dashboards/save?try={i}"), &[("Cookie", viewer.as_str())], "");
        assert_eq!(status, 403);
        sent += 1;
    }
    for i in 0..50 {
        let (status, _, _) = get_with(&server, &format!("/admin/{i}"), &[("Cookie", viewer.as_str())]);
        assert_eq!(status, 403);
        sent += 1;
    }
    // Devices without a key, a new client id each time.
    for i in 0..50 {
        assert!(Raw::try_connect_with(server.mqtt(), &Connect::new(&format!("NOKEY_{i}"))).is_err());
        sent += 1;
    }
    assert_eq!(sent, 1000);

    log.wait_for("the last refusal", |l| l.contains("NOKEY_") || l.contains("not_signed_in"));
    std::thread::sleep(Duration::from_millis(500));
    let lines = log.lines();
    let flood = &lines[before..];
    let warnings = flood.iter().filter(|l| l.contains("WARN")).count();
    // Seven kinds of refusal, each at most 10 lines and a notice that the rest are counted.
    assert!(warnings <= 7 * 11, "{warnings} warnings for 1,000 requests:\n{}", flood.join("\n"));
    assert!(
        flood.iter().any(|l| l.contains("the rest are counted")),
        "the log says lines were left out:\n{}",
        flood.join("\n")
    );
    let setup_lines = lines[..before].iter().filter(|l| l.contains("wrong setup token")).count();
    assert!(setup_lines <= 11, "200 wrong setup tokens took {setup_lines} lines");
}

// ---------------------------------------------------------------------------------------------
// Status messages

#[test]
fn status_messages_are_rate_limited_and_count_against_the_device_cap() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("IOT_MAX_DEVICES", "2".to_owned()),
        ("IOT_DEVICE_MESSAGES_PER_SEC", "4".to_owned()),
        ("IOT_DEVICE_BURST", "2".to_owned()),
    ];
    let server = ServerProcess::start(&dir.path().join("t.redb"), &env);
    let mut spammer = Raw::connect(server.mqtt(), "SPAMMER");
    for i in 0..5 {
        let topic = format!("app/device/NEW_{i}/status");
        assert_eq!(spammer.publish(topic.as_bytes(), b"online"), Answer::PubAck);
    }
    let too_many = "iot_messages_rejected_total{reason=\"too_many_devices\"}";
    assert_eq!(server.metric_opt(too_many), Some(3), "statuses for 5 new ids, 2 places");
    // The two places are taken: readings register those two devices, and no other.
    for i in 0..5 {
        let reading = seed_payload(1.0, 2.0, 3.0, now_ms() - 1_000);
        assert_eq!(
            spammer.publish(telemetry_topic(&format!("NEW_{i}")).as_bytes(), reading.as_bytes()),
            Answer::PubAck
        );
    }
    let devices = server.server_fn("devices", &[]);
    let ids: Vec<&str> =
        devices["devices"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["NEW_0", "NEW_1"]);
    assert_eq!(server.metric(too_many), 6);

    // One device's statuses, as fast as they go: held to its rate like readings.
    let started = Instant::now();
    for i in 0..8 {
        let payload = if i % 2 == 0 { "offline" } else { "online" };
        assert_eq!(spammer.publish(b"app/device/NEW_0/status", payload.as_bytes()), Answer::PubAck);
    }
    let took = started.elapsed();
    let throttled = server.metric_opt("iot_messages_throttled_total").unwrap_or(0);
    let dropped = server.metric_opt("iot_messages_rejected_total{reason=\"rate_limited\"}").unwrap_or(0);
    assert!(
        took >= Duration::from_millis(1_200) || dropped > 0,
        "8 statuses acknowledged in {took:?}, none dropped"
    );
    assert!(throttled + dropped >= 1, "statuses are not rate limited");
}

// ---------------------------------------------------------------------------------------------
// Device keys over HTTP

#[test]
fn a_device_key_posts_only_its_own_readings_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    let key = cli(&db, &["device", "key", "HTTP_DEV"], "");
    let server = ServerProcess::start(&db, &[]);
    let admin = sign_in(&server, "root", "admin password");
    let auth = basic("HTTP_DEV", &key);
    let post = |body: &str| {
        let (status, _, text) = http_full(
            server.http,
            "POST",
            "/api/telemetry",
            "application/json",
            &[("Authorization", &auth)],
            body.as_bytes(),
        );
        (status, text)
    };
    let at = now_ms() - 5_000;
    let (status, body) = post(&reading("HTTP_DEV", at));
    assert_eq!(status, 202, "{body}");
    let (status, body) = post(&reading("OTHER_DEV", at));
    assert_eq!(status, 403, "{body}");
    let (status, body) =
        post(&format!("[{}, {}]", reading("OTHER_DEV", at + 1), reading("THIRD_DEV", at + 1)));
    assert_eq!(status, 403, "{body}");
    let (status, body) =
        post(&format!("[{}, {}]", reading("HTTP_DEV", at + 2), reading("OTHER_DEV", at + 2)));
    assert_eq!(status, 202, "its own reading in a mixed batch: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((answer["accepted"].as_u64(), answer["rejected"].as_u64()), (Some(1), Some(1)), "{body}");

    assert!(device_as(&server, &admin, "OTHER_DEV").is_null(), "nothing stored for another device");
    assert!(device_as(&server, &admin, "THIRD_DEV").is_null());
    assert_eq!(device_as(&server, &admin, "HTTP_DEV")["message_count"], 2);

    // The key opens nothing else.
    let (status, _, _) = get_with(&server, "/api/devices", &[("Authorization", &auth)]);
    assert_eq!(status, 401);
    let dashboard = r#"{"dashboard": {"id": "owned", "name": "Owned", "widgets": []}}"#;
    let (status, _, _) = http_full(
        server.http,
        "POST",
        "/api/dashboards/save",
        "application/json",
        &[("Authorization", &auth)],
        dashboard.as_bytes(),
    );
    assert_eq!(status, 401);
    let wrong = basic("HTTP_DEV", "wrong");
    let (status, _, _) = http_full(
        server.http,
        "POST",
        "/api/telemetry",
        "application/json",
        &[("Authorization", &wrong)],
        reading("HTTP_DEV", at + 3).as_bytes(),
    );
    assert_eq!(status, 401, "a wrong key");
}

// ---------------------------------------------------------------------------------------------
// The live feed

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens `/ws/live` with a session cookie and reads its hello.
async fn live_with_cookie(http: SocketAddr, cookie: &str) -> Ws {
    live_with(http, ("Cookie", cookie)).await
}

/// Opens `/ws/live` with one credential header and reads its hello.
async fn live_with(http: SocketAddr, (name, value): (&str, &str)) -> Ws {
    let stream = tokio::net::TcpStream::connect(http).await.unwrap();
    let request = tokio_tungstenite::tungstenite::http::Request::builder()
        .uri(format!("ws://{http}/ws/live"))
        .header("Host", http.to_string())
        .header(name, value)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream).await.expect("websocket upgrade");
    let hello = tokio::time::timeout(TIMEOUT, ws.next()).await.expect("hello in time").unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"hello\""), "{hello:?}");
    ws
}

/// Whether the server closes the feed within `within`.
async fn closes_within(ws: &mut Ws, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_feed_closes_when_its_session_ends_or_its_user_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    cli(&db, &["user", "add", "bob", "--role", "admin"], "bob password");
    let server = ServerProcess::start(&db, &[]);
    let root = sign_in(&server, "root", "admin password");
    let mut feed = live_with_cookie(server.http, &root).await;

    // Another session signing out leaves this one be.
    let other = sign_in(&server, "root", "admin password");
    let (status, _, _) = post_form(&server, "/auth/logout", &[("Cookie", other.as_str())], "");
    assert_eq!(status, 303);
    assert!(!closes_within(&mut feed, Duration::from_secs(1)).await, "another session's sign-out");
    let (status, _, _) = post_form(&server, "/auth/logout", &[("Cookie", root.as_str())], "");
    assert_eq!(status, 303);
    assert!(closes_within(&mut feed, Duration::from_secs(5)).await, "the feed closes after sign-out");

    let bob = sign_in(&server, "bob", "bob password");
    let mut bobs = live_with_cookie(server.http, &bob).await;
    let root = sign_in(&server, "root", "admin password");
    let (status, _, body) =
        post_form(&server, "/api/admin/users/remove", &[("Cookie", root.as_str())], "name=bob&confirm=yes");
    assert_eq!(status, 200, "{body}");
    assert!(closes_within(&mut bobs, Duration::from_secs(5)).await, "a removed user's feed closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_one_s_password_ends_every_other_session_and_feed_basic_ones_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    cli(&db, &["user", "add", "bob", "--role", "viewer"], "bob password");
    let server = ServerProcess::start(&db, &[]);
    let laptop = sign_in(&server, "bob", "bob password");
    let phone = sign_in(&server, "bob", "bob password");
    let mut laptop_feed = live_with_cookie(server.http, &laptop).await;
    let old_basic = basic("bob", "bob password");
    let mut script_feed = live_with(server.http, ("Authorization", &old_basic)).await;

    // A wrong current password changes nothing.
    let as_phone = [("Cookie", phone.as_str())];
    let (status, head, _) =
        post_form(&server, "/auth/password", &as_phone, "current=guess&password=new+bob+password");
    assert_eq!((status, location(&head).as_str()), (303, "/account?error=wrong_password"));
    assert!(!closes_within(&mut laptop_feed, Duration::from_millis(500)).await);

    // Bob changes it from the phone (a viewer may: it is their own).
    let body = "current=bob+password&password=new+bob+password&confirm=new+bob+password";
    let (status, head, _) = post_form(&server, "/auth/password", &as_phone, body);
    assert_eq!((status, location(&head).as_str()), (303, "/account?done=password"), "{head}");
    let fresh = session_cookie(&head);
    assert!(closes_within(&mut laptop_feed, Duration::from_secs(5)).await, "the laptop's feed closes");
    assert!(
        closes_within(&mut script_feed, Duration::from_secs(5)).await,
        "a feed on the old Basic password closes"
    );
    for (who, cookie) in [("laptop", &laptop), ("phone", &phone)] {
        let (status, _, _) = get_with(&server, "/api/devices", &[("Cookie", cookie.as_str())]);
        assert_eq!(status, 401, "the {who}'s old session");
    }
    let (status, _, _) = get_with(&server, "/api/devices", &[("Cookie", fresh.as_str())]);
    assert_eq!(status, 200, "the session the change answered with");
    let (status, _, _) = get_with(&server, "/api/devices", &[("Authorization", old_basic.as_str())]);
    assert_eq!(status, 401, "the old password");
    let new_basic = basic("bob", "new bob password");
    let (status, _, _) = get_with(&server, "/api/devices", &[("Authorization", new_basic.as_str())]);
    assert_eq!(status, 200, "the new password");

    // Removed: a feed on Basic credentials closes too.
    let mut script_feed = live_with(server.http, ("Authorization", &new_basic)).await;
    let root = sign_in(&server, "root", "admin password");
    let (status, _, body) =
        post_form(&server, "/api/admin/users/remove", &[("Cookie", root.as_str())], "name=bob&confirm=yes");
    assert_eq!(status, 200, "{body}");
    assert!(
        closes_within(&mut script_feed, Duration::from_secs(5)).await,
        "a removed user's Basic feed closes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_feed_takes_no_client_message_over_1_kib() {
    use futures::SinkExt;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let connect = || async {
        let stream = tokio::net::TcpStream::connect(server.http).await.unwrap();
        let url = format!("ws://{}/ws/live", server.http);
        let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.expect("websocket upgrade");
        let hello = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap().unwrap().unwrap();
        assert!(hello.to_text().unwrap().contains("\"hello\""));
        ws
    };
    // A small message (a ping's worth) is read and ignored: the feed goes on.
    let mut small = connect().await;
    small.send(Message::text("x".repeat(100))).await.unwrap();
    let (status, body) = server.post_json("/api/telemetry", reading("WS_1", now_ms() - 1_000).as_bytes());
    assert_eq!(status, 202, "{body}");
    let event = tokio::time::timeout(TIMEOUT, small.next()).await.expect("an event").unwrap().unwrap();
    assert!(event.to_text().unwrap().contains("WS_1"), "{event:?}");
    // Over 1 KiB: the connection ends.
    let mut big = connect().await;
    big.send(Message::text("x".repeat(2 * 1024))).await.unwrap();
    assert!(closes_within(&mut big, Duration::from_secs(5)).await, "a 2 KiB message ends the feed");
}

// ---------------------------------------------------------------------------------------------
// Caching and origins

#[test]
fn data_is_not_cached_and_an_origin_must_match_the_scheme_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let post = |origin: &str, device: &str| {
        let body = reading(device, now_ms() - 1_000);
        http_full(
            server.http,
            "POST",
            "/api/telemetry",
            "application/json",
            &[("Origin", origin)],
            body.as_bytes(),
        )
        .0
    };
    let https = format!("https://{}", server.http);
    let http = format!("http://{}", server.http);
    assert_eq!(post(&https, "CACHE_2"), 403, "https is another origin than this plain-HTTP server");
    assert_eq!(post(&http, "CACHE_1"), 202);
    assert!(server.device("CACHE_2").is_null());

    let bearer = format!("Bearer {METRICS_TOKEN}");
    for (path, headers) in [
        ("/api/devices", vec![]),
        ("/api/device?id=CACHE_1", vec![]),
        ("/api/export.csv?device=CACHE_1", vec![]),
        ("/metrics", vec![("Authorization", bearer.as_str())]),
    ] {
        let (status, head, body) = get_with(&server, path, &headers);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(head.contains("cache-control: no-store"), "{path}: {head}");
    }
}

// ---------------------------------------------------------------------------------------------
// Broker bounds

#[test]
fn the_broker_refuses_long_client_ids_and_short_keepalives() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let addr = server.mqtt();
    let refused = |r: Result<Raw, Refused>| matches!(r, Err(Refused::Code(_) | Refused::Closed));

    let id_128 = "i".repeat(128);
    let id_129 = "i".repeat(129);
    assert!(Raw::try_connect_with(addr, &Connect::new(&id_128)).is_ok(), "128 bytes is allowed");
    assert!(refused(Raw::try_connect_with(addr, &Connect::new(&id_129))), "a 129 byte client id");
    let keep_alive =
        |secs: u16| Raw::try_connect_with(addr, &Connect { keep_alive: secs, ..Connect::new("KA_1") });
    assert!(keep_alive(5).is_ok(), "5 s is allowed");
    assert!(refused(keep_alive(2)), "keepalive 2 s");
    assert!(refused(keep_alive(0)), "keepalive 0: a silent client would hold its connection forever");
}

#[test]
fn a_full_broker_refuses_the_next_device_and_health_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("IOT_MQTT_MAX_CONNECTIONS", "3".to_owned())];
    let server = ServerProcess::start(&dir.path().join("t.redb"), &env);
    let addr = server.mqtt();
    let health = || {
        let (status, _, body) = get_with(&server, "/healthz", &[]);
        (status, serde_json::from_str::<Value>(&body).unwrap())
    };
    assert_eq!(health().0, 200);
    let mut devices: Vec<Raw> = (0..3).map(|i| Raw::connect(addr, &format!("FULL_{i}"))).collect();
    assert_eq!(
        Raw::try_connect_with(addr, &Connect::new("FULL_3")).err(),
        Some(Refused::Code(3)),
        "a fourth connection: server unavailable"
    );
    // Devices cannot get in: not healthy (once the last probe's answer has aged).
    std::thread::sleep(Duration::from_millis(2_100));
    let (status, body) = health();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["mqtt"], "down", "{body}");
    devices.pop();
    let mut fourth =
        eventually("a place frees up", || Raw::try_connect_with(addr, &Connect::new("FULL_3")).ok());
    let reading = seed_payload(1.0, 2.0, 3.0, now_ms() - 1_000);
    assert_eq!(fourth.publish(telemetry_topic("FULL_3").as_bytes(), reading.as_bytes()), Answer::PubAck);
    drop(fourth);
    std::thread::sleep(Duration::from_millis(2_100));
    let (_, body) = eventually("healthy again", || Some(health()).filter(|(s, _)| *s == 200));
    assert_eq!(body["mqtt"], "up", "{body}");
}

#[test]
fn the_broker_bounds_packets_and_ends_silent_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[mqtt]\nmax_packet_bytes = 1024\nhandshake_timeout_secs = 1\n").unwrap();
    let server =
        ServerProcess::start(&dir.path().join("t.redb"), &[("IOT_CONFIG", config.display().to_string())]);
    let addr = server.mqtt();

    // A packet under the limit is taken; one over it ends the connection.
    let mut device = Raw::connect(addr, "PKT_1");
    let small = payload([("t", 1.0)], now_ms() - 2_000);
    assert_eq!(device.publish(telemetry_topic("PKT_1").as_bytes(), small.as_bytes()), Answer::PubAck);
    let big = format!(r#"{{"telemetry": {{"t": 2}}, "pad": "{}"}}"#, "p".repeat(2_000));
    assert_eq!(device.publish(telemetry_topic("PKT_1").as_bytes(), big.as_bytes()), Answer::Disconnected);
    assert_eq!(server.device("PKT_1")["message_count"], 1);

    // A connection that never sends its CONNECT is ended after the handshake timeout.
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = std::io::Read::read(&mut silent, &mut buf);
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "ended after {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Metrics and health

#[test]
fn metrics_need_a_token_and_health_tells_strangers_only_ok() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    let server = ServerProcess::start(&db, &[]);
    let (status, _, _) = get_with(&server, "/metrics", &[]);
    assert_eq!(status, 401);
    let (status, _, _) = get_with(&server, "/metrics", &[("Authorization", "Bearer guess")]);
    assert_eq!(status, 401);
    let bearer = format!("Bearer {METRICS_TOKEN}");
    let (status, _, body) = get_with(&server, "/metrics", &[("Authorization", bearer.as_str())]);
    assert_eq!(status, 200);
    assert!(body.contains("iot_"), "{body}");

    let (status, _, body) = get_with(&server, "/healthz", &[]);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), serde_json::json!({"status": "ok"}), "{body}");
    // Public too, for the sign-in page: a stranger learns only that signing in is needed.
    let (status, _, body) = get_with(&server, "/api/whoami", &[]);
    assert_eq!(status, 200);
    let stranger = serde_json::json!({"user": null, "open": false, "setup_needed": false});
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), stranger, "{body}");
    let admin = sign_in(&server, "root", "admin password");
    let (_, _, body) = get_with(&server, "/api/whoami", &[("Cookie", admin.as_str())]);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["user"]["name"], "root", "{body}");
    let (status, _, body) = get_with(&server, "/healthz", &[("Cookie", admin.as_str())]);
    assert_eq!(status, 200);
    assert!(body.contains("\"storage\"") && body.contains("\"mqtt\""), "details for users: {body}");
}

// ---------------------------------------------------------------------------------------------
// Files and printed configuration

#[test]
fn databases_are_private_and_the_printed_config_hides_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    let server = ServerProcess::start(&db, &[]);
    assert_eq!(server.get("/healthz").0, 200);
    for file in ["t.redb", "users.redb"] {
        let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} is {mode:o}");
    }
    server.stop();

    let secrets = ["hunter22", "scrape-me-1234", "let-me-in-5678"];
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("--print-config")
        .env("IOT_STORAGE_PATH", &db)
        .env("IOT_MQTT_PASSWORD", secrets[0])
        .env("IOT_METRICS_TOKEN", secrets[1])
        .env("IOT_SETUP_TOKEN", secrets[2])
        .env_remove("IOT_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("mqtt") && printed.contains("t.redb"), "the config was printed: {printed}");
    for secret in secrets {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
}

// ---------------------------------------------------------------------------------------------
// Page loads abandoned mid-render

/// Sends a page request and hangs up: at once, after 1 ms, or once the first bytes are back.
fn abandon(addr: SocketAddr, path: &str, how: usize) {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\n\r\n");
    tcp.write_all(request.as_bytes()).unwrap();
    match how % 3 {
        0 => {}
        1 => std::thread::sleep(Duration::from_millis(1)),
        _ => {
            let _ = tcp.read(&mut [0; 512]);
        }
    }
}

#[test]
fn page_loads_abandoned_mid_render_are_counted_not_each_logged_as_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // With backtraces on, each such panic used to write about 130 lines.
    let env = [("RUST_BACKTRACE", "1".to_owned())];
    let (server, log) = ServerProcess::start_logged(&dir.path().join("t.redb"), &env);
    let widgets: Vec<Value> = (1..=6)
        .map(|i| serde_json::json!({"id": format!("w{i}"), "kind": "stat", "title": "T", "devices": ["D1"], "metrics": ["temperature"]}))
        .collect();
    let dashboard = serde_json::json!({"dashboard": {"id": "new", "name": "abandoned", "widgets": widgets,
        "layouts": {"wide": [], "medium": [], "phone": []}, "range": {"type": "last", "secs": 3600}}});
    let (status, body) = server.post_json("/api/dashboards/create", dashboard.to_string().as_bytes());
    assert_eq!(status, 200, "{body}");
    let page = format!("/d/{}", serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap());
    let before = log.lines().len();

    // About one load in seven left this way panicked a render task here; go until some did.
    let mut tries = 0;
    while server.metric("iot_render_panics_total") < 3 {
        assert!(
            tries < 3_000,
            "no render ran on after {tries} abandoned loads: if Leptos stopped them, drop web/render_panics.rs"
        );
        for _ in 0..50 {
            abandon(server.http, &page, tries);
            tries += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let lines = log.lines()[before..].to_vec();
    let text = lines.join("\n");
    assert!(
        !text.contains("panicked at") && !text.contains("stack backtrace"),
        "a panic was written:\n{text}"
    );
    let noted = lines.iter().filter(|l| l.contains("a page render panicked")).count();
    assert!((1..=2).contains(&noted), "one line a minute, not one each: {noted} in\n{text}");
    assert!(lines.len() < 20, "{} lines for {tries} abandoned loads:\n{text}", lines.len());
    assert_eq!(server.get(&page).0, 200, "the page still renders");
}
