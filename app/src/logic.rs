//! Pure code, tested natively: no signals, no browser. How values are shown
//! ([`format`](mod@format)), where widgets go ([`grid`]), how a series takes live readings
//! ([`series`]), how charts are laid out ([`scale`], [`chart_data`]), and alarms as pages show
//! them ([`alarms`]: filters, the badge's count, live changes; [`rule_form`]: the rule editor;
//! [`marks`]: alarms marked on charts), the fleet view's addresses ([`fleet`]), and a device's
//! commands ([`commands`]), and what a dashboard control shows ([`control`]) and how its
//! settings read ([`control_form`]), and a device's desired state in words ([`desired`]).

pub mod alarms;
pub mod chart_data;
pub mod commands;
pub mod control;
pub mod control_form;
pub mod desired;
pub mod fleet;
pub mod format;
pub mod grid;
pub mod marks;
pub mod rule_form;
pub mod scale;
pub mod series;
