//! Retained MQTT messages, a row per topic: what every node's broker loads at start, and
//! what each node's changes are committed to, on their own ([`RetainStore::put_retained`]) or
//! in the transaction of the batch that published them ([`commit_retained`]).
//!
//! The caps: each node checks a retained publish against what it holds in memory
//! ([`crate::ingest::Retained::reserve`]) before it queues it, but two nodes see each other's
//! messages only once committed, so together they could pass a cap. So the commit checks again,
//! against what the database holds: the totals' counter rows are locked first (which makes
//! the nodes' retained changes take turns), the owners' usage is read from their rows, and a
//! set that would pass a cap is refused there and not written. Counted as
//! [`crate::ingest::Retained::reserve`] counts, except that replacing another owner's message
//! on a topic counts as a new topic for the new owner (what it holds afterwards).

use std::collections::BTreeMap;

use deadpool_postgres::Transaction;
use telemetry::Rejection;

use super::super::error::StoreError;
use super::super::maps::FastMap;
use super::super::retained::{
    RetainStore, RetainedCaps, RetainedChange, RetainedMessage, RetainedUsage as Usage,
};
use super::blocking::PgBlocking;
use super::error::PgError;
use super::store::PgStore;

fn count(n: i64, what: &str) -> Result<usize, PgError> {
    usize::try_from(n).map_err(|_| PgError::Corrupt(format!("{what} is {n}")))
}

/// Sets and clears retained messages in `tx`, in order (a later change to a topic wins), and
/// keeps the totals' counters. With `caps`, a set that would take its owner or the totals past
/// them is refused and not written (see the module doc); without, every change is written (as
/// the redb store's writes, whose caller checked). Answers each change's fate, in order: what
/// is `Ok` is what the broker's memory is to apply once `tx` commits.
///
/// Locks the totals' counter rows until `tx` ends: in a transaction that also numbers
/// changes, call this before [`super::change_log::number`], so the change counter's lock is
/// held no longer than it must.
pub(super) async fn commit_retained(
    tx: &Transaction<'_>,
    changes: &[RetainedChange],
    caps: Option<&RetainedCaps>,
) -> Result<Vec<Result<(), Rejection>>, PgError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let totals = tx
        .prepare_cached(
            "SELECT value FROM counters WHERE name IN ('retained_bytes', 'retained_count') \
             ORDER BY name FOR UPDATE",
        )
        .await?;
    let rows = tx.query(&totals, &[]).await?;
    let [bytes, messages] = rows.as_slice() else {
        return Err(PgError::Corrupt("the retained messages' counters are missing".into()));
    };
    let mut total = Usage {
        count: count(messages.get(0), "retained_count")?,
        bytes: count(bytes.get(0), "retained_bytes")?,
    };

    let topics: Vec<&str> = changes.iter().map(RetainedChange::topic).collect();
    let statement =
        tx.prepare_cached("SELECT topic, owner, bytes FROM retained WHERE topic = ANY($1)").await?;
    // topic → (owner, payload bytes), as the changes so far leave it.
    let mut held: FastMap<String, (String, usize)> = FastMap::default();
    for row in tx.query(&statement, &[&topics]).await? {
        held.insert(row.get(0), (row.get(1), count(i64::from(row.get::<_, i32>(2)), "a payload size")?));
    }
    let mut owners: Vec<&str> = held.values().map(|(owner, _)| owner.as_str()).collect();
    owners.extend(changes.iter().filter_map(|c| match c {
        RetainedChange::Set(m) => Some(m.owner.as_str()),
        RetainedChange::Clear(_) => None,
    }));
    let statement = tx
        .prepare_cached(
            "SELECT owner, count(*), sum(bytes)::int8 FROM retained WHERE owner = ANY($1) GROUP BY owner",
        )
        .await?;
    let mut usage: FastMap<String, Usage> = FastMap::default();
    for row in tx.query(&statement, &[&owners]).await? {
        let held = Usage { count: count(row.get(1), "a count")?, bytes: count(row.get(2), "a sum")? };
        usage.insert(row.get(0), held);
    }

    let mut fates = Vec::with_capacity(changes.len());
    // topic → the message it ends with (`None`: cleared).
    let mut last: BTreeMap<&str, Option<&RetainedMessage>> = BTreeMap::new();
    for change in changes {
        let set = match change {
            RetainedChange::Set(message) => Some(message),
            RetainedChange::Clear(_) => None,
        };
        if let (Some(message), Some(caps)) = (set, caps) {
            let bytes = message.payload.len();
            let (adds, grows) = match held.get(&message.topic) {
                Some((owner, old)) if *owner == message.owner => {
                    let more = Usage { count: 0, bytes: bytes.saturating_sub(*old) };
                    (more, more)
                }
                Some((_, old)) => {
                    (Usage { count: 1, bytes }, Usage { count: 0, bytes: bytes.saturating_sub(*old) })
                }
                None => (Usage { count: 1, bytes }, Usage { count: 1, bytes }),
            };
            let mine = usage.get(&message.owner).copied().unwrap_or_default().plus(adds);
            let all = total.plus(grows);
            if let Some(why) = caps.refusal(mine, all) {
                fates.push(Err(why));
                continue;
            }
        }
        if let Some((owner, old)) = held.remove(change.topic()) {
            let gone = Usage { count: 1, bytes: old };
            total.sub(gone);
            if let Some(u) = usage.get_mut(&owner) {
                u.sub(gone);
            }
        }
        if let Some(message) = set {
            let added = Usage { count: 1, bytes: message.payload.len() };
            total.add(added);
            usage.entry(message.owner.clone()).or_default().add(added);
            held.insert(message.topic.clone(), (message.owner.clone(), added.bytes));
        }
        last.insert(change.topic(), set);
        fates.push(Ok(()));
    }

    let cleared: Vec<&str> = last.iter().filter(|(_, m)| m.is_none()).map(|(t, _)| *t).collect();
    if !cleared.is_empty() {
        let statement = tx.prepare_cached("DELETE FROM retained WHERE topic = ANY($1)").await?;
        tx.execute(&statement, &[&cleared]).await?;
    }
    let set: Vec<&RetainedMessage> = last.values().filter_map(|m| *m).collect();
    if !set.is_empty() {
        let topics: Vec<&str> = set.iter().map(|m| m.topic.as_str()).collect();
        let owners: Vec<&str> = set.iter().map(|m| m.owner.as_str()).collect();
        let sizes = set
            .iter()
            .map(|m| i32::try_from(m.payload.len()))
            .collect::<Result<Vec<i32>, _>>()
            .map_err(|_| PgError::Corrupt("a retained payload past 2 GiB".into()))?;
        let metas: Vec<serde_json::Value> =
            set.iter().map(|m| serde_json::to_value(m).expect("retained messages serialise")).collect();
        let payloads: Vec<&[u8]> = set.iter().map(|m| m.payload.as_slice()).collect();
        let statement = tx
            .prepare_cached(
                "INSERT INTO retained (topic, owner, bytes, meta, payload) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::jsonb[], $5::bytea[]) \
                 ON CONFLICT (topic) DO UPDATE SET owner = excluded.owner, bytes = excluded.bytes, \
                 meta = excluded.meta, payload = excluded.payload",
            )
            .await?;
        tx.execute(&statement, &[&topics, &owners, &sizes, &metas, &payloads]).await?;
    }
    let statement = tx
        .prepare_cached(
            "UPDATE counters SET value = CASE name WHEN 'retained_count' THEN $1::int8 ELSE $2::int8 END \
             WHERE name IN ('retained_count', 'retained_bytes')",
        )
        .await?;
    let number = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    tx.execute(&statement, &[&number(total.count), &number(total.bytes)]).await?;
    Ok(fates)
}

impl PgStore {
    /// Every retained message, expired ones included (at most the caps' total).
    pub async fn retained(&self) -> Result<Vec<RetainedMessage>, PgError> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT topic, meta, payload FROM retained", &[]).await?;
        rows.into_iter()
            .map(|row| {
                let topic: &str = row.get(0);
                let mut message: RetainedMessage = serde_json::from_value(row.get(1))
                    .map_err(|e| PgError::Corrupt(format!("retained message on {topic}: {e}")))?;
                message.payload = row.get(2);
                Ok(message)
            })
            .collect()
    }

    /// Sets and clears retained messages, in order, in a transaction of their own
    /// ([`commit_retained`] with the caps given, if any); answers each change's fate.
    pub async fn put_retained(
        &self,
        changes: &[RetainedChange],
        caps: Option<&RetainedCaps>,
    ) -> Result<Vec<Result<(), Rejection>>, PgError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let fates = commit_retained(&tx, changes, caps).await?;
        tx.commit().await?;
        Ok(fates)
    }
}

impl RetainStore for PgBlocking {
    fn retained(&self) -> Result<Vec<RetainedMessage>, StoreError> {
        self.call(|pg| async move { pg.retained().await })
    }

    fn put_retained(&self, changes: &[RetainedChange]) -> Result<(), StoreError> {
        let changes = changes.to_vec();
        self.call(|pg| async move { pg.put_retained(&changes, None).await.map(drop) })
    }
}
