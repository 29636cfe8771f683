//! Reusable components, one per file, and the data hooks they share: [`use_series`] (charts and
//! stats) and [`use_marks`] (what charts and gauges mark for alarms).

pub mod alarm_list;
pub mod chart_widget;
pub mod confirm_submit;
pub mod control;
pub mod control_config;
pub mod control_inputs;
pub mod device_card;
pub mod gauge;
pub mod history_chart;
pub mod icon;
pub mod interactive_chart;
pub mod line_chart;
pub mod range_picker;
pub mod refused_note;
pub mod stat;
pub mod status_list;
pub mod table;
pub mod use_marks;
pub mod use_series;
pub mod widget_config;
