//! External-broker ingest (Mosquitto or any MQTT 3.1.1 broker) through rumqttc, over TCP or
//! TLS (`mqtt.tls`, trusting `mqtt.ca_file` or the system's authorities).
//!
//! A persistent session (`clean_session = false`, fixed client id) keeps QoS 1 messages at
//! the broker while the server is down. Acks are manual: each publish is acknowledged only
//! after its commit, strictly in arrival order. The poll loop polls, forwards and writes the
//! PUBACKs; the decide-and-submit step ([`Ingest::admit`], the one door) and the wait for each
//! commit run in their own tasks so storage never blocks the connection. Reconnects back off
//! from 0.5 s to 30 s; every state change is logged.
//!
//! Flow control: the broker does not bound what it sends (Mosquitto 2.0 sent a backlog of
//! 100,000 unacknowledged QoS 1 messages at once, `max_inflight_messages` notwithstanding), so
//! the loop stops polling while the queue to the door is full and the broker's messages wait
//! in the socket and at the broker. PUBACKs must still go out meanwhile, or the queue never
//! drains: they are written to the connection by the loop itself, not through rumqttc's
//! request channel, which only a poll empties (one request per poll, after up to ten reads).
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, PubAck, Publish, QoS,
    TlsConfiguration, Transport,
};
use telemetry::text::untrusted;
use telemetry::topic::{ATTRIBUTES_FILTER, RESULT_FILTER, STATUS_FILTER, TELEMETRY_FILTER};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::clock::now_ms;
use crate::config::MqttConfig;
use crate::ingest::{Ack, Arrival, Ingest, IngestError, Pace, ready};
use crate::metrics::Source;

/// Devices' reports of their desired state, and their requests for it.
const REPORTED_FILTER: &str = "app/device/+/reported";
const DESIRED_GET_FILTER: &str = "app/device/+/desired/get";
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Largest packet accepted from the broker; bigger payloads than the contract's 64 KiB are
/// still received so they can be rejected and acknowledged rather than redelivered forever.
const MAX_PACKET: usize = 4 * 1024 * 1024;
/// Messages waiting to be decided, decided ones waiting for their commit, and committed ones
/// waiting for their PUBACK to be written.
const QUEUE: usize = 4096;
/// Most PUBACKs written between two polls.
const ACK_BATCH: usize = 256;
/// Longest wait for the broker to take a batch of PUBACKs.
const ACK_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the poll loop is to answer for a publish once its commit is done.
enum Answer {
    /// Acknowledge packet `pkid` of connection number `connection` (acks of an earlier
    /// connection are not sent: the broker redelivers those messages, and storing is
    /// idempotent).
    Ack { pkid: u16, connection: u64 },
    /// Not stored: reconnect, so the broker redelivers it.
    Redeliver,
}

pub use crate::tls::client::ClientTlsError;

/// The TLS settings for the broker connection: `ca_file`'s certificates, or the system's.
pub fn tls_config(config: &MqttConfig) -> Result<Arc<rustls::ClientConfig>, ClientTlsError> {
    crate::tls::client::config(&config.ca_file)
}

/// Runs until `shutdown` turns true.
pub async fn run(
    config: MqttConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    ingest: Ingest,
    commands: crate::commands::Commands,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(config.keep_alive_secs.max(5)))
        .set_manual_acks(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(user) = &config.username {
        options.set_credentials(user, config.password.as_ref().map(|p| p.expose()).unwrap_or(""));
    }
    if let Some(tls) = tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    // Commands to devices go out through this client too.
    let external = super::commands::External::new(client.clone(), commands.clone());
    commands.attach(external.clone());
    commands.desired().attach(super::desired::External::new(external.clone()));
    // Each PUBACK goes out as soon as its reading is stored.
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);

    let (to_submit, submit_rx) = mpsc::channel(QUEUE);
    let (to_wait, wait_rx) = mpsc::channel(QUEUE);
    let (to_answer, mut answers) = mpsc::channel(QUEUE);
    let submitter = tokio::spawn(submit(submit_rx, to_wait, ingest.clone(), commands.desired().clone()));
    let waiter = tokio::spawn(wait_for_commits(wait_rx, to_answer));
    let mut connection = 0u64;
    let metrics = ingest.metrics().clone();
    let broker = format!("{}:{}", config.host, config.port);
    let mut backoff = MIN_BACKOFF;
    info!(%broker, client_id = %config.client_id, share_group = %config.share_group, "connecting to MQTT broker");

    loop {
        // Answers first; polled only while the door's queue has room for what a poll returns
        // (one event). A poll interrupted by an answer loses nothing: rumqttc's poll waits to
        // read or for a request, and writes without waiting while its buffer is small.
        let event = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            Some(answer) = answers.recv() => Err(answer),
            event = eventloop.poll(), if to_submit.capacity() > 0 => Ok(event),
        };
        let event = match event {
            Ok(event) => event,
            Err(answer) => {
                answer_all(&mut eventloop, answer, &mut answers, connection, &client).await;
                continue;
            }
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                backoff = MIN_BACKOFF;
                connection += 1;
                info!(%broker, session_present = ack.session_present, "connected to MQTT broker");
                // Up (for /healthz) once subscribed: until then the broker drops what devices send.
                // A session kept from before attributes existed lacks their filter: it is asked
                // for again (harmless: retained attributes that come again change nothing).
                let filters: &[&str] = if ack.session_present {
                    metrics.set_mqtt_connected(true);
                    &[ATTRIBUTES_FILTER, RESULT_FILTER, REPORTED_FILTER, DESIRED_GET_FILTER]
                } else {
                    &[
                        TELEMETRY_FILTER,
                        STATUS_FILTER,
                        ATTRIBUTES_FILTER,
                        RESULT_FILTER,
                        REPORTED_FILTER,
                        DESIRED_GET_FILTER,
                    ]
                };
                let filters: Vec<_> = filters
                    .iter()
                    .map(|path| {
                        rumqttc::SubscribeFilter::new(shared(&config.share_group, path), QoS::AtLeastOnce)
                    })
                    .collect();
                // Acks queued while the connection was down may fill the request channel: wait
                // for room (the loop keeps polling, which drains it), never give up.
                let client = client.clone();
                tokio::spawn(async move {
                    if let Err(e) = client.subscribe_many(filters).await {
                        error!(error = %e, "cannot subscribe: the MQTT client has stopped");
                    }
                });
            }
            // Commands the server published, and the broker's PUBACKs for them.
            Ok(Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) => external.written(pkid),
            Ok(Event::Incoming(Packet::PubAck(ack))) => external.acknowledged(ack.pkid),
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                metrics.set_mqtt_connected(true);
                info!(codes = ?ack.return_codes, "subscribed");
            }
            // Room was checked before the poll, and this loop is the only sender.
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if to_submit.try_send((p, connection)).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if metrics.mqtt_connected() {
                    warn!(%broker, error = %e, "MQTT connection lost");
                }
                metrics.set_mqtt_connected(false);
                warn!(%broker, error = %e, retry_in = ?backoff, "MQTT broker unreachable; retrying");
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    metrics.set_mqtt_connected(false);
    drop(to_submit);
    let _ = submitter.await;
    let _ = waiter.await;
    let _ = client.try_disconnect();
    info!(%broker, "MQTT ingest stopped");
}

/// `filter` as the shared subscription of `group` (`$share/<group>/<filter>`), or as it is
/// without one. The broker delivers a shared message under its own topic, so what arrives
/// reads the same either way.
fn shared(group: &str, filter: &str) -> String {
    match group {
        "" => filter.to_owned(),
        group => format!("$share/{group}/{filter}"),
    }
}

/// The publish as the ingest door sees it. The broker enforces its own ACL (see
/// [`mosquitto_acl`]), so no sign-in applies here.
fn arrival(publish: &Publish, received: i64) -> Arrival<'_> {
    Arrival {
        source: Source::Mqtt,
        topic: &publish.topic,
        payload: &publish.payload,
        publisher: None,
        client: "external broker",
        received,
    }
}

/// Decides each publish and queues it for the next commit, keeping arrival order. What is
/// refused (counted and logged by the door) is acknowledged, so the broker does not resend it.
async fn submit(
    mut rx: mpsc::Receiver<(Publish, u64)>,
    to_wait: mpsc::Sender<(Publish, u64, oneshot::Receiver<Ack>)>,
    ingest: Ingest,
    desired: crate::desired::Desired,
) {
    while let Some((publish, connection)) = rx.recv().await {
        let received = now_ms();
        let pending = match ingest.admit(&arrival(&publish, received), Pace::Unlimited) {
            Ok(admitted) => {
                // A device asking for its desired state: published (retained) again.
                if let Some((device, telemetry::desired::DesiredTopic::Get)) =
                    telemetry::desired::desired_parts(&publish.topic)
                {
                    let (desired, device) = (desired.clone(), device.to_owned());
                    tokio::spawn(async move { desired.send_to(&device, "").await });
                }
                ingest.submit_admitted(admitted, received).await
            }
            Err(_) => ready(Ok(())),
        };
        if publish.qos == QoS::AtMostOnce {
            continue;
        }
        if to_wait.send((publish, connection, pending)).await.is_err() {
            break;
        }
    }
}

/// Hands the poll loop each publish's answer, in arrival order, once its commit is done.
async fn wait_for_commits(
    mut rx: mpsc::Receiver<(Publish, u64, oneshot::Receiver<Ack>)>,
    to_answer: mpsc::Sender<Answer>,
) {
    while let Some((publish, connection, pending)) = rx.recv().await {
        let answer = match pending.await.unwrap_or(Err(IngestError::Closed)) {
            Ok(()) => Answer::Ack { pkid: publish.pkid, connection },
            Err(e) => {
                error!(topic = %untrusted(&publish.topic), error = %e, "not stored; reconnecting so the broker redelivers");
                Answer::Redeliver
            }
        };
        if to_answer.send(answer).await.is_err() {
            break;
        }
    }
}

/// Writes the PUBACKs of `first` and of the answers already waiting (up to a batch, so the
/// poll gets its turn), then flushes once. A write that fails is only logged: the next poll meets the broken connection and reconnects.
async fn answer_all(
    eventloop: &mut EventLoop,
    first: Answer,
    more: &mut mpsc::Receiver<Answer>,
    connection: u64,
    client: &AsyncClient,
) {
    let mut answer = Some(first);
    let mut written = false;
    let mut budget = ACK_BATCH;
    while let Some(next) = answer.take() {
        match next {
            Answer::Ack { pkid, connection: of } if of == connection => {
                if let Some(network) = eventloop.network.as_mut() {
                    if let Err(e) = network.write(Packet::PubAck(PubAck::new(pkid))).await {
                        warn!(error = %e, "cannot send PUBACK");
                        return;
                    }
                    written = true;
                }
            }
            Answer::Ack { .. } => {}
            Answer::Redeliver => {
                let _ = client.try_disconnect();
            }
        }
        budget -= 1;
        if budget > 0 {
            answer = more.try_recv().ok();
        }
    }
    if let (true, Some(network)) = (written, eventloop.network.as_mut()) {
        match tokio::time::timeout(ACK_WRITE_TIMEOUT, network.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "cannot send PUBACKs"),
            Err(_) => warn!("the broker took no PUBACKs for {ACK_WRITE_TIMEOUT:?}"),
        }
    }
}

/// Mosquitto's `acl_file` for this dashboard: a device (user name = device id) may write only
/// under `app/device/<its id>/` and read only its own commands, and `dashboard_user` may read
/// every device's telemetry, status, attributes and answers to commands, and send commands.
/// Devices' passwords are their keys (`server device key <id>`), given to `mosquitto_passwd`.
/// With Mosquitto's `use_username_as_clientid true`, nobody can take the dashboard's client id
/// (and with it its queued messages) or a device's.
pub fn mosquitto_acl(dashboard_user: &str) -> String {
    format!(
        "# IoT dashboard: each device writes only its own topics; the dashboard reads them all.\n\
         pattern write {prefix}%u/#\n\
         pattern read {prefix}%u/cmd/+\n\
         pattern read {prefix}%u/desired\n\n\
         user {dashboard_user}\n\
         topic read {prefix}+/telemetry\n\
         topic read {prefix}+/status\n\
         topic read {prefix}+/attributes\n\
         topic read {prefix}+/res/+\n\
         topic read {prefix}+/reported\n\
         topic read {prefix}+/desired/get\n\
         topic write {prefix}+/cmd/+\n\
         topic write {prefix}+/desired\n",
        prefix = telemetry::topic::DEVICE_PREFIX,
    )
}
