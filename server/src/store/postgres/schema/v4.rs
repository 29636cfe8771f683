//! Version 4: alarms, their rules and logs, notification channels and the notification
//! outbox ([`super::super::alarms`], [`super::super::deliveries`]).
//!
//! Every record is the JSON the server writes (`doc`), as in the redb store; the columns
//! beside it are what queries select, order and index by, written from the same record in the
//! same statement. Times are milliseconds (`bigint`), not `timestamptz`: they are compared
//! with what a request sends (a chart's range, a prune's horizon), and any time the redb store
//! keeps must be kept here. Ids are `COLLATE "C"`, so ordering by them is byte order, as in
//! redb (ties between equal times break the same way).
//!
//! - `alarm_rules`, `notification_channels`: a row each by id. Listed by name in the server
//!   (case-insensitively), as few as `MAX_RULES` allows.
//! - `alarm_tracks`: each rule's state per (rule, device), only states that are not idle;
//!   `alarm_id` is the alarm a state may reopen, so pruning and the engine's start-up read
//!   which alarms a state still refers to without parsing every state
//!   (`alarm_tracks_alarm`, partial: only those with one).
//! - `alarms`: one row per alarm. `end_at` is when it stopped being active, or `i64::MAX`
//!   while it is (the redb store's `alarms_by_end` key).
//!   - `alarms_by_start` (started_at, id): lists, newest first, and pruning by age.
//!   - `alarms_by_end` (end_at, id): the alarms active at some time after `from` (a chart's
//!     range) are those with `end_at >= from`, active ones first.
//!   - `alarms_by_device` (device, started_at, id): a device's alarms, newest first,
//!     without reading the fleet's history.
//!   - `alarms_active` (device) where active: the open alarms per device (the badge,
//!     `open_alarm_counts`) read from the active alarms alone, however long the history.
//! - `alarm_log`: each alarm's transitions in order (`n` from an identity, increasing
//!   across the whole log); the primary key (alarm_id, n) reads one alarm's log and trims
//!   it to `MAX_LOG` entries, oldest first.
//! - `notification_deliveries`: the outbox, one row per delivery.
//!   - `deliveries_due` (next_at, id) where pending: the due ones, soonest first, and
//!     when the next is due, without reading the done ones.
//!   - `deliveries_by_created` (created, id): the deliveries page, newest first.
//!   - `deliveries_done` (created, id) where not pending: keeping the done ones to
//!     `MAX_DONE_DELIVERIES`, oldest going first.

pub(super) const SQL: &str = r#"
CREATE TABLE alarm_rules (
    id text COLLATE "C" PRIMARY KEY,
    doc jsonb NOT NULL
);
CREATE TABLE notification_channels (
    id text COLLATE "C" PRIMARY KEY,
    doc jsonb NOT NULL
);
CREATE TABLE alarm_tracks (
    rule_id text COLLATE "C" NOT NULL,
    device text COLLATE "C" NOT NULL,
    alarm_id text COLLATE "C",
    doc jsonb NOT NULL,
    PRIMARY KEY (rule_id, device)
);
CREATE INDEX alarm_tracks_alarm ON alarm_tracks (alarm_id) WHERE alarm_id IS NOT NULL;
CREATE TABLE alarms (
    id text COLLATE "C" PRIMARY KEY,
    device text COLLATE "C" NOT NULL,
    rule_id text COLLATE "C" NOT NULL,
    severity text NOT NULL,
    active boolean NOT NULL,
    acked boolean NOT NULL,
    started_at bigint NOT NULL,
    end_at bigint NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX alarms_by_start ON alarms (started_at, id);
CREATE INDEX alarms_by_end ON alarms (end_at, id);
CREATE INDEX alarms_by_device ON alarms (device, started_at, id);
CREATE INDEX alarms_active ON alarms (device) WHERE active;
CREATE TABLE alarm_log (
    alarm_id text COLLATE "C" NOT NULL,
    n bigint GENERATED ALWAYS AS IDENTITY,
    doc jsonb NOT NULL,
    PRIMARY KEY (alarm_id, n)
);
CREATE TABLE notification_deliveries (
    id text COLLATE "C" PRIMARY KEY,
    state text NOT NULL,
    created bigint NOT NULL,
    attempts bigint NOT NULL,
    next_at bigint NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX deliveries_due ON notification_deliveries (next_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_by_created ON notification_deliveries (created, id);
CREATE INDEX deliveries_done ON notification_deliveries (created, id) WHERE state <> 'pending';
"#;
