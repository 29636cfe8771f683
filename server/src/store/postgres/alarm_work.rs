//! The alarm engine across nodes ([`crate::cluster::alarms`]): each device partition's rules
//! ([`super::leases::partition`]) are evaluated by the node holding its lease
//! ([`lease_name`]), which commits its evaluations
//! fenced by it ([`PgStore::commit_evaluation`]). An action on an alarm taken on any node
//! ([`PgBlocking::act_on_alarm`]) is another's change to the work of its device's partition,
//! and a change of rules or channels ([`PgBlocking::alarm_config_changed`]) to every
//! partition's ([`super::owned`]); the holders read their state again after it.

use telemetry::DeviceSummary;
use telemetry::alarm::{Alarm, Rule};

use super::super::api::CommitOutcome;
use super::super::error::StoreError;
use super::alarms::commit_alarms;
use super::blocking::PgBlocking;
use super::error::PgError;
use super::leases::{PARTITIONS, partition};
use super::owned::{Fence, counted, fenced};
use super::store::PgStore;
use crate::alarms::engine::Changes;

/// What the partitions' lease names start with; `alarms/<n>` is partition n's.
pub const LEASE_PREFIX: &str = "alarms/";

/// The lease of partition `n`, whose holder evaluates the rules for its devices.
pub fn lease_name(n: u32) -> String {
    format!("{LEASE_PREFIX}{n}")
}

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
        // Which partition's work this is: an alarm's device never changes, so it can be read
        // before the lock.
        let Some((stored, _)) = self.alarm(id).await? else {
            let rules = self.rules().await?;
            let channels = self.channels().await?.into_iter().map(|c| c.id).collect();
            let (changes, answer) = act(ActFrom { alarm: None, device: None, rules, channels });
            return Ok((CommitOutcome::default(), changes, answer));
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        counted(&tx, &lease_name(partition(&stored.device))).await?;
        // Read with the lease's row locked: no evaluation of the partition commits meanwhile,
        // so what is read is what the action changes.
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
        for n in 0..PARTITIONS {
            counted(&tx, &lease_name(n)).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl PgBlocking {
    /// Does an action on alarm `id` on this node, whichever node evaluates the rules: `act`
    /// makes it from what is stored, and its changes are committed under the lock of the
    /// lease of its device's partition, which tells the evaluating node to read its state
    /// again. Answers the
    /// commit, the changes and `act`'s own answer.
    pub fn act_on_alarm<R: Send + 'static>(
        &self,
        id: &str,
        act: impl FnOnce(ActFrom) -> (Changes, R) + Send + 'static,
    ) -> Result<(CommitOutcome, Changes, R), StoreError> {
        let id = id.to_owned();
        self.call(|pg| async move { pg.act_on_alarm(&id, act).await })
    }

    /// Tells the nodes evaluating the rules that rules or channels changed (stored already):
    /// each reads its partitions' state again before its next commit.
    pub fn alarm_config_changed(&self) -> Result<(), StoreError> {
        self.call(|pg| async move { pg.alarm_config_changed().await })
    }
}
