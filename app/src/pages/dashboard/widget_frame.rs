//! A widget's frame: the card around a widget's body, with its title, edit tools (phone
//! reorder, configure, remove), the header as drag handle, the resize corner, and keyboard
//! moves (arrows move, shift+arrows resize, Enter configures).

use leptos::ev::{KeyboardEvent, PointerEvent};
use leptos::prelude::*;
use telemetry::dashboard::{Breakpoint, Widget, WidgetKind};

use super::editor::Editor;
use crate::logic::grid;
use crate::widgets::alarm_list::AlarmListWidget;
use crate::widgets::chart_widget::ChartWidget;
use crate::widgets::control::ControlWidget;
use crate::widgets::gauge::Gauge;
use crate::widgets::icon::{Icon, Lucide};
use crate::widgets::stat::Stat;
use crate::widgets::status_list::StatusList;
use crate::widgets::table::Table;

#[component]
pub(super) fn WidgetFrame(editor: Editor, widget: Widget) -> impl IntoView {
    let Editor { editing, selected, layouts, .. } = editor;
    let id = widget.id.clone();
    let style = {
        let id = id.clone();
        move || layouts.style(&id)
    };
    let is_selected = {
        let id = id.clone();
        move || selected.get().as_deref() == Some(id.as_str())
    };
    let select = {
        let id = id.clone();
        move |_| {
            if editing.get_untracked() {
                selected.set(Some(id.clone()))
            }
        }
    };
    let keys = {
        let id = id.clone();
        move |e| keyboard_move(editor, e, id.clone())
    };
    // A press on the header (moves) or the corner (resizes) starts a drag in edit mode.
    let press = move |e: PointerEvent, widget: String, resize: bool| {
        if !editing.get_untracked() || e.button() != 0 {
            return;
        }
        e.prevent_default();
        if layouts.begin_drag(&e, widget.clone(), resize) {
            selected.set(Some(widget));
        }
    };
    let drag_to = move |e: PointerEvent| layouts.drag_to(&e);
    let drop = move |_: PointerEvent| layouts.drop();
    let (head_id, tools_id, corner_id) = (id.clone(), id.clone(), id.clone());
    let body = match widget.kind {
        WidgetKind::LineChart => view! { <ChartWidget widget=widget.clone()/> }.into_any(),
        WidgetKind::Gauge => view! { <Gauge widget=widget.clone()/> }.into_any(),
        WidgetKind::Stat => view! { <Stat widget=widget.clone()/> }.into_any(),
        WidgetKind::Table => view! { <Table widget=widget.clone()/> }.into_any(),
        WidgetKind::StatusList => view! { <StatusList widget=widget.clone()/> }.into_any(),
        WidgetKind::AlarmList => view! { <AlarmListWidget widget=widget.clone()/> }.into_any(),
        WidgetKind::Switch | WidgetKind::Button | WidgetKind::Number | WidgetKind::Select => {
            view! { <ControlWidget widget=widget.clone()/> }.into_any()
        }
    };
    view! {
        <article
            class="widget"
            class:selected=is_selected
            data-widget=id
            data-kind=widget.kind.key()
            style=style
            tabindex=move || if editing.get() { "0" } else { "-1" }
            on:focus=select
            on:keydown=keys
        >
            <header
                class="widget-head"
                on:pointerdown=move |e| press(e, head_id.clone(), false)
                on:pointermove=drag_to
                on:pointerup=drop
                on:pointercancel=drop
            >
                <h2>{widget.title.clone()}</h2>
                <Show when=move || editing.get()>
                    <EditTools editor id=tools_id.clone()/>
                </Show>
            </header>
            <div class="widget-body">{body}</div>
            <Show when=move || editing.get() && layouts.bp.get() != Breakpoint::Phone>
                {
                    let id = corner_id.clone();
                    view! {
                        <span
                            class="resize-handle"
                            aria-hidden="true"
                            on:pointerdown=move |e| press(e, id.clone(), true)
                            on:pointermove=drag_to
                            on:pointerup=drop
                            on:pointercancel=drop
                        ></span>
                    }
                }
            </Show>
        </article>
    }
}

/// A widget's edit buttons: reorder (phones), configure, remove.
#[component]
fn EditTools(editor: Editor, id: String) -> impl IntoView {
    let layouts = editor.layouts;
    let reorder = move |id: &str, delta: i32| {
        let id = id.to_owned();
        layouts.edit(&move |l, _| grid::reorder(l, &id, delta))
    };
    let (configure_id, remove_id) = (id.clone(), id.clone());
    view! {
        <span class="edit-tools" on:pointerdown=|e| e.stop_propagation()>
            <Show when=move || layouts.bp.get() == Breakpoint::Phone>
                {
                    let (up_id, down_id) = (id.clone(), id.clone());
                    view! {
                        <button type="button" class="icon-button" aria-label="Move up" title="Move up" on:click=move |_| reorder(&up_id, -1)><Icon icon=Lucide::ArrowUp/></button>
                        <button type="button" class="icon-button" aria-label="Move down" title="Move down" on:click=move |_| reorder(&down_id, 1)><Icon icon=Lucide::ArrowDown/></button>
                    }
                }
            </Show>
            <button type="button" class="icon-button configure" aria-label="Configure" title="Configure" on:click=move |_| editor.configuring.set(Some(configure_id.clone()))><Icon icon=Lucide::Settings/></button>
            <button type="button" class="icon-button remove" aria-label="Remove" title="Remove" on:click=move |_| editor.remove_widget(remove_id.clone())><Icon icon=Lucide::X/></button>
        </span>
    }
}

/// In edit mode, arrows move the widget (on phones: up and down the list), shift+arrows resize
/// it, Enter opens its settings.
fn keyboard_move(editor: Editor, e: KeyboardEvent, widget: String) {
    if !editor.editing.get_untracked() {
        return;
    }
    let (dx, dy) = match e.key().as_str() {
        "ArrowLeft" => (-1, 0),
        "ArrowRight" => (1, 0),
        "ArrowUp" => (0, -1),
        "ArrowDown" => (0, 1),
        "Enter" => {
            editor.configuring.set(Some(widget));
            e.prevent_default();
            return;
        }
        _ => return,
    };
    e.prevent_default();
    let shift = e.shift_key();
    let phone = editor.layouts.bp.get_untracked() == Breakpoint::Phone;
    editor.layouts.edit(&move |layout, cols| {
        let Some(p) = layout.iter().find(|p| p.widget == widget).cloned() else { return };
        if shift {
            grid::resize(layout, &widget, i64::from(p.w) + dx, i64::from(p.h) + dy, cols);
        } else if phone {
            grid::reorder(layout, &widget, dy as i32);
        } else {
            grid::move_to(layout, &widget, i64::from(p.x) + dx, i64::from(p.y) + dy, cols);
        }
    });
}
