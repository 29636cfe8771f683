//! Devices' desired and reported state: a row per device holding its JSON [`Shadow`], each
//! change stored with its numbered [`LiveEvent::Desired`] in one transaction, decided as the
//! redb store decides ([`decide`]).
//!
//! Between nodes: the change counter is locked before the shadow is read, so changes on every
//! node take turns and each is decided against the shadow the previous one committed: of two
//! patches made against version 4, the second finds version 5 and is refused as stale. The
//! cap is the `shadows` counter row, raised (within [`MAX_SHADOWS`]) in the transaction that
//! makes a device's first shadow.

use telemetry::desired::Shadow;
use telemetry::{LiveEvent, Millis};

use super::super::desired::{DesiredApplied, DesiredOp, DesiredRefusal, DesiredStore, MAX_SHADOWS, decide};
use super::super::error::StoreError;
use super::super::outcome::CommitOutcome;
use super::blocking::PgBlocking;
use super::change_log;
use super::error::PgError;
use super::store::PgStore;
use super::tags::lock_changes;

fn parse(doc: serde_json::Value) -> Result<Shadow, PgError> {
    serde_json::from_value(doc).map_err(|e| PgError::Corrupt(format!("desired state: {e}")))
}

fn refused(why: DesiredRefusal) -> DesiredApplied {
    DesiredApplied { answer: Err(why), desired_changed: false, outcome: CommitOutcome::default() }
}

impl PgStore {
    /// Applies one change at server time `now`, with its numbered change, in one transaction
    /// (nothing is written when it changes nothing or is refused).
    pub async fn apply_desired(&self, op: &DesiredOp, now: Millis) -> Result<DesiredApplied, PgError> {
        let device = op.device();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_changes(&tx).await?;
        let row = tx.query_opt("SELECT doc FROM shadows WHERE device = $1", &[&device]).await?;
        let before = row.map(|r| parse(r.get(0))).transpose()?;
        let max = i64::try_from(MAX_SHADOWS).expect("a small cap");
        if before.is_none() {
            let held: i64 =
                tx.query_one("SELECT value FROM counters WHERE name = 'shadows'", &[]).await?.get(0);
            if held >= max {
                return Ok(refused(DesiredRefusal::Full(MAX_SHADOWS)));
            }
        }
        let old = before.clone().unwrap_or_else(|| Shadow::new(device));
        let (shadow, desired_changed) = match decide(&old, op, now) {
            Ok(decided) => decided,
            Err(why) => return Ok(refused(why)),
        };
        if shadow == old {
            // Nothing to keep: a report the same as the last, or a patch that changes nothing.
            return Ok(DesiredApplied {
                answer: Ok(shadow),
                desired_changed,
                outcome: CommitOutcome::default(),
            });
        }
        if before.is_none() {
            let raised = tx
                .execute(
                    "UPDATE counters SET value = value + 1 WHERE name = 'shadows' AND value < $1",
                    &[&max],
                )
                .await?;
            if raised == 0 {
                return Ok(refused(DesiredRefusal::Full(MAX_SHADOWS)));
            }
        }
        let doc = serde_json::to_value(&shadow).expect("shadows serialise");
        tx.execute(
            "INSERT INTO shadows (device, doc) VALUES ($1, $2) ON CONFLICT (device) DO UPDATE SET doc = excluded.doc",
            &[&device, &doc],
        )
        .await?;
        let seq = change_log::number(&tx, 1).await?;
        let event = LiveEvent::Desired { seq, at: now, shadow: Box::new(shadow.clone()) };
        let wire = serde_json::to_string(&event).expect("live events serialise");
        change_log::append(&tx, seq, &[(now, wire.as_str())]).await?;
        tx.commit().await?;
        Ok(DesiredApplied {
            answer: Ok(shadow),
            desired_changed,
            outcome: CommitOutcome { events: vec![event], wire: vec![wire], ..CommitOutcome::default() },
        })
    }

    /// A device's shadow, if it ever had a desired or reported state.
    pub async fn shadow(&self, device: &str) -> Result<Option<Shadow>, PgError> {
        let client = self.pool.get().await?;
        let row = client.query_opt("SELECT doc FROM shadows WHERE device = $1", &[&device]).await?;
        row.map(|r| parse(r.get(0))).transpose()
    }
}

impl DesiredStore for PgBlocking {
    fn apply_desired(&self, op: &DesiredOp, now: Millis) -> Result<DesiredApplied, StoreError> {
        let op = op.clone();
        self.call(|pg| async move { pg.apply_desired(&op, now).await })
    }

    fn shadow(&self, device: &str) -> Result<Option<Shadow>, StoreError> {
        let device = device.to_owned();
        self.call(|pg| async move { pg.shadow(&device).await })
    }
}
