//! What the door hands the writer: a job (messages, a report, a retained change, an alarm or
//! tag change), and the answer a submitter waits for.

use tokio::sync::oneshot;

use super::retained::Reservation;
use super::tags;
use crate::store::{CommandOp, CommandsApplied, DesiredApplied, DesiredOp, Incoming, Report, RetainedChange};

/// The result a submitter waits for.
pub type Ack = Result<(), IngestError>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("storage unavailable; nothing in this batch was stored")]
    Storage,
    #[error("the server is shutting down")]
    Closed,
}

pub(super) enum Job {
    Messages(Vec<Incoming>, oneshot::Sender<Ack>),
    /// A status or attributes (a device's report besides readings).
    Status(Report, oneshot::Sender<Ack>),
    Alarm(crate::alarms::AlarmJob),
    Tags(tags::TagJob),
    /// Groups changed: rules' scopes are worked out again.
    Rescope,
    /// A message the embedded broker is to retain (or whose topic it is to clear), with what
    /// it is besides (readings, a report, or nothing to read).
    Retain(RetainJob),
    /// Commands made or moved on: stored with their changes on their own, between commits
    /// (the commands jobs of one batch together).
    Commands(Vec<CommandOp>, oneshot::Sender<Result<CommandsApplied, IngestError>>),
    /// A slice of bulk `.0`'s commands, stored with their places in it (`None`: no such bulk).
    Bulk(String, Vec<CommandOp>, oneshot::Sender<Result<Option<CommandsApplied>, IngestError>>),
    /// A device's desired state changed, or its report: stored with its change, between commits.
    Desired(DesiredOp, oneshot::Sender<Result<DesiredApplied, IngestError>>),
    /// Every retained message this device (or client) holds is to be cleared: it is deleted.
    ClearRetained(String, oneshot::Sender<Ack>),
}

pub(super) struct RetainJob {
    pub(super) messages: Vec<Incoming>,
    pub(super) reports: Vec<Report>,
    pub(super) change: RetainedChange,
    /// Its place under the retained caps, given back once the change is applied.
    pub(super) held: Option<Reservation>,
    pub(super) done: oneshot::Sender<Ack>,
}

impl Job {
    pub(super) fn readings(&self) -> usize {
        match self {
            Job::Messages(m, _) => m.iter().map(|i| i.message.values.len()).sum::<usize>().max(1),
            Job::Retain(r) => r.messages.iter().map(|i| i.message.values.len()).sum::<usize>().max(1),
            Job::Status(..)
            | Job::Alarm(_)
            | Job::Tags(_)
            | Job::Rescope
            | Job::ClearRetained(..)
            | Job::Commands(..)
            | Job::Bulk(..)
            | Job::Desired(..) => 1,
        }
    }

    /// Whether the writer does this job on its own as it comes, rather than in the batch's
    /// commit.
    pub(super) fn inline(&self) -> bool {
        match self {
            Job::Alarm(crate::alarms::AlarmJob::Tick | crate::alarms::AlarmJob::Act { .. }) => false,
            Job::Alarm(_) | Job::Tags(_) | Job::Rescope | Job::Bulk(..) | Job::Desired(..) => true,
            Job::Messages(..)
            | Job::Status(..)
            | Job::Retain(_)
            | Job::ClearRetained(..)
            | Job::Commands(..) => false,
        }
    }
}
