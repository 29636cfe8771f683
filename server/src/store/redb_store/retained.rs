//! Retained MQTT messages, a row per topic: what the embedded broker loads at start. The
//! table is made by the first retained message: a file without it simply has none.

use redb::{ReadableTable, TableDefinition, TableError};

use super::super::StoreError;
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
        {
            let mut table = tx.open_table(RETAINED)?;
            for change in changes {
                match change {
                    RetainedChange::Set(message) => {
                        let meta = serde_json::to_vec(message).expect("retained messages serialise");
                        table
                            .insert(message.topic.as_str(), (meta.as_slice(), message.payload.as_slice()))?;
                    }
                    RetainedChange::Clear(topic) => {
                        table.remove(topic.as_str())?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::retained::RetainedProperties;
    use super::*;

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
}
