//! A control widget (switch, button, number, select) driving one device, never optimistic:
//! it shows the device's actual state ([`crate::logic::control`]); after a change it says
//! "Pending…" (aria-busy) until the device confirms, then "Confirmed", or shows the reason and
//! the device's actual state again. Disabled, with the reason as its tooltip, for viewers,
//! before the page is interactive, while the live feed is down, while a change is pending,
//! and while the device is offline unless the control may queue.

use leptos::prelude::*;
use serde_json::Value;
use telemetry::LiveEvent;
use telemetry::command::{Command, CommandStatus};
use telemetry::control::{Binding, Control};
use telemetry::control_desk::Operated;
use telemetry::dashboard::Widget;
use telemetry::device::Health;

use crate::api::{control_state, operate_control};
use crate::logic::control::{
    Phase, Shown, Situation, command_shown, desired_shown, newer_command, why_disabled,
};
use crate::state::board::Board;
use crate::state::live::Live;
use crate::widgets::control_inputs::ControlInput;

#[component]
pub fn ControlWidget(widget: Widget) -> impl IntoView {
    let (Some(control), Some(device)) = (widget.control.clone(), widget.control_device().map(str::to_owned))
    else {
        return view! {
            <p class="widget-empty">"Not set up yet: choose Edit, then configure its device and what it drives."</p>
        }
        .into_any();
    };
    let method = control.method().map(str::to_owned);
    let start = Resource::new(
        {
            let (device, method) = (device.clone(), method.clone());
            move || (device.clone(), method.clone())
        },
        |(device, method)| control_state(device, method),
    );
    view! {
        <Transition fallback=|| view! { <p class="widget-empty">"Loading…"</p> }>
            {
                let (widget, control, device) = (widget.clone(), control.clone(), device.clone());
                move || {
                    let (widget, control, device) = (widget.clone(), control.clone(), device.clone());
                    Suspend::new(async move {
                        match start.await {
                            Ok(start) => view! { <Operable widget control device start/> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">"Cannot load the control: " {e.to_string()}</p> }.into_any(),
                        }
                    })
                }
            }
        </Transition>
    }
    .into_any()
}

/// The control once its device's state is known.
#[component]
fn Operable(
    widget: Widget,
    control: Control,
    device: String,
    start: crate::api::ControlStart,
) -> impl IntoView {
    let board = expect_context::<Board>();
    let live = expect_context::<Live>();
    let can_act = start.can_act;
    let seed = start.seed;
    if let Some(shadow) = seed.shadow {
        live.shadows.note(shadow);
    }
    let last = RwSignal::new(seed.last);
    let last_ok = RwSignal::new(seed.last_succeeded);
    // What this page did: the command it made, or the desired version its change made.
    let mine_command: RwSignal<Option<String>> = RwSignal::new(None);
    let mine_v: RwSignal<Option<u64>> = RwSignal::new(None);
    let sending = RwSignal::new(false);
    let refused: RwSignal<Option<String>> = RwSignal::new(None);
    let take = move |c: Command| {
        if last.with_untracked(|l| l.as_ref().is_none_or(|old| newer_command(&c, old))) {
            last.set(Some(c.clone()));
        }
        if c.status == CommandStatus::Succeeded
            && last_ok.with_untracked(|l| l.as_ref().is_none_or(|old| newer_command(&c, old)))
        {
            last_ok.set(Some(c));
        }
    };
    if let Some(method) = control.method().map(str::to_owned) {
        let device = device.clone();
        Effect::new(move |_| {
            let fresh: Vec<Command> = live.batch.with(|events| {
                events
                    .iter()
                    .filter_map(|e| match e {
                        LiveEvent::Command { command, .. }
                            if command.device == device && command.method == method =>
                        {
                            Some((**command).clone())
                        }
                        _ => None,
                    })
                    .collect()
            });
            fresh.into_iter().for_each(take);
        });
    }

    let shown = {
        let (control, device) = (control.clone(), device.clone());
        Memo::new(move |_| {
            let shown = match &control.binding {
                Binding::Desired { key } => {
                    live.shadows.by_device.with(|s| desired_shown(s.get(&device), key, mine_v.get()))
                }
                Binding::Command { key, metric, .. } => {
                    let reading = metric.as_ref().and_then(|m| {
                        board
                            .devices
                            .with(|d| d.get(&device).and_then(|d| d.metric(m)).map(|m| (m.value, m.ts)))
                    });
                    let (last, ok) = (last.get(), last_ok.get());
                    command_shown(
                        key.as_deref(),
                        reading,
                        last.as_ref(),
                        ok.as_ref(),
                        mine_command.get().as_deref(),
                    )
                }
            };
            match (sending.get(), refused.get()) {
                (true, _) => {
                    Shown { phase: Phase::Pending { target: Value::Null, detail: "sending".into() }, ..shown }
                }
                (false, Some(reason)) => Shown { phase: Phase::Failed { reason }, ..shown },
                (false, None) => shown,
            }
        })
    };
    let pending = Memo::new(move |_| shown.with(|s| matches!(s.phase, Phase::Pending { .. })));
    let why_disabled = {
        let device = device.clone();
        let queue = control.queue_offline;
        Memo::new(move |_| {
            let health = board.devices.with(|d| d.get(&device).map(|d| d.health(board.now.get())));
            why_disabled(&Situation {
                device: &device,
                interactive: board.local.get(),
                can_act,
                feed_down: board.offline.get(),
                device_offline: matches!(health, None | Some(Health::Offline)),
                queue_offline: queue,
                pending: pending.get(),
            })
        })
    };
    let operate = {
        let (dashboard, widget_id) = (board.id.get_value(), widget.id.clone());
        Callback::new(move |value: Value| {
            if why_disabled.get_untracked().is_some() {
                return;
            }
            refused.set(None);
            sending.set(true);
            let (dashboard, widget_id) = (dashboard.clone(), widget_id.clone());
            leptos::task::spawn_local(async move {
                match operate_control(dashboard, widget_id, value.to_string()).await {
                    Ok(Operated::Command { command }) => {
                        mine_command.set(Some(command.id.clone()));
                        take(*command);
                    }
                    Ok(Operated::Desired { shadow }) => {
                        mine_v.set(Some(shadow.v));
                        live.shadows.note(*shadow);
                    }
                    Err(e) => refused.set(Some(format!("Not sent: {e}"))),
                }
                sending.set(false);
            });
        })
    };
    let phase_key = move || match shown.with(|s| s.phase.clone()) {
        Phase::Idle => "idle",
        Phase::Pending { .. } => "pending",
        Phase::Confirmed => "confirmed",
        Phase::Failed { .. } => "failed",
    };
    let status = move || {
        match shown.with(|s| s.phase.clone()) {
        Phase::Idle => view! { <span></span> }.into_any(),
        Phase::Pending { detail, .. } => view! {
            <span class="control-pending"><span class="spinner" aria-hidden="true"></span>"Pending… "<span class="muted">{format!("({detail})")}</span></span>
        }
        .into_any(),
        Phase::Confirmed => view! { <span class="control-confirmed">"Confirmed"</span> }.into_any(),
        Phase::Failed { reason } => view! { <span class="control-failed">{reason}</span> }.into_any(),
    }
    };
    let value = Signal::derive(move || shown.with(|s| s.value.clone()));
    let disabled = Signal::derive(move || why_disabled.get());
    view! {
        <div class="control" data-phase=phase_key aria-busy=move || pending.get().to_string()>
            <ControlInput widget control value disabled operate/>
            <p class="control-status" role="status">{status}</p>
        </div>
    }
}
