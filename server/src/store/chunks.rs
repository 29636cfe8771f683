//! A series' readings live in two places: the [`head`](super::head), where each commit
//! appends, and sealed chunks, runs of up to [`CHUNK_MAX`] readings compressed by
//! [`codec`](super::codec). Sealing moves head readings older than a horizon into chunks,
//! topping up the series' last chunk first, so chunks stay full however slowly a device
//! reports. A reading that arrives late for a sealed time waits in the head and is merged
//! into its chunk by the next sealing. Reads merge both, in time order.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use telemetry::Millis;

use super::codec::{self, CorruptChunk};
use super::error::StoreError;

/// (series id, time of its first reading) → an encoded chunk.
pub(super) const CHUNKS: TableDefinition<(u32, i64), &[u8]> = TableDefinition::new("chunks");
/// series id → the latest reading time in its chunks.
pub(super) const SEALED: TableDefinition<u32, i64> = TableDefinition::new("sealed");

/// Most readings in one chunk.
pub const CHUNK_MAX: usize = 1_024;

impl From<CorruptChunk> for StoreError {
    fn from(e: CorruptChunk) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// Chunks of `sid` that may hold readings in `[from, to]`, in time order: the last one
/// starting at or before `from`, then every one starting inside the range.
fn overlapping(
    chunks: &impl ReadableTable<(u32, i64), &'static [u8]>,
    sid: u32,
    from: Millis,
    to: Millis,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut out = Vec::new();
    if let Some(entry) = chunks.range((sid, i64::MIN)..=(sid, from))?.next_back() {
        let bytes = entry?.1.value().to_vec();
        if codec::info(&bytes)?.last >= from {
            out.push(bytes);
        }
    }
    if from < to {
        for entry in chunks.range((sid, from + 1)..=(sid, to))? {
            out.push(entry?.1.value().to_vec());
        }
    }
    Ok(out)
}

/// Visits `sid`'s readings in `[from, to]` in time order, from chunks and `head` (its head
/// readings in that range, in time order) alike, until `visit` returns false.
pub(super) fn scan(
    chunks: &impl ReadableTable<(u32, i64), &'static [u8]>,
    head: &[(Millis, f64)],
    sid: u32,
    from: Millis,
    to: Millis,
    mut visit: impl FnMut(Millis, f64) -> bool,
) -> Result<(), StoreError> {
    if from > to {
        return Ok(());
    }
    let mut head = head.iter().copied();
    let mut pending = head.next();
    for bytes in overlapping(chunks, sid, from, to)? {
        for (t, v) in codec::decode(&bytes)? {
            if t < from || t > to {
                continue;
            }
            while let Some((ht, hv)) = pending.filter(|(ht, _)| *ht < t) {
                if !visit(ht, hv) {
                    return Ok(());
                }
                pending = head.next();
            }
            if !visit(t, v) {
                return Ok(());
            }
        }
    }
    while let Some((ht, hv)) = pending {
        if !visit(ht, hv) {
            return Ok(());
        }
        pending = head.next();
    }
    Ok(())
}

/// Whether a sealed chunk of `sid` holds a reading at `t`.
pub(super) fn sealed_at(
    chunks: &impl ReadableTable<(u32, i64), &'static [u8]>,
    sid: u32,
    t: Millis,
) -> Result<bool, StoreError> {
    let Some(entry) = chunks.range((sid, i64::MIN)..=(sid, t))?.next_back() else { return Ok(false) };
    let (_, bytes) = entry?;
    if codec::info(bytes.value())?.last < t {
        return Ok(false);
    }
    Ok(codec::decode(bytes.value())?.binary_search_by_key(&t, |p| p.0).is_ok())
}

/// How many readings are in chunks.
pub(super) fn sealed_count(
    chunks: &impl ReadableTable<(u32, i64), &'static [u8]>,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for entry in chunks.iter()? {
        n += codec::info(entry?.1.value())?.count;
    }
    Ok(n)
}

/// Merges readings of `sid` (in time order) into its chunks; returns the latest sealed time.
pub(super) fn seal(
    tx: &WriteTransaction,
    sid: u32,
    points: Vec<(Millis, f64)>,
) -> Result<Option<Millis>, StoreError> {
    let Some(newest) = points.last().map(|p| p.0) else { return Ok(None) };
    let mut chunks = tx.open_table(CHUNKS)?;
    let mut sealed = tx.open_table(SEALED)?;
    let end = sealed.get(sid)?.map(|v| v.value());
    // Each reading goes to the chunk whose first time is the greatest at or before it (or the
    // series' first chunk); readings after every sealed one top up the last chunk.
    let mut targets: BTreeMap<Option<i64>, Vec<(Millis, f64)>> = BTreeMap::new();
    let (first, last) = {
        let mut all = chunks.range((sid, i64::MIN)..=(sid, i64::MAX))?;
        let first = all.next().transpose()?.map(|(k, _)| k.value().1);
        (first, all.next_back().transpose()?.map(|(k, _)| k.value().1).or(first))
    };
    for p in points {
        // Past every sealed reading (the usual case): the last chunk, without a lookup.
        let at = if end.is_none_or(|e| p.0 > e) {
            last
        } else {
            chunks.range((sid, i64::MIN)..=(sid, p.0))?.next_back().transpose()?.map(|(k, _)| k.value().1)
        };
        targets.entry(at.or(first)).or_default().push(p);
    }
    for (at, mut add) in targets {
        if let Some(at) = at {
            let old = chunks.get((sid, at))?.map(|b| b.value().to_vec());
            if let Some(old) = old {
                let info = codec::info(&old)?;
                // A full chunk that every new reading follows stays as it is.
                if info.count < CHUNK_MAX as u64 || add[0].0 <= info.last {
                    chunks.remove((sid, at))?;
                    add = merge(codec::decode(&old)?, add);
                }
            }
        }
        write_chunks(&mut chunks, sid, &add)?;
    }
    let latest = end.map_or(newest, |e| e.max(newest));
    sealed.insert(sid, latest)?;
    Ok(Some(latest))
}

/// Drops `sid`'s sealed readings older than `before`; returns how many.
pub(super) fn prune(tx: &WriteTransaction, sid: u32, before: Millis) -> Result<u64, StoreError> {
    let mut chunks = tx.open_table(CHUNKS)?;
    let mut old = Vec::new();
    for entry in chunks.range((sid, i64::MIN)..(sid, before))? {
        let (k, v) = entry?;
        old.push((k.value().1, v.value().to_vec()));
    }
    let mut pruned = 0;
    for (at, bytes) in old {
        let info = codec::info(&bytes)?;
        chunks.remove((sid, at))?;
        if info.last < before {
            pruned += info.count;
        } else {
            let keep: Vec<_> = codec::decode(&bytes)?.into_iter().filter(|p| p.0 >= before).collect();
            pruned += info.count - keep.len() as u64;
            write_chunks(&mut chunks, sid, &keep)?;
        }
    }
    Ok(pruned)
}

/// Deletes every chunk of `sid`.
pub(super) fn delete(tx: &WriteTransaction, sid: u32) -> Result<(), StoreError> {
    tx.open_table(CHUNKS)?.retain_in((sid, i64::MIN)..=(sid, i64::MAX), |_, _| false)?;
    tx.open_table(SEALED)?.remove(sid)?;
    Ok(())
}

fn write_chunks(
    chunks: &mut Table<(u32, i64), &[u8]>,
    sid: u32,
    points: &[(Millis, f64)],
) -> Result<(), StoreError> {
    for piece in points.chunks(CHUNK_MAX) {
        chunks.insert((sid, piece[0].0), codec::encode(piece).as_slice())?;
    }
    Ok(())
}

/// Two time-ordered runs as one; on equal times the first run's reading stays.
fn merge(a: Vec<(Millis, f64)>, b: Vec<(Millis, f64)>) -> Vec<(Millis, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                b.next();
                a.next()
            }
            (Some(x), Some(y)) if x.0 < y.0 => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        out.extend(next);
    }
    out
}
