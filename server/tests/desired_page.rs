//! The device page's desired-state edit (`/api/device_desired/set`, the server function its
//! form posts to) on the running server: only admins change it; each edit is made against the
//! version the page showed, so one made meanwhile is refused (412) rather than overwritten;
//! inputs are bounded (400/413/422, never 500); and every change is logged with who made it
//! and the state before and after. The page itself renders the form for admins only.

mod common;

use std::net::SocketAddr;

use common::*;
use serde_json::{Value, json};

const FORM: &str = "application/x-www-form-urlencoded";
const ROOT: &str = "root:admin password";
const VAL: &str = "val:viewer password";

/// Sets `key` to `value` (or removes it) on PUMP against `version`, as `login`.
fn set(addr: SocketAddr, login: &str, key: &str, value: &str, version: &str, remove: bool) -> (u16, String) {
    let mut form = format!("device=PUMP&key={}&value={}&version={version}", urlencode(key), urlencode(value));
    if remove {
        form.push_str("&remove=yes");
    }
    http_as(addr, login, "POST", "/api/device_desired/set", FORM, &form)
}

fn desired(addr: SocketAddr) -> Value {
    let (status, body) = http_as(addr, ROOT, "GET", "/api/devices/PUMP/desired", "", "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn admins_edit_the_desired_state_against_the_version_they_saw_and_each_change_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let (server, log) = ServerProcess::start_with_admin_and_viewer(&db);
    let http = server.http;
    let reading = r#"{"device_id": "PUMP", "telemetry": {"temperature": 20}}"#;
    assert_eq!(http_as(http, ROOT, "POST", "/api/telemetry", "application/json", reading).0, 202);

    // A viewer is refused, and nothing changes; the page shows them no form.
    let (status, body) = set(http, VAL, "interval_s", "30", "0", false);
    assert_eq!(status, 403, "{body}");
    assert_eq!(desired(http)["v"], 0);
    let viewed = page_as(http, VAL, "/device/PUMP");
    assert!(viewed.contains("Desired state") && !viewed.contains("desired-edit"), "{viewed}");

    // The admin sets interval_s against version 0, in root's name.
    let (status, body) = set(http, ROOT, "interval_s", "30", "0", false);
    assert_eq!(status, 200, "{body}");
    let shadow: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&shadow["v"], &shadow["state"], &shadow["updated_by"]),
        (&json!(1), &json!({"interval_s": 30}), &json!("root"))
    );
    let line = log.wait_for("the audit line", |l| l.contains("desired state edited") && l.contains("v=1"));
    for part in ["by=root", "device=PUMP", "before={}", r#"after={\"interval_s\":30}"#] {
        assert!(line.contains(part), "{part} in {line}");
    }

    // An edit made against version 0 again (someone else's page, read before the change) is
    // refused in words, and the change stands.
    let (status, body) = set(http, ROOT, "interval_s", "60", "0", false);
    assert_eq!(status, 412, "{body}");
    assert!(body.contains("Changed meanwhile by someone else") && body.contains("version 1 now"), "{body}");
    assert_eq!(
        (desired(http)["v"].clone(), desired(http)["state"].clone()),
        (json!(1), json!({"interval_s": 30}))
    );

    // Another key, then one removed (a merge patch with null), each logged with before/after.
    assert_eq!(set(http, ROOT, "mode", "\"eco\"", "1", false).0, 200);
    let (status, body) = set(http, ROOT, "interval_s", "", "2", true);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (desired(http)["v"].clone(), desired(http)["state"].clone()),
        (json!(3), json!({"mode": "eco"}))
    );
    let line =
        log.wait_for("the removal's audit line", |l| l.contains("desired state edited") && l.contains("v=3"));
    for part in [r#"before={\"interval_s\":30,\"mode\":\"eco\"}"#, r#"after={\"mode\":\"eco\"}"#] {
        assert!(line.contains(part), "{part} in {line}");
    }

    // Bounded inputs, refused with their status and in words; nothing changes.
    let refused = [
        (set(http, ROOT, "bad key", "1", "3", false), 422, "a key is 1 to 64"),
        (set(http, ROOT, &"k".repeat(65), "1", "3", false), 422, "a key is 1 to 64"),
        (set(http, ROOT, "k", "eco", "3", false), 400, "not JSON"),
        (set(http, ROOT, "k", "", "3", false), 422, "give a value"),
        (set(http, ROOT, "k", &format!("\"{}\"", "x".repeat(1024)), "3", false), 413, "at most 1024 bytes"),
        (set(http, ROOT, "k", "1", "three", false), 400, "version must be a whole number"),
    ];
    for ((status, body), want, words) in refused {
        assert_eq!(status, want, "{body}");
        assert!(body.contains(words), "{words} in {body}");
    }
    let form = "device=NOBODY&key=k&value=1&version=0";
    assert_eq!(http_as(http, ROOT, "POST", "/api/device_desired/set", FORM, form).0, 404);
    assert_eq!(desired(http)["v"], 3);

    // The admin's page shows the document, its version and the form.
    let admin = page_as(http, ROOT, "/device/PUMP");
    for part in ["desired-edit", r#"data-key="mode""#, "Pending: the device has never reported"] {
        assert!(admin.contains(part), "{part} in the page");
    }
    server.stop();
}
