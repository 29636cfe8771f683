//! Alarms in the file: rules, notification channels, each rule's state per device, alarms with
//! their logs, and the notification outbox. What an evaluation changed is written by
//! [`write_changes`] inside the commit of the readings (or tick, or action) that caused it,
//! with an [`telemetry::LiveEvent::Alarm`] in the change log for each changed alarm.
//! Alarms are indexed by start (lists, newest first; pruning) and by end (the alarms active in
//! a chart's range).

use redb::{ReadableTable, ReadableTableMetadata, Table, TableDefinition, TableHandle, WriteTransaction};
use telemetry::alarm::eval::Track;
use telemetry::alarm::{Alarm, AlarmQuery, Rule, Transition};
use telemetry::notify::{Delivery, DeliveryState};
use telemetry::{LiveEvent, Millis};

use super::super::api::{MAX_ALARM_LOG as MAX_LOG, MAX_DONE_DELIVERIES};
use super::super::error::StoreError;
use super::super::registry::counter;
use super::RedbStore;
use crate::alarms::engine::Changes;
use crate::notify::channels::StoredChannel;
use crate::store::api::{AlarmState, AlarmStore};

/// rule id → JSON [`Rule`].
const RULES: TableDefinition<&str, &[u8]> = TableDefinition::new("alarm_rules");
/// channel id → JSON [`StoredChannel`].
const CHANNELS: TableDefinition<&str, &[u8]> = TableDefinition::new("notification_channels");
/// (rule id, device) → JSON [`Track`]: only tracks that are not idle.
const TRACKS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("alarm_tracks");
/// alarm id → JSON [`Alarm`].
const ALARMS: TableDefinition<&str, &[u8]> = TableDefinition::new("alarms");
/// (start time, alarm id): alarms newest first, and pruning by age.
const BY_START: TableDefinition<(i64, &str), ()> = TableDefinition::new("alarms_by_start");
/// (end, alarm id), the end being when it cleared or [`OPEN`] while it is active: the alarms
/// active at some time after `t` are those from `(t, "")` on. Made from `ALARMS` when a file
/// from before it is opened.
const BY_END: TableDefinition<(i64, &str), ()> = TableDefinition::new("alarms_by_end");
/// An active alarm's end in `BY_END`.
const OPEN: i64 = i64::MAX;
/// (alarm id, entry number) → JSON [`Transition`].
const LOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("alarm_log");
/// delivery id → JSON [`Delivery`].
const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("notification_outbox");
/// (next attempt, delivery id): the pending ones, soonest first.
const DUE: TableDefinition<(i64, &str), ()> = TableDefinition::new("notification_due");
/// (created, delivery id): every delivery, newest last.
const BY_CREATED: TableDefinition<(i64, &str), ()> = TableDefinition::new("notifications_by_created");

/// In META: the last alarm log entry number handed out.
const LAST_LOG: &str = "last_alarm_log";

/// Creates the tables (and indexes the alarms of a file from before `BY_END`).
pub(super) fn init(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(RULES)?;
    tx.open_table(CHANNELS)?;
    tx.open_table(TRACKS)?;
    tx.open_table(ALARMS)?;
    tx.open_table(BY_START)?;
    if !tx.list_tables()?.any(|t| t.name() == BY_END.name()) {
        let alarms = tx.open_table(ALARMS)?;
        let mut by_end = tx.open_table(BY_END)?;
        for entry in alarms.iter()? {
            let (id, v) = entry?;
            let alarm: Alarm = parse(v.value(), "alarm")?;
            by_end.insert((end_key(&alarm), id.value()), ())?;
        }
    }
    tx.open_table(LOG)?;
    tx.open_table(OUTBOX)?;
    tx.open_table(DUE)?;
    tx.open_table(BY_CREATED)?;
    Ok(())
}

/// An alarm's key in `BY_END`.
fn end_key(alarm: &Alarm) -> i64 {
    alarm.end().unwrap_or(OPEN)
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("alarm records serialise")
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Writes what an evaluation changed, numbering a change-log event per changed alarm from
/// `*seq + 1`; answers the events (the commit writes them to the change log).
pub(super) fn write_changes(
    tx: &WriteTransaction,
    meta: &mut Table<&str, u64>,
    changes: &Changes,
    seq: &mut u64,
) -> Result<Vec<LiveEvent>, StoreError> {
    let mut events = Vec::new();
    if changes.is_empty() && changes.deliveries.is_empty() {
        return Ok(events);
    }
    {
        let mut tracks = tx.open_table(TRACKS)?;
        for ((rule, device), track) in &changes.tracks {
            match track {
                Some(t) => {
                    tracks.insert((rule.as_str(), device.as_str()), json(t).as_slice())?;
                }
                None => {
                    tracks.remove((rule.as_str(), device.as_str()))?;
                }
            }
        }
    }
    {
        let mut alarms = tx.open_table(ALARMS)?;
        let mut by_start = tx.open_table(BY_START)?;
        let mut by_end = tx.open_table(BY_END)?;
        for alarm in &changes.alarms {
            *seq += 1;
            let mut alarm = alarm.clone();
            alarm.seq = *seq;
            let old_end = match alarms.insert(alarm.id.as_str(), json(&alarm).as_slice())? {
                Some(old) => Some(end_key(&parse(old.value(), "alarm")?)),
                None => None,
            };
            let end = end_key(&alarm);
            if let Some(old_end) = old_end.filter(|old| *old != end) {
                by_end.remove((old_end, alarm.id.as_str()))?;
            }
            by_start.insert((alarm.started_at, alarm.id.as_str()), ())?;
            by_end.insert((end, alarm.id.as_str()), ())?;
            events.push(LiveEvent::Alarm { seq: *seq, alarm });
        }
    }
    {
        let mut log = tx.open_table(LOG)?;
        let mut n = counter(&*meta, LAST_LOG)?;
        for t in &changes.transitions {
            n += 1;
            log.insert((t.alarm_id.as_str(), n), json(t).as_slice())?;
            trim_log(&mut log, &t.alarm_id)?;
        }
        meta.insert(LAST_LOG, n)?;
    }
    let mut outbox = tx.open_table(OUTBOX)?;
    let mut due = tx.open_table(DUE)?;
    let mut by_created = tx.open_table(BY_CREATED)?;
    for d in &changes.deliveries {
        put_delivery(&mut outbox, &mut due, &mut by_created, d, None)?;
    }
    Ok(events)
}

/// Keeps an alarm's log to [`MAX_LOG`] entries.
fn trim_log(log: &mut Table<(&str, u64), &[u8]>, alarm: &str) -> Result<(), StoreError> {
    let count = log.range((alarm, 0)..=(alarm, u64::MAX))?.count() as u64;
    if count > MAX_LOG {
        let oldest: Vec<u64> = log
            .range((alarm, 0)..=(alarm, u64::MAX))?
            .take((count - MAX_LOG) as usize)
            .map(|e| e.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?;
        for n in oldest {
            log.remove((alarm, n))?;
        }
    }
    Ok(())
}

/// Stores a delivery (replacing `old`, its previous state, in the indexes).
fn put_delivery(
    outbox: &mut Table<&str, &[u8]>,
    due: &mut Table<(i64, &str), ()>,
    by_created: &mut Table<(i64, &str), ()>,
    d: &Delivery,
    old: Option<&Delivery>,
) -> Result<(), StoreError> {
    if let Some(old) = old {
        if old.state == DeliveryState::Pending {
            due.remove((old.next_at, old.id.as_str()))?;
        }
        by_created.remove((old.created, old.id.as_str()))?;
    }
    outbox.insert(d.id.as_str(), json(d).as_slice())?;
    if d.state == DeliveryState::Pending {
        due.insert((d.next_at, d.id.as_str()), ())?;
    }
    by_created.insert((d.created, d.id.as_str()), ())?;
    Ok(())
}

impl RedbStore {
    /// One write of the alarm tables outside a readings commit (rules, channels, deliveries).
    fn alarm_write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _writer = self.writer();
        let tx = self.begin_write()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

impl AlarmStore for RedbStore {
    fn alarm_state(&self) -> Result<AlarmState, StoreError> {
        let rx = self.db.read()?;
        let mut state = AlarmState::default();
        for entry in rx.open_table(RULES)?.iter()? {
            state.rules.push(parse(entry?.1.value(), "alarm rule")?);
        }
        for entry in rx.open_table(TRACKS)?.iter()? {
            let (k, v) = entry?;
            let (rule, device) = k.value();
            state
                .tracks
                .push(((rule.to_owned(), device.to_owned()), parse::<Track>(v.value(), "alarm state")?));
        }
        let alarms = rx.open_table(ALARMS)?;
        let referenced: Vec<&String> = state.tracks.iter().filter_map(|(_, t)| t.alarm.as_ref()).collect();
        for entry in alarms.iter()? {
            let alarm: Alarm = parse(entry?.1.value(), "alarm")?;
            if alarm.active || referenced.contains(&&alarm.id) {
                state.alarms.push(alarm);
            }
        }
        for entry in rx.open_table(CHANNELS)?.iter()? {
            state.channels.push(entry?.0.value().to_owned());
        }
        Ok(state)
    }

    fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        self.alarm_write(|tx| {
            tx.open_table(RULES)?.insert(rule.id.as_str(), json(rule).as_slice())?;
            Ok(())
        })
    }

    fn delete_rule(&self, id: &str) -> Result<bool, StoreError> {
        self.alarm_write(|tx| {
            let existed = tx.open_table(RULES)?.remove(id)?.is_some();
            let mut tracks = tx.open_table(TRACKS)?;
            let mut keys: Vec<String> = Vec::new();
            for entry in tracks.range((id, "")..)? {
                let (k, _) = entry?;
                let (rule, device) = k.value();
                if rule != id {
                    break;
                }
                keys.push(device.to_owned());
            }
            for device in keys {
                tracks.remove((id, device.as_str()))?;
            }
            Ok(existed)
        })
    }

    fn rules(&self) -> Result<Vec<Rule>, StoreError> {
        let rx = self.db.read()?;
        let mut out: Vec<Rule> = Vec::new();
        for entry in rx.open_table(RULES)?.iter()? {
            out.push(parse(entry?.1.value(), "alarm rule")?);
        }
        out.sort_by_key(|r| r.name.to_lowercase());
        Ok(out)
    }

    fn rule_count(&self) -> Result<u64, StoreError> {
        Ok(self.db.read()?.open_table(RULES)?.len()?)
    }

    fn channels(&self) -> Result<Vec<StoredChannel>, StoreError> {
        let rx = self.db.read()?;
        let mut out: Vec<StoredChannel> = Vec::new();
        for entry in rx.open_table(CHANNELS)?.iter()? {
            out.push(parse(entry?.1.value(), "notification channel")?);
        }
        out.sort_by_key(|c| c.name.to_lowercase());
        Ok(out)
    }

    fn put_channel(&self, channel: &StoredChannel) -> Result<(), StoreError> {
        self.alarm_write(|tx| {
            tx.open_table(CHANNELS)?.insert(channel.id.as_str(), json(channel).as_slice())?;
            Ok(())
        })
    }

    fn delete_channel(&self, id: &str) -> Result<bool, StoreError> {
        self.alarm_write(|tx| Ok(tx.open_table(CHANNELS)?.remove(id)?.is_some()))
    }

    fn alarms(&self, query: &AlarmQuery) -> Result<Vec<Alarm>, StoreError> {
        let rx = self.db.read()?;
        let alarms = rx.open_table(ALARMS)?;
        let mut out = Vec::new();
        if let Some(from) = query.from {
            // The alarms still active at `from` or later: the active ones first, then the latest
            // cleared back to `from`. Sorted as every list is, newest first.
            for entry in rx.open_table(BY_END)?.range((from, "")..)?.rev() {
                let (k, _) = entry?;
                let Some(v) = alarms.get(k.value().1)? else { continue };
                let alarm: Alarm = parse(v.value(), "alarm")?;
                if query.admits(&alarm) {
                    out.push(alarm);
                    if out.len() >= query.limit() {
                        break;
                    }
                }
            }
            out.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
            return Ok(out);
        }
        for entry in rx.open_table(BY_START)?.iter()?.rev() {
            let (k, _) = entry?;
            let Some(v) = alarms.get(k.value().1)? else { continue };
            let alarm: Alarm = parse(v.value(), "alarm")?;
            if query.admits(&alarm) {
                out.push(alarm);
                if out.len() >= query.limit() {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn open_alarm_counts(&self) -> Result<std::collections::HashMap<String, u32>, StoreError> {
        let rx = self.db.read()?;
        let alarms = rx.open_table(ALARMS)?;
        let mut counts = std::collections::HashMap::new();
        for entry in rx.open_table(BY_END)?.range((OPEN, "")..)? {
            let (k, _) = entry?;
            let Some(v) = alarms.get(k.value().1)? else { continue };
            let alarm: Alarm = parse(v.value(), "alarm")?;
            if alarm.active {
                *counts.entry(alarm.device).or_insert(0u32) += 1;
            }
        }
        Ok(counts)
    }

    fn alarm(&self, id: &str) -> Result<Option<(Alarm, Vec<Transition>)>, StoreError> {
        let rx = self.db.read()?;
        let Some(v) = rx.open_table(ALARMS)?.get(id)? else { return Ok(None) };
        let alarm = parse(v.value(), "alarm")?;
        let mut log = Vec::new();
        for entry in rx.open_table(LOG)?.range((id, 0)..=(id, u64::MAX))? {
            log.push(parse(entry?.1.value(), "alarm log")?);
        }
        Ok(Some((alarm, log)))
    }

    fn due_deliveries(&self, now: Millis, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let rx = self.db.read()?;
        let outbox = rx.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for entry in rx.open_table(DUE)?.range(..=(now, "\u{10ffff}"))?.take(limit) {
            let (k, _) = entry?;
            if let Some(v) = outbox.get(k.value().1)? {
                out.push(parse(v.value(), "delivery")?);
            }
        }
        Ok(out)
    }

    fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        let rx = self.db.read()?;
        Ok(rx.open_table(DUE)?.first()?.map(|(k, _)| k.value().0))
    }

    fn update_deliveries(&self, updates: &[Delivery]) -> Result<(), StoreError> {
        self.alarm_write(|tx| {
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut due = tx.open_table(DUE)?;
            let mut by_created = tx.open_table(BY_CREATED)?;
            for d in updates {
                let old: Option<Delivery> =
                    outbox.get(d.id.as_str())?.map(|v| parse(v.value(), "delivery")).transpose()?;
                put_delivery(&mut outbox, &mut due, &mut by_created, d, old.as_ref())?;
            }
            // Done deliveries beyond the cap go, oldest first.
            let done = outbox.len()?.saturating_sub(due.len()?);
            if done > MAX_DONE_DELIVERIES {
                let mut extra = done - MAX_DONE_DELIVERIES;
                let oldest: Vec<(i64, String)> = by_created
                    .iter()?
                    .map(|e| e.map(|(k, _)| (k.value().0, k.value().1.to_owned())))
                    .take(4 * extra as usize)
                    .collect::<Result<_, _>>()?;
                for (created, id) in oldest {
                    if extra == 0 {
                        break;
                    }
                    let pending = outbox
                        .get(id.as_str())?
                        .map(|v| parse::<Delivery>(v.value(), "delivery"))
                        .transpose()?
                        .is_some_and(|d| d.state == DeliveryState::Pending);
                    if !pending {
                        outbox.remove(id.as_str())?;
                        by_created.remove((created, id.as_str()))?;
                        extra -= 1;
                    }
                }
            }
            Ok(())
        })
    }

    fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let rx = self.db.read()?;
        let outbox = rx.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for entry in rx.open_table(BY_CREATED)?.iter()?.rev().take(limit) {
            let (k, _) = entry?;
            if let Some(v) = outbox.get(k.value().1)? {
                out.push(parse(v.value(), "delivery")?);
            }
        }
        Ok(out)
    }

    fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        let rx = self.db.read()?;
        rx.open_table(OUTBOX)?.get(id)?.map(|v| parse(v.value(), "delivery")).transpose()
    }

    fn prune_alarms(&self, before: Millis) -> Result<u64, StoreError> {
        self.alarm_write(|tx| {
            let mut by_start = tx.open_table(BY_START)?;
            let mut by_end = tx.open_table(BY_END)?;
            let mut alarms = tx.open_table(ALARMS)?;
            let mut log = tx.open_table(LOG)?;
            let tracks = tx.open_table(TRACKS)?;
            let referenced: Vec<String> = tracks
                .iter()?
                .map(|e| {
                    e.map(|(_, v)| serde_json::from_slice::<Track>(v.value()).ok().and_then(|t| t.alarm))
                })
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect();
            let old: Vec<(i64, String)> = by_start
                .range(..(before, ""))?
                .map(|e| e.map(|(k, _)| (k.value().0, k.value().1.to_owned())))
                .collect::<Result<_, _>>()?;
            let mut pruned = 0;
            for (start, id) in old {
                let Some(v) = alarms.get(id.as_str())? else {
                    by_start.remove((start, id.as_str()))?;
                    continue;
                };
                let alarm: Alarm = parse(v.value(), "alarm")?;
                drop(v);
                // Only history: cleared, acknowledged, and no state that may reopen it.
                if alarm.active || !alarm.acked || referenced.contains(&id) {
                    continue;
                }
                alarms.remove(id.as_str())?;
                by_start.remove((start, id.as_str()))?;
                by_end.remove((end_key(&alarm), id.as_str()))?;
                let entries: Vec<u64> = log
                    .range((id.as_str(), 0)..=(id.as_str(), u64::MAX))?
                    .map(|e| e.map(|(k, _)| k.value().1))
                    .collect::<Result<_, _>>()?;
                for n in entries {
                    log.remove((id.as_str(), n))?;
                }
                pruned += 1;
            }
            Ok(pruned)
        })
    }
}

#[cfg(test)]
mod tests {
    use telemetry::TelemetrySource;
    use telemetry::alarm::{Severity, StatusFilter};

    use super::*;
    use crate::alarms::engine::Changes;
    use crate::store::api::Store;

    fn alarm(id: &str, device: &str, started_at: Millis, cleared_at: Option<Millis>) -> Alarm {
        Alarm {
            active: cleared_at.is_none(),
            acked: true,
            cleared_at,
            ..Alarm::new(id.into(), "r", "hot", device, Severity::Major, None, started_at)
        }
    }

    fn store(alarms: Vec<Alarm>) -> RedbStore {
        let store = RedbStore::in_memory().unwrap();
        store.commit_with(&[], &[], &Changes { alarms, ..Changes::default() }).unwrap();
        store
    }

    /// The ids of `device`'s alarms active at some time in `[from, to]`.
    fn between(store: &RedbStore, device: &str, from: Millis, to: Millis) -> Vec<String> {
        let query = AlarmQuery {
            status: StatusFilter::All,
            device: Some(device.into()),
            from: Some(from),
            to: Some(to),
            ..AlarmQuery::default()
        };
        store.alarms(&query).unwrap().into_iter().map(|a| a.id).collect()
    }

    #[test]
    fn a_range_finds_the_alarms_active_in_it_as_they_clear_reopen_and_go() {
        let store = store(vec![
            alarm("old", "d", 100, Some(200)),
            alarm("mid", "d", 300, Some(400)),
            alarm("open", "d", 350, None),
            alarm("other", "e", 300, None),
        ]);
        assert_eq!(between(&store, "d", 0, 99), Vec::<String>::new());
        assert_eq!(between(&store, "d", 150, 160), ["old"]);
        assert_eq!(between(&store, "d", 150, 1000), ["open", "mid", "old"], "newest first");
        assert_eq!(between(&store, "d", 401, 1000), ["open"]);
        assert_eq!(between(&store, "e", 0, 1000), ["other"]);

        // It clears (its end moves from open to 500), then reopens (open again).
        store
            .commit_with(
                &[],
                &[],
                &Changes { alarms: vec![alarm("open", "d", 350, Some(500))], ..Changes::default() },
            )
            .unwrap();
        assert_eq!(between(&store, "d", 501, 1000), Vec::<String>::new());
        assert_eq!(between(&store, "d", 450, 1000), ["open"]);
        store
            .commit_with(
                &[],
                &[],
                &Changes { alarms: vec![alarm("open", "d", 350, None)], ..Changes::default() },
            )
            .unwrap();
        assert_eq!(between(&store, "d", 10_000, 20_000), ["open"], "one index entry per alarm");
        let rx = store.db.read().unwrap();
        assert_eq!(rx.open_table(BY_END).unwrap().len().unwrap(), 4);
        drop(rx);

        // Pruned with the history it belongs to.
        assert_eq!(store.prune_alarms(250).unwrap(), 1);
        assert_eq!(between(&store, "d", 0, 1000), ["open", "mid"]);
        assert_eq!(store.db.read().unwrap().open_table(BY_END).unwrap().len().unwrap(), 3);

        // A limit keeps the active and latest first.
        let query = AlarmQuery {
            status: StatusFilter::All,
            device: Some("d".into()),
            from: Some(0),
            limit: Some(1),
            ..AlarmQuery::default()
        };
        assert_eq!(store.alarms(&query).unwrap()[0].id, "open");
    }

    #[test]
    fn open_alarms_are_counted_per_device_as_they_clear() {
        let store = store(vec![
            alarm("a", "d", 100, None),
            alarm("b", "d", 200, None),
            alarm("c", "d", 50, Some(60)),
            alarm("e1", "e", 300, None),
            alarm("f1", "f", 10, Some(20)),
        ]);
        let counts = store.open_alarm_counts().unwrap();
        assert_eq!((counts.get("d"), counts.get("e"), counts.get("f")), (Some(&2), Some(&1), None));
        store
            .commit_with(
                &[],
                &[],
                &Changes { alarms: vec![alarm("b", "d", 200, Some(400))], ..Changes::default() },
            )
            .unwrap();
        assert_eq!(store.open_alarm_counts().unwrap().get("d"), Some(&1), "a cleared alarm no longer counts");
    }

    #[test]
    fn a_file_from_before_the_end_index_gets_it_on_opening() {
        let store = store(vec![alarm("old", "d", 100, Some(200)), alarm("open", "d", 350, None)]);
        {
            let _writer = store.writer();
            let tx = store.begin_write().unwrap();
            assert!(tx.delete_table(BY_END).unwrap());
            init(&tx).unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(between(&store, "d", 150, 400), ["open", "old"]);
        assert_eq!(between(&store, "d", 201, 400), ["open"]);
    }

    #[test]
    fn alarm_changes_are_in_the_change_log_for_clients_catching_up() {
        let store = store(vec![alarm("a1", "d", 100, None)]);
        let mut acked = alarm("a1", "d", 100, None);
        acked.acked_by = Some("ann".into());
        store.commit_with(&[], &[], &Changes { alarms: vec![acked], ..Changes::default() }).unwrap();
        let changes = store.changes_since(0, 100).unwrap();
        let told: Vec<(u64, Option<String>)> = changes
            .iter()
            .filter_map(|e| match e {
                LiveEvent::Alarm { seq, alarm } => Some((*seq, alarm.acked_by.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(told, [(1, None), (2, Some("ann".into()))]);
        assert_eq!(store.changes_since(1, 100).unwrap().len(), 1, "only what came after");
    }
}
