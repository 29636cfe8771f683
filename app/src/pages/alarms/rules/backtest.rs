//! "What would this rule have done over the last 24 h / 7 d": the rule as it stands in the
//! editor (saved or not) replayed over stored readings, answered with the alarms it would
//! have opened, the notifications they would have sent, and each episode. Needs JavaScript:
//! the answer is shown on the page. A refusal (no history, a rule that does not read, a
//! server that cannot backtest yet) is shown as it came.

use leptos::prelude::*;
use telemetry::alarm::Backtest;

use crate::api::BacktestRule;
use crate::logic::format;
use crate::pages::alarms::labels::SeverityLabel;
use crate::state::live::Live;

#[component]
pub fn BacktestButtons(form: NodeRef<leptos::html::Form>) -> impl IntoView {
    let live = expect_context::<Live>();
    let hydrated = move || live.hydrated();
    let test = ServerAction::<BacktestRule>::new();
    let run = move |window_secs: u64| {
        #[cfg(feature = "hydrate")]
        {
            use leptos::form::FromFormData;
            let Some(el) = form.get_untracked() else { return };
            let Ok(data) = web_sys::FormData::new_with_form(&el) else { return };
            let _ = data.append_with_str("window_secs", &window_secs.to_string());
            match BacktestRule::from_form_data(&data) {
                Ok(args) => {
                    test.dispatch(args);
                }
                Err(e) => test.value().set(Some(Err(crate::api::ApiError::BadRequest(e.to_string())))),
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (form, window_secs);
    };
    let off = move || !hydrated() || test.pending().get();
    view! {
        <div class="backtest">
            <h3>"What would this rule have done?"</h3>
            <p class="hint">"Replays the stored readings through the rule as it stands in the form above, saved or not."</p>
            <div class="backtest-buttons">
                <button type="button" class="button" disabled=off on:click=move |_| run(86_400)>"Try it on the last 24 h"</button>
                <button type="button" class="button" disabled=off on:click=move |_| run(7 * 86_400)>"Try it on the last 7 d"</button>
            </div>
            {move || (!hydrated()).then(|| view! { <p class="hint needs-js">"Trying a rule needs JavaScript: the answer is shown on this page."</p> })}
            {move || test.pending().get().then(|| view! { <p class="loading" role="status">"Replaying the stored readings…"</p> })}
            {move || {
                if test.pending().get() {
                    return None;
                }
                test.value().get().map(|result| match result {
                    Ok(answer) => view! { <BacktestResult answer/> }.into_any(),
                    Err(e) => view! { <p class="error backtest-error" role="alert">"Cannot try the rule: " {e.to_string()}</p> }.into_any(),
                })
            }}
        </div>
    }
}

#[component]
fn BacktestResult(answer: Backtest) -> impl IntoView {
    let live = expect_context::<Live>();
    let local = move || live.hydrated();
    let Backtest { from, to, devices, readings, opened, notifications, episodes, limited } = answer;
    let listed = episodes.len();
    let plural =
        |n: u64, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
    view! {
        <div class="backtest-result" role="status">
            <p class="backtest-summary">
                <strong class="opened">{plural(opened.into(), "alarm", "alarms")}</strong>
                " would have opened, sending "
                <strong class="notifications">{plural(notifications.into(), "notification", "notifications")}</strong>
                {format!(
                    ", from {} of {} between {} and {}.",
                    plural(readings, "reading", "readings"),
                    plural(devices.into(), "device", "devices"),
                    format::date_time(from, local()),
                    format::date_time(to, local()),
                )}
            </p>
            {limited.map(|why| view! { <p class="note backtest-limited">"Not all of it: " {why}</p> })}
            {(listed > 0).then(|| view! {
                <table class="admin-table episodes">
                    <thead><tr><th>"Device"</th><th>"Severity"</th><th>"Fired"</th><th>"Cleared"</th><th>"Value"</th></tr></thead>
                    <tbody>
                        {episodes
                            .into_iter()
                            .map(|e| view! {
                                <tr>
                                    <td><code class="device-id">{e.device}</code></td>
                                    <td><SeverityLabel severity=e.severity/></td>
                                    <td>{format::date_time(e.fired_at, local())}</td>
                                    <td>{e.cleared_at.map_or_else(|| "still active".to_owned(), |t| format::date_time(t, local()))}</td>
                                    <td>{e.value.map(format::value).unwrap_or_default()}</td>
                                </tr>
                            })
                            .collect_view()}
                    </tbody>
                </table>
            })}
            {(opened as usize > listed).then(|| view! { <p class="hint">{format!("The newest {listed} are listed.")}</p> })}
        </div>
    }
}
