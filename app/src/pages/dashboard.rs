//! A dashboard: widgets on a 12-column grid (6 on medium screens, 1 on phones), a shared time
//! range, and an edit mode where widgets are added from a palette, configured, dragged by their
//! header, resized by their corner, or moved with the keyboard (arrows move, shift+arrows
//! resize, Enter configures). The layout is saved when a widget is dropped.
//!
//! Split by what a person sees: [`editor`] (head, palette, settings dialog), [`widget_frame`]
//! (a widget's card, its handles and keys), [`grid_binding`] (the layout shown at the window's
//! breakpoint and the preview while dragging) and [`saving`].

mod editor;
mod grid_binding;
mod saving;
mod widget_frame;

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use telemetry::dashboard::Dashboard;

use self::editor::{BoardHead, ConfigDialog, Editor, Palette};
use self::widget_frame::WidgetFrame;
use crate::api::{DeviceList, get_dashboard, list_devices, list_groups};
use crate::state::board::Board;
use crate::state::live::{Live, merge};
use crate::widgets::range_picker::from_query;
use crate::widgets::use_marks::{fetch_rules, provide_rules};

#[component]
pub fn DashboardPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let dashboard = Resource::new(id, get_dashboard);
    let devices = Resource::new(|| (), |_| list_devices());
    // Widgets' fleet queries may name groups.
    let groups = Resource::new(|| (), |_| list_groups());
    let rules = fetch_rules();
    view! {
        <section class="dashboard-page">
            <Transition fallback=|| view! { <p class="loading">"Loading dashboard…"</p> }>
                {move || Suspend::new(async move {
                    match (dashboard.await, devices.await) {
                        (Ok(Some(dashboard)), Ok(list)) => {
                            let groups = groups.await.unwrap_or_default();
                            provide_rules(rules.await);
                            view! { <BoardView dashboard list groups/> }.into_any()
                        }
                        (Ok(None), _) => view! {
                            <div class="empty">
                                <h2>"No such dashboard"</h2>
                                <p><a href="/dashboards">"All dashboards"</a></p>
                            </div>
                        }
                            .into_any(),
                        (Err(e), _) | (_, Err(e)) => {
                            view! { <p class="error" role="alert">"Cannot load the dashboard: " {e.to_string()}</p> }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

/// One dashboard with its devices: provides the [`Board`] its widgets share, then lays out the
/// head, the palette, the grid of widget frames and the settings dialog.
#[component]
fn BoardView(dashboard: Dashboard, list: DeviceList, groups: Vec<telemetry::query::Group>) -> impl IntoView {
    let live = expect_context::<Live>();
    let query = use_query_map();
    live.seed(list.last_seq, &list.devices);
    let base = list.devices;
    let devices = Memo::new(move |_| live.devices.with(|l| merge(&base, l)));
    let dashboard = RwSignal::new(dashboard);
    let range = Signal::derive(move || {
        let q = query.read();
        from_query(q.get("range"), q.get("from"), q.get("to")).unwrap_or_else(|| dashboard.with(|d| d.range))
    });
    // The controls' devices' desired and reported state is kept while this dashboard shows:
    // watched before its widgets are made (they hand over what they read first), and again as
    // its widgets change.
    let driven = move || {
        dashboard.with(|d| d.widgets.iter().filter_map(|w| w.control_device().map(str::to_owned)).collect())
    };
    live.shadows.watch(untrack(driven));
    Effect::new(move |_| live.shadows.watch(driven()));
    // Only a browser leaves a page. A server render's `Live` goes with the request, maybe
    // before this page (a browser that went away): touching it then would panic, and a panic
    // while the render unwinds from another aborts the server.
    #[cfg(feature = "hydrate")]
    on_cleanup(move || live.shadows.watch(Default::default()));
    let board = Board {
        id: StoredValue::new(dashboard.with_untracked(|d| d.id.clone())),
        devices,
        now: Signal::derive(move || live.now.get().unwrap_or(list.server_time)),
        local: Signal::derive(move || live.hydrated()),
        offline: Signal::derive(move || live.offline()),
        range,
        groups: StoredValue::new(groups),
    };
    provide_context(board);

    let editor = Editor::new(dashboard);
    // Browser only: edit mode from the URL (a new dashboard opens so), the cached copy.
    Effect::new(move |_| {
        if query.read().get("edit").as_deref() == Some("1") {
            editor.editing.set(true);
        }
    });
    #[cfg(feature = "hydrate")]
    saving::show_cached_copy(dashboard);

    view! {
        <BoardHead editor board/>
        <Palette editor board/>
        <Show when=move || dashboard.with(|d| d.widgets.is_empty())>
            <div class="empty">
                <h2>"This dashboard is empty"</h2>
                <p>"Choose Edit, then add widgets from the palette."</p>
            </div>
        </Show>
        <div class="board-grid" class:editing=move || editor.editing.get() node_ref=editor.layouts.grid>
            <For
                each=move || dashboard.with(|d| d.widgets.clone())
                key=|w| serde_json::to_string(w).unwrap_or_default()
                let:widget
            >
                <WidgetFrame editor widget/>
            </For>
        </div>
        <ConfigDialog editor/>
    }
}
