//! Retained MQTT messages, a row per topic: what the embedded broker loads at start. The
//! table is made by the first retained message: a file without it simply has none.

use redb::{ReadableTable, TableDefinition, TableError, WriteTransaction};

use super::super::error::StoreError;
use super::super::retained::{RetainStore, RetainedChange, RetainedMessage};
use super::RedbStore;

/// topic → (JSON [`RetainedMessage`] without its payload, the payload).
const RETAINED: TableDefinition<&str, (&[u8], &[u8])> = TableDefinition::new("retained");

impl RetainStore for RedbStore {
    fn retained(&self) -> Result<Vec<RetainedMessage>, StoreError> {
        let rx = self.db.read()?;
        let table = match rx.open_table(RETAINED) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (topic, value) = entry?;
            let (meta, payload) = value.value();
            let mut message: RetainedMessage = serde_json::from_slice(meta)
                .map_err(|e| StoreError::Corrupt(format!("retained message on {}: {e}", topic.value())))?;
            message.payload = payload.to_vec();
            out.push(message);
        }
        Ok(out)
    }

    fn put_retained(&self, changes: &[RetainedChange]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let _writer = self.writer();
        let tx = self.begin_write()?;
        write(&tx, changes)?;
        tx.commit()?;
        Ok(())
    }
}

/// Sets and clears retained messages in `tx`, in order: on their own, or with the commit of
/// the batch that published them.
pub(super) fn write(tx: &WriteTransaction, changes: &[RetainedChange]) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut table = tx.open_table(RETAINED)?;
    for change in changes {
        match change {
            RetainedChange::Set(message) => {
                let meta = serde_json::to_vec(message).expect("retained messages serialise");
                table.insert(message.topic.as_str(), (meta.as_slice(), message.payload.as_slice()))?;
            }
            RetainedChange::Clear(topic) => {
                table.remove(topic.as_str())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use telemetry::TelemetrySource;

    use super::super::super::api::{Report, StatusReport, Store};
    use super::super::super::retained::RetainedProperties;
    use super::super::tests::msg;
    use super::*;

    /// A disk in memory that can fill up: once full, every write fails (as a full disk or a
    /// failing one does), and what it held can be opened again, as after a crash.
    #[derive(Debug, Default)]
    struct Disk {
        bytes: Arc<Mutex<Vec<u8>>>,
        full: Arc<AtomicBool>,
    }

    impl Disk {
        /// Another disk holding what this one holds now.
        fn copy(&self) -> Disk {
            Disk { bytes: Arc::new(Mutex::new(self.bytes.lock().unwrap().clone())), ..Disk::default() }
        }

        fn shared(&self) -> Disk {
            Disk { bytes: self.bytes.clone(), full: self.full.clone() }
        }

        fn store(self) -> RedbStore {
            let db = redb::Database::builder().create_with_backend(self).unwrap();
            RedbStore::init(db, None, 0).unwrap()
        }

        fn refuse(&self) -> std::io::Result<()> {
            if self.full.load(Ordering::SeqCst) {
                return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full"));
            }
            Ok(())
        }
    }

    impl redb::StorageBackend for Disk {
        fn len(&self) -> std::io::Result<u64> {
            Ok(self.bytes.lock().unwrap().len() as u64)
        }

        fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
            let bytes = self.bytes.lock().unwrap();
            let start = offset as usize;
            let part = bytes.get(start..start + out.len()).ok_or(std::io::ErrorKind::UnexpectedEof)?;
            out.copy_from_slice(part);
            Ok(())
        }

        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.refuse()?;
            self.bytes.lock().unwrap().resize(len as usize, 0);
            Ok(())
        }

        fn sync_data(&self) -> std::io::Result<()> {
            self.refuse()
        }

        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.refuse()?;
            let mut bytes = self.bytes.lock().unwrap();
            let start = offset as usize;
            if bytes.len() < start + data.len() {
                bytes.resize(start + data.len(), 0);
            }
            bytes[start..start + data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    fn message(topic: &str, payload: &[u8]) -> RetainedMessage {
        RetainedMessage {
            topic: topic.into(),
            owner: "d1".into(),
            payload: payload.to_vec(),
            qos: 1,
            at: 5,
            expires: None,
            properties: RetainedProperties::default(),
        }
    }

    #[test]
    fn retained_messages_are_set_replaced_cleared_and_kept_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.redb");
        let mut v5 = message("app/device/d1/attributes", b"{\"fw\":\"1.0\"}");
        v5.expires = Some(60_005);
        v5.properties = RetainedProperties {
            utf8: true,
            content_type: Some("application/json".into()),
            response_topic: None,
            correlation_data: Some(vec![0, 159, 255]),
            user: vec![("k".into(), "v".into())],
        };
        {
            let store = RedbStore::open(&path).unwrap();
            assert!(store.retained().unwrap().is_empty(), "no table yet");
            store.put_retained(&[RetainedChange::Clear("nothing/here".into())]).unwrap();
            store
                .put_retained(&[
                    RetainedChange::Set(message("app/device/d1/status", b"online")),
                    RetainedChange::Set(message("other/topic", &[0, 1, 2, 255])),
                    RetainedChange::Set(v5.clone()),
                ])
                .unwrap();
            // In order: a later change to the same topic wins.
            store
                .put_retained(&[
                    RetainedChange::Set(message("app/device/d1/status", b"offline")),
                    RetainedChange::Clear("other/topic".into()),
                    RetainedChange::Set(message("other/topic", b"again")),
                    RetainedChange::Clear("other/topic".into()),
                ])
                .unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        let mut kept = store.retained().unwrap();
        kept.sort_by(|a, b| a.topic.cmp(&b.topic));
        assert_eq!(kept, vec![v5, message("app/device/d1/status", b"offline")]);
    }

    fn status(online: bool, at: telemetry::Millis) -> Report {
        let device = telemetry::DeviceId::try_from("d1").unwrap();
        Report::Status(StatusReport { device, online, at, session: None })
    }

    /// A batch and the retained messages it publishes are one commit: a commit that fails on
    /// disk stores neither (so neither the reading and status nor the retained message outlive
    /// a publish that was never acknowledged), and one that succeeds stores both.
    #[test]
    fn a_commit_stores_a_batch_and_its_retained_messages_together_or_neither() {
        let disk = Disk::default();
        let store = disk.shared().store();
        let mut online = message("app/device/d1/status", b"online");
        online.at = 1_000;
        store
            .commit_retaining(
                &[msg("d1", 1_000, &[("t", 1.0)])],
                &[status(true, 1_000)],
                &Default::default(),
                &[RetainedChange::Set(online.clone()), RetainedChange::Set(message("other/topic", b"x"))],
            )
            .unwrap();

        // The disk fills up during the next batch's commit.
        disk.full.store(true, Ordering::SeqCst);
        let mut offline = message("app/device/d1/status", b"offline");
        offline.at = 2_000;
        let failed = store.commit_retaining(
            &[msg("d1", 2_000, &[("t", 2.0)])],
            &[status(false, 2_000)],
            &Default::default(),
            &[RetainedChange::Set(offline.clone()), RetainedChange::Clear("other/topic".into())],
        );
        assert!(failed.is_err(), "the commit fails on a full disk");
        // What the disk holds, opened again as after a crash: the first batch, whole.
        let held = disk.copy();
        drop(store);
        let store = held.store();
        let mut kept = store.retained().unwrap();
        kept.sort_by(|a, b| a.topic.cmp(&b.topic));
        assert_eq!(kept, vec![online, message("other/topic", b"x")], "no retained change of the batch");
        assert_eq!(store.point_count().unwrap(), 1, "nor its reading");
        let d1 = store.device("d1").unwrap().value.unwrap();
        assert_eq!(d1.status.map(|s| (s.online, s.at)), Some((true, 1_000)), "nor its status");

        // Sent again once there is room: stored together.
        store
            .commit_retaining(
                &[msg("d1", 2_000, &[("t", 2.0)])],
                &[status(false, 2_000)],
                &Default::default(),
                &[RetainedChange::Set(offline.clone()), RetainedChange::Clear("other/topic".into())],
            )
            .unwrap();
        assert_eq!(store.retained().unwrap(), vec![offline]);
        assert_eq!(store.point_count().unwrap(), 2);
        let d1 = store.device("d1").unwrap().value.unwrap();
        assert_eq!(d1.status.map(|s| (s.online, s.at)), Some((false, 2_000)));
    }
}
