//! The notification outbox on PostgreSQL: deliveries made by alarm commits
//! ([`super::alarms::commit_alarms`]) or by hand (a channel's test, a resend), the due ones
//! read by the sender, and what came of each attempt stored back. The done ones are kept to
//! [`MAX_DONE_DELIVERIES`], as in the redb store.
//!
//! # Two nodes' senders
//! Which node sends comes later (leases: one sender at a time); until then two nodes may read
//! the same due delivery and both send it, which is the at-least-once the sender already
//! promises after a crash (same `webhook-id`). What must not happen is that a stale update
//! undoes a newer one: node A marks a delivery sent, and node B, which read it before, stores
//! its retry and so brings it back to pending, to be sent again and again.
//!
//! So every update is conditional on the row still being what the update was made from,
//! checked and written in one statement (`INSERT … ON CONFLICT DO UPDATE … WHERE`: the row is
//! locked and the condition read from its newest committed version, so there is no window
//! between the check and the write). A delivery's states only move forward:
//! - while it is pending, an update made from it keeps its `created` (only a resend changes
//!   that) and has at least its attempts (the sender adds one per attempt, or none when it
//!   gives up without one); an update made from an earlier attempt has fewer, and one made
//!   before a resend has the older `created`: both are dropped;
//! - once it is done (sent, failed, suppressed) only a resend changes it: pending again with a
//!   later `created` (the resend's time). A late retry of the attempt that finished it has the
//!   old `created` and is dropped.
//!
//! A dropped update is logged; the row keeps the newer state. One node alone never makes one
//! (each update is made from what it just read), so the behaviour is the redb store's.
//!
//! Why not claim the due rows with `FOR UPDATE SKIP LOCKED`: a row lock lasts as long as its
//! transaction, and the sender's round (read the due ones, send over HTTP or SMTP for up to
//! seconds each, store what came of it) would hold a transaction and a connection open across
//! calls to outside hosts, and [`super::super::AlarmStore::due_deliveries`] answers a list and
//! returns. A claim that outlives its transaction needs a claim time and a node, which is the
//! leases' work; and a claim can lapse under a slow node while another takes the delivery
//! over, so the stale-update guard here is needed with claims too.

use std::collections::BTreeMap;

use deadpool_postgres::Transaction;
use serde_json::Value;

use telemetry::Millis;
use telemetry::notify::{Delivery, DeliveryState};

use super::super::api::MAX_DONE_DELIVERIES;
use super::docs::{doc, limit, parse};
use super::error::PgError;
use super::store::PgStore;

/// A state as the `state` column keeps it.
fn state_name(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Sent => "sent",
        DeliveryState::Failed => "failed",
        DeliveryState::Suppressed => "suppressed",
    }
}

/// Deliveries as statement parameters: the latest of each id, in id order (so two nodes lock
/// rows in the same order).
struct Columns<'a> {
    ids: Vec<&'a str>,
    states: Vec<&'static str>,
    created: Vec<i64>,
    attempts: Vec<i64>,
    next_at: Vec<i64>,
    docs: Vec<Value>,
}

impl<'a> Columns<'a> {
    fn of(deliveries: &'a [Delivery]) -> Columns<'a> {
        let latest: BTreeMap<&str, &Delivery> = deliveries.iter().map(|d| (d.id.as_str(), d)).collect();
        let mut c = Columns {
            ids: Vec::with_capacity(latest.len()),
            states: Vec::with_capacity(latest.len()),
            created: Vec::with_capacity(latest.len()),
            attempts: Vec::with_capacity(latest.len()),
            next_at: Vec::with_capacity(latest.len()),
            docs: Vec::with_capacity(latest.len()),
        };
        for (id, d) in latest {
            c.ids.push(id);
            c.states.push(state_name(d.state));
            c.created.push(d.created);
            c.attempts.push(i64::from(d.attempts));
            c.next_at.push(d.next_at);
            c.docs.push(doc(d));
        }
        c
    }
}

/// The columns' upsert; `condition` (on `d`, the stored row, and `EXCLUDED`) says when a
/// stored delivery is replaced.
fn upsert(condition: &str) -> String {
    format!(
        "INSERT INTO notification_deliveries AS d (id, state, created, attempts, next_at, doc) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::jsonb[]) \
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, created = EXCLUDED.created, \
         attempts = EXCLUDED.attempts, next_at = EXCLUDED.next_at, doc = EXCLUDED.doc WHERE {condition}"
    )
}

/// Stores the deliveries an alarm commit made (new ones), inside its transaction.
pub(super) async fn insert(tx: &Transaction<'_>, deliveries: &[Delivery]) -> Result<(), PgError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let c = Columns::of(deliveries);
    let statement = tx.prepare_cached(&upsert("true")).await?;
    tx.execute(&statement, &[&c.ids, &c.states, &c.created, &c.attempts, &c.next_at, &c.docs]).await?;
    Ok(())
}

impl PgStore {
    /// Pending deliveries due at `now`, soonest first (then by id), at most `limit`.
    pub async fn due_deliveries(&self, now: Millis, limit_: usize) -> Result<Vec<Delivery>, PgError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT doc FROM notification_deliveries WHERE state = 'pending' AND next_at <= $1 \
                 ORDER BY next_at, id LIMIT $2",
            )
            .await?;
        let rows = client.query(&statement, &[&now, &limit(limit_)]).await?;
        rows.into_iter().map(|r| parse(r.get(0), "delivery")).collect()
    }

    /// When the next pending delivery is due.
    pub async fn next_due(&self) -> Result<Option<Millis>, PgError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("SELECT min(next_at) FROM notification_deliveries WHERE state = 'pending'")
            .await?;
        Ok(client.query_one(&statement, &[]).await?.get(0))
    }

    /// Stores deliveries' new states: new ones as they are, known ones only if the update was
    /// made from their current state (the module's doc); then keeps the done ones to
    /// [`MAX_DONE_DELIVERIES`], oldest going first. Answers how many updates were dropped as
    /// stale.
    pub async fn update_deliveries(&self, updates: &[Delivery]) -> Result<u64, PgError> {
        if updates.is_empty() {
            return Ok(0);
        }
        let c = Columns::of(updates);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let statement = tx
            .prepare_cached(&upsert(
                "(d.state = 'pending' AND EXCLUDED.created = d.created AND EXCLUDED.attempts >= d.attempts) \
                 OR (d.state <> 'pending' AND EXCLUDED.state = 'pending' AND EXCLUDED.created > d.created)",
            ))
            .await?;
        let written = tx
            .execute(&statement, &[&c.ids, &c.states, &c.created, &c.attempts, &c.next_at, &c.docs])
            .await?;
        let trim = tx
            .prepare_cached(
                "DELETE FROM notification_deliveries WHERE id IN ( \
                     SELECT id FROM notification_deliveries WHERE state <> 'pending' \
                     ORDER BY created DESC, id DESC OFFSET $1)",
            )
            .await?;
        tx.execute(&trim, &[&i64::try_from(MAX_DONE_DELIVERIES).unwrap_or(i64::MAX)]).await?;
        tx.commit().await?;
        let stale = (c.ids.len() as u64).saturating_sub(written);
        if stale > 0 {
            tracing::info!(
                stale,
                "notifications: updates made from an older state were dropped (another node's are newer)"
            );
        }
        Ok(stale)
    }

    /// Deliveries, newest first (created, then id), at most `limit`.
    pub async fn deliveries(&self, limit_: usize) -> Result<Vec<Delivery>, PgError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("SELECT doc FROM notification_deliveries ORDER BY created DESC, id DESC LIMIT $1")
            .await?;
        let rows = client.query(&statement, &[&limit(limit_)]).await?;
        rows.into_iter().map(|r| parse(r.get(0), "delivery")).collect()
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<Delivery>, PgError> {
        let client = self.pool.get().await?;
        let row = client.query_opt("SELECT doc FROM notification_deliveries WHERE id = $1", &[&id]).await?;
        row.map(|r| parse(r.get(0), "delivery")).transpose()
    }
}
