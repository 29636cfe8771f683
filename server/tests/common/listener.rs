//! A device that listens: an MQTT 3.1.1 connection keeping what it receives and its SUBACKs,
//! in order, for tests of what the server sends devices (commands, desired state). Each test
//! adds the few methods its topics need in its own `impl Listener`.

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS, SubscribeReasonCode};
use tokio::sync::mpsc;

use super::TIMEOUT;

pub struct Listener {
    pub client: AsyncClient,
    pub received: mpsc::UnboundedReceiver<Publish>,
    subacks: mpsc::UnboundedReceiver<Vec<SubscribeReasonCode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Connected as `id` (signing in with `key`, if given), with `configure`'s options.
    pub async fn connect(
        mqtt: SocketAddr,
        id: &str,
        key: Option<&str>,
        configure: impl FnOnce(&mut MqttOptions),
    ) -> Listener {
        let mut opts = MqttOptions::new(id, mqtt.ip().to_string(), mqtt.port());
        opts.set_keep_alive(Duration::from_secs(30));
        if let Some(key) = key {
            opts.set_credentials(id, key);
        }
        configure(&mut opts);
        let (client, mut eventloop) = AsyncClient::new(opts, 100);
        let (tx, received) = mpsc::unbounded_channel();
        let (sub_tx, subacks) = mpsc::unbounded_channel();
        let (conn_tx, conn_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut conn_tx = Some(conn_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(tx) = conn_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(p);
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        let _ = sub_tx.send(ack.return_codes);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        tokio::time::timeout(TIMEOUT, conn_rx).await.expect("CONNACK in time").unwrap();
        Listener { client, received, subacks, task }
    }

    /// Subscribes to `filter` and waits for the SUBACK: whether it was granted.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> bool {
        self.client.subscribe(filter, qos).await.unwrap();
        let codes =
            tokio::time::timeout(TIMEOUT, self.subacks.recv()).await.expect("SUBACK in time").unwrap();
        matches!(codes[0], SubscribeReasonCode::Success(_))
    }

    /// The next message received within `within`, if any.
    pub async fn next(&mut self, within: Duration) -> Option<Publish> {
        tokio::time::timeout(within, self.received.recv()).await.ok().flatten()
    }

    /// Drops the TCP connection without DISCONNECT, as a device losing power does.
    pub fn vanish(self) {
        self.task.abort();
    }
}
