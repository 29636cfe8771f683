//! Desired state through the embedded broker ([`crate::desired`]): published by the broker's
//! own sender on `app/device/<id>/desired`, QoS 1, never retained (a device that was away gets
//! it when it subscribes, or asks on `desired/get`), to every subscriber on a change, or to the
//! one connection that subscribed or asked.
//!
//! Through an external broker ([`External`]): published by the server's client, QoS 1 and
//! retained, so the broker hands it to the device whenever it subscribes (the server cannot see
//! subscriptions there); a `desired/get` publishes it again.

use std::sync::Arc;

use async_trait::async_trait;
use rmqtt::codec::types::Publish as CodecPublish;
use rmqtt::context::ServerContext;
use rmqtt::session::SessionState;
use rmqtt::types::{From, Id, Publish, QoS};
use telemetry::desired::{Shadow, desired_topic};

use crate::clock::now_ms;
use crate::desired::DesiredTransport;

/// The client id desired states are sent from (as the broker's own messages).
const SENDER: &str = "iot-desired";

pub struct Embedded {
    scx: ServerContext,
}

impl Embedded {
    pub fn new(scx: ServerContext) -> Arc<Embedded> {
        Arc::new(Embedded { scx })
    }
}

/// Sends desired states through the external broker's client.
pub struct External {
    client: Arc<super::commands::External>,
}

impl External {
    pub fn new(client: Arc<super::commands::External>) -> Arc<External> {
        Arc::new(External { client })
    }
}

#[async_trait]
impl DesiredTransport for External {
    async fn send(&self, shadow: &Shadow, _to: Option<&str>) -> bool {
        self.client.publish_other(desired_topic(&shadow.device), shadow.payload(), true)
    }
}

#[async_trait]
impl DesiredTransport for Embedded {
    async fn send(&self, shadow: &Shadow, to: Option<&str>) -> bool {
        let publish = Publish::from(CodecPublish {
            dup: false,
            retain: false,
            qos: QoS::AtLeastOnce,
            topic: desired_topic(&shadow.device).into(),
            packet_id: None,
            payload: shadow.payload().into_bytes().into(),
            properties: None,
        })
        .create_time(now_ms());
        let publish = match to {
            Some(client) => publish.target_clientid(client.into()),
            None => publish,
        };
        let id = Id::new(self.scx.node.id(), 0, None, None, SENDER.into(), None);
        SessionState::forwards(&self.scx, From::from_system(id), publish, false, None).await.is_ok()
    }
}
