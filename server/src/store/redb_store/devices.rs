//! Device administration: a name, a note and an expected interval per device, and deleting a
//! device with all its history. Each writes the registry through at once, as a checkpoint does.

use redb::ReadableTable;
use telemetry::{DeviceAdmin, Millis, SourceError};

use super::super::chunks;
use super::super::connection_log;
use super::super::device_events::{self, DEVICE_EVENTS};
use super::super::head::Head;
use super::super::registry::{DEVICES, DeviceRecord};
use super::super::rollup;
use super::schema::{SERIES, last_seq};
use super::{RedbStore, answer};

impl RedbStore {
    /// Changes a registered device's record and writes it through; false if unknown.
    fn edit_record(&self, id: &str, change: impl FnOnce(&mut DeviceRecord)) -> Result<bool, SourceError> {
        let _writer = self.writer();
        let Some(mut rec) = self.mem().devices.get(id).filter(|r| r.registered()).cloned() else {
            return Ok(false);
        };
        change(&mut rec);
        answer(|| {
            let tx = self.begin_write()?;
            let bytes = serde_json::to_vec(&rec).expect("device records serialise");
            tx.open_table(DEVICES)?.insert(id, bytes.as_slice())?;
            let mut mem = self.mem_mut();
            tx.commit()?;
            mem.devices.put(id.to_owned(), rec);
            Ok(true)
        })
    }
}

impl DeviceAdmin for RedbStore {
    fn set_device_meta(
        &self,
        id: &str,
        name: Option<String>,
        note: Option<String>,
    ) -> Result<bool, SourceError> {
        self.edit_record(id, |rec| {
            rec.name = name;
            rec.note = note;
        })
    }

    fn set_expected_interval(&self, id: &str, interval: Option<Millis>) -> Result<bool, SourceError> {
        self.edit_record(id, |rec| rec.interval_set = interval)
    }

    fn delete_device(&self, id: &str) -> Result<bool, SourceError> {
        let _writer = self.writer();
        answer(|| {
            let tx = self.begin_write()?;
            let gone: Vec<(String, u32)> = {
                let series = tx.open_table(SERIES)?;
                let mut found = Vec::new();
                for entry in series.range((id, "")..)? {
                    let (k, v) = entry?;
                    let (device, metric) = k.value();
                    if device != id {
                        break;
                    }
                    found.push((metric.to_owned(), v.value()));
                }
                found
            };
            let existed = {
                let mem = self.mem();
                let mut series = tx.open_table(SERIES)?;
                let sids: Vec<u32> = gone.iter().map(|(_, sid)| *sid).collect();
                Head::delete(&tx, Some(&sids), i64::MAX)?;
                for (metric, sid) in &gone {
                    chunks::delete(&tx, *sid)?;
                    rollup::delete(&tx, *sid)?;
                    series.remove((id, metric.as_str()))?;
                }
                device_events::delete(&mut tx.open_table(DEVICE_EVENTS)?, id)?;
                connection_log::delete(&tx, id)?;
                // A checkpoint first, so the change log is never replayed onto the deleted device.
                mem.devices.checkpoint(&tx, last_seq(&tx)?)?;
                tx.open_table(DEVICES)?.remove(id)?;
                mem.devices.get(id).is_some()
            };
            let mut mem = self.mem_mut();
            tx.commit()?;
            for (metric, sid) in &gone {
                mem.head.drop_series(*sid);
                mem.sealed.remove(sid);
                mem.series.remove(id, metric);
            }
            mem.devices.remove(id);
            mem.devices.clean();
            Ok(existed)
        })
    }
}
