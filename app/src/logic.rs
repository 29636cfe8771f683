//! Pure code, tested natively: no signals, no browser. How values are shown
//! ([`format`](mod@format)), where widgets go ([`grid`]), how a series takes live readings
//! ([`series`]) and how charts are laid out ([`scale`], [`chart_data`]).

pub mod chart_data;
pub mod format;
pub mod grid;
pub mod scale;
pub mod series;
