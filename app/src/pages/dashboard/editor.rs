//! The editor: the board's head (name, time range, save status, duplicate, delete, the edit
//! toggle), the palette widgets are added from, and the settings dialog of one widget.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use telemetry::dashboard::{Breakpoint, Dashboard, Widget, WidgetKind};

use super::grid_binding::Layouts;
use super::saving::Saver;
use crate::api::create_dashboard;
use crate::logic::grid;
use crate::state::board::Board;
use crate::widgets::range_picker::RangePicker;
use crate::widgets::widget_config::WidgetConfig;

/// An open dashboard and what editing it involves.
#[derive(Clone, Copy)]
pub(super) struct Editor {
    pub(super) dashboard: RwSignal<Dashboard>,
    /// Edit mode: palette, widget tools, dragging and keyboard moves.
    pub(super) editing: RwSignal<bool>,
    /// The widget whose settings are open.
    pub(super) configuring: RwSignal<Option<String>>,
    /// A widget just added from the palette: cancelling its first configuration removes it.
    fresh: RwSignal<Option<String>>,
    /// The widget last pressed or focused in edit mode.
    pub(super) selected: RwSignal<Option<String>>,
    pub(super) layouts: Layouts,
    pub(super) saver: Saver,
}

impl Editor {
    pub(super) fn new(dashboard: RwSignal<Dashboard>) -> Editor {
        let saver = Saver::new(dashboard);
        Editor {
            dashboard,
            editing: RwSignal::new(false),
            configuring: RwSignal::new(None),
            fresh: RwSignal::new(None),
            selected: RwSignal::new(None),
            layouts: Layouts::new(dashboard, saver),
            saver,
        }
    }

    /// Adds a widget of a kind, placed at every arranged breakpoint, and opens its settings.
    fn add_widget(self, kind: WidgetKind, metrics: Vec<String>) {
        let wanted = match kind {
            WidgetKind::StatusList | WidgetKind::AlarmList => vec![],
            kind if kind.is_control() => vec![],
            WidgetKind::Table => metrics.iter().take(3).cloned().collect(),
            _ => metrics.first().cloned().into_iter().collect(),
        };
        // The first `<kind>-<n>` this dashboard does not use yet.
        let prefix = kind.key().replace('_', "-");
        let id = self.dashboard.with_untracked(|d| {
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
            query: None,
            metrics: wanted,
            unit: None,
            decimals: None,
            min: None,
            max: None,
            thresholds: vec![],
            range: None,
            control: None,
        };
        let (w, h) = kind.default_size();
        self.dashboard.update(|d| {
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
        self.configuring.set(Some(widget.id.clone()));
        self.fresh.set(Some(widget.id.clone()));
        self.selected.set(Some(widget.id));
        self.saver.save();
    }

    /// Removes a widget and its place in every layout.
    pub(super) fn remove_widget(self, id: String) {
        self.dashboard.update(|d| {
            d.widgets.retain(|w| w.id != id);
            for b in Breakpoint::ALL {
                grid::remove(d.layouts.get_mut(b), &id);
            }
        });
        self.saver.save();
    }
}

/// The name (editable in edit mode), the time range, the save status and the actions.
#[component]
pub(super) fn BoardHead(editor: Editor, board: Board) -> impl IntoView {
    let Editor { dashboard, editing, configuring, saver, .. } = editor;
    let navigate = use_navigate();
    let duplicate = {
        let navigate = navigate.clone();
        move |_| {
            let mut copy = dashboard.get_untracked();
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
            let name = dashboard.with_untracked(|d| d.name.clone());
            let sure = web_sys::window()
                .and_then(|w| {
                    w.confirm_with_message(&format!("Delete the dashboard “{name}”? This cannot be undone."))
                        .ok()
                })
                .unwrap_or(false);
            if !sure {
                return;
            }
            let id = dashboard.with_untracked(|d| d.id.clone());
            leptos::task::spawn_local(async move {
                if crate::api::delete_dashboard(id).await.is_ok() {
                    navigate("/dashboards", Default::default());
                }
            });
        }
    };
    let base_url = dashboard.with_untracked(|d| format!("/d/{}", d.id));
    view! {
        <header class="board-head">
            <Show
                when=move || editing.get()
                fallback=move || view! { <h1>{move || dashboard.with(|d| d.name.clone())}</h1> }
            >
                <input
                    class="board-name"
                    aria-label="Dashboard name"
                    maxlength="100"
                    prop:value=move || dashboard.with(|d| d.name.clone())
                    on:change=move |e| {
                        let name = event_target_value(&e);
                        if !name.trim().is_empty() {
                            dashboard.update(|d| d.name = name);
                            saver.save();
                        }
                    }
                />
            </Show>
            <RangePicker range=board.range local=board.local base=base_url/>
            <div class="board-actions">
                <span class="save-state" role="status">{move || saver.status()}</span>
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
    }
}

/// In edit mode: a button per widget kind, and how to arrange widgets.
#[component]
pub(super) fn Palette(editor: Editor, board: Board) -> impl IntoView {
    let bp = editor.layouts.bp;
    view! {
        <Show when=move || editor.editing.get()>
            <div class="palette" role="toolbar" aria-label="Add a widget">
                "Add: "
                {WidgetKind::ALL
                    .into_iter()
                    .map(|kind| view! {
                        <button type="button" class="button" data-kind=kind.key() on:click=move |_| {
                            editor.add_widget(kind, untrack(|| board.all_metrics()))
                        }>
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
    }
}

/// The settings of the widget being configured. Cancelling the first settings of a widget just
/// added removes it.
#[component]
pub(super) fn ConfigDialog(editor: Editor) -> impl IntoView {
    let Editor { dashboard, configuring, fresh, saver, .. } = editor;
    move || {
        let id = configuring.get()?;
        // Read once, when the dialog opens: a save's answer updating the dashboard meanwhile
        // (the one adding this widget, say) must not make the dialog anew and lose what was
        // typed into it.
        let widget = dashboard.with_untracked(|d| d.widgets.iter().find(|w| w.id == id).cloned())?;
        let on_save = Callback::new(move |edited: Widget| {
            dashboard.update(|d| {
                if let Some(w) = d.widgets.iter_mut().find(|w| w.id == edited.id) {
                    *w = edited;
                }
            });
            configuring.set(None);
            fresh.set(None);
            saver.save();
        });
        let on_cancel = Callback::new(move |_| {
            if let Some(id) =
                fresh.get_untracked().filter(|f| configuring.get_untracked().as_ref() == Some(f))
            {
                editor.remove_widget(id);
            }
            fresh.set(None);
            configuring.set(None);
        });
        Some(view! { <WidgetConfig widget on_save on_cancel/> })
    }
}
