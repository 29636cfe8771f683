//! The fleet query form: a plain GET form to `/fleet`, so a filtered view is an address (and
//! works without JavaScript), with the language's fields one click away.

use leptos::prelude::*;
use telemetry::query::MAX_QUERY_LEN;

use crate::logic::fleet::FleetView;

#[component]
pub fn SearchForm(view: Memo<FleetView>) -> impl IntoView {
    // As rendered, and as the address changes after (a chip, a heading, the pager). Not bound
    // when hydrating: what someone typed before the page came alive stays.
    let q = view.get_untracked().q;
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::watch(
        move || view.with(|v| v.q.clone()),
        move |q, _, _| {
            if let Some(el) = input.get_untracked() {
                el.set_value(q);
            }
        },
        false,
    );
    let sort =
        move || view.with(|v| (v.sort != telemetry::fleet::Sort::default()).then(|| v.sort.as_string()));
    view! {
        <form class="fleet-search" method="get" action="/fleet" role="search">
            <label class="field">
                <span class="visually-hidden">"Fleet query"</span>
                <input
                    type="search"
                    name="q"
                    value=q
                    node_ref=input
                    maxlength=MAX_QUERY_LEN.to_string()
                    placeholder="tag:site=greenhouse fw!=1.4.2 status:stale name:kitchen*"
                    autocomplete="off"
                    spellcheck="false"
                />
            </label>
            {move || sort().map(|s| view! { <input type="hidden" name="sort" value=s/> })}
            <button class="button primary" type="submit">"Filter"</button>
            <a class="clear-filters" href="/fleet">"All devices"</a>
            <details class="query-help">
                <summary>"How to filter"</summary>
                <ul>
                    <li><code>"tag:site=greenhouse"</code>" a tag; "<code>"tag:site"</code>" has the tag"</li>
                    <li><code>"status:stale"</code>" online, stale, offline or refused"</li>
                    <li><code>"name:kitchen*"</code>", "<code>"id:esp-*"</code>" names and ids, "<code>"*"</code>" for any run of characters, case ignored"</li>
                    <li><code>"fw:1.4.2"</code>", "<code>"attr:model=c3"</code>" what devices report about themselves"</li>
                    <li><code>"rssi<-80"</code>", "<code>"signal:weak"</code>", "<code>"battery:low"</code>", "<code>"metric:temp>30"</code>" readings"</li>
                    <li><code>"seen>1h"</code>" quiet for over an hour; "<code>"group:north"</code>" a saved group"</li>
                    <li>"Terms must all hold; "<code>"a OR b"</code>" either; "<code>"-term"</code>" or "<code>"x!=y"</code>" not; parentheses group; a plain word matches ids and names."</li>
                </ul>
            </details>
        </form>
    }
}
