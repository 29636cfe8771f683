//! The admin page's server functions on the running server: only signed-in admins manage
//! users and device keys, nobody removes themselves, and a key issued there lets its device
//! connect until another replaces it or it is revoked.

mod common;

use std::net::SocketAddr;

use base64::Engine;
use common::raw::Raw;
use common::*;
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";

fn add_user(db: &std::path::Path, name: &str, role: &str, password: &str) {
    cli(db, &["user", "add", name, "--role", role], password);
}

/// A server function call with HTTP Basic credentials: status and body.
fn call(addr: SocketAddr, login: &str, method: &str, path: &str, form: &str) -> (u16, String) {
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(login));
    let headers = [("Authorization", basic.as_str())];
    let (status, _, body) = http_full(addr, method, path, FORM, &headers, form.as_bytes());
    (status, body)
}

/// HTTP Basic logins of the two users [`with_admin_and_viewer`] makes.
const ROOT: &str = "root:admin password";
const VAL: &str = "val:viewer password";

/// A running server whose users are the admin `root` and the viewer `val`.
fn with_admin_and_viewer() -> (tempfile::TempDir, ServerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    add_user(&db, "root", "admin", "admin password");
    add_user(&db, "val", "viewer", "viewer password");
    let server = ServerProcess::start(&db, &[]);
    (dir, server)
}

fn connack(addr: SocketAddr, device: &str, key: &str) -> String {
    match Raw::try_connect_as(addr, device, Some((device, key))) {
        Ok(_) => "accepted".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn only_admins_manage_users_and_nobody_removes_themselves() {
    let (_dir, server) = with_admin_and_viewer();
    let (root, val) = (ROOT, VAL);
    let http = server.http;

    assert_eq!(call(http, val, "GET", "/api/admin/users", "").0, 403);
    assert_eq!(call(http, val, "GET", "/api/admin/device_keys", "").0, 403);
    assert_eq!(
        call(http, val, "POST", "/api/admin/users/add", "name=eve&password=long+enough&role=admin").0,
        403
    );
    assert_eq!(call(http, val, "GET", "/admin", "").0, 403);

    let (status, body) = call(http, root, "GET", "/api/admin/users", "");
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["me"], "root");
    assert_eq!(list["users"].as_array().unwrap().len(), 2, "{body}");

    let (status, body) =
        call(http, root, "POST", "/api/admin/users/add", "name=ann&password=ann+password&role=viewer");
    assert_eq!(status, 200, "{body}");
    assert_eq!(call(http, "ann:ann password", "GET", "/api/devices", "").0, 200, "ann signs in");
    let (_, body) =
        call(http, root, "POST", "/api/admin/users/add", "name=ann&password=other+password&role=admin");
    assert!(body.contains("a user with that name exists"), "{body}");
    assert_eq!(call(http, "ann:ann password", "GET", "/api/devices", "").0, 200, "ann's password stays");

    let (_, body) = call(http, root, "POST", "/api/admin/users/remove", "name=root&confirm=yes");
    assert!(body.contains("you cannot remove yourself"), "{body}");
    let (_, body) = call(http, root, "POST", "/api/admin/users/role", "name=root&role=viewer");
    assert!(body.contains("change your own role"), "{body}");
    let (_, body) = call(http, root, "POST", "/api/admin/users/remove", "name=val");
    assert!(body.contains("tick the box"), "removing needs the confirmation: {body}");

    // With two admins, one may demote the other.
    let (status, body) = call(http, root, "POST", "/api/admin/users/role", "name=val&role=admin");
    assert_eq!(status, 200, "{body}");
    assert_eq!(call(http, val, "GET", "/api/admin/users", "").0, 200, "a new admin's role holds at once");
    let (status, body) = call(http, val, "POST", "/api/admin/users/role", "name=root&role=viewer");
    assert_eq!(status, 200, "{body}");
    // Now val is the only admin: root, a viewer, can no longer manage anyone, and val cannot
    // leave (the store also refuses to drop its last admin: see auth::accounts' tests).
    assert_eq!(call(http, root, "GET", "/api/admin/users", "").0, 403);
    let (_, body) = call(http, val, "POST", "/api/admin/users/remove", "name=val&confirm=yes");
    assert!(body.contains("you cannot remove yourself"), "{body}");

    let (status, body) = call(http, val, "POST", "/api/admin/users/remove", "name=ann&confirm=yes");
    assert_eq!(status, 200, "{body}");
    assert_eq!(call(http, "ann:ann password", "GET", "/api/devices", "").0, 401, "ann is gone");
}

#[test]
fn a_key_issued_by_an_admin_lets_its_device_in_until_replaced_or_revoked() {
    let (_dir, server) = with_admin_and_viewer();
    let (root, val) = (ROOT, VAL);
    let (http, mqtt) = (server.http, server.mqtt());

    assert_eq!(call(http, val, "POST", "/api/admin/device_keys/issue", "device=DEV_A").0, 403);
    let issue = || {
        let (status, body) = call(http, root, "POST", "/api/admin/device_keys/issue", "device=DEV_A");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let first = issue();
    assert_eq!(first["replaced"], false);
    let first_key = first["key"].as_str().unwrap().to_owned();
    assert_eq!(connack(mqtt, "DEV_A", &first_key), "accepted");

    let second = issue();
    assert_eq!(second["replaced"], true);
    let second_key = second["key"].as_str().unwrap().to_owned();
    assert!(connack(mqtt, "DEV_A", &first_key).contains("[32, 2, 0, 4]"), "the replaced key is refused");
    assert_eq!(connack(mqtt, "DEV_A", &second_key), "accepted");
    let (_, body) = call(http, root, "GET", "/api/admin/device_keys", "");
    assert_eq!(body, r#"["DEV_A"]"#);

    let (_, body) = call(http, root, "POST", "/api/admin/device_keys/issue", "device=a%2Fb");
    assert!(body.contains("device ids are 1 to 64"), "{body}");
    assert_eq!(call(http, val, "POST", "/api/admin/device_keys/revoke", "device=DEV_A&confirm=yes").0, 403);
    let (status, body) =
        call(http, root, "POST", "/api/admin/device_keys/revoke", "device=DEV_A&confirm=yes");
    assert_eq!(status, 200, "{body}");
    assert!(connack(mqtt, "DEV_A", &second_key).contains("[32, 2, 0, 4]"), "revoked");
    let (_, body) = call(http, root, "POST", "/api/admin/device_keys/revoke", "device=DEV_A&confirm=yes");
    assert!(body.contains("that device has no key"), "{body}");
}
