//! The server started in-process (no binary, no child process) on port 0, as a handler change
//! is tested first: its router called directly with `oneshot`, then served over TCP and shut
//! down through the future `run` takes.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use server::Server;
use server::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

async fn call(router: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn get(path: &str, host: &str) -> Request<Body> {
    Request::get(path).header("host", host).body(Body::empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_answers_directly_and_the_server_serves_and_stops_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.path = dir.path().join("t.redb");
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(config, http).await.unwrap();
    let addr = server.http_addr();
    let router = server.router();

    let (status, body) = call(&router, get("/healthz", "localhost")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""storage":"ok""#), "open: the details too: {body}");
    let (status, _) = call(&router, get("/", "evil.example")).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    let reading = Request::post("/api/telemetry")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"device_id": "IN_PROCESS", "telemetry": {"t": 1.5}}"#))
        .unwrap();
    let (status, body) = call(&router, reading).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = call(&router, get("/api/device?id=IN_PROCESS", "localhost")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#""message_count":1"#), "{body}");
    let (status, body) = call(&router, get("/api/history?device=IN_PROCESS", "localhost")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "missing arguments are the caller's fault: {body}");

    // Served over TCP until the shutdown future completes.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), serving).await.expect("stops in time").unwrap().unwrap();
}

/// Stopped, the server lets go of its files: the same process starts it again on the same
/// data folder (its telemetry and user databases), and what was stored is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_starts_again_in_the_same_process_on_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.path = dir.path().join("t.redb");
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    for round in 1..=2_i64 {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server =
            Server::start(config.clone(), http).await.unwrap_or_else(|e| panic!("start {round}: {e}"));
        let router = server.router();
        let reading = Request::post("/api/telemetry")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Body::from(format!(
                r#"{{"device_id": "AGAIN", "ts": {round}000, "telemetry": {{"t": {round}}}}}"#
            )))
            .unwrap();
        let (status, body) = call(&router, reading).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        // A device over MQTT, still connected when the server stops.
        let device = publish_and_stay(server.mqtt_addr().unwrap(), round).await;
        for (id, count) in [("AGAIN", round), ("MQTT_AGAIN", round)] {
            let (status, body) = call(&router, get(&format!("/api/device?id={id}"), "localhost")).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.contains(&format!(r#""message_count":{count}"#)), "round {round}: {body}");
        }
        drop(router);
        tokio::time::timeout(Duration::from_secs(15), server.run(async {}))
            .await
            .expect("stops in time")
            .unwrap();
        device.abort();
    }
}

/// Publishes a reading as MQTT_AGAIN at QoS 1 and, once it is acknowledged, stays connected
/// (the returned task holds the connection).
async fn publish_and_stay(mqtt: std::net::SocketAddr, round: i64) -> tokio::task::JoinHandle<()> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new("MQTT_AGAIN", mqtt.ip().to_string(), mqtt.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(opts, 10);
    let payload = format!(r#"{{"ts": {round}000, "telemetry": {{"t": {round}}}}}"#);
    client.publish("app/device/MQTT_AGAIN/telemetry", QoS::AtLeastOnce, false, payload).await.unwrap();
    let acked = async {
        loop {
            if let Event::Incoming(Packet::PubAck(_)) = events.poll().await.unwrap() {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), acked).await.expect("acknowledged");
    tokio::spawn(async move {
        let _client = client;
        while events.poll().await.is_ok() {}
    })
}
