//! The read side ([`TelemetrySource`]) for the synchronous callers: the registry's and the
//! readings' queries ([`super::records`], [`super::history`], [`super::reads`],
//! [`super::connections`], [`super::reports`]) run on the store's runtime.

use telemetry::history::LocalDays;
use telemetry::source::{Current, DeviceLog};
use telemetry::{DeviceSummary, History, LiveEvent, Millis, SourceError, TelemetrySource};

use super::super::error::StoreError;
use super::blocking::PgBlocking;
use super::history::LocalEdges;

/// The read side's error: the kind crosses, the cause is logged here.
fn read<T>(answer: Result<T, StoreError>) -> Result<T, SourceError> {
    answer.map_err(|e| {
        tracing::warn!(error = %e, "postgres: a read failed");
        e.into()
    })
}

impl TelemetrySource for PgBlocking {
    fn devices(&self) -> Result<Current<Vec<DeviceSummary>>, SourceError> {
        read(self.call(|pg| async move { pg.devices().await }))
    }

    fn device(&self, id: &str) -> Result<Current<Option<DeviceSummary>>, SourceError> {
        let id = id.to_owned();
        read(self.call(|pg| async move { pg.device(&id).await }))
    }

    fn history_in(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        max_points: usize,
        days: Option<&dyn LocalDays>,
    ) -> Result<History, SourceError> {
        // Worked out here, so the query owns what it needs.
        let local = LocalEdges::of(from, to, max_points, days);
        let (device, metric) = (device.to_owned(), metric.to_owned());
        read(
            self.call(|pg| async move { pg.history_in(&device, &metric, from, to, max_points, local).await }),
        )
    }

    fn points(
        &self,
        device: &str,
        metric: &str,
        from: Millis,
        to: Millis,
        after: Option<Millis>,
        limit: usize,
    ) -> Result<Vec<(Millis, f64)>, SourceError> {
        let (device, metric) = (device.to_owned(), metric.to_owned());
        read(self.call(|pg| async move { pg.points(&device, &metric, from, to, after, limit).await }))
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<LiveEvent>, SourceError> {
        read(self.call(|pg| async move { pg.changes_since(after, limit).await }))
    }

    fn last_seq(&self) -> Result<u64, SourceError> {
        read(self.call(|pg| async move { pg.last_seq().await }))
    }

    fn device_log(&self, id: &str) -> Result<DeviceLog, SourceError> {
        let id = id.to_owned();
        read(self.call(|pg| async move { pg.device_log(&id).await }))
    }

    fn availability(
        &self,
        ids: &[String],
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Option<f64>>, SourceError> {
        let ids = ids.to_vec();
        read(self.call(|pg| async move { pg.availability(&ids, from, to).await }))
    }
}
