//! The JSON API as a script would call it: one exchange at a time, off the runtime, with Basic
//! credentials if given.

use std::net::SocketAddr;

use base64::Engine;
use serde_json::{Value, json};

use super::http_full;

/// One HTTP exchange off the runtime, as `login` (user, password) if given: status and JSON body
/// (a body that is not JSON as a string).
pub async fn call(
    http: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
    login: Option<(&str, &str)>,
) -> (u16, Value) {
    let (method, path) = (method.to_owned(), path.to_owned());
    let auth = login.map(|(u, p)| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
    });
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        let (status, _, text) =
            http_full(http, &method, &path, "application/json", &headers, body.as_bytes());
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    })
    .await
    .unwrap()
}

/// Makes `device` known to the server: it sends one reading over HTTP.
pub async fn known(http: SocketAddr, device: &str) {
    let body = json!({"device_id": device, "telemetry": {"t": 1.0}});
    let (status, answer) = call(http, "POST", "/api/telemetry", Some(body), None).await;
    assert_eq!(status, 202, "{answer}");
}

/// A device's command list (`GET /api/devices/{id}/commands`) as (id, status), newest first.
pub fn id_and_status(list: &Value) -> Vec<(&str, &str)> {
    list["commands"]
        .as_array()
        .expect("a command list")
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect()
}
