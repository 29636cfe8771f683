//! Devices' desired and reported state: a row per device holding its JSON [`Shadow`]. The
//! table is made by the first change: a file without it simply has none.

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableError};
use telemetry::desired::Shadow;
use telemetry::{LiveEvent, Millis};

use super::super::change_log::{self, CHANGES};
use super::super::desired::{DesiredApplied, DesiredOp, DesiredRefusal, DesiredStore, MAX_SHADOWS, decide};
use super::super::error::StoreError;
use super::super::outcome::CommitOutcome;
use super::super::registry::{META, counter};
use super::RedbStore;
use super::schema::LAST_SEQ;

/// device → the JSON [`Shadow`].
const SHADOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("desired");

fn parse(json: &[u8]) -> Result<Shadow, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(format!("desired state: {e}")))
}

fn refused(why: DesiredRefusal) -> DesiredApplied {
    DesiredApplied { answer: Err(why), desired_changed: false, outcome: CommitOutcome::default() }
}

impl DesiredStore for RedbStore {
    fn apply_desired(&self, op: &DesiredOp, now: Millis) -> Result<DesiredApplied, StoreError> {
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let device = op.device();
        let applied = 'done: {
            let mut rows = tx.open_table(SHADOWS)?;
            let before = rows.get(device)?.map(|v| parse(v.value())).transpose()?;
            if before.is_none() && rows.len()? as usize >= MAX_SHADOWS {
                break 'done refused(DesiredRefusal::Full(MAX_SHADOWS));
            }
            let old = before.unwrap_or_else(|| Shadow::new(device));
            let (shadow, desired_changed) = match decide(&old, op, now) {
                Ok(decided) => decided,
                Err(why) => break 'done refused(why),
            };
            let mut outcome = CommitOutcome::default();
            if shadow != old {
                let json = serde_json::to_vec(&shadow).expect("shadows serialise");
                rows.insert(device, json.as_slice())?;
                let mut meta = tx.open_table(META)?;
                let seq = counter(&meta, LAST_SEQ)? + 1;
                let event = LiveEvent::Desired { seq, at: now, shadow: Box::new(shadow.clone()) };
                let wire = serde_json::to_string(&event).expect("live events serialise");
                change_log::append(&mut tx.open_table(CHANGES)?, seq, std::slice::from_ref(&wire))?;
                meta.insert(LAST_SEQ, seq)?;
                outcome.events = vec![event];
                outcome.wire = vec![wire];
            }
            DesiredApplied { answer: Ok(shadow), desired_changed, outcome }
        };
        if applied.outcome.events.is_empty() {
            // Nothing to keep: a report the same as the last, or a patch that changes nothing.
            tx.abort()?;
        } else {
            tx.commit()?;
        }
        Ok(applied)
    }

    fn shadow(&self, device: &str) -> Result<Option<Shadow>, StoreError> {
        let rx = self.db.read()?;
        let rows = match rx.open_table(SHADOWS) {
            Ok(rows) => rows,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        rows.get(device)?.map(|v| parse(v.value())).transpose()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use telemetry::TelemetrySource;
    use telemetry::desired::Sync;

    use super::*;

    fn patch(device: &str, patch: serde_json::Value, if_match: Option<u64>) -> DesiredOp {
        DesiredOp::Patch { device: device.into(), patch, if_match, by: "ann".into() }
    }

    #[test]
    fn desired_changes_are_versioned_numbered_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            assert_eq!(store.shadow("d1").unwrap(), None, "no table yet");
            let set = store.apply_desired(&patch("d1", json!({"interval_s": 30}), Some(0)), 5_000).unwrap();
            let shadow = set.answer.unwrap();
            assert_eq!(
                (shadow.v, shadow.updated_by.as_deref(), shadow.updated_at),
                (1, Some("ann"), Some(5_000))
            );
            assert!(set.desired_changed);
            assert_eq!(store.changes_since(0, 10).unwrap(), set.outcome.events, "in the change log");
            let stale = store.apply_desired(&patch("d1", json!({"relay": true}), Some(0)), 6_000).unwrap();
            assert_eq!(stale.answer, Err(DesiredRefusal::Stale { current: 1 }));
            let same = store.apply_desired(&patch("d1", json!({"interval_s": 30}), None), 6_000).unwrap();
            assert!(!same.desired_changed && same.outcome.events.is_empty(), "no change, no version");
            let reported = DesiredOp::Reported {
                device: "d1".into(),
                v: 1,
                state: json!({"interval_s": 30}).as_object().unwrap().clone(),
            };
            let r = store.apply_desired(&reported, 7_000).unwrap();
            assert_eq!(r.answer.unwrap().sync(), Sync::InSync);
            assert!(
                store.apply_desired(&reported, 8_000).unwrap().outcome.events.is_empty(),
                "the same report"
            );
        }
        let store = RedbStore::open(&path).unwrap();
        let shadow = store.shadow("d1").unwrap().unwrap();
        assert_eq!((shadow.v, shadow.reported.as_ref().map(|r| r.at)), (1, Some(7_000)));
        assert!(store.device("d1").unwrap().value.is_none(), "desired state makes no device record");
        let big = json!({"s": "x".repeat(5000)});
        let refused = store.apply_desired(&patch("d1", big, None), 9_000).unwrap();
        assert!(matches!(refused.answer, Err(DesiredRefusal::Invalid(_))));
    }

    #[test]
    fn at_the_maximum_only_devices_that_have_desired_state_change_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("d.redb")).unwrap();
        store.apply_desired(&patch("d0", json!({"relay": true}), None), 1_000).unwrap().answer.unwrap();
        let tx = store.begin_write().unwrap();
        {
            let mut rows = tx.open_table(SHADOWS).unwrap();
            for i in 1..MAX_SHADOWS {
                let device = format!("filler-{i}");
                let json = serde_json::to_vec(&Shadow::new(&device)).unwrap();
                rows.insert(device.as_str(), json.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
        let report = |device: &str| DesiredOp::Reported {
            device: device.into(),
            v: 1,
            state: json!({"relay": true}).as_object().unwrap().clone(),
        };
        let new = store.apply_desired(&report("d-new"), 2_000).unwrap();
        assert_eq!(new.answer, Err(DesiredRefusal::Full(MAX_SHADOWS)));
        assert!(new.outcome.events.is_empty() && store.shadow("d-new").unwrap().is_none(), "nothing stored");
        let known = store.apply_desired(&report("d0"), 2_000).unwrap();
        assert!(known.answer.is_ok() && known.outcome.events.len() == 1, "a known device still reports");
    }
}
