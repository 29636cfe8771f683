//! A dashboard: widgets on a 12-column grid (6 on medium screens, 1 on phones), a shared time
//! range, and an edit mode where widgets are added from a palette, configured, dragged by their
//! header, resized by their corner, or moved with the keyboard (arrows move, shift+arrows
//! resize, Enter configures). The layout is saved when a widget is dropped.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use telemetry::dashboard::{Breakpoint, Dashboard, Placement, Widget, WidgetKind};

use crate::api::{DeviceList, create_dashboard, get_dashboard, list_devices, save_dashboard};
use crate::logic::grid;
use crate::state::board::Board;
use crate::state::live::{Live, merge};
use crate::widgets::chart_widget::ChartWidget;
use crate::widgets::gauge::Gauge;
use crate::widgets::range_picker::{RangePicker, from_query};
use crate::widgets::stat::Stat;
use crate::widgets::status_list::StatusList;
use crate::widgets::table::Table;
use crate::widgets::widget_config::WidgetConfig;

/// Grid row height and gap in CSS pixels (as in the stylesheet).
const ROW_PX: f64 = 72.0;
const GAP_PX: f64 = 12.0;

#[derive(Debug, Clone, PartialEq)]
enum SaveState {
    Idle,
    Saving,
    Saved,
    Failed(String),
}

/// A drag or resize in progress.
#[derive(Debug, Clone)]
struct Drag {
    widget: String,
    resize: bool,
    x0: f64,
    y0: f64,
    start: Placement,
    cell_w: f64,
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let dashboard = Resource::new(id, get_dashboard);
    let devices = Resource::new(|| (), |_| list_devices());
    view! {
        <section class="dashboard-page">
            <Transition fallback=|| view! { <p class="loading">"Loading dashboard…"</p> }>
                {move || Suspend::new(async move {
                    match (dashboard.await, devices.await) {
                        (Ok(Some(dashboard)), Ok(list)) => view! { <BoardView dashboard list/> }.into_any(),
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

/// The CSS grid position of a placement: `column-start / span width` and the same for rows.
fn area(p: Option<&Placement>) -> (String, String) {
    match p {
        Some(p) => (format!("{} / span {}", p.x + 1, p.w), format!("{} / span {}", p.y + 1, p.h)),
        None => ("auto".into(), "auto".into()),
    }
}

#[component]
fn BoardView(dashboard: Dashboard, list: DeviceList) -> impl IntoView {
    let live = expect_context::<Live>();
    let query = use_query_map();
    let navigate = use_navigate();
    live.seed(list.last_seq, &list.devices);
    let base = list.devices;
    let devices = Memo::new(move |_| live.devices.with(|l| merge(&base, l)));
    let state = RwSignal::new(dashboard);
    let range = Signal::derive(move || {
        let q = query.read();
        from_query(q.get("range"), q.get("from"), q.get("to")).unwrap_or_else(|| state.with(|d| d.range))
    });
    let board = Board {
        devices,
        now: Signal::derive(move || live.now.get().unwrap_or(list.server_time)),
        local: Signal::derive(move || live.hydrated()),
        offline: Signal::derive(move || live.offline()),
        range,
    };
    provide_context(board);

    let editing = RwSignal::new(false);
    let bp = RwSignal::new(Breakpoint::Wide);
    let preview: RwSignal<Option<Vec<Placement>>> = RwSignal::new(None);
    let configuring: RwSignal<Option<String>> = RwSignal::new(None);
    // A widget just added from the palette: cancelling its first configuration removes it.
    let fresh: RwSignal<Option<String>> = RwSignal::new(None);
    let selected: RwSignal<Option<String>> = RwSignal::new(None);
    let save_state = RwSignal::new(SaveState::Idle);
    let drag: StoredValue<Option<Drag>> = StoredValue::new(None);
    let grid_ref = NodeRef::<leptos::html::Div>::new();

    // Browser only: edit mode from the URL, the breakpoint from the window, the cached copy.
    Effect::new(move |_| {
        if query.read().get("edit").as_deref() == Some("1") {
            editing.set(true);
        }
    });
    #[cfg(feature = "hydrate")]
    {
        let width = || {
            web_sys::window().and_then(|w| w.inner_width().ok()).and_then(|w| w.as_f64()).unwrap_or(1280.0)
        };
        Effect::new(move |_| bp.set(Breakpoint::for_width(width())));
        let handle =
            window_event_listener(leptos::ev::resize, move |_| bp.set(Breakpoint::for_width(width())));
        on_cleanup(move || handle.remove());
        Effect::new(move |_| {
            if let Some(cached) = crate::browser::offline::cached_dashboard(&state.get_untracked().id)
                && cached.updated > state.get_untracked().updated
            {
                state.set(cached);
            }
        });
    }

    // One save in flight at a time: changes made meanwhile go out, as the latest state, when it
    // returns. So saves never land out of order, and "Saved" means the last change is stored.
    let in_flight = StoredValue::new(false);
    let changed_since = StoredValue::new(false);
    let save = move || {
        save_state.set(SaveState::Saving);
        if in_flight.get_value() {
            changed_since.set_value(true);
            return;
        }
        in_flight.set_value(true);
        leptos::task::spawn_local(async move {
            loop {
                changed_since.set_value(false);
                match save_dashboard(state.get_untracked()).await {
                    Ok(saved) => {
                        #[cfg(feature = "hydrate")]
                        crate::browser::offline::cache_dashboard(&saved);
                        state.update(|d| d.updated = saved.updated);
                    }
                    Err(e) => {
                        save_state.set(SaveState::Failed(e.to_string()));
                        break;
                    }
                }
                if !changed_since.get_value() {
                    save_state.set(SaveState::Saved);
                    break;
                }
            }
            in_flight.set_value(false);
        });
    };

    // The layout for a breakpoint, derived from the wide one until someone arranges it.
    let layout_for = move |bp: Breakpoint| {
        state.with(|d| {
            let own = d.layouts.get(bp);
            if own.is_empty() && bp != Breakpoint::Wide {
                grid::derive(&d.layouts.wide, bp)
            } else {
                own.clone()
            }
        })
    };
    // Applies an edit to the current breakpoint's layout, keeps it, saves.
    let edit_layout = move |f: &dyn Fn(&mut Vec<Placement>, u32)| {
        let b = bp.get_untracked();
        let mut layout = layout_for(b);
        f(&mut layout, b.cols());
        state.update(|d| *d.layouts.get_mut(b) = layout);
        save();
    };

    let add_widget = move |kind: WidgetKind| {
        let metrics = untrack(|| board.all_metrics());
        let wanted = match kind {
            WidgetKind::StatusList => vec![],
            WidgetKind::Table => metrics.iter().take(3).cloned().collect(),
            _ => metrics.first().cloned().into_iter().collect(),
        };
        // The first `<kind>-<n>` this dashboard does not use yet.
        let prefix = kind.key().replace('_', "-");
        let id = state.with_untracked(|d| {
            (1..)
                .map(|n| format!("{prefix}-{n}"))
                .find(|id| d.widgets.iter().all(|w| &w.id != id))
                .expect("a free id")
        });
        let widget = Widget {
            id,
            kind,
            title: kind.label().into(),
            devices: vec![],
            metrics: wanted,
            unit: None,
            decimals: None,
            min: None,
            max: None,
            thresholds: vec![],
            range: None,
        };
        let (w, h) = kind.default_size();
        state.update(|d| {
            for b in Breakpoint::ALL {
                let l = d.layouts.get_mut(b);
                // An empty medium or phone layout is derived from the wide one: leave it so.
                if b == Breakpoint::Wide || !l.is_empty() {
                    let width = if b == Breakpoint::Wide { w } else { (w * b.cols()).div_ceil(12) };
                    grid::add(l, &widget.id, width, h, b.cols());
                }
            }
            d.widgets.push(widget.clone());
        });
        configuring.set(Some(widget.id.clone()));
        fresh.set(Some(widget.id.clone()));
        selected.set(Some(widget.id));
        save();
    };
    let remove_widget = move |id: String| {
        state.update(|d| {
            d.widgets.retain(|w| w.id != id);
            for b in Breakpoint::ALL {
                grid::remove(d.layouts.get_mut(b), &id);
            }
        });
        save();
    };

    let start = move |e: leptos::ev::PointerEvent, widget: String, resize: bool| {
        if !editing.get_untracked() || e.button() != 0 {
            return;
        }
        e.prevent_default();
        let Some(p) = layout_for(bp.get_untracked()).into_iter().find(|p| p.widget == widget) else { return };
        let width = grid_ref.get_untracked().map(|g| g.client_width() as f64).unwrap_or(1200.0);
        let cols = f64::from(bp.get_untracked().cols());
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            if let Some(target) = e.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
                let _ = target.set_pointer_capture(e.pointer_id());
            }
        }
        selected.set(Some(widget.clone()));
        drag.set_value(Some(Drag {
            widget,
            resize,
            x0: f64::from(e.client_x()),
            y0: f64::from(e.client_y()),
            start: p,
            cell_w: (width + GAP_PX) / cols,
        }));
    };
    let moving = move |e: leptos::ev::PointerEvent| {
        let Some(d) = drag.get_value() else { return };
        let dx = ((f64::from(e.client_x()) - d.x0) / d.cell_w).round() as i64;
        let dy = ((f64::from(e.client_y()) - d.y0) / (ROW_PX + GAP_PX)).round() as i64;
        let b = bp.get_untracked();
        let mut layout = layout_for(b);
        if d.resize {
            grid::resize(
                &mut layout,
                &d.widget,
                i64::from(d.start.w) + dx,
                i64::from(d.start.h) + dy,
                b.cols(),
            );
        } else {
            grid::move_to(
                &mut layout,
                &d.widget,
                i64::from(d.start.x) + dx,
                i64::from(d.start.y) + dy,
                b.cols(),
            );
        }
        preview.set(Some(layout));
    };
    let drop = move |_e: leptos::ev::PointerEvent| {
        if drag.get_value().is_none() {
            return;
        }
        drag.set_value(None);
        if let Some(layout) = preview.get_untracked() {
            preview.set(None);
            state.update(|d| *d.layouts.get_mut(bp.get_untracked()) = layout);
            save();
        }
    };
    let key = move |e: leptos::ev::KeyboardEvent, widget: String| {
        if !editing.get_untracked() {
            return;
        }
        let (dx, dy) = match e.key().as_str() {
            "ArrowLeft" => (-1, 0),
            "ArrowRight" => (1, 0),
            "ArrowUp" => (0, -1),
            "ArrowDown" => (0, 1),
            "Enter" => {
                configuring.set(Some(widget));
                e.prevent_default();
                return;
            }
            _ => return,
        };
        e.prevent_default();
        let shift = e.shift_key();
        let phone = bp.get_untracked() == Breakpoint::Phone;
        edit_layout(&move |layout, cols| {
            let Some(p) = layout.iter().find(|p| p.widget == widget).cloned() else { return };
            if shift {
                grid::resize(layout, &widget, i64::from(p.w) + dx, i64::from(p.h) + dy, cols);
            } else if phone {
                grid::reorder(layout, &widget, dy as i32);
            } else {
                grid::move_to(layout, &widget, i64::from(p.x) + dx, i64::from(p.y) + dy, cols);
            }
        });
    };

    let placement = move |id: &str, b: Breakpoint| {
        let layout = match preview.get() {
            Some(p) if b == bp.get() => p,
            _ => layout_for(b),
        };
        layout.into_iter().find(|p| p.widget == id)
    };
    let duplicate = {
        let navigate = navigate.clone();
        move |_| {
            let mut copy = state.get_untracked();
            copy.name = format!("Copy of {}", copy.name).chars().take(100).collect();
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                if let Ok(saved) = create_dashboard(copy).await {
                    navigate(&format!("/d/{}", saved.id), Default::default());
                }
            });
        }
    };
    let delete = move |_| {
        let navigate = navigate.clone();
        #[cfg(not(feature = "hydrate"))]
        let _ = navigate;
        #[cfg(feature = "hydrate")]
        {
            let name = state.with_untracked(|d| d.name.clone());
            let sure = web_sys::window()
                .and_then(|w| {
                    w.confirm_with_message(&format!("Delete the dashboard “{name}”? This cannot be undone."))
                        .ok()
                })
                .unwrap_or(false);
            if !sure {
                return;
            }
            let id = state.with_untracked(|d| d.id.clone());
            leptos::task::spawn_local(async move {
                if crate::api::delete_dashboard(id).await.is_ok() {
                    navigate("/dashboards", Default::default());
                }
            });
        }
    };
    let base_url = state.with_untracked(|d| format!("/d/{}", d.id));
    // A widget's edit buttons: reorder (phones), configure, remove.
    let tools = move |id: String| {
        let (up, down, conf, rm) = (id.clone(), id.clone(), id.clone(), id);
        view! {
            <span class="edit-tools" on:pointerdown=|e| e.stop_propagation()>
                <Show when=move || bp.get() == Breakpoint::Phone>
                    {
                        let (up, down) = (up.clone(), down.clone());
                        view! {
                            <button type="button" class="icon-button" aria-label="Move up" on:click=move |_| {
                                let id = up.clone();
                                edit_layout(&move |l, _| grid::reorder(l, &id, -1))
                            }>"↑"</button>
                            <button type="button" class="icon-button" aria-label="Move down" on:click=move |_| {
                                let id = down.clone();
                                edit_layout(&move |l, _| grid::reorder(l, &id, 1))
                            }>"↓"</button>
                        }
                    }
                </Show>
                <button type="button" class="icon-button configure" aria-label="Configure" on:click=move |_| configuring.set(Some(conf.clone()))>"⚙"</button>
                <button type="button" class="icon-button remove" aria-label="Remove" on:click=move |_| remove_widget(rm.clone())>"✕"</button>
            </span>
        }
    };

    view! {
        <header class="board-head">
            <Show
                when=move || editing.get()
                fallback=move || view! { <h1>{move || state.with(|d| d.name.clone())}</h1> }
            >
                <input
                    class="board-name"
                    aria-label="Dashboard name"
                    maxlength="100"
                    prop:value=move || state.with(|d| d.name.clone())
                    on:change=move |e| {
                        let name = event_target_value(&e);
                        if !name.trim().is_empty() {
                            state.update(|d| d.name = name);
                            save();
                        }
                    }
                />
            </Show>
            <RangePicker range=range local=board.local base=base_url/>
            <div class="board-actions">
                <span class="save-state" role="status">
                    {move || match save_state.get() {
                        SaveState::Idle => String::new(),
                        SaveState::Saving => "Saving…".into(),
                        SaveState::Saved => "Saved".into(),
                        SaveState::Failed(e) => format!("Not saved: {e}"),
                    }}
                </span>
                <Show when=move || editing.get()>
                    <button type="button" class="button" on:click=duplicate.clone()>"Duplicate"</button>
                    <button type="button" class="button danger" on:click=delete.clone()>"Delete"</button>
                </Show>
                <button type="button" class="button primary edit-toggle" on:click=move |_| {
                    editing.update(|e| *e = !*e);
                    configuring.set(None);
                }>{move || if editing.get() { "Done" } else { "Edit" }}</button>
            </div>
        </header>
        <Show when=move || editing.get()>
            <div class="palette" role="toolbar" aria-label="Add a widget">
                "Add: "
                {WidgetKind::ALL
                    .into_iter()
                    .map(|kind| view! {
                        <button type="button" class="button" data-kind=kind.key() on:click=move |_| add_widget(kind)>
                            {kind.label()}
                        </button>
                    })
                    .collect_view()}
                <span class="muted hint">
                    {move || format!(
                        "Editing the {} layout: drag a header to move, the corner to resize; arrows move, shift+arrows resize.",
                        match bp.get() { Breakpoint::Wide => "wide", Breakpoint::Medium => "medium", Breakpoint::Phone => "phone" }
                    )}
                </span>
            </div>
        </Show>
        <Show when=move || state.with(|d| d.widgets.is_empty())>
            <div class="empty">
                <h2>"This dashboard is empty"</h2>
                <p>"Choose Edit, then add widgets from the palette."</p>
            </div>
        </Show>
        <div class="board-grid" class:editing=move || editing.get() node_ref=grid_ref>
            <For
                each=move || state.with(|d| d.widgets.clone())
                key=|w| serde_json::to_string(w).unwrap_or_default()
                let:widget
            >
                {
                    let id = widget.id.clone();
                    let style = {
                        let id = id.clone();
                        move || {
                            let (wc, wr) = area(placement(&id, Breakpoint::Wide).as_ref());
                            let (mc, mr) = area(placement(&id, Breakpoint::Medium).as_ref());
                            let (pc, pr) = area(placement(&id, Breakpoint::Phone).as_ref());
                            format!("--wc:{wc};--wr:{wr};--mc:{mc};--mr:{mr};--pc:{pc};--pr:{pr}")
                        }
                    };
                    let is_selected = {
                        let id = id.clone();
                        move || selected.get().as_deref() == Some(id.as_str())
                    };
                    let (i1, i2, i3, i4, i8) = (id.clone(), id.clone(), id.clone(), id.clone(), id.clone());
                    let body = match widget.kind {
                        WidgetKind::LineChart => view! { <ChartWidget widget=widget.clone()/> }.into_any(),
                        WidgetKind::Gauge => view! { <Gauge widget=widget.clone()/> }.into_any(),
                        WidgetKind::Stat => view! { <Stat widget=widget.clone()/> }.into_any(),
                        WidgetKind::Table => view! { <Table widget=widget.clone()/> }.into_any(),
                        WidgetKind::StatusList => view! { <StatusList widget=widget.clone()/> }.into_any(),
                    };
                    view! {
                        <article
                            class="widget"
                            class:selected=is_selected
                            data-widget=id.clone()
                            data-kind=widget.kind.key()
                            style=style
                            tabindex=move || if editing.get() { "0" } else { "-1" }
                            on:focus=move |_| if editing.get_untracked() { selected.set(Some(i1.clone())) }
                            on:keydown=move |e| key(e, i2.clone())
                        >
                            <header
                                class="widget-head"
                                on:pointerdown=move |e| start(e, i3.clone(), false)
                                on:pointermove=moving
                                on:pointerup=drop
                                on:pointercancel=drop
                            >
                                <h2>{widget.title.clone()}</h2>
                                <Show when=move || editing.get()>{tools(i4.clone())}</Show>
                            </header>
                            <div class="widget-body">{body}</div>
                            <Show when=move || editing.get() && bp.get() != Breakpoint::Phone>
                                {
                                    let id = i8.clone();
                                    view! {
                                        <span
                                            class="resize-handle"
                                            aria-hidden="true"
                                            on:pointerdown=move |e| start(e, id.clone(), true)
                                            on:pointermove=moving
                                            on:pointerup=drop
                                            on:pointercancel=drop
                                        ></span>
                                    }
                                }
                            </Show>
                        </article>
                    }
                }
            </For>
        </div>
        {move || {
            let id = configuring.get()?;
            let widget = state.with(|d| d.widgets.iter().find(|w| w.id == id).cloned())?;
            let on_save = Callback::new(move |edited: Widget| {
                state.update(|d| {
                    if let Some(w) = d.widgets.iter_mut().find(|w| w.id == edited.id) {
                        *w = edited;
                    }
                });
                configuring.set(None);
                fresh.set(None);
                save();
            });
            let on_cancel = Callback::new(move |_| {
                if let Some(id) = fresh.get_untracked().filter(|f| configuring.get_untracked().as_ref() == Some(f)) {
                    remove_widget(id);
                }
                fresh.set(None);
                configuring.set(None);
            });
            Some(view! { <WidgetConfig widget on_save on_cancel/> })
        }}
    }
}
