//! Commands through the embedded broker: a device's connection that subscribes to its commands
//! (`app/device/<id>/cmd/+`) is linked for dispatch ([`crate::commands`]); a command goes to
//! that connection alone, QoS 1 (or the QoS 0 it subscribed with), never retained, with MQTT 5's
//! response topic, correlation data (the command id) and message expiry; it is SENT once rmqtt
//! writes it to the connection (recorded durably before it goes) and DELIVERED at the device's
//! PUBACK.
//!
//! Through an external broker ([`External`]): published by the server's client, QoS 1, never
//! retained; SENT once the broker acknowledges it. Whether the device received it cannot be
//! seen, and a device counts as there while its status says online.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmqtt::codec::types::Publish as CodecPublish;
use rmqtt::codec::v5::PublishProperties;
use rmqtt::context::ServerContext;
use rmqtt::session::{Session, SessionState};
use rmqtt::types::{From, FromType, Id, Publish, QoS};
use telemetry::command::{Command, Receipt};
use telemetry::text::untrusted;
use telemetry::topic::{CommandTopic, DEVICE_PREFIX, command_parts, command_topic, result_topic};
use tracing::warn;

use crate::clock::now_ms;
use crate::commands::{Commands, Link, Transport};

/// The client id commands are sent from (as the broker's own messages, which no client's are).
const SENDER: &str = "iot-commands";

/// The device whose commands `filter` subscribes to: `app/device/<id>/cmd/+`, `…/cmd/#` or
/// `app/device/<id>/#`. A filter over many devices (`app/device/+/cmd/+`) links none: commands
/// go to the device's own connection.
pub fn commands_subscriber(filter: &str) -> Option<&str> {
    let rest = filter.strip_prefix(DEVICE_PREFIX)?;
    let (device, tail) = rest.split_once('/')?;
    let takes = matches!(tail, "cmd/+" | "cmd/#" | "#");
    (takes && telemetry::valid_name(device).is_ok()).then_some(device)
}

/// Whether `from` is the broker's own command sender.
fn ours(from: &From) -> bool {
    matches!(from.typ(), FromType::System) && &*from.id.client_id == SENDER
}

/// The device and command id of a command `publish` from us, if it is one.
fn command_of<'a>(from: &From, publish: &'a Publish) -> Option<(&'a str, &'a str)> {
    if !ours(from) {
        return None;
    }
    match command_parts(&publish.topic) {
        Some((device, CommandTopic::Command, id)) => Some((device, id)),
        _ => None,
    }
}

/// Records command `publish` as SENT, as rmqtt is about to write it to `client`'s connection.
pub async fn delivering(commands: &Commands, client: &str, from: &From, publish: &Publish) {
    let Some((device, id)) = command_of(from, publish) else { return };
    let receipt = match publish.qos {
        QoS::AtMostOnce => Receipt::Unobservable,
        _ => Receipt::Observable,
    };
    if let Err(e) = commands.sent(device, id, receipt).await {
        warn!(client = %untrusted(client), command = id, error = ?e, "a command's SENT not stored");
    }
}

/// Records command `publish` as DELIVERED: the device acknowledged it.
pub async fn acknowledged(commands: &Commands, client: &str, from: &From, publish: &Publish) {
    let Some((device, id)) = command_of(from, publish) else { return };
    if let Err(e) = commands.delivered(device, id).await {
        warn!(client = %untrusted(client), command = id, error = ?e, "a command's DELIVERED not stored");
    }
}

/// How long a new connection's kept subscriptions are looked for, and how often.
const KEPT_WAIT: Duration = Duration::from_millis(1000);
const KEPT_EVERY: Duration = Duration::from_millis(50);

/// Links a reconnected persistent `session` whose kept subscriptions take its commands. rmqtt
/// moves them over from the old session just after the connection is made (without a
/// subscribe hook), so they are looked for a moment; a clean session has none, and nothing
/// happens.
pub async fn kept_subscription(commands: Commands, session: Session) {
    if session.connect_info().await.is_ok_and(|info| info.clean_start()) {
        return;
    }
    let deadline = tokio::time::Instant::now() + KEPT_WAIT;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(KEPT_EVERY).await;
        let Ok(subs) = session.subscriptions().await else { return };
        let subs = subs.read().await;
        if subs.is_empty() {
            continue;
        }
        for (filter, opts) in subs.iter() {
            // A desired state changed while it was away is sent again (it may have missed it).
            if let Some(device) = telemetry::desired::desired_subscriber(filter) {
                commands.desired().send_to(device, &session.id.client_id).await;
            }
            if let Some(device) = commands_subscriber(filter) {
                let id = &session.id;
                let link = Link {
                    client: id.client_id.to_string(),
                    session: id.create_time,
                    qos: opts.qos().value(),
                };
                commands.linked(device, link);
            }
        }
        return;
    }
}

/// Sends commands through the embedded broker.
pub struct Embedded {
    scx: ServerContext,
}

impl Embedded {
    pub fn new(scx: ServerContext) -> Arc<Embedded> {
        Arc::new(Embedded { scx })
    }
}

#[async_trait]
impl Transport for Embedded {
    async fn send(&self, command: &Command, link: &Link) -> bool {
        let now = now_ms();
        let left = command.expires_at.saturating_sub(now).max(1);
        let expiry = NonZeroU32::new(u32::try_from((left + 999) / 1000).unwrap_or(u32::MAX));
        let properties = PublishProperties {
            response_topic: Some(result_topic(&command.device, &command.id).into()),
            correlation_data: Some(command.id.clone().into_bytes().into()),
            message_expiry_interval: expiry,
            content_type: Some("application/json".into()),
            is_utf8_payload: true,
            ..Default::default()
        };
        let qos = if link.qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
        let publish = Publish::from(CodecPublish {
            dup: false,
            retain: false,
            qos,
            topic: command_topic(&command.device, &command.id).into(),
            packet_id: None,
            payload: command.payload().into_bytes().into(),
            properties: Some(properties),
        })
        .target_clientid(link.client.as_str().into())
        .create_time(now);
        let id = Id::new(self.scx.node.id(), 0, None, None, SENDER.into(), None);
        let expiry = expiry.map(|s| std::time::Duration::from_secs(u64::from(s.get())));
        SessionState::forwards(&self.scx, From::from_system(id), publish, false, expiry).await.is_ok()
    }
}

/// Sends commands through the external broker's client ([`super::client`]), whose loop reports
/// the packet id each publish went out with and the broker's PUBACKs.
pub struct External {
    client: rumqttc::AsyncClient,
    commands: Commands,
    /// Handed to the client, not yet written (in order): (device, command id).
    queued: std::sync::Mutex<std::collections::VecDeque<(String, String)>>,
    /// Written, waiting for the broker's PUBACK, by packet id.
    written: std::sync::Mutex<std::collections::HashMap<u16, (String, String)>>,
}

/// At most this many commands wait for the broker's PUBACK (older ones are forgotten: the
/// connection was lost, and the command is sent again once the device is back).
const MAX_UNACKED: usize = 1024;

impl External {
    pub fn new(client: rumqttc::AsyncClient, commands: Commands) -> Arc<External> {
        Arc::new(External { client, commands, queued: Default::default(), written: Default::default() })
    }

    /// The client wrote a publish with packet id `pkid`: the oldest command handed to it (a
    /// publish sent again after a reconnect keeps its id, and is already known).
    pub fn written(&self, pkid: u16) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.contains_key(&pkid) {
            return;
        }
        let next = self.queued.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        if let Some(command) = next {
            if written.len() >= MAX_UNACKED {
                written.clear();
            }
            written.insert(pkid, command);
        }
    }

    /// The broker acknowledged packet `pkid`: its command is SENT.
    pub fn acknowledged(&self, pkid: u16) {
        let command = self.written.lock().unwrap_or_else(|e| e.into_inner()).remove(&pkid);
        // An empty id: another publish of ours (a desired state), nothing to record.
        if let Some((device, id)) = command.filter(|(_, id)| !id.is_empty()) {
            let commands = self.commands.clone();
            tokio::spawn(async move {
                if let Err(e) = commands.sent(&device, &id, Receipt::Unobservable).await {
                    warn!(command = id, error = ?e, "a command's SENT not stored");
                }
            });
        }
    }
}

impl External {
    /// Publishes another message of the server's (a desired state) through the client, QoS 1,
    /// in turn with the commands, so their packet ids stay matched to them. False if the
    /// client cannot take it now (its connection is down).
    pub fn publish_other(&self, topic: String, payload: String, retain: bool) -> bool {
        self.queued.lock().unwrap_or_else(|e| e.into_inner()).push_back((String::new(), String::new()));
        let sent = self.client.try_publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload);
        if sent.is_err() {
            self.queued.lock().unwrap_or_else(|e| e.into_inner()).pop_back();
        }
        sent.is_ok()
    }
}

#[async_trait]
impl Transport for External {
    async fn send(&self, command: &Command, _link: &Link) -> bool {
        let entry = (command.device.clone(), command.id.clone());
        self.queued.lock().unwrap_or_else(|e| e.into_inner()).push_back(entry);
        let topic = command_topic(&command.device, &command.id);
        // Never waits: a full request queue (the connection is down) leaves it QUEUED, tried again.
        let sent = self.client.try_publish(topic, rumqttc::QoS::AtLeastOnce, false, command.payload());
        if sent.is_err() {
            self.queued.lock().unwrap_or_else(|e| e.into_inner()).pop_back();
        }
        sent.is_ok()
    }

    fn presence_by_status(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_takes_commands_by_its_own_filters_only() {
        assert_eq!(commands_subscriber("app/device/d1/cmd/+"), Some("d1"));
        assert_eq!(commands_subscriber("app/device/d1/cmd/#"), Some("d1"));
        assert_eq!(commands_subscriber("app/device/d1/#"), Some("d1"));
        assert_eq!(commands_subscriber("app/device/+/cmd/+"), None);
        assert_eq!(commands_subscriber("app/device/d1/telemetry"), None);
        assert_eq!(commands_subscriber("app/device/d1/cmd/abc"), None);
        assert_eq!(commands_subscriber("#"), None);
    }
}
