//! The fleet on the running server: tags set through the dashboard's forms reach live clients
//! in order and survive a restart; bad tags are refused with the status they mean.

mod common;

use common::*;
use serde_json::json;

const FORM: &str = "application/x-www-form-urlencoded";

fn post_form(server: &ServerProcess, path: &str, form: &str) -> (u16, String) {
    http(server.http, "POST", path, FORM, form.as_bytes())
}

fn ingest(server: &ServerProcess, devices: &[&str]) {
    let items: Vec<_> = devices.iter().map(|d| json!({"device_id": d, "telemetry": {"t": 1}})).collect();
    let (status, body) = server.post_json("/api/telemetry", json!(items).to_string().as_bytes());
    assert_eq!(status, 202, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_set_live_kept_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    let server = ServerProcess::start(&db, &[]);
    ingest(&server, &["GH_1", "GH_2"]);
    let mut live = LiveClient::connect(server.http, "").await;

    let (status, body) = post_form(&server, "/api/device/tags", "id=GH_1&tags=site%3Dgreenhouse+floor%3D2");
    assert_eq!(status, 200, "{body}");
    let event = live.next().await;
    assert_eq!((event["type"].as_str(), event["device"].as_str()), (Some("tags"), Some("GH_1")));
    assert_eq!(event["tags"], json!({"floor": "2", "site": "greenhouse"}));
    ingest(&server, &["GH_1"]);
    let next = live.next().await;
    assert!(next["seq"].as_u64() > event["seq"].as_u64(), "numbered in order with readings: {next}");
    assert_eq!(server.device("GH_1")["tags"]["site"], "greenhouse");
    let changes = server.server_fn("changes", &[("after", "0"), ("limit", "100")]);
    assert!(changes["events"].as_array().unwrap().iter().any(|e| e["type"] == "tags"), "in the change log");

    // Refusals: a malformed tag (400), an unknown device (404), a device that would hold too many (409).
    let (status, body) = post_form(&server, "/api/device/tags", "id=GH_1&tags=%3Cscript%3E%3D1");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("tag 1"), "{body}");
    assert!(!body.contains("<script>"), "the refusal does not echo markup: {body}");
    assert_eq!(post_form(&server, "/api/device/tags", "id=NOBODY&tags=a%3D1").0, 404);
    let twenty: Vec<String> = (0..21).map(|i| format!("k{i}%3Dv")).collect();
    let (status, body) =
        post_form(&server, "/api/device/tags", &format!("id=GH_2&tags={}", twenty.join("+")));
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        post_form(&server, "/api/device/tags", &format!("id=GH_2&tags={}", twenty[..20].join("+"))).0,
        200
    );
    let long = format!("id=GH_2&tags={}", "a".repeat(5_000));
    assert_eq!(post_form(&server, "/api/device/tags", &long).0, 400);
    assert_eq!(server.device("GH_2")["tags"].as_object().unwrap().len(), 20);

    server.kill();
    let server = ServerProcess::start(&db, &[]);
    assert_eq!(server.device("GH_1")["tags"], json!({"floor": "2", "site": "greenhouse"}), "after kill -9");
    assert_eq!(server.device("GH_2")["tags"].as_object().unwrap().len(), 20);
}

fn post_json_value(server: &ServerProcess, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let (status, text) = server.post_json(path, body.to_string().as_bytes());
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

fn reading(server: &ServerProcess, device: &str, t: f64) {
    let item = json!({"device_id": device, "telemetry": {"t": t}});
    assert_eq!(server.post_json("/api/telemetry", item.to_string().as_bytes()).0, 202);
}

#[test]
fn groups_scope_alarm_rules_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    ingest(&server, &["GH_1", "GH_2", "BARN_1"]);
    for id in ["GH_1", "GH_2"] {
        assert_eq!(post_form(&server, "/api/device/tags", &format!("id={id}&tags=site%3Dgreenhouse")).0, 200);
    }

    // A group: a saved query, its id made from its name.
    let (status, body) =
        post_form(&server, "/api/group/save", "name=Greenhouse+sensors&query=tag%3Asite%3Dgreenhouse");
    assert_eq!(status, 200, "{body}");
    let group: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(group["id"], "greenhouse-sensors");
    assert_eq!(post_form(&server, "/api/group/save", "name=Greenhouse+sensors&query=id%3Ax").0, 409, "taken");
    let (status, body) = post_form(&server, "/api/group/save", "name=bad&query=stauts%3Ax");
    assert_eq!(status, 400);
    assert!(body.contains("at character 1") && body.contains("unknown field"), "{body}");
    assert_eq!(post_form(&server, "/api/group/save", "name=loop&query=group%3Agreenhouse-sensors").0, 400);
    assert_eq!(post_form(&server, "/api/group/save", "id=nope&name=x&query=id%3Ax").0, 404);
    let groups = server.server_fn("groups", &[]);
    assert_eq!(groups.as_array().unwrap().len(), 1);

    // A rule scoped by the group watches its devices only.
    let rule = json!({"name": "hot", "kind": "threshold", "metric": "t", "op": ">",
        "levels": [{"severity": "major", "value": 30}], "scope": "group:greenhouse-sensors"});
    let (status, stored) = post_json_value(&server, "/api/alarm_rules", &rule);
    assert_eq!(status, 201, "{stored}");
    let mut bad = rule.clone();
    bad["scope"] = "group:nope".into();
    let (status, answer) = post_json_value(&server, "/api/alarm_rules", &bad);
    assert!(status == 400 || status == 422, "{status} {answer}");
    assert!(answer.to_string().contains("there is no group nope"), "{answer}");
    bad["scope"] = "status:online".into();
    let (status, answer) = post_json_value(&server, "/api/alarm_rules", &bad);
    assert!(status == 400 || status == 422, "{status} {answer}");
    reading(&server, "BARN_1", 35.0);
    reading(&server, "GH_1", 35.0);
    let active = eventually("GH_1's alarm", || {
        let (_, text) = server.get("/api/alarms?status=active");
        let list: serde_json::Value = serde_json::from_str(&text).ok()?;
        let devices: Vec<String> =
            list.as_array()?.iter().filter_map(|a| a["device"].as_str().map(str::to_owned)).collect();
        (!devices.is_empty()).then_some(devices)
    });
    assert_eq!(active, ["GH_1"], "BARN_1 is outside the scope");
    // Tagging BARN_1 brings it into the scope at once.
    assert_eq!(post_form(&server, "/api/device/tags", "id=BARN_1&tags=site%3Dgreenhouse").0, 200);
    reading(&server, "BARN_1", 36.0);
    eventually("BARN_1's alarm", || {
        let (_, text) = server.get("/api/alarms?status=active");
        text.contains("BARN_1").then_some(())
    });
    let (status, body) = post_form(&server, "/api/group/delete", "id=greenhouse-sensors&confirm=yes");
    assert_eq!(status, 409, "a rule's scope names it: {body}");

    // Exports by query: every matching device's readings, a bad query a 400 saying where.
    let (status, csv) = server.get("/api/export.csv?q=group%3Agreenhouse-sensors%20-id%3ABARN_1&metric=t");
    assert_eq!(status, 200, "{csv}");
    let devices: std::collections::BTreeSet<&str> =
        csv.lines().skip(1).filter_map(|l| l.split(',').nth(2)).collect();
    assert_eq!(devices.into_iter().collect::<Vec<_>>(), ["GH_1", "GH_2"]);
    let (status, body) = server.get("/api/export.csv?q=tag%3Asite%3Dgreenhouse%20stauts%3Ax");
    assert_eq!(status, 400);
    assert!(body.contains("at character 21"), "{body}");
    assert_eq!(server.get("/api/export.csv").0, 400, "a device or a query");
    assert_eq!(server.get("/api/export.csv?device=NOPE").0, 404);
}
