//! Bulk commands ([`BulkStore`]): a row per bulk, a row per device it handled, and a slice's
//! commands made with their places in one transaction, as the redb store keeps them.
//!
//! Nodes at once: opening a bulk moves the `bulk_seq` counter row, so openings take turns
//! (ids never collide, and the bulks beyond [`MAX_BULKS`] are counted with no other opening
//! between); adding a slice locks the bulk's row first, so two slices of one bulk take their
//! places one after the other, and a bulk dropped meanwhile is found gone (nothing is made).

use telemetry::Millis;
use telemetry::command::{command_id, id_counter};

use super::super::bulks::{Bulk, BulkMember, BulkStore, MAX_BULKS};
use super::super::commands::{CommandOp, CommandsApplied};
use super::super::error::StoreError;
use super::blocking::PgBlocking;
use super::commands::{self, TRIES, retryable};
use super::error::PgError;
use super::store::PgStore;

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, PgError> {
    serde_json::from_str(json).map_err(|e| PgError::Corrupt(format!("bulk: {e}")))
}

impl PgStore {
    /// [`BulkStore::open_bulk`].
    pub async fn open_bulk(&self, bulk: &Bulk, now: Millis) -> Result<Bulk, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Ids keep growing: from the time for the first, then counted.
        let n: i64 = tx
            .query_one(
                "UPDATE counters SET value = CASE WHEN value < 0 THEN $1 ELSE value + 1 END \
                 WHERE name = 'bulk_seq' RETURNING value",
                &[&now.max(0)],
            )
            .await?
            .get(0);
        let counter = u64::try_from(n).map_err(|_| PgError::Corrupt(format!("bulk_seq is {n}")))?;
        let stored = Bulk { id: command_id(counter), handled: 0, ..bulk.clone() };
        let json = serde_json::to_string(&stored).expect("bulks serialise");
        tx.execute("INSERT INTO bulks (n, doc) VALUES ($1, $2::text::json)", &[&n, &json]).await?;
        // The oldest beyond those kept go, their devices' places with them.
        let newest_kept = i64::try_from(MAX_BULKS - 1).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM bulks WHERE n < (SELECT n FROM bulks ORDER BY n DESC OFFSET $1 LIMIT 1)",
            &[&newest_kept],
        )
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// [`BulkStore::add_to_bulk`], tried again if PostgreSQL ended it to break a deadlock.
    pub async fn add_to_bulk(
        &self,
        id: &str,
        ops: &[CommandOp],
        now: Millis,
    ) -> Result<Option<CommandsApplied>, PgError> {
        let Some(n) = id_counter(id).and_then(|n| i64::try_from(n).ok()) else { return Ok(None) };
        let mut tries = 0;
        loop {
            tries += 1;
            match self.add_to_bulk_once(n, ops, now).await {
                Err(e) if tries < TRIES && retryable(&e) => continue,
                other => return other,
            }
        }
    }

    async fn add_to_bulk_once(
        &self,
        n: i64,
        ops: &[CommandOp],
        now: Millis,
    ) -> Result<Option<CommandsApplied>, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let found = tx.query_opt("SELECT doc::text FROM bulks WHERE n = $1 FOR UPDATE", &[&n]).await?;
        let Some(row) = found else {
            tx.rollback().await?;
            return Ok(None);
        };
        let mut bulk: Bulk = parse(row.get(0))?;
        let mut applied = commands::stage(&tx, ops, now).await?;
        let mut places = Vec::with_capacity(ops.len());
        let mut docs = Vec::with_capacity(ops.len());
        for (op, answer) in ops.iter().zip(&applied.answers) {
            let device = match op {
                CommandOp::Create { device, .. } | CommandOp::Event { device, .. } => device.clone(),
            };
            let member = match answer {
                Ok(command) => BulkMember { device, id: Some(command.id.clone()), error: None },
                Err(why) => BulkMember { device, id: None, error: Some(why.to_string()) },
            };
            places.push(
                i32::try_from(bulk.handled)
                    .map_err(|_| PgError::Corrupt(format!("bulk place {}", bulk.handled)))?,
            );
            docs.push(serde_json::to_string(&member).expect("bulk members serialise"));
            bulk.handled = bulk.handled.saturating_add(1);
        }
        if !places.is_empty() {
            tx.execute(
                "INSERT INTO bulk_members (bulk, place, doc) \
                 SELECT $1, place, doc::json FROM unnest($2::int4[], $3::text[]) AS m(place, doc)",
                &[&n, &places, &docs],
            )
            .await?;
        }
        let json = serde_json::to_string(&bulk).expect("bulks serialise");
        tx.execute("UPDATE bulks SET doc = $2::text::json WHERE n = $1", &[&n, &json]).await?;
        commands::log(&tx, &mut applied).await?;
        tx.commit().await?;
        Ok(Some(applied))
    }

    /// [`BulkStore::bulk`]: the bulk and its devices read in one statement, so they agree.
    pub async fn bulk(&self, id: &str) -> Result<Option<(Bulk, Vec<BulkMember>)>, PgError> {
        let Some(n) = id_counter(id).and_then(|n| i64::try_from(n).ok()) else { return Ok(None) };
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT b.doc::text, (SELECT coalesce(json_agg(m.doc ORDER BY m.place), '[]'::json) \
                 FROM bulk_members m WHERE m.bulk = b.n)::text FROM bulks b WHERE b.n = $1",
                &[&n],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((parse(row.get(0))?, parse(row.get(1))?)))
    }
}

impl BulkStore for PgBlocking {
    fn open_bulk(&self, bulk: &Bulk, now: Millis) -> Result<Bulk, StoreError> {
        let bulk = bulk.clone();
        self.call(|pg| async move { pg.open_bulk(&bulk, now).await })
    }

    fn add_to_bulk(
        &self,
        id: &str,
        ops: &[CommandOp],
        now: Millis,
    ) -> Result<Option<CommandsApplied>, StoreError> {
        let (id, ops) = (id.to_owned(), ops.to_vec());
        self.call(|pg| async move { pg.add_to_bulk(&id, &ops, now).await })
    }

    fn bulk(&self, id: &str) -> Result<Option<(Bulk, Vec<BulkMember>)>, StoreError> {
        let id = id.to_owned();
        self.call(|pg| async move { pg.bulk(&id).await })
    }
}
