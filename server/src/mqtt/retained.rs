//! The embedded broker's retained messages, as rmqtt asks for them: its `RetainStorage` (which
//! upstream leaves to a plugin with its own storage) answered from [`Retained`], which holds
//! what the store holds. rmqtt hands each retained publish to [`RetainStorage::set`] only after
//! the publish hook; by then the hook has already had it committed with the message's readings
//! or status and applied, caps checked, before the PUBACK ([`super::broker`]), so `set` has
//! nothing left to do. New subscriptions get the messages their filters match, each delivery
//! still checked against the subscriber's rights of the moment by the broker's delivery hook.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmqtt::codec::types::Publish as CodecPublish;
use rmqtt::codec::v5::PublishProperties;
use rmqtt::retain::RetainStorage;
use rmqtt::types::{ClientId, From, Id, NodeId, Publish, QoS, Retain, TopicFilter, TopicName};
use telemetry::Millis;

use crate::ingest::Retained;
use crate::store::RetainedMessage;
use crate::store::RetainedProperties;

/// rmqtt's view of [`Retained`].
pub struct RetainedStorage {
    retained: Arc<Retained>,
    node: NodeId,
}

impl RetainedStorage {
    pub fn new(retained: Arc<Retained>, node: NodeId) -> RetainedStorage {
        RetainedStorage { retained, node }
    }
}

#[async_trait]
impl RetainStorage for RetainedStorage {
    /// On unless the caps keep none: MQTT 5 clients are told whether retained messages are
    /// available (if not, one with a retained will is refused at CONNECT, 0x9A), and rmqtt
    /// hands new subscriptions what [`RetainStorage::get`] finds.
    fn enable(&self) -> bool {
        self.retained.enabled()
    }

    /// Already stored by the publish hook (or refused there, and then never routed here).
    async fn set(&self, _: &TopicName, _: Retain, _: Option<Duration>) -> rmqtt::Result<()> {
        Ok(())
    }

    async fn get(&self, filter: &TopicFilter) -> rmqtt::Result<Vec<(TopicName, Retain)>> {
        let now = crate::clock::now_ms();
        let matching = self.retained.matching(filter, now);
        Ok(matching.iter().map(|m| (TopicName::from(m.topic.as_str()), self.retain(m, now))).collect())
    }

    async fn count(&self) -> isize {
        self.retained.len() as isize
    }

    async fn max(&self) -> isize {
        self.retained.len() as isize
    }
}

impl RetainedStorage {
    /// `message` as rmqtt delivers it, from its owner, its expiry counted down to `now`.
    fn retain(&self, message: &RetainedMessage, now: Millis) -> Retain {
        let from = From::from_custom(Id::from(self.node, ClientId::from(message.owner.as_str())));
        Retain { msg_id: None, from, publish: publish(message, now) }
    }
}

fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// What a subscriber is sent of `message` at `now`: MQTT 5 says a retained message's expiry
/// interval is what is left of it.
fn publish(message: &RetainedMessage, now: Millis) -> Publish {
    let p = &message.properties;
    let remaining = message.expires.map(|at| {
        let secs = (at.saturating_sub(now).max(0) as u64).div_ceil(1000);
        std::num::NonZeroU32::new(u32::try_from(secs).unwrap_or(u32::MAX))
            .unwrap_or(std::num::NonZeroU32::MIN)
    });
    let properties = PublishProperties {
        message_expiry_interval: remaining,
        content_type: p.content_type.as_deref().map(Into::into),
        response_topic: p.response_topic.as_deref().map(Into::into),
        correlation_data: p.correlation_data.clone().map(Into::into),
        user_properties: p.user.iter().map(|(k, v)| (k.as_str().into(), v.as_str().into())).collect(),
        is_utf8_payload: p.utf8,
        ..Default::default()
    };
    Publish::from(CodecPublish {
        dup: false,
        retain: true,
        qos: qos(message.qos),
        topic: message.topic.as_str().into(),
        packet_id: None,
        payload: message.payload.clone().into(),
        properties: Some(properties),
    })
}

/// What to retain of `publish`, published by `client` at `at` (an empty payload clears).
pub fn retained_message(publish: &Publish, client: &str, at: Millis) -> RetainedMessage {
    let topic: &str = &publish.topic;
    let props = publish.properties.as_ref();
    let expires = props
        .and_then(|p| p.message_expiry_interval)
        .map(|secs| at.saturating_add(i64::from(secs.get()) * 1000));
    let properties = props.map_or_else(RetainedProperties::default, |p| RetainedProperties {
        utf8: p.is_utf8_payload,
        content_type: p.content_type.as_ref().map(|c| c.to_string()),
        response_topic: p.response_topic.as_ref().map(|t| t.to_string()),
        correlation_data: p.correlation_data.as_ref().map(|d| d.to_vec()),
        user: p.user_properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    });
    RetainedMessage {
        topic: topic.to_owned(),
        owner: crate::ingest::retained::owner(topic, client).to_owned(),
        payload: publish.payload.to_vec(),
        qos: publish.qos.value(),
        at,
        expires,
        properties,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_is_kept_and_handed_back_as_published_with_what_is_left_of_its_expiry() {
        let properties = PublishProperties {
            message_expiry_interval: std::num::NonZeroU32::new(60),
            content_type: Some("application/json".into()),
            correlation_data: Some(vec![1u8, 2, 255].into()),
            user_properties: vec![("k".into(), "v".into())],
            is_utf8_payload: true,
            ..Default::default()
        };
        let published = Publish::from(CodecPublish {
            dup: false,
            retain: true,
            qos: QoS::AtLeastOnce,
            topic: "app/device/d1/attributes".into(),
            packet_id: std::num::NonZeroU16::new(7),
            payload: b"{\"fw\":\"1.0\"}".to_vec().into(),
            properties: Some(properties),
        });
        let kept = retained_message(&published, "d1", 1_000);
        assert_eq!((kept.owner.as_str(), kept.expires, kept.qos), ("d1", Some(61_000), 1));
        let back = publish(&kept, 31_500);
        assert!(back.retain);
        assert_eq!(back.payload, published.payload);
        assert_eq!(back.topic, published.topic);
        let p = back.properties.as_ref().unwrap();
        assert_eq!(p.message_expiry_interval.map(|s| s.get()), Some(30), "29.5 s left, rounded up");
        assert_eq!(p.content_type.as_deref(), Some("application/json"));
        assert_eq!(p.correlation_data.as_deref(), Some(&[1u8, 2, 255][..]));
        assert_eq!(p.user_properties, vec![("k".into(), "v".into())]);
        assert!(p.is_utf8_payload);
        // A topic that is not a device's is its connection's.
        let other = Publish::from(CodecPublish {
            topic: "home/lamp".into(),
            properties: None,
            ..(*published.inner).clone()
        });
        let kept = retained_message(&other, "node-red", 5);
        assert_eq!((kept.owner.as_str(), kept.expires), ("node-red", None));
        assert!(kept.properties.is_empty());
    }
}
