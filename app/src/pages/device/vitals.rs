//! A device's well-known metrics among its facts, read by name and banded
//! ([`telemetry::fleet`]): signal (`rssi`, good, fair or weak), battery (`battery_pct`,
//! `battery_v` or `battery`; low under 20 % or 3.4 V), uptime (`uptime_s`) and free heap
//! (`heap_free`). Each only when the device reports it.

use leptos::prelude::*;
use telemetry::DeviceSummary;
use telemetry::fleet::{self, BatteryLevel};

use crate::logic::format;

/// One fact: its name, the value as read, and its band if it has one.
fn vital(kind: &'static str, name: &'static str, value: String, band: Option<&'static str>) -> impl IntoView {
    let text = match band {
        Some(band) => format!("{value} · {band}"),
        None => value,
    };
    view! {
        <div class="vital" data-vital=kind data-band=band>
            <dt>{name}</dt>
            <dd>{text}</dd>
        </div>
    }
}

/// The facts, for a `<dl class="facts">`.
#[component]
pub fn Vitals(device: Memo<Option<DeviceSummary>>) -> impl IntoView {
    move || {
        device.with(|d| {
            let Some(d) = d.as_ref() else { return Vec::new() };
            let mut out = Vec::new();
            if let (Some(dbm), Some(signal)) = (d.metric("rssi"), fleet::signal(d)) {
                let value = format!("{:.0} dBm", dbm.value);
                out.push(vital("signal", "Signal", value, Some(signal.label())).into_any());
            }
            if let Some(level) = fleet::battery_level(d) {
                let value = match level {
                    BatteryLevel::Percent(p) => format!("{p:.0} %"),
                    BatteryLevel::Volts(v) => format!("{v:.2} V"),
                };
                out.push(vital("battery", "Battery", value, Some(level.band().label())).into_any());
            }
            if let Some(secs) = fleet::uptime_s(d) {
                out.push(vital("uptime", "Uptime", format::uptime(secs), None).into_any());
            }
            if let Some(heap) = d.metric("heap_free") {
                out.push(vital("heap", "Free heap", format::bytes(heap.value), None).into_any());
            }
            out
        })
    }
}
