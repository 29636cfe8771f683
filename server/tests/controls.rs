//! Dashboard controls on the running server: only admins operate them (viewers read their
//! state); the server checks a value against the control as stored on its dashboard, makes
//! the command or the desired change in the operator's name, and logs who did it with the
//! device's state before and after.

mod common;

use std::net::SocketAddr;

use common::*;
use serde_json::{Value, json};

const FORM: &str = "application/x-www-form-urlencoded";
const ROOT: &str = "root:admin password";
const VAL: &str = "val:viewer password";

fn operate(addr: SocketAddr, login: &str, dashboard: &str, widget: &str, value: &str) -> (u16, String) {
    let form = format!("dashboard={dashboard}&widget={widget}&value={}", urlencode(value));
    http_as(addr, login, "POST", "/api/control/operate", FORM, &form)
}

/// A dashboard with a switch per binding for device PUMP: `cmd` sends `set_relay {"on": …}`
/// and shows the metric `relay`; `desired` sets the desired key `relay`.
fn board() -> Value {
    let switch = |id: &str, binding: Value| {
        json!({"id": id, "kind": "switch", "title": id, "devices": ["PUMP"],
            "control": {"binding": binding, "timeout_secs": 5}})
    };
    let place = |widget: &str, x: u32| json!({"widget": widget, "x": x, "y": 0, "w": 3, "h": 2});
    json!({"dashboard": {"id": "x", "name": "Pump", "widgets": [
            switch("cmd", json!({"to": "command", "method": "set_relay", "key": "on", "metric": "relay"})),
            switch("desired", json!({"to": "desired", "key": "relay"})),
        ],
        "layouts": {"wide": [place("cmd", 0), place("desired", 3)], "medium": [], "phone": []},
        "range": {"type": "last", "secs": 86400}}})
}

#[test]
fn only_admins_operate_controls_and_each_change_is_logged_with_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let (server, log) = ServerProcess::start_with_admin_and_viewer(&db);
    let http = server.http;
    let reading = r#"{"device_id": "PUMP", "telemetry": {"relay": 0}}"#;
    assert_eq!(http_as(http, ROOT, "POST", "/api/telemetry", "application/json", reading).0, 202);
    let (status, body) =
        http_as(http, ROOT, "POST", "/api/dashboards/create", "application/json", &board().to_string());
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();

    // A viewer is refused (by the sign-in guard, which lets viewers post nothing; the server
    // function would refuse them too), and nothing is sent or changed.
    for widget in ["cmd", "desired"] {
        let (status, body) = operate(http, VAL, &id, widget, "true");
        assert_eq!(status, 403, "{body}");
        assert!(body.to_lowercase().contains("only admins"), "{body}");
    }
    let (_, commands) = http_as(http, ROOT, "GET", "/api/devices/PUMP/commands", "", "");
    assert_eq!(serde_json::from_str::<Value>(&commands).unwrap()["commands"], json!([]), "{commands}");
    let (_, desired) = http_as(http, ROOT, "GET", "/api/devices/PUMP/desired", "", "");
    assert_eq!(serde_json::from_str::<Value>(&desired).unwrap()["v"], 0, "{desired}");

    // The admin's command switch makes set_relay {"on": true} in root's name.
    let (status, body) = operate(http, ROOT, &id, "cmd", "true");
    assert_eq!(status, 200, "{body}");
    let made: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(made["type"], "command", "{body}");
    let command = &made["command"];
    assert_eq!(
        (&command["method"], &command["params"], &command["created_by"]),
        (&json!("set_relay"), &json!({"on": true}), &json!("root"))
    );
    assert_eq!(command["timeout_ms"], 5000, "the control's timeout");
    let line = log.wait_for("the command's audit line", |l| {
        l.contains("control operated") && l.contains("command set_relay")
    });
    for part in ["by=root", "widget=cmd", "device=PUMP", "before=0", r#"after={\"on\":true}"#] {
        assert!(line.contains(part), "{part} in {line}");
    }

    // The desired switch patches relay, in root's name; before it, the device reported nothing.
    let (status, body) = operate(http, ROOT, &id, "desired", "true");
    assert_eq!(status, 200, "{body}");
    let changed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(changed["type"], "desired", "{body}");
    assert_eq!(
        (&changed["shadow"]["state"], &changed["shadow"]["updated_by"]),
        (&json!({"relay": true}), &json!("root"))
    );
    let line = log
        .wait_for("the desired audit line", |l| l.contains("control operated") && l.contains("desired v1"));
    for part in ["by=root", "widget=desired", "before=null", r#"after={\"relay\":true}"#] {
        assert!(line.contains(part), "{part} in {line}");
    }

    // Values the control does not take, and controls that are not there.
    let (status, body) = operate(http, ROOT, &id, "cmd", "\"yes\"");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("a switch takes true or false"), "{body}");
    assert_eq!(operate(http, ROOT, &id, "nothing", "true").0, 404);
    assert_eq!(operate(http, ROOT, "no-such-board", "cmd", "true").0, 404);
    assert_eq!(operate(http, ROOT, &id, "cmd", "not json").0, 400);

    // Viewers read a control's state, and are told they cannot act.
    let (status, body) = http_as(http, VAL, "GET", "/api/control_state?device=PUMP&method=set_relay", "", "");
    assert_eq!(status, 200, "{body}");
    let start: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(start["can_act"], false);
    assert_eq!(start["seed"]["shadow"]["state"], json!({"relay": true}));
    assert_eq!(start["seed"]["last"]["params"], json!({"on": true}));
    let (_, body) = http_as(http, ROOT, "GET", "/api/control_state?device=PUMP", "", "");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["can_act"], true, "{body}");
    // The page renders its controls on the server: the device's state, disabled until the
    // page's script runs them.
    let page = page_as(http, ROOT, &format!("/d/{id}"));
    assert_eq!(page.matches(r#"role="switch""#).count(), 2, "{page}");
    assert!(page.contains(r#"aria-checked="false""#) && page.contains(r#"title="Loading…""#), "{page}");
    server.stop();
}
