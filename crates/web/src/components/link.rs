//! Linking screens: the companion's code (QR and text), and the primary's "link a device".

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use tandem_core::link::LinkCode;

use crate::device::Device;
use crate::device::linking::LinkView;
use crate::text::link_problem as problem;
use crate::transport::now;
use crate::transport::now_ms;

/// Copies `text` to the clipboard (best effort; the text stays selectable anyway).
pub(crate) fn copy_to_clipboard(text: &str) {
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(text);
    }
}

/// The companion's screen: the code to scan or copy, and what happens next.
#[component]
pub(crate) fn LinkThisBrowser(
    /// What to show.
    view: ReadSignal<LinkView>,
    /// The last problem, for people.
    problem: ReadSignal<String>,
    /// The clock, for the countdown.
    now: ReadSignal<f64>,
    /// Show a new code after an expiry.
    on_restart: Callback<()>,
    /// Go back to the welcome screen.
    on_cancel: Callback<()>,
    /// The person saw the same code on both screens: join the account.
    on_confirm: Callback<()>,
    /// The codes differ: drop this link.
    on_reject: Callback<()>,
) -> impl IntoView {
    let body = move || {
        match view.get() {
        LinkView::Preparing => view! {
            <div class="link-wait" role="status" aria-busy="true">
                <span class="spinner" aria-hidden="true"></span>
                <p class="muted">"Getting a link code from the server…"</p>
            </div>
        }
        .into_any(),
        LinkView::Offline => view! {
            <div class="link-wait" role="status">
                <p class="muted">"Waiting for the connection to the server. A link code appears as soon as it is back."</p>
            </div>
        }
        .into_any(),
        LinkView::Expired => view! {
            <div class="link-wait" role="status">
                <p>"The link code expired before it was used."</p>
                <button class="button button-primary" data-testid="link-restart" on:click=move |_| on_restart.run(())>
                    "Show a new code"
                </button>
            </div>
        }
        .into_any(),
        LinkView::Confirm { matching, handle, primary } => view! {
            <div class="link-wait" role="group" aria-labelledby="companion-compare" data-testid="link-compare">
                <p id="companion-compare">{format!("Does {primary} show this code?")}</p>
                <p class="match-code" data-testid="companion-match-code">{matching}</p>
                <p class="muted small">{format!("Only if it does, this browser joins @{handle}. If the codes differ, someone else may be trying to link their device.")}</p>
                <div class="actions">
                    <button class="button button-primary" data-testid="link-match-yes" on:click=move |_| on_confirm.run(())>"Yes, it's the same"</button>
                    <button class="button button-quiet" data-testid="link-match-no" on:click=move |_| on_reject.run(())>"No, it's different"</button>
                </div>
            </div>
        }
        .into_any(),
        LinkView::Linking { matching, handle, primary } => view! {
            <div class="link-wait" role="status" aria-busy="true" data-testid="link-linking">
                <span class="spinner" aria-hidden="true"></span>
                <p>{format!("Linking to @{handle}…")}</p>
                <p class="muted">{format!("Check that {primary} shows the same code:")}</p>
                <p class="match-code" data-testid="companion-match-code">{matching}</p>
            </div>
        }
        .into_any(),
        LinkView::Code { text, svg, rotates_at_ms } => {
            let copy_text = text.clone();
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a few seconds")]
            let seconds = move || (((rotates_at_ms - now.get()) / 1000.0).round().max(0.0)) as u64;
            view! {
                <div class="link-code">
                    <div class="qr" role="img" aria-label="QR code to link this browser" inner_html=svg data-testid="link-qr"></div>
                    <div class="link-text">
                        <label for="link-code-text">"Or copy this text to your main device:"</label>
                        <textarea id="link-code-text" readonly rows="4" data-testid="link-code-text" spellcheck="false">{text.clone()}</textarea>
                        <div class="actions">
                            <button class="button button-small" on:click=move |_| copy_to_clipboard(&copy_text)>"Copy"</button>
                            <span class="muted small" aria-live="off">{move || format!("A new code in {} s", seconds())}</span>
                        </div>
                    </div>
                </div>
            }
            .into_any()
        }
    }
    };
    view! {
        <section class="card link-card" aria-labelledby="link-heading" data-testid="link-screen">
            <h2 id="link-heading">"Link this browser"</h2>
            <ol class="steps">
                <li>"On the device that has your Tandem account, open " <strong>"Devices"</strong> " and choose " <strong>"Link a device"</strong> "."</li>
                <li>"Scan this code, or paste the text below."</li>
                <li>"Confirm there. Both screens then show six digits: if they are the same, say yes on both."</li>
            </ol>
            {body}
            <p class="error" role="alert" data-testid="link-problem">{move || problem.get()}</p>
            <div class="actions">
                <button class="button button-quiet" on:click=move |_| on_cancel.run(())>"Back"</button>
            </div>
        </section>
    }
}

/// The primary's steps to link a companion.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    /// Paste (or scan) the code.
    Enter,
    /// Confirm the device.
    Confirm(String),
    /// Waiting for the passkey check.
    Approving,
    /// Sending the link message.
    Sending,
    /// Sent: the code to compare, and the link's key index.
    Compare(String, u32),
    /// Confirmed (or refused) and done: what to tell.
    Done(String),
}

/// Reads a QR code from the camera with the browser's `BarcodeDetector`, where it exists.
pub(crate) mod camera {
    use js_sys::{Array, Function, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    /// Whether this browser can scan QR codes.
    pub(crate) fn available() -> bool {
        web_sys::window().is_some_and(|w| {
            Reflect::has(&w, &JsValue::from_str("BarcodeDetector")).unwrap_or(false)
                && w.navigator().media_devices().is_ok()
        })
    }

    /// Opens the camera into `video`, and resolves with the first QR code's text (or an
    /// error sentence). Stops the camera either way.
    pub(crate) async fn scan(video: web_sys::HtmlVideoElement) -> Result<String, String> {
        let window = web_sys::window().ok_or("no window")?;
        let devices = window.navigator().media_devices().map_err(|_| "no camera access")?;
        let constraints = web_sys::MediaStreamConstraints::new();
        constraints.set_video(&JsValue::TRUE);
        let promise = devices
            .get_user_media_with_constraints(&constraints)
            .map_err(|_| "the camera could not be opened")?;
        let stream: web_sys::MediaStream = JsFuture::from(promise)
            .await
            .map_err(|_| "the camera is blocked; allow it in the site settings, or paste the text")?
            .unchecked_into();
        video.set_src_object(Some(&stream));
        let _ = video.play();
        let result = detect(&window, &video).await;
        for track in stream.get_tracks().iter() {
            if let Ok(t) = track.dyn_into::<web_sys::MediaStreamTrack>() {
                t.stop();
            }
        }
        video.set_src_object(None);
        result
    }

    async fn detect(
        window: &web_sys::Window,
        video: &web_sys::HtmlVideoElement,
    ) -> Result<String, String> {
        let ctor: Function = Reflect::get(window, &JsValue::from_str("BarcodeDetector"))
            .map_err(|_| "no QR scanner")?
            .unchecked_into();
        let options = js_sys::Object::new();
        let _ = Reflect::set(&options, &"formats".into(), &Array::of1(&"qr_code".into()));
        let detector = Reflect::construct(&ctor, &Array::of1(&options))
            .map_err(|_| "this browser cannot read QR codes; paste the text instead")?;
        let detect: Function = Reflect::get(&detector, &"detect".into())
            .map_err(|_| "no QR scanner")?
            .unchecked_into();
        // Up to two minutes, four looks a second.
        for _ in 0..480 {
            crate::transport::sleep(std::time::Duration::from_millis(250)).await;
            let Ok(p) = detect.call1(&detector, video) else { continue };
            let Ok(found) = JsFuture::from(Promise::from(p)).await else { continue };
            let found: Array = found.unchecked_into();
            if let Some(text) =
                found.iter().find_map(|c| Reflect::get(&c, &"rawValue".into()).ok()?.as_string())
            {
                return Ok(text);
            }
        }
        Err("No QR code was found. Hold the code steady in view, or paste the text.".into())
    }
}

/// The primary's "link a device": paste or scan the code, confirm, compare the digits.
#[component]
pub(crate) fn LinkDevice(
    /// The engine.
    engine: StoredValue<SendWrapper<Device>>,
    /// The account has all the companions it may have: no new link starts.
    at_cap: Signal<bool>,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let step = RwSignal::new(Step::Enter);
    let error = RwSignal::new(String::new());
    let code = StoredValue::new(None::<SendWrapper<LinkCode>>);
    let scanning = RwSignal::new(false);
    let video = NodeRef::<leptos::html::Video>::new();

    let read_code = move |raw: String| {
        error.set(String::new());
        let parsed = LinkCode::parse(&raw).and_then(|c| c.check_fresh(now()).map(|()| c));
        match parsed {
            Ok(c) => {
                let name =
                    if c.name.is_empty() { "A new device".to_owned() } else { c.name.clone() };
                code.set_value(Some(SendWrapper::new(c)));
                step.set(Step::Confirm(name));
            }
            Err(e) => error.set(problem(&e.into())),
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        read_code(text.get_untracked());
    };
    let scan = move |_| {
        let Some(el) = video.get() else { return };
        scanning.set(true);
        error.set(String::new());
        spawn_local(async move {
            let found = camera::scan(el).await;
            scanning.set(false);
            match found {
                Ok(t) => read_code(t),
                Err(e) => error.set(e),
            }
        });
    };
    let confirm = move |_| {
        let Some(c) = code.get_value() else { return };
        let Step::Confirm(name) = step.get_untracked() else { return };
        error.set(String::new());
        let e = engine.get_value();
        spawn_local(async move {
            // With a passkey enrolled, a link needs the person's fingerprint, face or screen
            // lock; nothing is signed or sent before that succeeded.
            match crate::passkey::enrolled().await {
                Ok(Some(passkey)) => {
                    step.set(Step::Approving);
                    if let Err(why) = crate::passkey::approve(&passkey).await {
                        error.set(format!("{why} The device was not linked."));
                        step.set(Step::Confirm(name));
                        return;
                    }
                }
                Ok(None) => {}
                Err(why) => {
                    error.set(format!(
                        "Your passkey setting could not be read ({why}); nothing was linked."
                    ));
                    step.set(Step::Confirm(name));
                    return;
                }
            }
            step.set(Step::Sending);
            match e.link_device(&c).await {
                Ok((matching, key_index)) => step.set(Step::Compare(matching, key_index)),
                Err(err) => {
                    error.set(err.message);
                    step.set(Step::Enter);
                }
            }
        });
    };
    // Only a link whose codes matched on both screens is signed into the account.
    let answer = move |same: bool| {
        let Step::Compare(matching, key_index) = step.get_untracked() else { return };
        error.set(String::new());
        let e = engine.get_value();
        step.set(Step::Sending);
        spawn_local(async move {
            let result =
                if same { e.confirm_link(key_index).await } else { e.reject_link(key_index).await };
            match result {
                Ok(()) if same => step.set(Step::Done(
                    "Linked. The new device appears in the list above as soon as it has finished."
                        .into(),
                )),
                Ok(()) => step.set(Step::Done(
                    "Not linked: that link is cancelled, and a device that used it was logged out."
                        .into(),
                )),
                Err(err) => {
                    error.set(err.message);
                    step.set(Step::Compare(matching, key_index));
                }
            }
        });
    };
    let restart = move |_| {
        text.set(String::new());
        code.set_value(None);
        error.set(String::new());
        step.set(Step::Enter);
    };
    view! {
        <section class="link-device" aria-labelledby="link-device-heading" data-testid="link-device">
            <h3 id="link-device-heading">"Link a device"</h3>
            {move || match step.get() {
                Step::Enter if at_cap.get() => view! {
                    <p class="note" data-testid="companion-cap">
                        "This account has 4 linked devices, the most it can have. Log one out to link another."
                    </p>
                }.into_any(),
                Step::Enter => view! {
                    <form class="server-form" on:submit=submit>
                        <p class="muted small">"On the new device, open Tandem and choose “Link to an account”. Then scan its QR code or paste its text here."</p>
                        <Show when=camera::available>
                            <button type="button" class="button" on:click=scan disabled=move || scanning.get()>
                                {move || if scanning.get() { "Looking for a QR code…" } else { "Scan with camera" }}
                            </button>
                        </Show>
                        <label for="link-input">"Link code"</label>
                        <textarea
                            id="link-input"
                            data-testid="link-input"
                            rows="3"
                            spellcheck="false"
                            placeholder="tandem-link:…"
                            prop:value=move || text.get()
                            on:input=move |ev| text.set(event_target_value(&ev))
                        ></textarea>
                        <div class="actions">
                            <button class="button button-primary" type="submit" data-testid="link-continue">"Continue"</button>
                        </div>
                    </form>
                }.into_any(),
                Step::Confirm(name) => view! {
                    <div class="confirm" role="group" aria-labelledby="confirm-heading">
                        <p id="confirm-heading">
                            "Link " <strong data-testid="link-device-name">{name}</strong> " to your account?"
                        </p>
                        <p class="muted small">"It will read and send your messages, even when this device is off. Only continue if you are holding both devices."</p>
                        <div class="actions">
                            <button class="button button-primary" data-testid="link-confirm" on:click=confirm>"Link device"</button>
                            <button class="button button-quiet" on:click=restart>"Cancel"</button>
                        </div>
                    </div>
                }.into_any(),
                Step::Approving => view! {
                    <p class="muted" role="status" aria-busy="true" data-testid="link-approving"><span class="spinner" aria-hidden="true"></span>" Confirm with your fingerprint, face or screen lock…"</p>
                }.into_any(),
                Step::Sending => view! {
                    <p class="muted" role="status" aria-busy="true"><span class="spinner" aria-hidden="true"></span>" Signing and sending the link…"</p>
                }.into_any(),
                Step::Compare(matching, _) => view! {
                    <div role="group" aria-labelledby="primary-compare">
                        <p id="primary-compare">"Does the new device show the same code?"</p>
                        <p class="match-code" data-testid="primary-match-code">{matching}</p>
                        <p class="muted small">"It joins your account only if you say yes here."</p>
                        <div class="actions">
                            <button class="button button-primary" data-testid="primary-match-yes" on:click=move |_| answer(true)>"Yes, it's the same"</button>
                            <button class="button button-quiet" data-testid="primary-match-no" on:click=move |_| answer(false)>"No, cancel the link"</button>
                        </div>
                    </div>
                }.into_any(),
                Step::Done(what) => view! {
                    <div role="status" data-testid="link-done">
                        <p>{what}</p>
                        <button class="button button-small" data-testid="link-another" on:click=restart>"Link another device"</button>
                    </div>
                }.into_any(),
            }}
            <video class="scanner" node_ref=video playsinline=true muted=true class:hidden=move || !scanning.get() aria-label="Camera view"></video>
            <p class="error" role="alert" data-testid="link-error">{move || error.get()}</p>
        </section>
    }
}

/// The time since `ms`, for people ("just now", "5 min ago", a date).
pub(crate) fn ago(ms: u64) -> String {
    #[allow(clippy::cast_precision_loss, reason = "epoch ms fit an f64 exactly")]
    let seconds = ((now_ms() - ms as f64) / 1000.0).max(0.0);
    match seconds {
        s if s < 90.0 => "just now".into(),
        s if s < 3600.0 => format!("{} min ago", (s / 60.0).round()),
        s if s < 86_400.0 => format!("{} h ago", (s / 3600.0).round()),
        #[allow(clippy::cast_precision_loss, reason = "epoch ms fit an f64 exactly")]
        _ => String::from(
            js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64))
                .to_locale_date_string("default", &js_sys::Object::new()),
        ),
    }
}
