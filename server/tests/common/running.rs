//! The server started in this process on free ports (`Server::start`), for tests that need
//! its embedded broker's address and a clean stop.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use server::Server;
use server::config::Config;

/// The server in this process, serving until stopped.
pub struct Running {
    pub http: SocketAddr,
    pub mqtt: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A server with its database at `db` and default settings otherwise.
pub async fn start(db: &Path) -> Running {
    start_with(db, |_| {}).await
}

/// A server with its database at `db` and the settings `configure` leaves.
pub async fn start_with(db: &Path, configure: impl FnOnce(&mut Config)) -> Running {
    let mut config = Config::default();
    configure(&mut config);
    config.storage.path = db.to_owned();
    config.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(config, http).await.unwrap();
    let (http, mqtt) = (server.http_addr(), server.mqtt_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Running { http, mqtt, stop, task }
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("stops in time")
            .unwrap()
            .unwrap();
    }
}
