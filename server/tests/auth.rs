//! Sign-in on the running server: open until the first admin is set up, then every page,
//! server function, export and the live feed need a session; viewers only look; wrong
//! passwords are throttled; scripts can use HTTP Basic.

mod common;

use common::raw::{Answer, Raw};
use common::*;

const FORM: &str = "application/x-www-form-urlencoded";

/// The session cookie a response set, as a `Cookie` header value.
fn session_cookie(head: &str) -> String {
    let line = head.lines().find(|l| l.starts_with("set-cookie: iot_session=")).expect("a session cookie");
    let value = line.trim_start_matches("set-cookie: ");
    assert!(value.contains("httponly") && value.contains("samesite=strict"), "{value}");
    value.split(';').next().unwrap().to_owned()
}

fn location(head: &str) -> String {
    head.lines().find_map(|l| l.strip_prefix("location: ")).unwrap_or_default().trim().to_owned()
}

#[test]
fn the_first_admin_closes_the_dashboard_and_sessions_open_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let get = |path: &str, headers: &[(&str, &str)]| http_full(server.http, "GET", path, "", headers, b"");
    let post = |path: &str, headers: &[(&str, &str)], body: &str| {
        http_full(server.http, "POST", path, FORM, headers, body.as_bytes())
    };

    // No user yet: open, and the whoami answer says setup is needed.
    assert_eq!(get("/api/devices", &[]).0, 200);
    let (_, _, who) = get("/api/whoami", &[]);
    assert!(who.contains("\"setup_needed\":true") && who.contains("\"open\":true"), "{who}");

    // Setup needs the one-time token the server printed (as a link).
    let link = server.setup_link();
    assert!(link.starts_with(&format!("http://{}/setup?token=", server.http)), "{link}");
    let token = server.setup_token();
    let (status, head, _) = post("/auth/setup", &[], "name=eve&password=correct+horse");
    assert_eq!((status, location(&head).as_str()), (303, "/setup?error=token"), "no token, no admin");
    let (status, head, _) = post("/auth/setup", &[], "token=guess&name=eve&password=correct+horse");
    assert_eq!((status, location(&head).as_str()), (303, "/setup?error=token"));
    let (status, head, _) = post("/auth/setup", &[], &format!("token={token}&name=ann&password=short"));
    assert_eq!((status, location(&head).as_str()), (303, "/setup?error=password"));
    let (status, head, _) =
        post("/auth/setup", &[], &format!("token={token}&name=ann&password=correct+horse"));
    assert_eq!((status, location(&head).as_str()), (303, "/"));
    let admin = session_cookie(&head);
    let (status, head, _) =
        post("/auth/setup", &[], &format!("token={token}&name=eve&password=correct+horse"));
    assert_eq!((status, location(&head).as_str()), (303, "/setup?error=done"), "setup happens once");

    // Strangers: pages redirect to sign-in, data answers 401; static files and health stay open.
    let (status, head, _) = get("/d/overview?range=1h", &[("Accept", "text/html")]);
    assert_eq!((status, location(&head).as_str()), (303, "/login?next=/d/overview%3frange%3d1h"));
    for path in ["/api/devices", "/api/dashboards", "/api/export.csv?device=x", "/ws/live"] {
        assert_eq!(get(path, &[]).0, 401, "{path}");
    }
    assert_eq!(get("/login", &[("Accept", "text/html")]).0, 200);
    assert_eq!(get("/healthz", &[]).0, 200);
    // (The test server has no site folder: a static file is not found, but not refused.)
    assert_eq!(get("/manifest.webmanifest", &[]).0, 404);
    assert_eq!(get("/pkg/iot-dashboard.js", &[]).0, 404);
    let (status, _, _) = http_full(
        server.http,
        "POST",
        "/api/telemetry",
        "application/json",
        &[],
        br#"{"device_id": "AUTH_1", "telemetry": {"t": 1}}"#,
    );
    assert_eq!(status, 401, "HTTP ingest needs credentials too");

    // The admin's session opens everything.
    let with_admin = [("Cookie", admin.as_str())];
    assert_eq!(get("/api/devices", &with_admin).0, 200);
    let (_, _, who) = get("/api/whoami", &with_admin);
    assert!(who.contains("\"name\":\"ann\"") && who.contains("\"role\":\"admin\""), "{who}");
    assert_eq!(get("/d/overview", &[("Accept", "text/html"), ("Cookie", admin.as_str())]).0, 200);

    // Wrong passwords go back to the form, then get throttled.
    let (status, head, _) = post("/auth/login", &[], "name=ann&password=nope&next=%2Fdashboards");
    assert_eq!((status, location(&head).as_str()), (303, "/login?error=invalid&next=/dashboards"));
    for _ in 0..4 {
        post("/auth/login", &[], "name=ann&password=nope");
    }
    let (status, head, _) = post("/auth/login", &[], "name=ann&password=correct+horse");
    assert_eq!(status, 429, "throttled even with the right password");
    assert!(head.contains("retry-after"), "{head}");

    // Sign out ends the session.
    let (status, head, _) = post("/auth/logout", &with_admin, "");
    assert_eq!((status, location(&head).as_str()), (303, "/login"));
    assert!(head.contains("max-age=0"), "{head}");
    assert_eq!(get("/api/devices", &with_admin).0, 401);
}

#[test]
fn viewers_look_admins_change_and_scripts_use_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    for (name, role, password) in [("root", "admin", "admin password"), ("val", "viewer", "viewer password")]
    {
        cli(&db, &["user", "add", name, "--role", role], password);
    }
    let server = ServerProcess::start(&db, &[]);
    let (status, head, _) = http_full(
        server.http,
        "POST",
        "/auth/login",
        FORM,
        &[],
        b"name=val&password=viewer+password&next=%2Fd%2Foverview",
    );
    assert_eq!((status, location(&head).as_str()), (303, "/d/overview"));
    let viewer = session_cookie(&head);

    let get = |path: &str, cookie: &str| http_full(server.http, "GET", path, "", &[("Cookie", cookie)], b"");
    assert_eq!(get("/api/dashboards", &viewer).0, 200, "viewers read");
    let (status, _, body) = http_full(
        server.http,
        "POST",
        "/api/device/delete",
        FORM,
        &[("Cookie", viewer.as_str())],
        b"id=anything&confirm=yes",
    );
    assert_eq!(status, 403, "{body}");

    // A script with the admin's credentials.
    let basic = format!("Basic {}", base64_encode("root:admin password"));
    let (status, body) = post_reading_as(&server, &basic, "AUTH_2");
    assert_eq!(status, 202, "{body}");
    let wrong = format!("Basic {}", base64_encode("root:wrong"));
    let (status, head, _) =
        http_full(server.http, "GET", "/api/devices", "", &[("Authorization", wrong.as_str())], b"");
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: basic"), "{head}");
    let viewer_basic = format!("Basic {}", base64_encode("val:viewer password"));
    let (status, _) = post_reading_as(&server, &viewer_basic, "AUTH_3");
    assert_eq!(status, 403, "viewers cannot send readings");
}

/// One reading through HTTP ingest with an `Authorization` header.
fn post_reading_as(server: &ServerProcess, authorization: &str, device: &str) -> (u16, String) {
    let body = format!(r#"{{"device_id": "{device}", "telemetry": {{"t": 1}}}}"#);
    let headers = [("Authorization", authorization)];
    let (status, _, body) =
        http_full(server.http, "POST", "/api/telemetry", "application/json", &headers, body.as_bytes());
    (status, body)
}

#[test]
fn devices_sign_in_to_the_broker_with_their_key_and_keep_to_their_topics() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    cli(&db, &["user", "add", "root"], "admin password");
    let key = cli(&db, &["device", "key", "DEV_A"], "");
    assert_eq!(key.len(), 48, "{key}");
    let server = ServerProcess::start(&db, &[]);
    let addr = server.mqtt();
    let refused = |client: &str, login: Option<(&str, &str)>| {
        Raw::try_connect_as(addr, client, login).err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert!(refused("DEV_A", None).contains("[32, 2, 0, 5]"), "anonymous: not authorised");
    assert!(refused("DEV_A", Some(("DEV_A", "guess"))).contains("[32, 2, 0, 4]"), "wrong key");
    assert!(
        refused("DEV_B", Some(("DEV_A", key.as_str()))).contains("[32, 2, 0, 5]"),
        "someone else's client id"
    );
    for reason in ["not_signed_in", "wrong_key", "client_id_not_device"] {
        assert_eq!(server.metric(&format!("iot_mqtt_connections_refused_total{{reason=\"{reason}\"}}")), 1);
    }

    let mut dev = Raw::try_connect_as(addr, "DEV_A", Some(("DEV_A", key.as_str()))).expect("the right key");
    let reading = seed_payload(21.0, 40.0, 3.9, now_ms() - 1_000);
    assert_eq!(dev.publish(b"app/device/DEV_A/telemetry", reading.as_bytes()), Answer::PubAck);
    assert_eq!(dev.publish(b"app/device/DEV_B/telemetry", reading.as_bytes()), Answer::PubAck);
    assert_eq!(dev.publish(b"elsewhere/x", b"hello"), Answer::PubAck);
    assert_eq!(dev.subscribe("app/device/#"), 0x80, "no reading other devices");
    assert_eq!(dev.subscribe("app/device/DEV_A/#"), 1);
    let basic = format!("Basic {}", base64_encode("root:admin password"));
    let (_, _, body) =
        http_full(server.http, "GET", "/api/device?id=DEV_A", "", &[("Authorization", basic.as_str())], b"");
    assert!(body.contains("\"message_count\":1"), "{body}");
    let (_, _, body) =
        http_full(server.http, "GET", "/api/device?id=DEV_B", "", &[("Authorization", basic.as_str())], b"");
    assert!(body.contains("\"device\":null"), "nothing published as another device: {body}");
    assert_eq!(server.metric("iot_messages_rejected_total{reason=\"not_authorized\"}"), 2);
}

fn base64_encode(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
