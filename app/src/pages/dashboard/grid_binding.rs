//! The grid binding: which layout shows at the window's breakpoint (derived from the wide one
//! until someone arranges it), where each widget sits in the CSS grid, the preview while a
//! widget is dragged or resized, and keeping (and saving) a layout once it is dropped.

use leptos::ev::PointerEvent;
use leptos::html::Div;
use leptos::prelude::*;
use telemetry::dashboard::{Breakpoint, Dashboard, Placement};

use super::saving::Saver;
use crate::logic::grid;

/// Grid row height and gap in CSS pixels (as in the stylesheet).
const ROW_PX: f64 = 72.0;
const GAP_PX: f64 = 12.0;
/// The grid's width before it is measured.
const ASSUMED_WIDTH_PX: f64 = 1200.0;
/// The window's width where it cannot be read.
#[cfg(feature = "hydrate")]
const ASSUMED_WINDOW_PX: f64 = 1280.0;

/// A drag or resize in progress.
#[derive(Debug, Clone)]
struct Drag {
    widget: String,
    resize: bool,
    /// Where the pointer went down.
    x0: f64,
    y0: f64,
    /// Where the widget was then.
    start: Placement,
    /// One column's width plus the gap, in CSS pixels.
    cell_w: f64,
}

/// A dashboard's layouts as shown and edited.
#[derive(Clone, Copy)]
pub(super) struct Layouts {
    dashboard: RwSignal<Dashboard>,
    /// The window's breakpoint: the layout shown, and the one edits change.
    pub(super) bp: RwSignal<Breakpoint>,
    /// The layout while a widget is dragged or resized, until it is dropped.
    preview: RwSignal<Option<Vec<Placement>>>,
    drag: StoredValue<Option<Drag>>,
    /// The grid element, measured when a drag starts.
    pub(super) grid: NodeRef<Div>,
    saver: Saver,
}

impl Layouts {
    /// Follows the window's width (browser only; wide on the server).
    pub(super) fn new(dashboard: RwSignal<Dashboard>, saver: Saver) -> Layouts {
        let bp = RwSignal::new(Breakpoint::Wide);
        #[cfg(feature = "hydrate")]
        {
            let width = || {
                web_sys::window()
                    .and_then(|w| w.inner_width().ok())
                    .and_then(|w| w.as_f64())
                    .unwrap_or(ASSUMED_WINDOW_PX)
            };
            Effect::new(move |_| bp.set(Breakpoint::for_width(width())));
            let handle =
                window_event_listener(leptos::ev::resize, move |_| bp.set(Breakpoint::for_width(width())));
            on_cleanup(move || handle.remove());
        }
        Layouts {
            dashboard,
            bp,
            preview: RwSignal::new(None),
            drag: StoredValue::new(None),
            grid: NodeRef::new(),
            saver,
        }
    }

    /// The layout for a breakpoint, derived from the wide one until someone arranges it.
    pub(super) fn of(self, bp: Breakpoint) -> Vec<Placement> {
        // try_: a server render cut short (the browser went away) has disposed the signals.
        self.dashboard
            .try_with(|d| {
                let own = d.layouts.get(bp);
                if own.is_empty() && bp != Breakpoint::Wide {
                    grid::derive(&d.layouts.wide, bp)
                } else {
                    own.clone()
                }
            })
            .unwrap_or_default()
    }

    /// Applies an edit to the current breakpoint's layout, keeps it, saves.
    pub(super) fn edit(self, f: &dyn Fn(&mut Vec<Placement>, u32)) {
        let b = self.bp.get_untracked();
        let mut layout = self.of(b);
        f(&mut layout, b.cols());
        self.dashboard.update(|d| *d.layouts.get_mut(b) = layout);
        self.saver.save();
    }

    /// Where a widget shows at a breakpoint: in the preview while one is dragged there.
    fn placement(self, id: &str, b: Breakpoint) -> Option<Placement> {
        let layout = match self.preview.try_get().flatten() {
            Some(p) if self.bp.try_get() == Some(b) => p,
            _ => self.of(b),
        };
        layout.into_iter().find(|p| p.widget == id)
    }

    /// A widget's grid areas at every breakpoint, as the custom properties the stylesheet
    /// reads. Reactive.
    pub(super) fn style(self, id: &str) -> String {
        let (wc, wr) = area(self.placement(id, Breakpoint::Wide).as_ref());
        let (mc, mr) = area(self.placement(id, Breakpoint::Medium).as_ref());
        let (pc, pr) = area(self.placement(id, Breakpoint::Phone).as_ref());
        format!("--wc:{wc};--wr:{wr};--mc:{mc};--mr:{mr};--pc:{pc};--pr:{pr}")
    }

    /// Starts moving (or, with `resize`, resizing) a widget from where the pointer went down;
    /// false when the widget is not in the layout.
    pub(super) fn begin_drag(self, e: &PointerEvent, widget: String, resize: bool) -> bool {
        let Some(start) = self.of(self.bp.get_untracked()).into_iter().find(|p| p.widget == widget) else {
            return false;
        };
        let width = self.grid.get_untracked().map(|g| g.client_width() as f64).unwrap_or(ASSUMED_WIDTH_PX);
        let cols = f64::from(self.bp.get_untracked().cols());
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            if let Some(target) = e.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
                let _ = target.set_pointer_capture(e.pointer_id());
            }
        }
        self.drag.set_value(Some(Drag {
            widget,
            resize,
            x0: f64::from(e.client_x()),
            y0: f64::from(e.client_y()),
            start,
            cell_w: (width + GAP_PX) / cols,
        }));
        true
    }

    /// Previews the layout with the dragged widget moved or resized by whole cells.
    pub(super) fn drag_to(self, e: &PointerEvent) {
        let Some(d) = self.drag.get_value() else { return };
        let dx = ((f64::from(e.client_x()) - d.x0) / d.cell_w).round() as i64;
        let dy = ((f64::from(e.client_y()) - d.y0) / (ROW_PX + GAP_PX)).round() as i64;
        let b = self.bp.get_untracked();
        let mut layout = self.of(b);
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
        self.preview.set(Some(layout));
    }

    /// Ends a drag: the previewed layout is kept and saved.
    pub(super) fn drop(self) {
        if self.drag.get_value().is_none() {
            return;
        }
        self.drag.set_value(None);
        if let Some(layout) = self.preview.get_untracked() {
            self.preview.set(None);
            self.dashboard.update(|d| *d.layouts.get_mut(self.bp.get_untracked()) = layout);
            self.saver.save();
        }
    }
}

/// The CSS grid position of a placement: `column-start / span width` and the same for rows.
fn area(p: Option<&Placement>) -> (String, String) {
    match p {
        Some(p) => (format!("{} / span {}", p.x + 1, p.w), format!("{} / span {}", p.y + 1, p.h)),
        None => ("auto".into(), "auto".into()),
    }
}
