//! Browser helpers for components.

use leptos::html::Div;
use leptos::prelude::*;

/// The size of an element in CSS pixels, kept current by a `ResizeObserver` (browser only);
/// `initial` until measured, and on the server.
///
/// Measuring starts on the next animation frame, after hydration: a size that changed while
/// the server's HTML was being hydrated would change what renders and break hydration.
pub fn use_size(node: NodeRef<Div>, initial: (f64, f64)) -> ReadSignal<(f64, f64)> {
    let (size, set_size) = signal(initial);
    #[cfg(feature = "hydrate")]
    {
        use std::cell::RefCell;
        use std::rc::Rc;

        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;

        let observer: Rc<RefCell<Option<web_sys::ResizeObserver>>> = Rc::default();
        let started = StoredValue::new(false);
        let held = send_wrapper::SendWrapper::new(observer.clone());
        Effect::new(move |_| {
            let Some(el) = node.get() else { return };
            if started.get_value() {
                return;
            }
            started.set_value(true);
            let observer = observer.clone();
            request_animation_frame(move || {
                let callback = Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
                    if let Some(entry) = entries.get(0).dyn_ref::<web_sys::ResizeObserverEntry>() {
                        let r = entry.content_rect();
                        let next = (r.width().round(), r.height().round());
                        if next.0 > 0.0 && next != size.get_untracked() {
                            set_size.set(next);
                        }
                    }
                });
                if let Ok(o) = web_sys::ResizeObserver::new(callback.as_ref().unchecked_ref()) {
                    o.observe(&el);
                    *observer.borrow_mut() = Some(o);
                }
                callback.forget();
            });
        });
        on_cleanup(move || {
            if let Some(o) = held.borrow_mut().take() {
                o.disconnect();
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (node, set_size);
    size
}
