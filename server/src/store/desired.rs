//! Devices' desired and reported state as the store keeps them ([`DesiredStore`]): one
//! [`Shadow`] per device. A change (a merge patch to the desired state, or a device's report)
//! is stored with its numbered change (the live feed's and the change log's
//! [`telemetry::LiveEvent::Desired`]) in one transaction, so what the API answers survives a
//! kill -9. Only the writer ([`crate::ingest`]) changes them, in order with every other change.

use serde_json::{Map, Value};
use telemetry::Millis;
use telemetry::desired::{DesiredError, Reported, Shadow, merge_patch};

use super::error::StoreError;
use super::outcome::CommitOutcome;

/// Most devices with a desired state (each at most 4 KiB desired and 4 KiB reported).
pub const MAX_SHADOWS: usize = 100_000;

/// One change asked of a device's shadow.
#[derive(Debug, Clone)]
pub enum DesiredOp {
    /// A JSON merge patch to the desired state, by `by`, if its version is still `if_match`.
    Patch { device: String, patch: Value, if_match: Option<u64>, by: String },
    /// What the device reports it applied.
    Reported { device: String, v: u64, state: Map<String, Value> },
}

impl DesiredOp {
    pub fn device(&self) -> &str {
        match self {
            DesiredOp::Patch { device, .. } | DesiredOp::Reported { device, .. } => device,
        }
    }
}

/// Why a change was not made.
#[derive(Debug, Clone, PartialEq)]
pub enum DesiredRefusal {
    /// The desired state is at another version than the one the change was made against.
    Stale {
        current: u64,
    },
    Invalid(DesiredError),
    /// The server has its maximum of shadows.
    Full(usize),
}

impl std::fmt::Display for DesiredRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DesiredRefusal::Stale { current } => write!(f, "the desired state is at version {current} now"),
            DesiredRefusal::Invalid(why) => why.fmt(f),
            DesiredRefusal::Full(n) => write!(f, "the server already holds {n} desired states"),
        }
    }
}

/// What [`DesiredStore::apply_desired`] did.
#[derive(Debug, Clone)]
pub struct DesiredApplied {
    /// The shadow as it is now, or why the change was refused.
    pub answer: Result<Shadow, DesiredRefusal>,
    /// Whether the desired state changed (and so is to be sent to the device).
    pub desired_changed: bool,
    /// The numbered change, for the live feed (none when nothing changed).
    pub outcome: CommitOutcome,
}

pub trait DesiredStore: Send + Sync {
    /// Applies one change at server time `now`, in one durable transaction with its change in
    /// the change log (nothing is written when it changes nothing or is refused).
    fn apply_desired(&self, op: &DesiredOp, now: Millis) -> Result<DesiredApplied, StoreError>;
    /// A device's shadow, if it ever had a desired or reported state.
    fn shadow(&self, device: &str) -> Result<Option<Shadow>, StoreError>;
}

/// What `op` makes of a device's shadow `old` (a new one when it had none) at server time
/// `now`: the shadow after it and whether the desired state changed, or why it is refused.
/// The same shadow back means there is nothing to store. Every store decides with this, so
/// they answer alike.
pub(super) fn decide(old: &Shadow, op: &DesiredOp, now: Millis) -> Result<(Shadow, bool), DesiredRefusal> {
    let mut shadow = old.clone();
    let mut desired_changed = false;
    match op {
        DesiredOp::Patch { patch, if_match, by, .. } => {
            if if_match.is_some_and(|v| v != old.v) {
                return Err(DesiredRefusal::Stale { current: old.v });
            }
            let state = merge_patch(&old.state, patch).map_err(DesiredRefusal::Invalid)?;
            if state != old.state {
                shadow.state = state;
                shadow.v = old.v.saturating_add(1);
                shadow.updated_by = Some(by.clone());
                shadow.updated_at = Some(now);
                desired_changed = true;
            }
        }
        DesiredOp::Reported { v, state, .. } => {
            let same = old.reported.as_ref().is_some_and(|r| r.v == *v && &r.state == state);
            if !same {
                shadow.reported = Some(Reported { v: *v, state: state.clone(), at: now });
            }
        }
    }
    Ok((shadow, desired_changed))
}
