//! The change log: every stored change (a reading message, a status report, a device's new
//! tags, an alarm's news), numbered, for clients catching up after a gap and for replaying the
//! device registry after a crash.
//!
//! A commit writes its changes in rows of up to [`ROW_BYTES`], each keyed by the number of its
//! first change and holding their JSON one per line: a commit of a thousand messages is about
//! seventy B-tree inserts rather than a thousand. A row of one change is the layout files
//! written before rows held several, so those read as they are.

use redb::{ReadableTable, Table, TableDefinition};
use telemetry::{LiveEvent, Millis};

use super::error::StoreError;

/// First change number of a commit → its changes' JSON [`LiveEvent`]s, one per line.
pub(super) const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");

/// Bytes of JSON per row at most, unless one change is larger. redb keeps a row larger than a
/// page on pages of a power of two, so a commit's changes go in rows that share pages instead.
const ROW_BYTES: usize = 16_000;

/// Writes one commit's changes, numbered from `first`, as rows.
pub(super) fn append(table: &mut Table<u64, &[u8]>, first: u64, json: &[String]) -> Result<(), StoreError> {
    let mut row: Vec<u8> = Vec::with_capacity(ROW_BYTES);
    let mut row_first = first;
    for (seq, event) in (first..).zip(json) {
        if !row.is_empty() && row.len() + 1 + event.len() > ROW_BYTES {
            table.insert(row_first, row.as_slice())?;
            row.clear();
        }
        if row.is_empty() {
            row_first = seq;
        } else {
            row.push(b'\n');
        }
        row.extend_from_slice(event.as_bytes());
    }
    if !row.is_empty() {
        table.insert(row_first, row.as_slice())?;
    }
    Ok(())
}

/// The changes in a row, numbered from `first`.
fn lines(first: u64, row: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    row.split(|b| *b == b'\n').zip(first..).map(|(json, seq)| (seq, json))
}

fn parse(json: &[u8]) -> Result<LiveEvent, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(format!("change log entry: {e}")))
}

/// Calls `each` with every change after `after`, in order, until it returns false.
pub(super) fn after(
    table: &impl ReadableTable<u64, &'static [u8]>,
    after: u64,
    mut each: impl FnMut(LiveEvent) -> bool,
) -> Result<(), StoreError> {
    let next = after.saturating_add(1);
    // The row holding change `next` starts at or before it.
    let start = table.range(..=next)?.next_back().transpose()?.map_or(next, |(k, _)| k.value());
    for entry in table.range(start..)? {
        let (k, row) = entry?;
        for (seq, json) in lines(k.value(), row.value()) {
            if seq > after && !each(parse(json)?) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Removes the oldest changes while `old` says so of each, in order; returns how many. Only
/// the first row left is rewritten, when it loses some of its changes.
fn drop_oldest(
    table: &mut Table<u64, &[u8]>,
    mut old: impl FnMut(u64, &[u8]) -> bool,
) -> Result<u64, StoreError> {
    let mut removed = 0;
    loop {
        let Some((first, row)) = table.first()?.map(|(k, row)| (k.value(), row.value().to_vec())) else {
            return Ok(removed);
        };
        let gone = lines(first, &row).take_while(|(seq, json)| old(*seq, json)).count();
        if gone == 0 {
            return Ok(removed);
        }
        table.remove(first)?;
        removed += gone as u64;
        // What follows the `gone` changes, as it is: splitn leaves it in one piece.
        if let Some(rest) = row.splitn(gone + 1, |b| *b == b'\n').nth(gone) {
            table.insert(first + gone as u64, rest)?;
            return Ok(removed);
        }
    }
}

/// Removes the changes numbered `upto` or lower; returns how many.
pub(super) fn trim(table: &mut Table<u64, &[u8]>, upto: u64) -> Result<u64, StoreError> {
    drop_oldest(table, |seq, _| seq <= upto)
}

/// Removes the oldest changes received before `before`, up to the first newer one or the first
/// numbered above `upto`; returns how many.
pub(super) fn prune(table: &mut Table<u64, &[u8]>, upto: u64, before: Millis) -> Result<u64, StoreError> {
    drop_oldest(table, |seq, json| {
        // A change's time: when its reading came in, or its status changed.
        seq <= upto
            && match parse(json) {
                Ok(LiveEvent::Reading { received, .. }) => received < before,
                Ok(
                    LiveEvent::Status { at, .. }
                    | LiveEvent::Tags { at, .. }
                    | LiveEvent::Attributes { at, .. }
                    | LiveEvent::Command { at, .. }
                    | LiveEvent::Desired { at, .. }
                    | LiveEvent::Event { event: telemetry::attributes::DeviceEvent { at, .. }, .. },
                ) => at < before,
                _ => true,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    fn status(seq: u64, at: Millis) -> String {
        let event =
            LiveEvent::Status { seq, device: "d".into(), online: seq.is_multiple_of(2), at, session: None };
        serde_json::to_string(&event).unwrap()
    }

    fn seqs(db: &redb::Database, from: u64, limit: usize) -> Vec<u64> {
        let rx = db.begin_read().unwrap();
        let table = rx.open_table(CHANGES).unwrap();
        let mut out = Vec::new();
        after(&table, from, |e| {
            out.push(e.seq().unwrap());
            out.len() < limit
        })
        .unwrap();
        out
    }

    /// Rows 1..=3, 4 (a single change, as files before batches hold), 5..=9; change n at n s.
    fn log() -> redb::Database {
        let db =
            redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut table = tx.open_table(CHANGES).unwrap();
            for rows in [1..=3u64, 4..=4, 5..=9] {
                let first = *rows.start();
                let json: Vec<_> = rows.map(|s| status(s, s as Millis * 1_000)).collect();
                append(&mut table, first, &json).unwrap();
            }
            append(&mut table, 10, &[]).unwrap();
        }
        tx.commit().unwrap();
        db
    }

    #[test]
    fn a_large_commit_is_split_into_rows_that_fit_a_page() {
        let db =
            redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut table = tx.open_table(CHANGES).unwrap();
            let json: Vec<_> = (1..=1_000).map(|s| status(s, s as Millis)).collect();
            append(&mut table, 1, &json).unwrap();
            let rows: Vec<usize> = table.iter().unwrap().map(|e| e.unwrap().1.value().len()).collect();
            assert!(rows.len() > 1 && rows.iter().all(|len| *len <= ROW_BYTES), "{rows:?}");
        }
        tx.commit().unwrap();
        assert_eq!(seqs(&db, 0, 10_000), (1..=1_000).collect::<Vec<_>>());
        assert_eq!(seqs(&db, 500, 3), [501, 502, 503]);
    }

    #[test]
    fn reading_after_any_change_pages_across_rows() {
        let db = log();
        assert_eq!(seqs(&db, 0, 100), (1..=9).collect::<Vec<_>>());
        assert_eq!(seqs(&db, 2, 3), [3, 4, 5], "from inside a row, across the next");
        assert_eq!(seqs(&db, 4, 2), [5, 6]);
        assert_eq!(seqs(&db, 7, 100), [8, 9]);
        assert!(seqs(&db, 9, 100).is_empty());
    }

    #[test]
    fn trimming_removes_exactly_the_changes_up_to_the_mark() {
        let db = log();
        let tx = db.begin_write().unwrap();
        let mut table = tx.open_table(CHANGES).unwrap();
        assert_eq!(trim(&mut table, 2).unwrap(), 2, "from inside row 1..=3");
        assert_eq!(trim(&mut table, 6).unwrap(), 4, "3, row 4, and into row 5..=9");
        assert_eq!(trim(&mut table, 6).unwrap(), 0);
        drop(table);
        tx.commit().unwrap();
        assert_eq!(seqs(&db, 0, 100), (7..=9).collect::<Vec<_>>());
        assert_eq!(seqs(&db, 7, 100), [8, 9], "the rewritten row pages as any other");
    }

    #[test]
    fn pruning_stops_at_the_first_newer_change_or_the_checkpoint() {
        let db = log();
        let tx = db.begin_write().unwrap();
        let mut table = tx.open_table(CHANGES).unwrap();
        assert_eq!(prune(&mut table, 3, 2_500).unwrap(), 2, "changes 1 and 2 came before 2.5 s");
        assert_eq!(prune(&mut table, 3, 60_000).unwrap(), 1, "the checkpoint stops it at 3");
        assert_eq!(prune(&mut table, 9, 6_500).unwrap(), 3, "4, 5 and 6; 7 came at 7 s");
        drop(table);
        tx.commit().unwrap();
        assert_eq!(seqs(&db, 0, 100), (7..=9).collect::<Vec<_>>());
    }
}
