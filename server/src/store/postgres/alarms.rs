//! Alarms on PostgreSQL: rules, notification channels, each rule's state per device, alarms
//! with their logs, as the redb store keeps them (`redb_store/alarms.rs`): the same orderings,
//! caps and answers. [`commit_alarms`] writes what an evaluation changed inside the
//! transaction of whatever caused it (readings, a tick, someone's action); the outbox is in
//! [`super::deliveries`].
//!
//! Between nodes: every write is one statement or one transaction; the rows a commit writes
//! are written in key order, so two nodes' commits touching the same alarms or states wait
//! for each other instead of deadlocking; reads that span tables (the engine's start, an
//! alarm with its log) read one snapshot. Nothing is cached.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use deadpool_postgres::Transaction;
use serde_json::Value;
use tokio_postgres::types::ToSql;

use telemetry::alarm::eval::Track;
use telemetry::alarm::{Alarm, AlarmQuery, Rule, StatusFilter, Transition};
use telemetry::notify::Delivery;
use telemetry::{LiveEvent, Millis};

use super::super::api::MAX_ALARM_LOG as MAX_LOG;
use super::super::api::{AlarmState, AlarmStore, CommitOutcome};
use super::super::error::StoreError;
use super::blocking::PgBlocking;
use super::docs::{doc, limit, parse, parse_all};
use super::error::PgError;
use super::records::snapshot;
use super::store::PgStore;
use super::{change_log, deliveries};
use crate::alarms::engine::{Changes, TrackKey};
use crate::notify::channels::StoredChannel;

/// An active alarm's `end_at` (the redb store's `OPEN`).
const OPEN: i64 = i64::MAX;

/// Writes what an evaluation changed, inside `tx`: rule states, log entries (each alarm's
/// log kept to [`MAX_LOG`]), new deliveries, and the alarms, each change to an alarm numbered
/// in the change log (a [`LiveEvent::Alarm`], the alarm's `seq` set to its number).
///
/// The alarms are numbered last: [`change_log::number`] locks the counter until the
/// transaction ends, so a combined commit calls this after numbering its own changes (the
/// readings', which come first in the log, as in the redb store), and commits soon after.
/// Answers the numbered events and their JSON (`events`, `wire`) to add to the commit's
/// outcome; they are already in the change log.
pub(super) async fn commit_alarms(tx: &Transaction<'_>, changes: &Changes) -> Result<CommitOutcome, PgError> {
    let mut outcome = CommitOutcome::default();
    write_tracks(tx, &changes.tracks).await?;
    write_log(tx, &changes.transitions).await?;
    deliveries::insert(tx, &changes.deliveries).await?;
    if changes.alarms.is_empty() {
        return Ok(outcome);
    }
    let first = change_log::number(tx, changes.alarms.len() as u64).await?;
    for (seq, alarm) in (first..).zip(&changes.alarms) {
        outcome.events.push(LiveEvent::Alarm { seq, alarm: Alarm { seq, ..alarm.clone() } });
    }
    // An alarm changed twice in one commit (fired and cleared) is stored as it ended.
    let mut latest: BTreeMap<&str, &Alarm> = BTreeMap::new();
    for event in &outcome.events {
        if let LiveEvent::Alarm { alarm, .. } = event {
            latest.insert(alarm.id.as_str(), alarm);
        }
    }
    write_alarms(tx, latest.values().copied()).await?;
    outcome.wire =
        outcome.events.iter().map(|e| serde_json::to_string(e).expect("live events serialise")).collect();
    let at = crate::clock::now_ms();
    let logged: Vec<(Millis, &str)> = outcome.wire.iter().map(|w| (at, w.as_str())).collect();
    change_log::append(tx, first, &logged).await?;
    Ok(outcome)
}

/// Stores each (rule, device)'s latest state, or deletes it (back to idle).
async fn write_tracks(tx: &Transaction<'_>, tracks: &[(TrackKey, Option<Track>)]) -> Result<(), PgError> {
    if tracks.is_empty() {
        return Ok(());
    }
    let mut latest: BTreeMap<(&str, &str), Option<&Track>> = BTreeMap::new();
    for ((rule, device), track) in tracks {
        latest.insert((rule.as_str(), device.as_str()), track.as_ref());
    }
    let (mut gone_rules, mut gone_devices) = (Vec::new(), Vec::new());
    let (mut rules, mut devices, mut alarms, mut docs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((rule, device), track) in latest {
        match track {
            None => {
                gone_rules.push(rule);
                gone_devices.push(device);
            }
            Some(track) => {
                rules.push(rule);
                devices.push(device);
                alarms.push(track.alarm.as_deref());
                docs.push(doc(track));
            }
        }
    }
    if !gone_rules.is_empty() {
        let statement = tx
            .prepare_cached(
                "DELETE FROM alarm_tracks t USING unnest($1::text[], $2::text[]) AS g(rule_id, device) \
                 WHERE t.rule_id = g.rule_id AND t.device = g.device",
            )
            .await?;
        tx.execute(&statement, &[&gone_rules, &gone_devices]).await?;
    }
    if !rules.is_empty() {
        let statement = tx
            .prepare_cached(
                "INSERT INTO alarm_tracks (rule_id, device, alarm_id, doc) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) \
                 ON CONFLICT (rule_id, device) DO UPDATE SET alarm_id = EXCLUDED.alarm_id, doc = EXCLUDED.doc",
            )
            .await?;
        tx.execute(&statement, &[&rules, &devices, &alarms, &docs]).await?;
    }
    Ok(())
}

/// Appends log entries in order, then trims each alarm written to's log to [`MAX_LOG`],
/// its oldest going first.
async fn write_log(tx: &Transaction<'_>, transitions: &[Transition]) -> Result<(), PgError> {
    if transitions.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = transitions.iter().map(|t| t.alarm_id.as_str()).collect();
    let docs: Vec<Value> = transitions.iter().map(doc).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO alarm_log (alarm_id, doc) \
             SELECT a, d FROM unnest($1::text[], $2::jsonb[]) WITH ORDINALITY AS t(a, d, o) ORDER BY o",
        )
        .await?;
    tx.execute(&statement, &[&ids, &docs]).await?;
    let alarms: Vec<&str> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let keep = i64::try_from(MAX_LOG).unwrap_or(i64::MAX);
    let trim = tx
        .prepare_cached(
            "DELETE FROM alarm_log l USING ( \
                 SELECT a.id, (SELECT n FROM alarm_log WHERE alarm_id = a.id ORDER BY n DESC OFFSET $2 LIMIT 1) AS cut \
                 FROM unnest($1::text[]) AS a(id)) AS c \
             WHERE l.alarm_id = c.id AND l.n <= c.cut",
        )
        .await?;
    tx.execute(&trim, &[&alarms, &keep]).await?;
    Ok(())
}

/// Stores alarms (one row each, in id order).
async fn write_alarms(tx: &Transaction<'_>, alarms: impl Iterator<Item = &Alarm>) -> Result<(), PgError> {
    let alarms: Vec<&Alarm> = alarms.collect();
    let ids: Vec<&str> = alarms.iter().map(|a| a.id.as_str()).collect();
    let devices: Vec<&str> = alarms.iter().map(|a| a.device.as_str()).collect();
    let rules: Vec<&str> = alarms.iter().map(|a| a.rule_id.as_str()).collect();
    let severities: Vec<&str> = alarms.iter().map(|a| a.severity.as_str()).collect();
    let active: Vec<bool> = alarms.iter().map(|a| a.active).collect();
    let acked: Vec<bool> = alarms.iter().map(|a| a.acked).collect();
    let started: Vec<i64> = alarms.iter().map(|a| a.started_at).collect();
    let ends: Vec<i64> = alarms.iter().map(|a| a.end().unwrap_or(OPEN)).collect();
    let docs: Vec<Value> = alarms.iter().map(|a| doc(*a)).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO alarms (id, device, rule_id, severity, active, acked, started_at, end_at, doc) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::bool[], \
                                  $7::int8[], $8::int8[], $9::jsonb[]) \
             ON CONFLICT (id) DO UPDATE SET device = EXCLUDED.device, rule_id = EXCLUDED.rule_id, \
             severity = EXCLUDED.severity, active = EXCLUDED.active, acked = EXCLUDED.acked, \
             started_at = EXCLUDED.started_at, end_at = EXCLUDED.end_at, doc = EXCLUDED.doc",
        )
        .await?;
    tx.execute(&statement, &[&ids, &devices, &rules, &severities, &active, &acked, &started, &ends, &docs])
        .await?;
    Ok(())
}

/// The conditions and parameters of an alarm list.
fn conditions(query: &AlarmQuery) -> (Vec<String>, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut conds: Vec<String> = vec![
        match query.status {
            StatusFilter::Active => "active",
            StatusFilter::ActiveUnack => "active AND NOT acked",
            StatusFilter::Unacked => "NOT acked",
            StatusFilter::Cleared => "NOT active",
            StatusFilter::All => "true",
        }
        .to_owned(),
    ];
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut add = |column: &str, op: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        conds.push(format!("{column} {op} ${}", params.len()));
    };
    if let Some(severity) = query.severity {
        add("severity", "=", Box::new(severity.as_str()));
    }
    if let Some(device) = &query.device {
        add("device", "=", Box::new(device.clone()));
    }
    if let Some(rule) = &query.rule {
        add("rule_id", "=", Box::new(rule.clone()));
    }
    if let Some(to) = query.to {
        add("started_at", "<=", Box::new(to));
    }
    if let Some(from) = query.from {
        add("end_at", ">=", Box::new(from));
    }
    (conds, params)
}

impl PgStore {
    /// Writes alarm changes in a transaction of their own (what a commit without readings
    /// writes: an action on an alarm, a tick's timers): [`commit_alarms`], committed.
    pub async fn commit_alarm_changes(&self, changes: &Changes) -> Result<CommitOutcome, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let outcome = commit_alarms(&tx, changes).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// What the alarm engine starts from: rules, states, the alarms that are active or that a
    /// state may reopen, channel ids; all from one snapshot.
    pub async fn alarm_state(&self) -> Result<AlarmState, PgError> {
        let mut client = self.pool.get().await?;
        let tx = snapshot(&mut client).await?;
        let mut state = AlarmState {
            rules: parse_all(tx.query("SELECT doc FROM alarm_rules ORDER BY id", &[]).await?, "alarm rule")?,
            ..AlarmState::default()
        };
        for row in
            tx.query("SELECT rule_id, device, doc FROM alarm_tracks ORDER BY rule_id, device", &[]).await?
        {
            let track: Track = parse(row.get(2), "alarm state")?;
            state.tracks.push(((row.get(0), row.get(1)), track));
        }
        state.alarms = parse_all(
            tx.query(
                "SELECT doc FROM alarms WHERE active \
                     OR id IN (SELECT alarm_id FROM alarm_tracks WHERE alarm_id IS NOT NULL) ORDER BY id",
                &[],
            )
            .await?,
            "alarm",
        )?;
        state.channels = tx
            .query("SELECT id FROM notification_channels ORDER BY id", &[])
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        tx.commit().await?;
        Ok(state)
    }

    /// Every rule, by name (case-insensitively; then by id).
    pub async fn rules(&self) -> Result<Vec<Rule>, PgError> {
        let client = self.pool.get().await?;
        let mut out: Vec<Rule> =
            parse_all(client.query("SELECT doc FROM alarm_rules ORDER BY id", &[]).await?, "alarm rule")?;
        out.sort_by_key(|r| r.name.to_lowercase());
        Ok(out)
    }

    pub async fn rule_count(&self) -> Result<u64, PgError> {
        let client = self.pool.get().await?;
        let n: i64 = client.query_one("SELECT count(*) FROM alarm_rules", &[]).await?.get(0);
        Ok(n.unsigned_abs())
    }

    /// Creates or replaces a rule.
    pub async fn put_rule(&self, rule: &Rule) -> Result<(), PgError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO alarm_rules (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
                &[&rule.id, &doc(rule)],
            )
            .await?;
        Ok(())
    }

    /// Deletes a rule and its states (its alarms stay in the history); false if none.
    pub async fn delete_rule(&self, id: &str) -> Result<bool, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let existed = tx.execute("DELETE FROM alarm_rules WHERE id = $1", &[&id]).await? == 1;
        tx.execute("DELETE FROM alarm_tracks WHERE rule_id = $1", &[&id]).await?;
        tx.commit().await?;
        Ok(existed)
    }

    /// Every channel, by name (case-insensitively; then by id).
    pub async fn channels(&self) -> Result<Vec<StoredChannel>, PgError> {
        let client = self.pool.get().await?;
        let mut out: Vec<StoredChannel> = parse_all(
            client.query("SELECT doc FROM notification_channels ORDER BY id", &[]).await?,
            "notification channel",
        )?;
        out.sort_by_key(|c| c.name.to_lowercase());
        Ok(out)
    }

    pub async fn put_channel(&self, channel: &StoredChannel) -> Result<(), PgError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO notification_channels (id, doc) VALUES ($1, $2) \
                 ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
                &[&channel.id, &doc(channel)],
            )
            .await?;
        Ok(())
    }

    pub async fn delete_channel(&self, id: &str) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        Ok(client.execute("DELETE FROM notification_channels WHERE id = $1", &[&id]).await? == 1)
    }

    /// The alarms `query` admits, newest first (start time, then id), at most its limit.
    /// With `from` (a chart's range), as the redb store: the limit keeps the active ones and
    /// then the latest to clear, and those are answered newest first.
    pub async fn alarms(&self, query: &AlarmQuery) -> Result<Vec<Alarm>, PgError> {
        let (conds, mut params) = conditions(query);
        params.push(Box::new(limit(query.limit())));
        let n = params.len();
        let conds = conds.join(" AND ");
        let sql = if query.from.is_some() {
            format!(
                "SELECT doc FROM (SELECT doc, started_at, id FROM alarms WHERE {conds} \
                 ORDER BY end_at DESC, id DESC LIMIT ${n}) AS a ORDER BY started_at DESC, id DESC"
            )
        } else {
            format!("SELECT doc FROM alarms WHERE {conds} ORDER BY started_at DESC, id DESC LIMIT ${n}")
        };
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&sql).await?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        parse_all(client.query(&statement, &refs).await?, "alarm")
    }

    /// Active alarms per device (only devices with any), from the active alarms' index alone.
    pub async fn open_alarm_counts(&self) -> Result<HashMap<String, u32>, PgError> {
        let client = self.pool.get().await?;
        let rows =
            client.query("SELECT device, count(*) FROM alarms WHERE active GROUP BY device", &[]).await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), u32::try_from(r.get::<_, i64>(1)).unwrap_or(u32::MAX)))
            .collect())
    }

    /// An alarm and its log, oldest first, from one snapshot.
    pub async fn alarm(&self, id: &str) -> Result<Option<(Alarm, Vec<Transition>)>, PgError> {
        let mut client = self.pool.get().await?;
        let tx = snapshot(&mut client).await?;
        let Some(row) = tx.query_opt("SELECT doc FROM alarms WHERE id = $1", &[&id]).await? else {
            return Ok(None);
        };
        let alarm = parse(row.get(0), "alarm")?;
        let log = parse_all(
            tx.query("SELECT doc FROM alarm_log WHERE alarm_id = $1 ORDER BY n", &[&id]).await?,
            "alarm log",
        )?;
        tx.commit().await?;
        Ok(Some((alarm, log)))
    }

    /// Deletes the alarms started before `before` that are only history (cleared, acknowledged,
    /// and no rule state refers to them), with their logs; answers how many. An alarm another
    /// node reopens meanwhile is left: the delete rechecks a row changed under it.
    pub async fn prune_alarms(&self, before: Millis) -> Result<u64, PgError> {
        let client = self.pool.get().await?;
        let pruned: i64 = client
            .query_one(
                "WITH gone AS ( \
                     DELETE FROM alarms a WHERE started_at < $1 AND NOT active AND acked \
                     AND NOT EXISTS (SELECT 1 FROM alarm_tracks t WHERE t.alarm_id = a.id) RETURNING id), \
                 log AS (DELETE FROM alarm_log l USING gone WHERE l.alarm_id = gone.id) \
                 SELECT count(*) FROM gone",
                &[&before],
            )
            .await?
            .get(0);
        Ok(pruned.unsigned_abs())
    }
}

impl PgBlocking {
    /// [`PgStore::commit_alarm_changes`], waited for.
    pub fn commit_alarm_changes(&self, changes: &Changes) -> Result<CommitOutcome, StoreError> {
        let changes = changes.clone();
        self.call(|pg| async move { pg.commit_alarm_changes(&changes).await })
    }
}

impl AlarmStore for PgBlocking {
    fn alarm_state(&self) -> Result<AlarmState, StoreError> {
        self.call(|pg| async move { pg.alarm_state().await })
    }

    fn rules(&self) -> Result<Vec<Rule>, StoreError> {
        self.call(|pg| async move { pg.rules().await })
    }

    fn rule_count(&self) -> Result<u64, StoreError> {
        self.call(|pg| async move { pg.rule_count().await })
    }

    fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        let rule = rule.clone();
        self.call(|pg| async move { pg.put_rule(&rule).await })
    }

    fn delete_rule(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.call(|pg| async move { pg.delete_rule(&id).await })
    }

    fn channels(&self) -> Result<Vec<StoredChannel>, StoreError> {
        self.call(|pg| async move { pg.channels().await })
    }

    fn put_channel(&self, channel: &StoredChannel) -> Result<(), StoreError> {
        let channel = channel.clone();
        self.call(|pg| async move { pg.put_channel(&channel).await })
    }

    fn delete_channel(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.call(|pg| async move { pg.delete_channel(&id).await })
    }

    fn alarms(&self, query: &AlarmQuery) -> Result<Vec<Alarm>, StoreError> {
        let query = query.clone();
        self.call(|pg| async move { pg.alarms(&query).await })
    }

    fn open_alarm_counts(&self) -> Result<HashMap<String, u32>, StoreError> {
        self.call(|pg| async move { pg.open_alarm_counts().await })
    }

    fn alarm(&self, id: &str) -> Result<Option<(Alarm, Vec<Transition>)>, StoreError> {
        let id = id.to_owned();
        self.call(|pg| async move { pg.alarm(&id).await })
    }

    fn due_deliveries(&self, now: Millis, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.call(|pg| async move { pg.due_deliveries(now, limit).await })
    }

    fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        self.call(|pg| async move { pg.next_due().await })
    }

    fn update_deliveries(&self, updates: &[Delivery]) -> Result<(), StoreError> {
        let updates = updates.to_vec();
        self.call(|pg| async move { pg.update_deliveries(&updates).await.map(|_| ()) })
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.call(|pg| async move { pg.deliveries(limit).await })
    }

    fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let id = id.to_owned();
        self.call(|pg| async move { pg.delivery(&id).await })
    }

    fn prune_alarms(&self, before: Millis) -> Result<u64, StoreError> {
        self.call(|pg| async move { pg.prune_alarms(before).await })
    }
}
