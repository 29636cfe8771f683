//! An alarm's log as a timeline (what happened, when, with which reading, by whom), and its
//! comments.

use leptos::prelude::*;
use telemetry::alarm::{Transition, TransitionKind};

use super::labels::SeverityLabel;
use crate::logic::{alarms, format};

/// Every entry but comments, newest first.
#[component]
pub fn Timeline(
    #[prop(into)] log: Signal<Vec<Transition>>,
    #[prop(into)] local: Signal<bool>,
) -> impl IntoView {
    let entries = move || {
        log.with(|log| {
            log.iter().rev().filter(|t| t.kind != TransitionKind::Commented).cloned().collect::<Vec<_>>()
        })
    };
    view! {
        <section class="alarm-timeline" aria-labelledby="timeline-heading">
            <h2 id="timeline-heading">"Timeline"</h2>
            <ol class="timeline">
                {move || entries().into_iter().map(|t| view! { <Entry t local/> }).collect_view()}
            </ol>
        </section>
    }
}

#[component]
fn Entry(t: Transition, local: Signal<bool>) -> impl IntoView {
    let at = t.at;
    let kind =
        serde_json::to_value(t.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let severity = matches!(
        t.kind,
        TransitionKind::Fired
            | TransitionKind::Reopened
            | TransitionKind::Escalated
            | TransitionKind::Deescalated
    )
    .then_some(t.severity);
    view! {
        <li data-kind=kind>
            <time datetime=format::iso(at)>{move || format::datetime(at, local.get(), format::Shown::Second)}</time>
            " "
            <span class="what">{alarms::transition_label(t.kind, t.by.as_deref())}</span>
            {severity.map(|severity| view! { " " <SeverityLabel severity/> })}
            {t.value.map(|v| view! { <span class="value">{format!(" at {}", format::value(v))}</span> })}
            {t.by.map(|by| view! { <span class="by">" by " {by}</span> })}
        </li>
    }
}

/// The comments, oldest first.
#[component]
pub fn Comments(
    #[prop(into)] log: Signal<Vec<Transition>>,
    #[prop(into)] local: Signal<bool>,
) -> impl IntoView {
    let comments = move || {
        log.with(|log| {
            log.iter().filter(|t| t.kind == TransitionKind::Commented).cloned().collect::<Vec<_>>()
        })
    };
    view! {
        {move || {
            let comments = comments();
            if comments.is_empty() {
                return view! { <p class="muted">"No comments yet."</p> }.into_any();
            }
            view! {
                <ul class="comments">
                    {comments
                        .into_iter()
                        .map(|c| {
                            let at = c.at;
                            view! {
                                <li>
                                    <p class="comment-head">
                                        <strong>{c.by.unwrap_or_default()}</strong>" · "
                                        <time datetime=format::iso(at)>{move || format::date_time(at, local.get())}</time>
                                    </p>
                                    <p class="comment-text">{c.text.unwrap_or_default()}</p>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            }
            .into_any()
        }}
    }
}
