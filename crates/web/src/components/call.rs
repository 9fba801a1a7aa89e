//! The call screen: an incoming call (answer, decline), an outgoing call ringing, the call
//! itself (remote video, own preview, timer, mute, camera, hang up), why it ended, and a
//! note when a call runs on another device. Keyboard: Enter answers, Escape declines or
//! hangs up; every control has a label.

use std::rc::Rc;

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;

use crate::call::{CallPhase, Calls};

/// One of the call's actions, run on the tab's task queue.
type CallStep = std::pin::Pin<Box<dyn Future<Output = ()>>>;

/// The calls of this tab, for the screens that start one.
#[derive(Clone, Copy)]
pub struct CallsContext(pub StoredValue<Option<SendWrapper<Rc<Calls>>>>);

fn duration(ms: f64) -> String {
    // Whole seconds of a call: far below u64's range; NaN and negatives read as 0.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = (ms / 1000.0).max(0.0) as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// Shows `stream` in `video` whenever either changes.
fn attach(
    video: NodeRef<leptos::html::Video>,
    stream: RwSignal<Option<SendWrapper<web_sys::MediaStream>>>,
) {
    Effect::new(move |_| {
        let (Some(el), s) = (video.get(), stream.get()) else { return };
        let el: &web_sys::HtmlMediaElement = &el;
        el.set_src_object(s.as_deref());
    });
}

#[component]
pub(crate) fn CallScreen(
    calls: StoredValue<SendWrapper<Rc<Calls>>>,
    now: ReadSignal<f64>,
) -> impl IntoView {
    let c = calls.get_value();
    let phase = c.phase;
    let (muted, camera_off, frames, video_aes) = (c.muted, c.camera_off, c.frames, c.video_aes);
    let (remote_muted, remote_camera_off) = (c.remote_muted, c.remote_camera_off);
    let (reconnecting, ice_generation, ringtone) = (c.reconnecting, c.ice_generation, c.ringtone);
    let (inputs, chosen) = (c.inputs, c.chosen);
    let c_note = c.note;
    let inbound = c.inbound;
    let show_devices = RwSignal::new(false);
    // The ringtone plays while a call rings here.
    Effect::new(move |_| {
        let ringing = matches!(phase.get(), CallPhase::Incoming { .. });
        calls.get_value().set_ringing(ringing);
    });
    let choose = move |kind: &'static str, id: String| {
        let c = (*calls.get_value()).clone();
        spawn_local(async move {
            if let Err(e) = c.use_input(kind, id).await {
                c.say(e.message);
            }
        });
    };
    let toggle_devices = move || {
        let open = !show_devices.get_untracked();
        show_devices.set(open);
        if open {
            let c = (*calls.get_value()).clone();
            spawn_local(async move { c.list_inputs().await });
        }
    };
    let options = move |kind: &'static str| {
        let current = chosen.get();
        let current = if kind == "audioinput" { current.0 } else { current.1 };
        inputs
            .get()
            .into_iter()
            .filter(|(k, _, _)| k == kind)
            .map(|(_, id, label)| {
                let selected = id == current;
                view! { <option value=id selected=selected>{label}</option> }
            })
            .collect_view()
    };
    let remote_video = NodeRef::<leptos::html::Video>::new();
    let local_video = NodeRef::<leptos::html::Video>::new();
    attach(remote_video, c.remote);
    attach(local_video, c.local);
    let run = move |f: fn(Rc<Calls>) -> CallStep| {
        let c = (*calls.get_value()).clone();
        spawn_local(f(c));
    };
    let answer = move || run(|c| Box::pin(async move { c.answer().await }));
    let decline = move || run(|c| Box::pin(async move { c.decline().await }));
    let hang_up = move || run(|c| Box::pin(async move { c.hang_up().await }));
    let on_key = move |ev: KeyboardEvent| match (ev.key().as_str(), phase.get_untracked()) {
        ("Enter", CallPhase::Incoming { .. }) => answer(),
        ("Escape", CallPhase::Incoming { .. }) => decline(),
        (
            "Escape",
            CallPhase::Calling { .. } | CallPhase::Connecting { .. } | CallPhase::InCall { .. },
        ) => hang_up(),
        _ => {}
    };
    let active = move || {
        !matches!(
            phase.get(),
            CallPhase::Idle | CallPhase::Elsewhere { .. } | CallPhase::Ended { .. }
        )
    };
    let title = move || match phase.get() {
        CallPhase::Incoming { name, video, .. } => {
            format!("{name} is {}calling you", if video { "video " } else { "" })
        }
        CallPhase::Calling { name, .. } => format!("Calling {name}…"),
        CallPhase::Connecting { name } => format!("Connecting to {name}…"),
        CallPhase::InCall { name, .. } => name,
        _ => String::new(),
    };
    let state = move || match phase.get() {
        CallPhase::Idle => "idle",
        CallPhase::Incoming { .. } => "incoming",
        CallPhase::Calling { .. } => "calling",
        CallPhase::Connecting { .. } => "connecting",
        CallPhase::InCall { .. } => "in-call",
        CallPhase::Ended { .. } => "ended",
        CallPhase::Elsewhere { .. } => "elsewhere",
    };
    view! {
        <Show when=move || matches!(phase.get(), CallPhase::Ended { .. } | CallPhase::Elsewhere { .. })>
            <p
                class="toast call-toast"
                class:call-warning=move || matches!(phase.get(), CallPhase::Ended { security: true, .. })
                role=move || if matches!(phase.get(), CallPhase::Ended { security: true, .. }) { "alert" } else { "status" }
                data-testid="call-status"
            >
                {move || match phase.get() {
                    CallPhase::Ended { text, .. } | CallPhase::Elsewhere { text } => text,
                    _ => String::new(),
                }}
            </p>
        </Show>
        <Show when=active>
            <section
                class="call-screen"
                role="dialog"
                aria-modal="true"
                aria-label=title
                data-testid="call-screen"
                data-state=state
                data-frames-opened=move || frames.get()[1].to_string()
                data-frames-dropped=move || frames.get()[2].to_string()
                data-video-aes=move || video_aes.get()
                data-audio-energy=move || inbound.get()[0].to_string()
                data-frames-decoded=move || inbound.get()[1].to_string()
                data-remote-muted=move || remote_muted.get().to_string()
                data-remote-camera-off=move || remote_camera_off.get().to_string()
                data-ice-generation=move || ice_generation.get().to_string()
                data-ringtone=move || ringtone.get().to_string()
                tabindex="-1"
                on:keydown=on_key
            >
                <div class="call-stage" class:hidden=move || matches!(phase.get(), CallPhase::Incoming { .. })>
                    <video class="call-remote" node_ref=remote_video autoplay=true playsinline=true data-testid="remote-video" aria-label="The other person's video" class:dimmed=move || remote_camera_off.get()></video>
                    <p class="call-remote-state" data-testid="call-remote-state" aria-live="polite">
                        {move || {
                            let name = match phase.get() { CallPhase::InCall { name, .. } => name, _ => return String::new() };
                            match (remote_muted.get(), remote_camera_off.get()) {
                                (true, true) => format!("{name} muted their microphone and turned their camera off"),
                                (true, false) => format!("{name} muted their microphone"),
                                (false, true) => format!("{name} turned their camera off"),
                                (false, false) => String::new(),
                            }
                        }}
                    </p>
                    <video class="call-local" node_ref=local_video autoplay=true playsinline=true muted=true data-testid="local-video" aria-label="Your camera" class:hidden=move || camera_off.get()></video>
                </div>
                <div class="call-info">
                    <h2 data-testid="call-title">{title}</h2>
                    <p class="muted" aria-live="polite" data-testid="call-timer">
                        {move || match phase.get() {
                            CallPhase::InCall { .. } if reconnecting.get() => "Reconnecting…".to_owned(),
                            CallPhase::InCall { since, .. } => duration(now.get() - since),
                            CallPhase::Incoming { .. } => "End-to-end encrypted call".to_owned(),
                            _ => String::new(),
                        }}
                    </p>
                </div>
                <div class="call-controls">
                    <Show
                        when=move || matches!(phase.get(), CallPhase::Incoming { .. })
                        fallback=move || view! {
                            <button class="round-button" data-testid="call-mute" aria-pressed=move || muted.get().to_string()
                                aria-label=move || if muted.get() { "Turn microphone on" } else { "Mute microphone" }
                                on:click=move |_| calls.get_value().toggle_mute()>
                                {move || if muted.get() { "Unmute" } else { "Mute" }}
                            </button>
                            <button class="round-button" data-testid="call-camera" aria-pressed=move || camera_off.get().to_string()
                                aria-label=move || if camera_off.get() { "Turn camera on" } else { "Turn camera off" }
                                on:click=move |_| calls.get_value().toggle_camera()>
                                {move || if camera_off.get() { "Cam on" } else { "Cam off" }}
                            </button>
                            <button class="round-button" data-testid="call-devices" aria-expanded=move || show_devices.get().to_string()
                                aria-label="Choose microphone and camera" on:click=move |_| toggle_devices()>
                                "Devices"
                            </button>
                            <button class="round-button danger" data-testid="call-hang-up" aria-label="Hang up" on:click=move |_| hang_up()>"✕"</button>
                        }
                    >
                        <button class="round-button danger" data-testid="call-decline" aria-label="Decline" on:click=move |_| decline()>"✕"</button>
                        <button class="round-button accept" data-testid="call-answer" aria-label="Answer" autofocus=true on:click=move |_| answer()>"✓"</button>
                    </Show>
                </div>
                <p class="call-note" role="alert" data-testid="call-note">{move || c_note.get()}</p>
                <Show when=move || show_devices.get() && !matches!(phase.get(), CallPhase::Incoming { .. })>
                    <div class="call-devices" data-testid="call-device-panel">
                        <label>
                            "Microphone"
                            <select data-testid="call-microphone" on:change=move |ev| choose("audioinput", event_target_value(&ev))>
                                {move || options("audioinput")}
                            </select>
                        </label>
                        <label class:hidden=move || !inputs.get().iter().any(|(k, _, _)| k == "videoinput")>
                            "Camera"
                            <select data-testid="call-camera-select" on:change=move |ev| choose("videoinput", event_target_value(&ev))>
                                {move || options("videoinput")}
                            </select>
                        </label>
                    </div>
                </Show>
            </section>
        </Show>
    }
}
