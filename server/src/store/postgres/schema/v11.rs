//! Version 11: the alarm engine's work is split by device into partitions, each a lease
//! (`alarms/0` to `alarms/7`, [`super::super::leases::PARTITIONS`]) that one node holds,
//! so the rules' evaluation spreads over the nodes and a node's death moves only its share.
//! Each partition starts where the single `alarms` lease had got to (the newest change when
//! it never ran), so nothing is judged twice or skipped.
//!
//! The single `alarms` lease is retired, and so is the single `commands` lease, commands being
//! dispatched by partition too (`commands/<n>`, made when first taken: they keep no cursor).
//! Retired, not deleted: a node of the version before, still running during the upgrade, can
//! never take them again (it would evaluate the whole log again, or send every command beside
//! the partitions' holders), and its work under them is refused (the epoch moved on).

pub(super) const SQL: &str = "
INSERT INTO leases (name, holder, epoch, expires_at, cursor)
    SELECT 'alarms/' || n, '', 0, '-infinity',
           coalesce((SELECT cursor FROM leases WHERE name = 'alarms'),
                    (SELECT value FROM counters WHERE name = 'change_seq'))
    FROM generate_series(0, 7) AS n
    ON CONFLICT (name) DO NOTHING;
INSERT INTO leases AS l (name, holder, epoch, expires_at)
    VALUES ('alarms', 'retired', 1, 'infinity'), ('commands', 'retired', 1, 'infinity')
    ON CONFLICT (name) DO UPDATE SET holder = 'retired', epoch = l.epoch + 1, expires_at = 'infinity';
";
