//! Browser helpers for components.

use leptos::html::Div;
use leptos::prelude::*;

/// The size of an element in CSS pixels, kept current by a `ResizeObserver` (browser only);
/// `initial` until measured, and on the server.
pub fn use_size(node: NodeRef<Div>, initial: (f64, f64)) -> ReadSignal<(f64, f64)> {
    let (size, set_size) = signal(initial);
    #[cfg(feature = "hydrate")]
    Effect::new(move |observer: Option<Option<send_wrapper::SendWrapper<web_sys::ResizeObserver>>>| {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        if let Some(Some(existing)) = observer {
            return Some(existing);
        }
        let el = node.get()?;
        let measure = |el: &web_sys::Element| {
            let r = el.get_bounding_client_rect();
            (r.width().round(), r.height().round())
        };
        let first = measure(&el);
        if first.0 > 0.0 {
            set_size.set(first);
        }
        let callback = Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
            if let Some(entry) = entries.get(0).dyn_ref::<web_sys::ResizeObserverEntry>() {
                let r = entry.content_rect();
                let next = (r.width().round(), r.height().round());
                if next.0 > 0.0 && next != size.get_untracked() {
                    set_size.set(next);
                }
            }
        });
        let observer = web_sys::ResizeObserver::new(callback.as_ref().unchecked_ref()).ok()?;
        callback.forget();
        observer.observe(&el);
        Some(send_wrapper::SendWrapper::new(observer))
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (node, set_size);
    size
}
