//! The top bar's alarm badge: a bell with the number of alarms that need someone (active,
//! unacknowledged, not shelved), linking to that list. The server renders it with its count,
//! so it is right before the live feed connects and without JavaScript; then it follows the
//! feed (`Live::alarms`), and the clock, since shelves run out.

use leptos::prelude::*;

use crate::api::alarm_badge;
use crate::logic::alarms;
use crate::state::live::Live;
use crate::widgets::icon::{Icon, Lucide};

#[component]
pub fn AlarmBadge() -> impl IntoView {
    let live = expect_context::<Live>();
    let seed = Resource::new(|| (), |_| alarm_badge());
    // Once the page is live, the feed's state takes over from the server's first answer.
    let seeded = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(Ok(s)) = seed.get()
            && !seeded.get_untracked()
        {
            live.seed_alarms(s.last_seq, s.alarms, s.more);
            seeded.set(true);
        }
    });
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                // Strangers (the sign-in pages) get no badge.
                let Ok(s) = seed.await else { return ().into_any() };
                let (server_time, more) = (s.server_time, s.more);
                let first = alarms::needing(&s.alarms, server_time);
                let count = Memo::new(move |_| {
                    if seeded.get() {
                        let now = live.now.get().unwrap_or(server_time);
                        live.alarms.with(|a| alarms::needing(a.values(), now))
                    } else {
                        first
                    }
                });
                let label = move || match count.get() {
                    0 => "Alarms: none need attention".to_owned(),
                    1 => "Alarms: 1 needs attention".to_owned(),
                    n => format!("Alarms: {} need attention", alarms::badge_text(n, more)),
                };
                view! {
                    <a
                        class="alarm-badge"
                        href="/alarms?status=active_unack"
                        data-count=move || count.get()
                        data-state={move || if count.get() > 0 { "alarming" } else { "quiet" }}
                        title=label
                        aria-label=label
                    >
                        <Icon icon=Lucide::Bell/>
                        <Show when={move || count.get() > 0}>
                            <span class="count" aria-hidden="true">{move || alarms::badge_text(count.get(), more)}</span>
                        </Show>
                    </a>
                }
                .into_any()
            })}
        </Suspense>
    }
}
