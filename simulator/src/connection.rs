//! One device's MQTT connection, 3.1.1 (rumqttc) or 5 (rumqttc's v5 module): the few things a
//! device does with it (publish, subscribe, receive, reconnect with a new will), whichever
//! protocol it speaks, so the device loop is written once.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PublishProperties};
use rumqttc::v5::mqttbytes::{QoS as QoS5, v5::LastWill as LastWill5};
use rumqttc::{LastWill, Packet, QoS, TlsConfiguration, Transport};
use telemetry::decode::status_payload;
use telemetry::topic::status_topic;

use crate::Broker;

/// Publishing and subscribing; cheap to clone.
#[derive(Clone)]
pub enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// Polling, which also reconnects.
pub enum EventLoop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// What the device loop acts on.
pub enum Event {
    Connected,
    PubAck,
    Message(Box<Message>),
    Other,
}

/// A message received.
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    /// MQTT 5: where the sender asked for the answer, and what to send back with it.
    pub reply: Option<Reply>,
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub topic: String,
    /// Only the correlation data set.
    pub properties: PublishProperties,
}

/// Longest response topic taken from a command; longer ones are answered by the topic rule.
const MAX_RESPONSE_TOPIC: usize = 256;

/// The last will of connection `session`: a retained `offline` on the status topic, so a
/// dashboard that connects later sees it.
fn will(id: &str, session: u64) -> LastWill {
    LastWill::new(status_topic(id), status_payload(false, session), QoS::AtLeastOnce, true)
}

fn will5(id: &str, session: u64) -> LastWill5 {
    LastWill5::new(status_topic(id), status_payload(false, session), QoS5::AtLeastOnce, true, None)
}

/// Connection options for `client_id` (3.1.1): its own key when the broker has per-device keys,
/// TLS when asked.
pub fn options(broker: &Broker, client_id: &str) -> anyhow::Result<rumqttc::MqttOptions> {
    let mut o = rumqttc::MqttOptions::new(client_id, &broker.host, broker.port);
    o.set_keep_alive(Duration::from_secs(30));
    let (user, password) = credentials(broker, client_id)?;
    if let Some(user) = user {
        o.set_credentials(user, password);
    }
    if let Some(tls) = &broker.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone())));
    }
    Ok(o)
}

fn credentials(broker: &Broker, client_id: &str) -> anyhow::Result<(Option<String>, String)> {
    Ok(if let Some(keys) = &broker.keys {
        (Some(client_id.to_owned()), keys.of(client_id)?.to_owned())
    } else if let Some(user) = &broker.username {
        (Some(user.clone()), broker.password.clone().unwrap_or_default())
    } else {
        (None, String::new())
    })
}

/// A device's connection (not yet connected: the first poll connects), with the last will of
/// connection `session`.
pub fn connect(broker: &Broker, id: &str, mqtt5: bool, session: u64) -> anyhow::Result<(Client, EventLoop)> {
    if !mqtt5 {
        let mut o = options(broker, id)?;
        o.set_last_will(will(id, session));
        let (client, eventloop) = rumqttc::AsyncClient::new(o, 64);
        return Ok((Client::V4(client), EventLoop::V4(Box::new(eventloop))));
    }
    let mut o = rumqttc::v5::MqttOptions::new(id, &broker.host, broker.port);
    o.set_keep_alive(Duration::from_secs(30));
    let (user, password) = credentials(broker, id)?;
    if let Some(user) = user {
        o.set_credentials(user, password);
    }
    if let Some(tls) = &broker.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone())));
    }
    o.set_last_will(will5(id, session));
    let (client, eventloop) = rumqttc::v5::AsyncClient::new(o, 64);
    Ok((Client::V5(client), EventLoop::V5(Box::new(eventloop))))
}

fn qos5(qos: QoS) -> QoS5 {
    match qos {
        QoS::AtMostOnce => QoS5::AtMostOnce,
        QoS::AtLeastOnce => QoS5::AtLeastOnce,
        QoS::ExactlyOnce => QoS5::ExactlyOnce,
    }
}

impl Client {
    /// Publishes, waiting for room in the request queue (never from the poll loop itself).
    pub async fn publish(
        &self,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        match self {
            Client::V4(c) => c.publish(topic, qos, retain, payload).await.map_err(|e| e.to_string()),
            Client::V5(c) => c.publish(topic, qos5(qos), retain, payload).await.map_err(|e| e.to_string()),
        }
    }

    /// An answer: MQTT 5 to the reply's topic with its correlation data, else to `topic`.
    pub async fn answer(
        &self,
        topic: String,
        reply: Option<Reply>,
        qos: QoS,
        payload: Vec<u8>,
    ) -> Result<(), String> {
        match (self, reply) {
            (Client::V5(c), Some(reply)) => c
                .publish_with_properties(reply.topic, qos5(qos), false, payload, reply.properties)
                .await
                .map_err(|e| e.to_string()),
            _ => self.publish(topic, qos, false, payload).await,
        }
    }

    /// Queues a publish without waiting (from the poll loop); false if the queue is full.
    pub fn try_publish(&self, topic: String, qos: QoS, retain: bool, payload: Vec<u8>) -> bool {
        match self {
            Client::V4(c) => c.try_publish(topic, qos, retain, payload).is_ok(),
            Client::V5(c) => c.try_publish(topic, qos5(qos), retain, payload).is_ok(),
        }
    }

    pub fn try_subscribe(&self, filter: String, qos: QoS) -> bool {
        match self {
            Client::V4(c) => c.try_subscribe(filter, qos).is_ok(),
            Client::V5(c) => c.try_subscribe(filter, qos5(qos)).is_ok(),
        }
    }
}

impl EventLoop {
    pub async fn poll(&mut self) -> Result<Event, String> {
        match self {
            EventLoop::V4(e) => Ok(match e.poll().await.map_err(|e| e.to_string())? {
                rumqttc::Event::Incoming(Packet::ConnAck(_)) => Event::Connected,
                rumqttc::Event::Incoming(Packet::PubAck(_)) => Event::PubAck,
                rumqttc::Event::Incoming(Packet::Publish(p)) => Event::Message(Box::new(Message {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                    reply: None,
                })),
                _ => Event::Other,
            }),
            EventLoop::V5(e) => Ok(match e.poll().await.map_err(|e| e.to_string())? {
                rumqttc::v5::Event::Incoming(Packet5::ConnAck(_)) => Event::Connected,
                rumqttc::v5::Event::Incoming(Packet5::PubAck(_)) => Event::PubAck,
                rumqttc::v5::Event::Incoming(Packet5::Publish(p)) => {
                    let reply = p.properties.as_ref().and_then(|props| {
                        let topic = props.response_topic.as_ref()?;
                        let usable = !topic.is_empty()
                            && topic.len() <= MAX_RESPONSE_TOPIC
                            && !topic.contains(['+', '#']);
                        usable.then(|| Reply {
                            topic: topic.clone(),
                            properties: PublishProperties {
                                correlation_data: props.correlation_data.clone(),
                                ..PublishProperties::default()
                            },
                        })
                    });
                    Event::Message(Box::new(Message {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload.to_vec(),
                        reply,
                    }))
                }
                _ => Event::Other,
            }),
        }
    }

    /// The next connection is connection `session`, with its own will.
    pub fn set_session(&mut self, id: &str, session: u64) {
        match self {
            EventLoop::V4(e) => {
                e.mqtt_options.set_last_will(will(id, session));
            }
            EventLoop::V5(e) => {
                e.options.set_last_will(will5(id, session));
            }
        }
    }
}
