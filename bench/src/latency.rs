//! Publish-to-screen delay: a `/ws/live` client that takes `count` readings and reports how
//! long after its reading time each arrived (the paced simulator stamps readings with the time
//! it sends them, on this machine's clock).

use std::time::Duration;

use futures::StreamExt;
use telemetry::LiveEvent;
use tokio_tungstenite::tungstenite::Message;

/// Longest wait for the next reading before giving up.
const IDLE: Duration = Duration::from_secs(30);

pub fn run(web: &str, count: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let mut delays = runtime.block_on(collect(web, count));
    if delays.is_empty() {
        eprintln!("no readings arrived");
        std::process::exit(1);
    }
    delays.sort_unstable();
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    println!(
        "delay over {} readings: p50 {} ms, p99 {} ms, max {} ms",
        delays.len(),
        at(0.5),
        at(0.99),
        delays[delays.len() - 1]
    );
}

async fn collect(web: &str, count: u64) -> Vec<i64> {
    let stream = tokio::net::TcpStream::connect(web).await.expect("the dashboard answers");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{web}/ws/live"), stream)
        .await
        .expect("websocket upgrade");
    // Ready once the server has said hello.
    ws.next().await.expect("hello").expect("hello");
    println!("listening");
    let mut delays = Vec::with_capacity(count as usize);
    while (delays.len() as u64) < count {
        let Ok(Some(Ok(frame))) = tokio::time::timeout(IDLE, ws.next()).await else { break };
        let now = chrono::Utc::now().timestamp_millis();
        if let Message::Text(text) = frame
            && let Ok(LiveEvent::Reading { ts, .. }) = serde_json::from_str(text.as_str())
        {
            delays.push(now - ts);
        }
    }
    delays
}
