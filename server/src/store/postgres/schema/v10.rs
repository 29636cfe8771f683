//! Version 10: what a lease's work has done, kept on its row ([`super::super::owned`]): the
//! change-log number its holder has worked through (`cursor`, so a node taking the lease
//! over goes on from there, neither skipping nor repeating a change), and how many times
//! others changed what the work depends on (`generation`: an alarm acknowledged or a rule
//! saved on another node; the holder reads the state again when it moved).
//!
//! The alarm engine's lease starts at the newest change when this version is applied: on a
//! new database that is the log's beginning, so nothing stored before the first node took
//! the lease goes unjudged; on an older one, its history is not judged again (that would
//! fire and clear its past alarms anew, notifying for each).

pub(super) const SQL: &str = "
ALTER TABLE leases ADD COLUMN cursor bigint, ADD COLUMN generation bigint NOT NULL DEFAULT 0;
INSERT INTO leases (name, holder, epoch, expires_at, cursor)
    SELECT 'alarms', '', 0, '-infinity', value FROM counters WHERE name = 'change_seq'
    ON CONFLICT (name) DO UPDATE SET cursor = EXCLUDED.cursor;
";
