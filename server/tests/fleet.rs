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
