//! Devices' tags: each change is a numbered [`LiveEvent::Tags`] in the change log, like a
//! reading, so live clients and the offline cache follow it; the registry holds the tags in
//! memory and checkpoints them with the rest of the record (a crash replays the log).

use telemetry::tags::Tags;
use telemetry::{LiveEvent, Millis};

use super::super::api::{CommitOutcome, TagStore};
use super::super::change_log::{self, CHANGES};
use super::super::error::StoreError;
use super::super::maps::FastSet;
use super::super::registry::META;
use super::super::registry::counter;
use super::RedbStore;
use super::schema::LAST_SEQ;

impl TagStore for RedbStore {
    fn put_tags(&self, tags: &[(String, Tags)], at: Millis) -> Result<CommitOutcome, StoreError> {
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let mem = self.mem();
        let mut outcome = CommitOutcome::default();
        let mut records = Vec::new();
        let mut seen: FastSet<&str> = FastSet::default();
        {
            let mut meta = tx.open_table(META)?;
            let mut seq = counter(&meta, LAST_SEQ)?;
            let first = seq + 1;
            for (id, new) in tags {
                let Some(old) = mem.devices.get(id).filter(|r| r.registered()) else { continue };
                if &old.tags == new || !seen.insert(id) {
                    continue;
                }
                seq += 1;
                let mut rec = old.clone();
                rec.tags = new.clone();
                rec.seq = seq;
                records.push((id.clone(), rec));
                outcome.events.push(LiveEvent::Tags { seq, device: id.clone(), tags: new.clone(), at });
            }
            if records.is_empty() {
                return Ok(outcome);
            }
            outcome.wire = outcome
                .events
                .iter()
                .map(|e| serde_json::to_string(e).expect("live events serialise"))
                .collect();
            change_log::append(&mut tx.open_table(CHANGES)?, first, &outcome.wire)?;
            meta.insert(LAST_SEQ, seq)?;
        }
        drop(mem);
        let mut mem = self.mem_mut();
        tx.commit()?;
        for (id, rec) in records {
            mem.devices.put(id, rec);
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use telemetry::TelemetrySource;
    use telemetry::tags::parse_tags;

    use super::super::tests::msg;
    use super::*;
    use crate::store::api::Store;

    #[test]
    fn tags_are_changes_that_survive_a_crash_and_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let site = parse_tags("site=greenhouse floor=2").unwrap();
        {
            let store = RedbStore::open(&path).unwrap();
            store.commit(&[msg("a", 1_000, &[("t", 1.0)]), msg("b", 1_000, &[("t", 1.0)])], &[]).unwrap();
            let out = store
                .put_tags(&[("a".into(), site.clone()), ("nobody".into(), site.clone())], 5_000)
                .unwrap();
            assert_eq!(
                out.events,
                [LiveEvent::Tags { seq: 3, device: "a".into(), tags: site.clone(), at: 5_000 }],
                "an unknown device is left out"
            );
            assert!(
                store.put_tags(&[("a".into(), site.clone())], 6_000).unwrap().events.is_empty(),
                "no change"
            );
            assert_eq!(store.last_seq().unwrap(), 3);
            assert_eq!(store.changes_since(2, 10).unwrap(), out.events, "in the change log");
            store.commit(&[msg("a", 2_000, &[("t", 2.0)])], &[]).unwrap();
            // Dropped without a checkpoint: the log replays them.
        }
        {
            let store = RedbStore::open(&path).unwrap();
            let a = store.device("a").unwrap().value.unwrap();
            assert_eq!((a.tags.clone(), a.message_count), (site.clone(), 2));
            assert!(store.device("b").unwrap().value.unwrap().tags.is_empty());
            store.put_tags(&[("b".into(), parse_tags("site=barn").unwrap())], 7_000).unwrap();
            store.put_tags(&[("a".into(), Tags::new())], 7_000).unwrap();
            store.seal(i64::MAX).unwrap();
            store.trim_changes(0).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert!(store.device("a").unwrap().value.unwrap().tags.is_empty(), "checkpointed");
        assert_eq!(store.device("b").unwrap().value.unwrap().tags["site"], "barn");
    }
}
