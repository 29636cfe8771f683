//! Version 10: what a lease's work has done, kept on its row ([`super::super::owned`]): the
//! change-log number its holder has worked through (`cursor`, so a node taking the lease
//! over goes on from there, neither skipping nor repeating a change), and how many times
//! others changed what the work depends on (`generation`: an alarm acknowledged or a rule
//! saved on another node; the holder reads the state again when it moved).

pub(super) const SQL: &str = "
ALTER TABLE leases ADD COLUMN cursor bigint, ADD COLUMN generation bigint NOT NULL DEFAULT 0;
";
