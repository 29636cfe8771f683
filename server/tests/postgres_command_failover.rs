//! Commands in a cluster (issue 18, acceptance 3): three server processes on one real
//! PostgreSQL and one real Mosquitto (each node in the share group), and devices that are real
//! MQTT clients. Each device partition's commands are sent, and their deadlines kept, by one
//! node, the one holding the partition's lease `commands/<n>`, the partitions shared out over
//! the nodes; when the node holding two devices' partition is killed -9 another takes it over
//! within the lease's length. A command queued on another node for an offline device reaches
//! it once when it comes online, a short-lived one expires once, and a caller waiting on one
//! node for a command's answer gets it though the answer came in through another node.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::api::{call, known};
use common::listener::Listener;
use common::mosquitto::{Mosquitto, external_env, subscribed};
use common::postgres::Postgres;
use common::{ServerProcess, eventually};
use rumqttc::QoS;
use serde_json::{Value, json};
use server::store::postgres::{PARTITIONS, PgSettings, PgStore, partition};

/// Comes online after the kill.
const VALVE: &str = "VALVE_1";
/// Never online; in the valve's partition, so one node sends both their commands.
fn pump() -> String {
    (2..).map(|n| format!("PUMP_{n}")).find(|d| partition(d) == partition(VALVE)).unwrap()
}

fn node(pg: &Postgres, broker: SocketAddr, dir: &Path, client_id: &str) -> ServerProcess {
    let mut env = external_env(broker, client_id);
    env.push(("IOT_MQTT_SHARE_GROUP", "dashboards".into()));
    env.push(("IOT_POSTGRES_URL", pg.url.clone()));
    let server = ServerProcess::start(&dir.join("t.redb"), &env);
    eventually("the node to subscribe", || subscribed(&server));
    server
}

/// Retries `f` every 100 ms until it answers `Some`, for at most `limit`.
async fn within<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(http: SocketAddr, device: &str, query: &str, body: Value) -> (u16, Value) {
    call(http, "POST", &format!("/api/devices/{device}/commands{query}"), Some(body), None).await
}

/// A command as the API shows it on node `http`.
async fn read(http: SocketAddr, device: &str, id: &str) -> Value {
    let (status, body) = call(http, "GET", &format!("/api/devices/{device}/commands/{id}"), None, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Each status command `id` entered, in the change log's order (as `/api/changes` shows it).
async fn history(http: SocketAddr, id: &str) -> Vec<String> {
    let (status, page) = call(http, "GET", "/api/changes?after=0&limit=1000", None, None).await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().expect("a page of changes");
    assert!(events.len() < 1000, "the log fits one page");
    events
        .iter()
        .filter(|e| e["type"] == "command" && e["command"]["id"] == id)
        .map(|e| e["command"]["status"].as_str().unwrap().to_owned())
        .collect()
}

/// The HTTP address of the node holding each commands partition now (a holder's name begins
/// with it), by partition.
async fn holders(leases: &PgStore) -> Vec<Option<String>> {
    let all = leases.leases().await.unwrap_or_default();
    (0..PARTITIONS)
        .map(|n| {
            let name = format!("{}{n}", server::commands::LEASE_PREFIX);
            let (_, holder, _) = all.iter().find(|(lease, _, held)| *lease == name && *held)?;
            Some(holder.rsplit_once('-')?.0.to_owned())
        })
        .collect()
}

/// The node sending the valve's (and the pump's) commands now, if one does.
async fn holder_now(leases: &PgStore) -> Option<String> {
    holders(leases).await.swap_remove(partition(VALVE) as usize)
}

/// The node sending the valve's commands, once the partitions are shared out over `nodes`
/// (each holding some, none more than its share).
async fn holder(leases: &PgStore, nodes: &[SocketAddr]) -> String {
    let share = PARTITIONS.div_ceil(nodes.len() as u32) as usize;
    within("the commands partitions shared out over the nodes", Duration::from_secs(40), || async {
        let holders = holders(leases).await;
        let each = nodes.iter().map(|a| holders.iter().flatten().filter(|h| **h == a.to_string()).count());
        let spread =
            holders.iter().all(Option::is_some) && each.into_iter().all(|k| (1..=share).contains(&k));
        spread.then_some(())
    })
    .await;
    within("a node to hold the valve's partition", Duration::from_secs(30), || holder_now(leases)).await
}

/// How many commands `node` stored as SUCCEEDED (each answer is stored by the node the
/// broker handed it to).
fn succeeded_on(node: &ServerProcess) -> u64 {
    node.metric_opt("iot_command_transitions_total{status=\"SUCCEEDED\"}").unwrap_or(0)
}

/// The topics of what `device` receives `within` from now (none, for a command it got once).
async fn quiet_for(device: &mut Listener, within: Duration) -> Vec<String> {
    let quiet = Instant::now() + within;
    let mut again = Vec::new();
    while let Some(left) = quiet.checked_duration_since(Instant::now()) {
        match device.next(left).await {
            Some(p) => again.push(p.topic.clone()),
            None => break,
        }
    }
    again
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_go_once_and_expire_once_across_a_kill_9_of_their_node_and_answers_reach_every_node() {
    let pg = Postgres::start();
    let broker = Mosquitto::start_persistent();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let names = ["node-a", "node-b", "node-c"];
    let mut nodes: Vec<Option<ServerProcess>> =
        (0..3).map(|i| Some(node(&pg, broker.addr, dirs[i].path(), names[i]))).collect();
    let http: Vec<SocketAddr> = nodes.iter().map(|n| n.as_ref().unwrap().http).collect();
    let leases = PgStore::open(&PgSettings::new(&pg.url)).await.unwrap();
    let held_by = holder(&leases, &http).await;
    let h = http.iter().position(|a| a.to_string() == held_by).expect("the holder is one of the nodes");
    let other = (h + 1) % 3;
    let pump = pump();
    for device in [VALVE, pump.as_str()] {
        known(http[other], device).await;
    }

    // Both made on a node that does not send them, for devices that are offline.
    let (status, queued) =
        create(http[other], VALVE, "", json!({"method": "open", "params": {"pct": 40}})).await;
    assert_eq!((status, queued["status"].as_str()), (202, Some("QUEUED")), "{queued}");
    let (status, short) = create(http[other], &pump, "", json!({"method": "prime", "ttl_secs": 3})).await;
    assert_eq!((status, short["status"].as_str()), (202, Some("QUEUED")), "{short}");
    let (queued, short) =
        (queued["id"].as_str().unwrap().to_owned(), short["id"].as_str().unwrap().to_owned());

    // The node sending commands dies without a word; its service manager starts it again a
    // second later (the broker keeps its share of the devices' messages for it meanwhile).
    nodes[h].take().unwrap().kill();
    let killed = Instant::now();
    assert_eq!(read(http[other], &pump, &short).await["status"], "QUEUED", "not expired before the kill");
    tokio::time::sleep(Duration::from_secs(1)).await;
    nodes[h] = Some(node(&pg, broker.addr, dirs[h].path(), names[h]));
    let http: Vec<SocketAddr> = nodes.iter().map(|n| n.as_ref().unwrap().http).collect();

    // The valve comes online: it takes its commands and says so.
    let mut valve = Listener::connect(broker.addr, VALVE, None, |o| {
        o.set_clean_session(true);
    })
    .await;
    assert!(valve.subscribe(&format!("app/device/{VALVE}/cmd/+"), QoS::AtLeastOnce).await);
    valve
        .client
        .publish(format!("app/device/{VALVE}/status"), QoS::AtLeastOnce, true, "online")
        .await
        .unwrap();

    // The short-lived command expires once, by a node that took over, within the lease's
    // length (and a few seconds) of the kill, as every node shows.
    let bound = server::cluster::lease::LENGTH + Duration::from_secs(6);
    let limit = bound.saturating_sub(killed.elapsed());
    within("the short-lived command to expire after its node's kill", limit, || async {
        (read(http[other], &pump, &short).await["status"] == "EXPIRED").then_some(())
    })
    .await;
    for &node in &http {
        assert_eq!(read(node, &pump, &short).await["status"], "EXPIRED", "as node {node} shows it");
    }
    let seen = history(http[other], &short).await;
    assert_eq!(seen, ["QUEUED", "EXPIRED"], "the change log: expired once, never sent");

    // The valve gets its command once: nothing more follows while every node checks the
    // devices' presence twice over.
    let first = valve.next(Duration::from_secs(30)).await.expect("the queued command reached the valve");
    assert_eq!(first.topic, format!("app/device/{VALVE}/cmd/{queued}"));
    let payload: Value = serde_json::from_slice(&first.payload).unwrap();
    assert_eq!(payload["method"], "open", "{payload}");
    let again = quiet_for(&mut valve, Duration::from_secs(5)).await;
    assert!(again.is_empty(), "the command reached the valve once, then also: {again:?}");
    let answer = json!({"status": "ok", "result": {"pct": 40}}).to_string();
    let topic = format!("app/device/{VALVE}/res/{queued}");
    valve.client.publish(topic, QoS::AtLeastOnce, false, answer).await.unwrap();
    for &node in &http {
        within(&format!("node {node} to show the command SUCCEEDED"), Duration::from_secs(20), || async {
            let c = read(node, VALVE, &queued).await;
            (c["status"] == "SUCCEEDED").then_some(c)
        })
        .await;
    }
    assert_eq!(history(http[other], &queued).await, ["QUEUED", "SENT", "SUCCEEDED"]);

    // A caller waits on one node while the answer comes in through another (the broker hands
    // the share group's messages round): the wait still ends with the answer.
    let mut answered_elsewhere = None;
    for attempt in 0..6 {
        let waiting = attempt % 3;
        let before: Vec<u64> = nodes.iter().map(|n| succeeded_on(n.as_ref().unwrap())).collect();
        let made = tokio::spawn(create(http[waiting], VALVE, "?wait=25", json!({"method": "close"})));
        let command = valve.next(Duration::from_secs(20)).await.expect("the command reached the valve");
        let id = command.topic.rsplit('/').next().unwrap().to_owned();
        let answer = json!({"status": "ok", "result": {"closed": attempt}}).to_string();
        let topic = format!("app/device/{VALVE}/res/{id}");
        valve.client.publish(topic, QoS::AtLeastOnce, false, answer).await.unwrap();
        let (status, done) = made.await.unwrap();
        assert_eq!(status, 200, "the wait on node {} ended with the answer: {done}", http[waiting]);
        assert_eq!(
            (done["status"].as_str(), &done["result"]),
            (Some("SUCCEEDED"), &json!({"closed": attempt}))
        );
        let after: Vec<u64> = nodes.iter().map(|n| succeeded_on(n.as_ref().unwrap())).collect();
        let stored_by = (0..3).find(|&i| after[i] > before[i]).expect("a node stored the answer");
        if stored_by != waiting {
            answered_elsewhere = Some((waiting, stored_by));
            break;
        }
    }
    assert!(
        answered_elsewhere.is_some(),
        "in 6 commands no answer came in through another node than the waiting one"
    );

    // A command the valve has (SENT, not answered yet) when the node sending commands is
    // killed -9: the node taking over does not send it again on the same connection.
    let held_by = holder(&leases, &http).await;
    let h = http.iter().position(|a| a.to_string() == held_by).expect("the holder is one of the nodes");
    let body = json!({"method": "flush", "timeout_secs": 120});
    let (status, pending) = create(http[(h + 1) % 3], VALVE, "", body).await;
    assert_eq!(status, 202, "{pending}");
    let pending = pending["id"].as_str().unwrap().to_owned();
    let got = valve.next(Duration::from_secs(20)).await.expect("the command reached the valve");
    assert_eq!(got.topic, format!("app/device/{VALVE}/cmd/{pending}"));
    within("the command to be SENT", Duration::from_secs(20), || async {
        (read(http[(h + 1) % 3], VALVE, &pending).await["status"] == "SENT").then_some(())
    })
    .await;
    nodes[h].take().unwrap().kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    nodes[h] = Some(node(&pg, broker.addr, dirs[h].path(), names[h]));
    let http: Vec<SocketAddr> = nodes.iter().map(|n| n.as_ref().unwrap().http).collect();
    within("another node to take the valve's partition", bound, || async {
        holder_now(&leases).await.filter(|now| *now != held_by)
    })
    .await;
    let again = quiet_for(&mut valve, Duration::from_secs(5)).await;
    assert!(again.is_empty(), "sent again after the takeover, on the same connection: {again:?}");
    let answer = json!({"status": "ok", "result": {"flushed": true}}).to_string();
    let topic = format!("app/device/{VALVE}/res/{pending}");
    valve.client.publish(topic, QoS::AtLeastOnce, false, answer).await.unwrap();
    for &node in &http {
        within(&format!("node {node} to show the command SUCCEEDED"), Duration::from_secs(20), || async {
            (read(node, VALVE, &pending).await["status"] == "SUCCEEDED").then_some(())
        })
        .await;
    }

    drop(valve);
    drop(nodes);
    drop(leases);
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
