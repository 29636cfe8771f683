//! The alarm engine across nodes ([`crate::cluster::alarms`]): the node holding the lease
//! [`ALARMS`] commits its evaluations fenced by it ([`PgStore::commit_evaluation`]); an
//! action on an alarm taken on any node ([`PgBlocking::act_on_alarm`]) and a change of rules
//! or channels ([`PgBlocking::alarm_config_changed`]) are others' changes to its work
//! ([`super::owned`]), after which the holder reads its state again.

use telemetry::DeviceSummary;
use telemetry::alarm::{Alarm, Rule};

use super::super::api::CommitOutcome;
use super::super::error::StoreError;
use super::alarms::commit_alarms;
use super::blocking::PgBlocking;
use super::error::PgError;
use super::owned::{Fence, counted, fenced};
use super::store::PgStore;
use crate::alarms::engine::Changes;

/// The lease whose holder evaluates every alarm rule.
pub const ALARMS: &str = "alarms";

/// What an action on an alarm starts from, read under the lease's lock: the alarm (if it is
/// stored), its device as it is now, every rule and channel id.
pub struct ActFrom {
    pub alarm: Option<Alarm>,
    pub device: Option<DeviceSummary>,
    pub rules: Vec<Rule>,
    pub channels: Vec<String>,
}

impl PgStore {
    /// Commits an evaluation of the alarm engine with the change-log number it has worked
    /// through, if `fence` holds ([`fenced`]); `None`, with nothing written, if not.
    pub async fn commit_evaluation(
        &self,
        fence: Fence<'_>,
        changes: &Changes,
    ) -> Result<Option<CommitOutcome>, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if !fenced(&tx, fence).await? {
            return Ok(None);
        }
        let outcome = commit_alarms(&tx, changes).await?;
        tx.commit().await?;
        Ok(Some(outcome))
    }

    /// [`PgBlocking::act_on_alarm`] on the store's runtime.
    async fn act_on_alarm<R>(
        &self,
        id: &str,
        act: impl FnOnce(ActFrom) -> (Changes, R),
    ) -> Result<(CommitOutcome, Changes, R), PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        counted(&tx, ALARMS).await?;
        // Read with the lease's row locked: no evaluation commits meanwhile, so what is read
        // is what the action changes.
        let alarm = self.alarm(id).await?.map(|(alarm, _)| alarm);
        let device = match &alarm {
            Some(a) => self.device(&a.device).await?.value,
            None => None,
        };
        let rules = self.rules().await?;
        let channels = self.channels().await?.into_iter().map(|c| c.id).collect();
        let (changes, answer) = act(ActFrom { alarm, device, rules, channels });
        let outcome = commit_alarms(&tx, &changes).await?;
        tx.commit().await?;
        Ok((outcome, changes, answer))
    }

    /// [`PgBlocking::alarm_config_changed`] on the store's runtime.
    async fn alarm_config_changed(&self) -> Result<(), PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        counted(&tx, ALARMS).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl PgBlocking {
    /// Does an action on alarm `id` on this node, whichever node evaluates the rules: `act`
    /// makes it from what is stored, and its changes are committed under the lease
    /// [`ALARMS`]'s lock, which tells the evaluating node to read its state again. Answers the
    /// commit, the changes and `act`'s own answer.
    pub fn act_on_alarm<R: Send + 'static>(
        &self,
        id: &str,
        act: impl FnOnce(ActFrom) -> (Changes, R) + Send + 'static,
    ) -> Result<(CommitOutcome, Changes, R), StoreError> {
        let id = id.to_owned();
        self.call(|pg| async move { pg.act_on_alarm(&id, act).await })
    }

    /// Tells the node evaluating the rules that rules or channels changed (stored already):
    /// it reads its state again before its next commit.
    pub fn alarm_config_changed(&self) -> Result<(), StoreError> {
        self.call(|pg| async move { pg.alarm_config_changed().await })
    }
}
