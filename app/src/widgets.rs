//! Reusable display components, one per file.

pub mod device_card;
pub mod history_chart;
pub mod line_chart;
pub mod scale;
