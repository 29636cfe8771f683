//! Each device's events (a firmware change, a reset reason, a boot count, a reboot seen in its
//! uptime), written with the commit that saw them, the latest [`MAX_DEVICE_EVENTS`] kept per
//! device: what its page lists. Rare and small, so they are read from disk, not kept in memory.

use redb::{ReadableTable, Table, TableDefinition};
use telemetry::attributes::{DeviceEvent, MAX_DEVICE_EVENTS};

use super::error::StoreError;

/// (device, change number) → JSON [`DeviceEvent`].
pub(super) const DEVICE_EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("device_events");

/// Adds `event`, numbered `seq`, and drops the device's oldest beyond [`MAX_DEVICE_EVENTS`].
pub(super) fn append(
    table: &mut Table<(&str, u64), &[u8]>,
    seq: u64,
    event: &DeviceEvent,
) -> Result<(), StoreError> {
    let device = event.device.as_str();
    let json = serde_json::to_vec(event).expect("device events serialise");
    table.insert((device, seq), json.as_slice())?;
    let kept: Vec<u64> = table
        .range((device, 0)..=(device, u64::MAX))?
        .map(|entry| entry.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for old in kept.iter().take(kept.len().saturating_sub(MAX_DEVICE_EVENTS)) {
        table.remove((device, *old))?;
    }
    Ok(())
}

/// `device`'s events, newest first.
pub(super) fn of(
    table: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    device: &str,
) -> Result<Vec<DeviceEvent>, StoreError> {
    let mut out = Vec::new();
    for entry in table.range((device, 0)..=(device, u64::MAX))?.rev() {
        let (_, json) = entry?;
        let event = serde_json::from_slice(json.value())
            .map_err(|e| StoreError::Corrupt(format!("device event of {device}: {e}")))?;
        out.push(event);
    }
    Ok(out)
}

/// Deletes `device`'s events.
pub(super) fn delete(table: &mut Table<(&str, u64), &[u8]>, device: &str) -> Result<(), StoreError> {
    table.retain_in((device, 0)..=(device, u64::MAX), |_, _| false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;
    use telemetry::attributes::{AttrValue, EventKind};

    fn reboot(device: &str, at: i64) -> DeviceEvent {
        let kind = EventKind::Reboot { uptime_before: 100.0, uptime_after: 1.0 };
        DeviceEvent { device: device.into(), at, kind }
    }

    #[test]
    fn each_device_keeps_its_latest_events_newest_first() {
        let db =
            redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut table = tx.open_table(DEVICE_EVENTS).unwrap();
            for seq in 1..=(MAX_DEVICE_EVENTS as u64 + 10) {
                append(&mut table, seq * 2, &reboot("a", seq as i64)).unwrap();
            }
            let fw = EventKind::Attribute {
                name: "fw".into(),
                from: AttrValue::Text("1".into()),
                to: AttrValue::Text("2".into()),
            };
            append(&mut table, 7, &DeviceEvent { device: "ab".into(), at: 7, kind: fw }).unwrap();
            let a = of(&table, "a").unwrap();
            assert_eq!(a.len(), MAX_DEVICE_EVENTS);
            assert_eq!(a.first().map(|e| e.at), Some(MAX_DEVICE_EVENTS as i64 + 10));
            assert_eq!(a.last().map(|e| e.at), Some(11));
            assert_eq!(of(&table, "ab").unwrap().len(), 1, "another device's own");
            delete(&mut table, "a").unwrap();
            assert!(of(&table, "a").unwrap().is_empty());
            assert_eq!(of(&table, "ab").unwrap().len(), 1);
        }
        tx.commit().unwrap();
        let rx = db.begin_read().unwrap();
        assert_eq!(of(&rx.open_table(DEVICE_EVENTS).unwrap(), "ab").unwrap()[0].at, 7);
    }
}
