//! The browser side of `/ws/live`: connects, reconnects with exponential back-off and jitter
//! (at once when the browser says it is back online), and after every (re)connect fetches
//! the changes missed while away before applying live ones, so each is applied exactly once.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use telemetry::LiveEvent;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::api::{MAX_CHANGES_PAGE, changes_since};
use crate::state::live::{Connection, Live};

/// The first retry waits about this long (with jitter: half to all of it), each one after twice
/// as long as the one before ...
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// ... up to this.
const LONGEST_RETRY: Duration = Duration::from_secs(30);
/// A connection that stayed open this long worked: when it drops, retries start over.
const WORKED_AFTER: Duration = Duration::from_secs(30);
/// Fetching missed changes is tried this many times, the first retry after about this long
/// and each after twice as long as the one before, before the socket is closed and opened again.
const SYNC_TRIES: u32 = 4;
const FIRST_SYNC_RETRY: Duration = Duration::from_millis(250);

#[derive(Default)]
struct State {
    ws: Option<WebSocket>,
    /// Bumped per connection attempt; stale handlers and timers check it.
    generation: u32,
    /// Fetching missed changes: live events wait in `held` meanwhile.
    syncing: bool,
    held: Vec<LiveEvent>,
    /// Events received since the last animation frame.
    pending: Vec<LiveEvent>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

pub fn start(live: Live) {
    let Some(window) = web_sys::window() else { return };
    let on_offline = Closure::<dyn FnMut()>::new(move || {
        // The socket may linger when the network goes; drop it now so the UI says offline.
        if let Some(ws) = STATE.with(|s| s.borrow_mut().ws.take()) {
            let _ = ws.close();
        }
        live.connection.set(Connection::Reconnecting);
    });
    let on_online = Closure::<dyn FnMut()>::new(move || connect(live, 0));
    let _ = window.add_event_listener_with_callback("offline", on_offline.as_ref().unchecked_ref());
    let _ = window.add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
    on_offline.forget();
    on_online.forget();
    connect(live, 0);
}

fn current(generation: u32) -> bool {
    STATE.with(|s| s.borrow().generation == generation)
}

fn connect(live: Live, attempt: u32) {
    let Some(window) = web_sys::window() else { return };
    let generation = STATE.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(old) = s.ws.take() {
            let _ = old.close();
        }
        s.generation += 1;
        s.generation
    });
    let location = window.location();
    let scheme = if location.protocol().ok().as_deref() == Some("https:") { "wss" } else { "ws" };
    let host = location.host().unwrap_or_default();
    let Ok(ws) = WebSocket::new(&format!("{scheme}://{host}/ws/live")) else {
        retry(live, generation, attempt + 1);
        return;
    };
    let opened_at = Rc::new(RefCell::new(None::<f64>));

    let on_open = {
        let opened_at = opened_at.clone();
        Closure::<dyn FnMut()>::new(move || {
            if current(generation) {
                *opened_at.borrow_mut() = Some(js_sys::Date::now());
                live.connection.set(Connection::Open);
            }
        })
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        if !current(generation) {
            return;
        }
        let Some(text) = e.data().as_string() else { return };
        match serde_json::from_str::<LiveEvent>(&text) {
            Ok(LiveEvent::Hello { last_seq, .. }) => on_hello(live, last_seq),
            Ok(LiveEvent::Resync { .. }) => sync(live),
            Ok(event) => receive(live, event),
            Err(_) => {}
        }
    });
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
        if !current(generation) {
            return;
        }
        STATE.with(|s| s.borrow_mut().ws = None);
        live.connection.set(Connection::Reconnecting);
        // A connection that lived a while starts the back-off over.
        let lived = opened_at.borrow().is_some_and(|t| js_sys::Date::now() - t > millis(WORKED_AFTER));
        retry(live, generation, if lived { 0 } else { attempt + 1 });
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    // The handlers live as long as the socket; one set per connection.
    on_open.forget();
    on_message.forget();
    on_close.forget();
    STATE.with(|s| s.borrow_mut().ws = Some(ws));
}

fn retry(live: Live, generation: u32, attempt: u32) {
    // Six doublings are past the longest wait already.
    let base = millis(FIRST_RETRY) * 2f64.powi(attempt.min(6) as i32);
    let delay = base.min(millis(LONGEST_RETRY)) * (0.5 + js_sys::Math::random() * 0.5);
    set_timeout(
        move || {
            if current(generation) {
                connect(live, attempt);
            }
        },
        Duration::from_millis(delay as u64),
    );
}

fn millis(d: Duration) -> f64 {
    d.as_millis() as f64
}

/// The server says where it is: fetch what we missed, if anything.
fn on_hello(live: Live, last_seq: u64) {
    let hwm = live.hwm.get_value();
    if last_seq < hwm || hwm == 0 {
        // A fresh database on the server, or nothing known here yet: start from its mark.
        live.hwm.set_value(last_seq);
    } else if last_seq > hwm {
        sync(live);
    }
}

/// Fetches every change after the high-water mark, page by page, then releases the live
/// events held meanwhile.
fn sync(live: Live) {
    let already = STATE.with(|s| {
        let mut s = s.borrow_mut();
        // Events not yet applied wait too, or the mark could jump over the gap.
        let pending = std::mem::take(&mut s.pending);
        s.held.extend(pending);
        std::mem::replace(&mut s.syncing, true)
    });
    if !already {
        fetch(live, 0);
    }
}

/// The events held while fetching, and fetching over.
fn release() -> Vec<LiveEvent> {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.syncing = false;
        std::mem::take(&mut s.held)
    })
}

/// One go at [`sync`]'s fetching, after `failures` failed ones. A failed request (the
/// server's node going away, a proxy's error) is tried again a few times, waiting longer each
/// time; then the held events are dropped and the socket closed, so the reconnect's hello
/// syncs afresh. Applying them instead would move the mark past the changes still missing,
/// and those would never be fetched while the socket stayed up.
fn fetch(live: Live, failures: u32) {
    leptos::task::spawn_local(async move {
        loop {
            let Ok(mut page) = changes_since(live.hwm.get_value(), MAX_CHANGES_PAGE).await else { break };
            let first = page.events.first().and_then(LiveEvent::seq);
            if first.is_some_and(|seq| seq > live.hwm.get_value() + 1) {
                // The server keeps only the latest changes (storage.change_log) and the gap
                // is older: what is on screen cannot be patched, so load it afresh.
                let _ = window().location().reload();
                return;
            }
            if page.events.len() < MAX_CHANGES_PAGE as usize {
                // The last page and the events held meanwhile go in one batch: views fold
                // `Live::batch` when their effects run, after this task, so a second batch
                // set now would replace this one unseen (a chart would miss its readings).
                page.events.extend(release());
                live.apply(page.events);
                return;
            }
            live.apply(page.events);
        }
        if failures + 1 < SYNC_TRIES {
            let wait = millis(FIRST_SYNC_RETRY) * 2f64.powi(failures as i32);
            set_timeout(move || fetch(live, failures + 1), Duration::from_millis(wait as u64));
            return;
        }
        drop(release());
        if let Some(ws) = STATE.with(|s| s.borrow().ws.clone()) {
            // Its close handler reconnects, with the usual back-off.
            let _ = ws.close();
        }
    });
}

/// A live event: applied on the next animation frame with any others that arrive meanwhile.
fn receive(live: Live, event: LiveEvent) {
    let first = STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.syncing {
            s.held.push(event);
            return false;
        }
        s.pending.push(event);
        s.pending.len() == 1
    });
    if first {
        request_animation_frame(move || {
            let batch = STATE.with(|s| {
                let mut s = s.borrow_mut();
                let batch = std::mem::take(&mut s.pending);
                if s.syncing {
                    s.held.extend(batch);
                    return Vec::new();
                }
                batch
            });
            live.apply(batch);
        });
    }
}
