//! Reusable display components, one per file.

pub mod chart_data;
pub mod chart_widget;
pub mod device_card;
pub mod gauge;
pub mod history_chart;
pub mod interactive_chart;
pub mod line_chart;
pub mod range_picker;
pub mod refused_note;
pub mod scale;
pub mod stat;
pub mod status_list;
pub mod table;
pub mod widget_config;
