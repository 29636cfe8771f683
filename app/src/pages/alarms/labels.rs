//! The small labels every alarm view shares: severity, status (with shelved and flapping), an
//! alarm's value.

use leptos::prelude::*;
use telemetry::Millis;
use telemetry::alarm::{Alarm, Severity};

use crate::logic::{alarms, format};

#[component]
pub fn SeverityLabel(severity: Severity) -> impl IntoView {
    view! { <span class="severity" data-severity=severity.as_str()>{severity.as_str()}</span> }
}

/// "Active, unacknowledged", and whether it is shelved (until when) or flapping.
#[component]
pub fn StatusLabel(alarm: Alarm, now: Millis, #[prop(into)] local: Signal<bool>) -> impl IntoView {
    let status = alarm.status();
    let shelved = alarm.shelved_until.filter(|_| alarm.shelved(now));
    view! {
        <span class="alarm-status" data-status=status.as_str()>{alarms::status_label(status)}</span>
        {shelved.map(|until| view! {
            <span class="alarm-flag shelved">
                {move || format!("shelved until {}", format::datetime(until, local.get(), format::Shown::Minute))}
            </span>
        })}
        {alarm.flapping.then(|| view! { <span class="alarm-flag flapping">"flapping"</span> })}
    }
}

/// The reading that opened it, and the latest breaching one if it differs.
pub fn value_text(alarm: &Alarm) -> String {
    match (alarm.value, alarm.last_value) {
        (Some(v), Some(last)) if last != v => {
            format!("{} (latest {})", format::value(v), format::value(last))
        }
        (Some(v), _) => format::value(v),
        (None, Some(last)) => format::value(last),
        (None, None) => "–".to_owned(),
    }
}
