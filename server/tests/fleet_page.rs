//! The fleet view on the running server: `/api/fleet` pages, sorts and filters every device
//! by a fleet query, with the chips' counts and each device's open alarms; `/fleet` renders
//! the same rows as plain HTML; `/api/fleet.csv` lists every matching device; and only admins
//! change tags in bulk (viewers read the list and its CSV, strangers nothing).

mod common;

use std::net::SocketAddr;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

const FORM: &str = "application/x-www-form-urlencoded";

/// Devices FP_000 … FP_249: rssi -50 … -99 (every fifth weak, under -80), t = 20, the
/// first 100 tagged site=greenhouse.
fn fill(server: &ServerProcess) {
    let items: Vec<Value> = (0..250)
        .map(|i| json!({"device_id": format!("FP_{i:03}"), "telemetry": {"t": 20, "rssi": -50 - (i % 50)}}))
        .collect();
    let (status, body) = server.post_json("/api/telemetry", json!(items).to_string().as_bytes());
    assert_eq!(status, 202, "{body}");
    let ids: Vec<String> = (0..100).map(|i| format!("ids[]=FP_{i:03}")).collect();
    let (status, body) = http(
        server.http,
        "POST",
        "/api/fleet/tags",
        FORM,
        format!("{}&add=site%3Dgreenhouse", ids.join("&")).as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
}

fn fleet(server: &ServerProcess, q: &str, sort: &str, page: u32) -> Value {
    server.server_fn("fleet", &[("q", q), ("sort", sort), ("page", &page.to_string())])
}

fn ids(list: &Value) -> Vec<String> {
    list["rows"].as_array().unwrap().iter().map(|r| r["device"]["id"].as_str().unwrap().to_owned()).collect()
}

fn rssi(i: usize) -> i64 {
    -50 - (i % 50) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_is_paged_sorted_and_filtered_on_the_server_with_chips_alarms_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    fill(&server);

    // Every device, 100 a page, in the default order (status, then id).
    let first = fleet(&server, "", "", 1);
    assert_eq!((first["matching"].as_u64(), first["fleet"].as_u64()), (Some(250), Some(250)));
    assert_eq!((first["page"].as_u64(), first["pages"].as_u64()), (Some(1), Some(3)));
    assert_eq!(ids(&first).len(), 100);
    assert_eq!(ids(&first)[0], "FP_000");
    let last = fleet(&server, "", "", 3);
    assert_eq!(ids(&last).len(), 50);
    assert_eq!(ids(&last).last().map(String::as_str), Some("FP_249"));
    assert_eq!(fleet(&server, "", "", 99)["page"], 3, "past the last page: the last");
    assert_eq!(fleet(&server, "", "", 0)["page"], 1);
    let (status, _) = server.get("/api/fleet?page=-1");
    assert_eq!(status, 400, "a page that is no number is refused, not a 500");

    // Filtered exactly as the query says (a naive filter over what was sent), across pages.
    let q = "tag:site=greenhouse rssi<-80";
    let weak: Vec<String> = (0..100).filter(|i| rssi(*i) < -80).map(|i| format!("FP_{i:03}")).collect();
    let filtered = fleet(&server, q, "id", 1);
    assert_eq!(filtered["matching"].as_u64(), Some(weak.len() as u64));
    assert_eq!(ids(&filtered), weak);
    assert_eq!(filtered["summary"]["weak_signal"].as_u64(), Some(weak.len() as u64), "the chip counts them");
    assert_eq!(fleet(&server, "-tag:site=greenhouse", "", 1)["matching"], 150);

    // Sorted by signal, weakest first, then strongest first; ties by id.
    let by_rssi = ids(&fleet(&server, "", "rssi", 1));
    assert_eq!(&by_rssi[..5], ["FP_049", "FP_099", "FP_149", "FP_199", "FP_249"]);
    let strongest = ids(&fleet(&server, "", "-rssi", 1));
    assert_eq!(&strongest[..2], ["FP_000", "FP_050"]);
    assert_eq!(ids(&fleet(&server, "", "-id", 1))[0], "FP_249");

    // A query's mistake says where it is.
    let (status, body) = server.get("/api/fleet?q=tag%3Asite%3Dgreenhouse%20stauts%3Ax");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at character 21") && body.contains("unknown field"), "{body}");

    // Firmware chips from what devices say of themselves (over MQTT); they stay connected
    // (the CSV below shows them up all along).
    let mut connected = Vec::new();
    for (id, fw) in [("FP_001", "1.4.2"), ("FP_002", "1.4.2"), ("FP_003", "1.3.9")] {
        let mut d = Device::connect(server.mqtt(), id, |_| {}).await;
        d.publish(&format!("app/device/{id}/attributes"), json!({"fw": fw}).to_string()).await;
        connected.push(d);
    }
    let chips = eventually("firmware chips", || {
        let s = fleet(&server, "id:FP_00*", "", 1)["summary"].clone();
        (s["firmware"].as_array()?.len() == 2).then_some(s)
    });
    assert_eq!(chips["firmware"], json!([["1.4.2", 2], ["1.3.9", 1]]));
    assert_eq!(ids(&fleet(&server, "fw!=1.4.2 id:FP_00*", "id", 1)).len(), 8);

    // Open alarms per row: a rule on two devices fires; sorted by alarms, they come first.
    let rule = json!({"name": "hot", "kind": "threshold", "metric": "t", "op": ">", "devices": ["FP_120", "FP_130"],
        "levels": [{"severity": "major", "value": 30}]});
    let (status, body) = server.post_json("/api/alarm_rules", rule.to_string().as_bytes());
    assert_eq!(status, 201, "{body}");
    let hot: Vec<Value> =
        ["FP_120", "FP_130"].iter().map(|d| json!({"device_id": d, "telemetry": {"t": 35}})).collect();
    assert_eq!(server.post_json("/api/telemetry", json!(hot).to_string().as_bytes()).0, 202);
    let by_alarms = eventually("open alarms counted", || {
        let list = fleet(&server, "", "-alarms", 1);
        (list["rows"][1]["alarms"] == 1).then_some(list)
    });
    assert_eq!(&ids(&by_alarms)[..3], ["FP_120", "FP_130", "FP_000"]);
    assert_eq!(by_alarms["rows"][2]["alarms"], 0);

    // The page itself, as plain HTML: the rows, the chips, the pager and the CSV link.
    let (status, html) = server.get("/fleet?q=tag%3Asite%3Dgreenhouse%20rssi%3C-80&sort=id");
    assert_eq!(status, 200);
    let rows: Vec<&str> = html.split("data-device=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
    assert_eq!(rows, weak);
    assert!(html.contains(&format!("{} weak signal", weak.len())), "the chip");
    assert!(html.contains("href=\"/api/fleet.csv?q=tag%3Asite%3Dgreenhouse%20rssi%3C-80&amp;sort=id\""));
    let (_, html) = server.get("/fleet?sort=-id&page=2");
    assert!(
        html.contains("Page 2 of 3") && html.contains("href=\"/fleet?sort=-id&amp;page=3\""),
        "the pager"
    );
    assert!(html.contains("data-device=\"FP_149\""), "page 2 from the end starts at FP_149");
    assert!(!html.contains("data-device=\"FP_150\""));

    // The CSV: every matching device (not one page), in the view's order, with its alarms.
    let (status, csv) = server.get("/api/fleet.csv?q=-tag%3Asite%3Dgreenhouse&sort=-alarms");
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,name,status,last_seen_utc,firmware,rssi,battery,uptime_s,up_24h,tags,open_alarms"
    );
    assert_eq!(lines.len(), 1 + 150);
    assert!(lines[1].starts_with("FP_120,,online,") && lines[1].ends_with(",-70,,,,,1"), "{}", lines[1]);
    let (status, csv) = server.get("/api/fleet.csv?q=id%3AFP_001");
    assert_eq!(status, 200);
    assert!(csv.lines().nth(1).unwrap().ends_with(",1.4.2,-51,,,100%,site=greenhouse,0"), "{csv}");
    assert_eq!(server.get("/api/fleet.csv?q=%28").0, 400);
}

fn add_user(db: &std::path::Path, name: &str, role: &str, password: &str) {
    cli(db, &["user", "add", name, "--role", role], password);
}

/// A request as `login` (`name:password`; empty: nobody): status and body.
fn call(addr: SocketAddr, login: &str, method: &str, path: &str, form: &str) -> (u16, String) {
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(login));
    let headers: Vec<(&str, &str)> =
        if login.is_empty() { vec![] } else { vec![("Authorization", basic.as_str())] };
    let (status, _, body) = http_full(addr, method, path, FORM, &headers, form.as_bytes());
    (status, body)
}

#[test]
fn viewers_read_the_fleet_and_its_csv_only_admins_tag_in_bulk() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.redb");
    add_user(&db, "root", "admin", "admin password");
    add_user(&db, "val", "viewer", "viewer password");
    let server = ServerProcess::start(&db, &[]);
    let (root, val, http) = ("root:admin password", "val:viewer password", server.http);
    let items: Vec<Value> =
        (0..3).map(|i| json!({"device_id": format!("RT_{i}"), "telemetry": {"t": i}})).collect();
    let (status, _, body) = http_full(
        http,
        "POST",
        "/api/telemetry",
        "application/json",
        &[("Authorization", &format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(root)))],
        json!(items).to_string().as_bytes(),
    );
    assert_eq!(status, 202, "{body}");

    // Strangers get nothing; viewers read the list, the page and the CSV.
    assert_eq!(call(http, "", "GET", "/api/fleet", "").0, 401);
    assert_eq!(call(http, "", "GET", "/api/fleet.csv", "").0, 401);
    let (status, body) = call(http, val, "GET", "/api/fleet?q=id%3ART_*", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["matching"], 3);
    let (status, csv) = call(http, val, "GET", "/api/fleet.csv?q=id%3ART_*&sort=-id", "");
    assert_eq!(status, 200);
    let listed: Vec<&str> = csv.lines().skip(1).filter_map(|l| l.split(',').next()).collect();
    assert_eq!(listed, ["RT_2", "RT_1", "RT_0"]);
    let (status, html) = call(http, val, "GET", "/fleet", "");
    assert_eq!(status, 200);
    assert!(html.contains("data-device=\"RT_0\""));
    assert!(!html.contains("name=\"ids[]\""), "no bulk edit form for a viewer");

    // Viewers cannot tag, in bulk or one by one.
    let (status, _) = call(http, val, "POST", "/api/fleet/tags", "ids[]=RT_0&add=site%3Dx");
    assert_eq!(status, 403);
    let (status, _) = call(http, val, "POST", "/api/fleet/tags", "all=yes&q=id%3ART_*&add=site%3Dx");
    assert_eq!(status, 403);
    assert_eq!(call(http, val, "POST", "/api/device/tags", "id=RT_0&tags=site%3Dx").0, 403);

    // Admins can: ticked devices, then every device a query matches; each a change in the log.
    let (status, body) = call(http, root, "POST", "/api/fleet/tags", "ids[]=RT_0&ids[]=RT_1&add=site%3Dbarn");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["changed"], 2);
    let (status, body) =
        call(http, root, "POST", "/api/fleet/tags", "all=yes&q=id%3ART_*&add=floor%3D2&remove=site");
    assert_eq!(status, 200, "{body}");
    let tagged = serde_json::from_str::<Value>(&body).unwrap();
    assert_eq!((tagged["matched"].as_u64(), tagged["changed"].as_u64()), (Some(3), Some(3)));
    let (_, csv) = call(http, root, "GET", "/api/fleet.csv?q=tag%3Afloor%3D2&sort=id", "");
    let tags: Vec<&str> = csv.lines().skip(1).filter_map(|l| l.split(',').nth(9)).collect();
    assert_eq!(tags, ["floor=2", "floor=2", "floor=2"]);
    let (_, changes) = call(http, root, "GET", "/api/changes?after=0&limit=100", "");
    let changes: Value = serde_json::from_str(&changes).unwrap();
    let tag_events = changes["events"].as_array().unwrap().iter().filter(|e| e["type"] == "tags").count();
    assert_eq!(tag_events, 5, "2 + 3 tag changes in the change log");

    // Bounded and checked: too many ids, nothing to do, nothing ticked.
    let many: Vec<String> = (0..1001).map(|i| format!("ids[]=X{i}")).collect();
    let (status, body) =
        call(http, root, "POST", "/api/fleet/tags", &format!("{}&add=a%3D1", many.join("&")));
    assert_eq!(status, 400, "{body}");
    assert_eq!(call(http, root, "POST", "/api/fleet/tags", "ids[]=RT_0").0, 400);
    assert_eq!(call(http, root, "POST", "/api/fleet/tags", "add=a%3D1").0, 400);
    let (status, body) = call(http, root, "POST", "/api/fleet/tags", "all=yes&q=stauts%3Ax&add=a%3D1");
    assert_eq!(status, 400, "{body}");

    // A plain form post goes back to the fleet view it came from, and nowhere else.
    let headers = [
        ("Authorization", format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(root))),
        ("Accept", "text/html".to_owned()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (back, to) in
        [("%2Ffleet%3Fq%3Did%253ART_*", "/fleet?q=id%3ART_*"), ("https%3A%2F%2Fevil.example", "/fleet")]
    {
        let (status, head, _) = http_full(
            http,
            "POST",
            "/api/fleet/tags",
            FORM,
            &headers,
            format!("ids[]=RT_2&add=z%3D1&back={back}").as_bytes(),
        );
        assert!((300..400).contains(&status), "{status} {head}");
        assert!(head.contains(&format!("location: {}", to.to_ascii_lowercase())), "{head}");
    }
}
