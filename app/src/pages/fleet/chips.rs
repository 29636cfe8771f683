//! What the matching devices are, at a glance: how many per status, per firmware version, with
//! a weak signal and with a low battery. Each chip is a link narrowing the query to them.

use leptos::prelude::*;
use telemetry::fleet::Summary;

use crate::logic::fleet::{FleetView, term};

#[component]
pub fn Chips(summary: Summary, view: FleetView) -> impl IntoView {
    let chip = |text: String, narrowing: Option<String>, kind: &'static str| {
        let href = narrowing.map(|t| view.narrowed(&t).href());
        match href {
            Some(href) => view! { <a class="chip" data-chip=kind href=href>{text}</a> }.into_any(),
            None => view! { <span class="chip" data-chip=kind>{text}</span> }.into_any(),
        }
    };
    let mut chips = Vec::new();
    for (n, status) in [
        (summary.online, "online"),
        (summary.stale, "stale"),
        (summary.offline, "offline"),
        (summary.refused, "refused"),
    ] {
        if n > 0 {
            chips.push(chip(format!("{n} {status}"), Some(format!("status:{status}")), status));
        }
    }
    for (fw, n) in &summary.firmware {
        chips.push(chip(format!("{n} on {fw}"), term("fw", fw), "firmware"));
    }
    if summary.weak_signal > 0 {
        chips.push(chip(
            format!("{} weak signal", summary.weak_signal),
            Some("signal:weak".into()),
            "weak-signal",
        ));
    }
    if summary.low_battery > 0 {
        chips.push(chip(
            format!("{} low battery", summary.low_battery),
            Some("battery:low".into()),
            "low-battery",
        ));
    }
    view! { <nav class="chips" aria-label="Summary">{chips}</nav> }
}
