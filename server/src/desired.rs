//! Desired and reported state ([`telemetry::desired`] decides versions and sync): changed by
//! the API as JSON merge patches through the writer ([`Ingest::apply_desired`], durable and
//! shown live before it is answered), and sent to the device over a [`DesiredTransport`]: on
//! each change, when its connection subscribes to `app/device/<id>/desired`, and when it asks
//! on `desired/get`. What the device reports comes in by the ingest door like any message.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde_json::Value;
use telemetry::desired::Shadow;
use tracing::warn;

use crate::ingest::{Ingest, IngestError};
use crate::store::{DesiredOp, DesiredRefusal, Store, StoreError};

/// Sends a device its desired state.
#[async_trait]
pub trait DesiredTransport: Send + Sync {
    /// Publishes `shadow`'s desired state on the device's `desired` topic, QoS 1: to every
    /// subscriber, or to client `to` alone.
    async fn send(&self, shadow: &Shadow, to: Option<&str>) -> bool;
}

/// Why a desired-state request was not done.
#[derive(Debug, Clone, PartialEq)]
pub enum DesiredFailure {
    Refused(DesiredRefusal),
    Storage,
}

impl From<IngestError> for DesiredFailure {
    fn from(_: IngestError) -> DesiredFailure {
        DesiredFailure::Storage
    }
}

impl From<StoreError> for DesiredFailure {
    fn from(e: StoreError) -> DesiredFailure {
        tracing::error!(error = %e, "desired state not read");
        DesiredFailure::Storage
    }
}

/// Handle to desired state; cheap to clone.
#[derive(Clone)]
pub struct Desired {
    ingest: Ingest,
    store: Arc<dyn Store>,
    transport: Arc<OnceLock<Arc<dyn DesiredTransport>>>,
}

impl Desired {
    pub fn new(ingest: Ingest, store: Arc<dyn Store>) -> Desired {
        Desired { ingest, store, transport: Arc::default() }
    }

    /// Sends desired states over `transport` from now on (once).
    pub fn attach(&self, transport: Arc<dyn DesiredTransport>) {
        let _ = self.transport.set(transport);
    }

    /// A device's shadow, as stored (`None`: never set nor reported).
    pub async fn read(&self, device: &str) -> Result<Option<Shadow>, DesiredFailure> {
        let (store, device) = (self.store.clone(), device.to_owned());
        let read = tokio::task::spawn_blocking(move || store.shadow(&device));
        Ok(read.await.map_err(|_| DesiredFailure::Storage)??)
    }

    /// Applies a JSON merge patch to `device`'s desired state if it is still at version
    /// `if_match` (any, if `None`); once stored, a change is sent to the device.
    pub async fn patch(
        &self,
        device: &str,
        patch: Value,
        if_match: Option<u64>,
        by: &str,
    ) -> Result<Shadow, DesiredFailure> {
        let op = DesiredOp::Patch { device: device.to_owned(), patch, if_match, by: by.to_owned() };
        let applied = self.ingest.apply_desired(op).await?;
        let shadow = applied.answer.map_err(DesiredFailure::Refused)?;
        if applied.desired_changed {
            self.send(&shadow, None).await;
        }
        Ok(shadow)
    }

    /// Sends `device`'s desired state, if it has one, to client `client` (its connection
    /// subscribed, or asked).
    pub async fn send_to(&self, device: &str, client: &str) {
        match self.read(device).await {
            Ok(Some(shadow)) if shadow.v > 0 => self.send(&shadow, Some(client)).await,
            Ok(_) => {}
            Err(e) => warn!(error = ?e, "a desired state not sent"),
        }
    }

    async fn send(&self, shadow: &Shadow, to: Option<&str>) {
        if let Some(transport) = self.transport.get()
            && !transport.send(shadow, to).await
        {
            warn!(device = %shadow.device, v = shadow.v, "a desired state not sent");
        }
    }
}
