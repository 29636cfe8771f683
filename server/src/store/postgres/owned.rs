//! Work a lease owns (a cluster's alarm engine): the holder works through the change log and
//! commits what it made of it with how far it got, fenced by the lease; others' changes to
//! what it works on (an action on an alarm, a rule saved, on any node) are made under the
//! lease row's lock and counted, so the holder never writes over them.
//!
//! - **Where the work stands** is on the lease's row (schema v10): `cursor`, the change-log
//!   number the holder has worked through, and `generation`, how many changes others made.
//!   A node taking the lease over reads both and goes on from the cursor: each change is
//!   worked through once, whoever held the lease.
//! - **The holder's commit** ([`fenced`]) locks the row and goes ahead only if
//!   the lease is still the holder's at its epoch and the generation is the one the holder
//!   read its state at; otherwise nothing is written and the holder reads its state again.
//! - **Others' changes** ([`counted`]) lock the same row first, so a holder's
//!   commit and another node's action on the same alarm take turns, and raise the
//!   generation in the same transaction.

use deadpool_postgres::Transaction;

use super::error::PgError;
use super::leases::{Held, MAX_NAME};
use super::store::PgStore;

/// Where a lease's work stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkState {
    /// The change-log number worked through (`None`: the work never ran).
    pub cursor: Option<u64>,
    /// How many changes others made to what the work depends on.
    pub generation: i64,
}

/// The holder's commit: who holds the lease, at which epoch, the generation its state was
/// read at, and the change-log number its work has got to.
#[derive(Debug, Clone, Copy)]
pub struct Fence<'a> {
    pub lease: &'a str,
    pub holder: &'a str,
    pub held: Held,
    pub generation: i64,
    pub cursor: u64,
}

fn check(name: &str) -> Result<(), PgError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(PgError::Setting(format!("lease names are 1 to {MAX_NAME} bytes")));
    }
    Ok(())
}

fn cursor(value: Option<i64>) -> Result<Option<u64>, PgError> {
    value.map(|c| u64::try_from(c).map_err(|_| PgError::Corrupt(format!("lease cursor {c}")))).transpose()
}

impl PgStore {
    /// Where the work of lease `name` stands (nothing yet for a lease never taken).
    pub async fn work_state(&self, name: &str) -> Result<WorkState, PgError> {
        check(name)?;
        let client = self.pool.get().await?;
        let row = client.query_opt("SELECT cursor, generation FROM leases WHERE name = $1", &[&name]).await?;
        match row {
            Some(row) => Ok(WorkState { cursor: cursor(row.get(0))?, generation: row.get(1) }),
            None => Ok(WorkState::default()),
        }
    }
}

/// Inside the transaction of the holder's commit, first: locks the lease's row, and answers
/// whether `fence` holds (the lease is still the holder's at its epoch, unexpired, and no one
/// changed what it works on since its generation); if it does, the lease's cursor moves to
/// `fence.cursor` with the commit. If it does not, nothing may be written.
pub(super) async fn fenced(tx: &Transaction<'_>, fence: Fence<'_>) -> Result<bool, PgError> {
    let cursor = i64::try_from(fence.cursor).map_err(|_| PgError::Setting("cursor out of range".into()))?;
    let statement = tx
        .prepare_cached(
            "SELECT generation FROM leases
             WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()
             FOR UPDATE",
        )
        .await?;
    let row = tx.query_opt(&statement, &[&fence.lease, &fence.holder, &fence.held.epoch]).await?;
    if row.map(|r| r.get::<_, i64>(0)) != Some(fence.generation) {
        return Ok(false);
    }
    tx.execute("UPDATE leases SET cursor = $2 WHERE name = $1", &[&fence.lease, &cursor]).await?;
    Ok(true)
}

/// Inside the transaction of another node's change to what lease `name`'s work depends on,
/// first: locks the lease's row (made if missing, held by none) and raises its generation.
pub(super) async fn counted(tx: &Transaction<'_>, name: &str) -> Result<(), PgError> {
    check(name)?;
    tx.execute(
        "INSERT INTO leases (name, holder, epoch, expires_at) VALUES ($1, '', 0, '-infinity')
         ON CONFLICT (name) DO UPDATE SET generation = leases.generation + 1",
        &[&name],
    )
    .await?;
    Ok(())
}
