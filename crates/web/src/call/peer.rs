//! The tab's side of a call: media, the peer connection, the media worker, and the phase the
//! call screen shows.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use tandem_core::AccountId;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};

use super::CallPhase;
use crate::device::command::CallNotice;
use crate::device::{ActionError, Command, Device, ErrorKind, Outcome};

/// How long the screen shows why a call ended.
const ENDED_SHOWN: Duration = Duration::from_secs(4);

/// How long this side's ICE candidates gather before they go in one message.
const CANDIDATE_BATCH: Duration = Duration::from_millis(30);

/// How many ICE restarts a call tries before it gives up on a lost connection.
const MAX_RESTARTS: u32 = 3;

/// How long a lost connection may wait for the other end's restart before the call ends.
const RECONNECT_WAIT: Duration = Duration::from_secs(20);

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn set(v: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(v, &key.into(), value);
}

/// Calls method `name` of `obj` with `args`.
fn call(obj: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = get(obj, name).dyn_into().map_err(|_| JsValue::from_str(name))?;
    f.apply(obj, &args.iter().collect::<Array>())
}

/// Awaits method `name` of `obj` (a promise).
async fn call_async(obj: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let p: js_sys::Promise = call(obj, name, args)?.dyn_into()?;
    JsFuture::from(p).await
}

fn js_error(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| get(e, "message").as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// A listener for a window event.
type EventListener = Closure<dyn FnMut(JsValue)>;

/// A listener for a worker's messages.
type MessageListener = Closure<dyn FnMut(web_sys::MessageEvent)>;

/// One call's media and connection.
struct Live {
    call_id: Cell<u64>,
    peer: AccountId,
    /// This device placed the call (so it is the one that restarts ICE).
    outgoing: bool,
    /// The ICE generation: one more per restart.
    generation: Cell<u32>,
    /// Restarts tried since the connection was last up.
    restarts: Cell<u32>,
    /// A send of the gathered candidates is on its way.
    flush_scheduled: Cell<bool>,
    pc: JsValue,
    local: JsValue,
    /// The fingerprint the other end's encrypted offer or answer named.
    expected_fingerprint: RefCell<Vec<u8>>,
    /// Remote candidates that came before the remote description.
    early_candidates: RefCell<Vec<String>>,
    /// This side's candidates gathered before the call had an id.
    unsent: RefCell<Vec<String>>,
    remote_set: Cell<bool>,
    checked: Cell<bool>,
    _closures: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// A ringing call's offer, until it is answered or ends.
#[derive(Clone)]
struct Ring {
    call_id: u64,
    peer: AccountId,
    sdp: String,
    fingerprint: Vec<u8>,
    secret: Vec<u8>,
    video: bool,
    candidates: Vec<String>,
}

/// The calls of this tab.
pub struct Calls {
    device: Device,
    /// What the call screen shows.
    pub phase: RwSignal<CallPhase>,
    /// The other end's media.
    pub remote: RwSignal<Option<SendWrapper<web_sys::MediaStream>>>,
    /// This side's camera, for the preview.
    pub local: RwSignal<Option<SendWrapper<web_sys::MediaStream>>>,
    /// The microphone is off.
    pub muted: RwSignal<bool>,
    /// The camera is off.
    pub camera_off: RwSignal<bool>,
    /// The media worker's frame counts: protected, opened, dropped, passed in clear.
    pub frames: RwSignal<[f64; 4]>,
    /// Which AES-GCM the media worker runs video frames through: "webcrypto" (hardware AES)
    /// or "wasm" (a browser without WebCrypto in workers); empty before a call is keyed.
    pub video_aes: RwSignal<String>,
    /// From the connection's statistics: the received audio's total energy and the video
    /// frames decoded (the call screen exposes them for tests and diagnostics).
    pub inbound: RwSignal<[f64; 2]>,
    /// The other end's microphone is off.
    pub remote_muted: RwSignal<bool>,
    /// The other end's camera is off.
    pub remote_camera_off: RwSignal<bool>,
    /// The connection was lost and is being restarted.
    pub reconnecting: RwSignal<bool>,
    /// The call's ICE generation (one more per restart).
    pub ice_generation: RwSignal<u32>,
    /// The ringtone plays.
    pub ringtone: RwSignal<bool>,
    /// A problem to show on the call screen without ending the call.
    pub note: RwSignal<String>,
    /// The microphones and cameras this browser has: (kind, device id, label).
    pub inputs: RwSignal<Vec<(String, String, String)>>,
    /// The microphone and camera in use (device ids).
    pub chosen: RwSignal<(String, String)>,
    ringer: RefCell<Option<JsValue>>,
    /// The browser notification of the call ringing while the tab is in the background.
    ring_notice: RefCell<Option<RingNotice>>,
    /// The relay's ICE servers and until when their TURN credentials hold (ms).
    ice: RefCell<Option<(Array, f64)>>,
    _online: RefCell<Option<EventListener>>,
    live: RefCell<Option<Rc<Live>>>,
    ring: RefCell<Option<Ring>>,
    worker: RefCell<Option<web_sys::Worker>>,
    me: RefCell<std::rc::Weak<Calls>>,
    names: RefCell<Vec<(AccountId, String)>>,
    _worker_listener: RefCell<Option<MessageListener>>,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls").finish_non_exhaustive()
    }
}

impl Calls {
    /// The calls of `device` in this tab.
    pub fn new(device: Device) -> Rc<Self> {
        let calls = Rc::new(Self {
            device,
            phase: RwSignal::new(CallPhase::Idle),
            remote: RwSignal::new(None),
            local: RwSignal::new(None),
            muted: RwSignal::new(false),
            camera_off: RwSignal::new(false),
            frames: RwSignal::new([0.0; 4]),
            video_aes: RwSignal::new(String::new()),
            inbound: RwSignal::new([0.0; 2]),
            remote_muted: RwSignal::new(false),
            remote_camera_off: RwSignal::new(false),
            reconnecting: RwSignal::new(false),
            ice_generation: RwSignal::new(0),
            ringtone: RwSignal::new(false),
            note: RwSignal::new(String::new()),
            inputs: RwSignal::new(Vec::new()),
            chosen: RwSignal::new((String::new(), String::new())),
            ringer: RefCell::new(None),
            ring_notice: RefCell::new(None),
            ice: RefCell::new(None),
            _online: RefCell::new(None),
            live: RefCell::new(None),
            ring: RefCell::new(None),
            worker: RefCell::new(None),
            me: RefCell::new(std::rc::Weak::new()),
            names: RefCell::new(Vec::new()),
            _worker_listener: RefCell::new(None),
        });
        *calls.me.borrow_mut() = Rc::downgrade(&calls);
        // A network change (back online, another network): the caller restarts ICE at once.
        let weak = Rc::downgrade(&calls);
        let online = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            if let Some(calls) = weak.upgrade() {
                spawn_local(async move { calls.network_changed().await });
            }
        });
        if let Some(w) = web_sys::window() {
            let _ = w.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
        }
        *calls._online.borrow_mut() = Some(online);
        calls
    }

    async fn name(&self, peer: AccountId) -> String {
        if let Some((_, n)) = self.names.borrow().iter().find(|(a, _)| *a == peer) {
            return n.clone();
        }
        let n = self.device.name_of(peer).await;
        self.names.borrow_mut().push((peer, n.clone()));
        n
    }

    /// The media worker, started once per tab.
    async fn worker(&self) -> Result<web_sys::Worker, String> {
        if let Some(w) = self.worker.borrow().as_ref() {
            return Ok(w.clone());
        }
        let glue = crate::device::worker::glue_url()
            .ok_or_else(|| "this page does not name its script".to_owned())?;
        let script = web_sys::Url::new_with_base("static/media-worker.js", &glue)
            .map_err(|_| "no address for the media worker".to_owned())?
            .href();
        let options = web_sys::WorkerOptions::new();
        options.set_type(web_sys::WorkerType::Module);
        let worker = web_sys::Worker::new_with_options(&script, &options)
            .map_err(|_| "this browser cannot start the media worker".to_owned())?;
        let (tx, rx) = futures_channel::oneshot::channel::<Result<(), String>>();
        let tx = RefCell::new(Some(tx));
        let frames = self.frames;
        let video_aes = self.video_aes;
        let listener =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                let data = ev.data();
                if get(&data, "ready").is_truthy() {
                    if let Some(tx) = tx.borrow_mut().take() {
                        let _ = tx.send(Ok(()));
                    }
                } else if let Some(e) = get(&data, "failed").as_string() {
                    if let Some(tx) = tx.borrow_mut().take() {
                        let _ = tx.send(Err(e));
                    }
                } else if let Ok(counts) = get(&data, "counts").dyn_into::<Array>() {
                    let mut out = [0.0; 4];
                    for (i, v) in counts.iter().take(4).enumerate() {
                        out[i] = v.as_f64().unwrap_or(0.0);
                    }
                    frames.set(out);
                    let aes = get(&data, "aes").as_string().unwrap_or_default();
                    if video_aes.get_untracked() != aes {
                        video_aes.set(aes);
                    }
                }
            });
        worker.set_onmessage(Some(listener.as_ref().unchecked_ref()));
        let message = Object::new();
        set(&message, "glue", &glue.into());
        set(&message, "module", &wasm_bindgen::module());
        worker.post_message(&message).map_err(|e| js_error(&e))?;
        match crate::transport::within(Duration::from_secs(20), rx).await {
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(e))) => return Err(format!("the media worker failed: {e}")),
            _ => return Err("the media worker did not start".into()),
        }
        *self._worker_listener.borrow_mut() = Some(listener);
        *self.worker.borrow_mut() = Some(worker.clone());
        Ok(worker)
    }

    fn post_key(&self, secret: &[u8], caller: bool) {
        if let Some(w) = self.worker.borrow().as_ref() {
            let m = Object::new();
            set(&m, "key", &Uint8Array::from(secret).into());
            set(&m, "caller", &caller.into());
            let _ = w.post_message(&m);
        }
    }

    /// A notice from the engine about a call.
    pub fn on_notice(self: &Rc<Self>, notice: CallNotice) {
        let me = self.clone();
        spawn_local(async move { me.handle(notice).await });
    }

    async fn handle(self: &Rc<Self>, notice: CallNotice) {
        match notice {
            CallNotice::Ringing { call_id, peer, video, sdp, fingerprint, secret } => {
                let Ok(peer) = AccountId::from_bytes(&peer) else { return };
                if self.live.borrow().is_some() || self.ring.borrow().is_some() {
                    return;
                }
                *self.ring.borrow_mut() = Some(Ring {
                    call_id,
                    peer,
                    sdp,
                    fingerprint,
                    secret,
                    video,
                    candidates: Vec::new(),
                });
                let name = self.name(peer).await;
                *self.ring_notice.borrow_mut() = ring_notification(&name, video);
                self.phase.set(CallPhase::Incoming { call_id, name, video });
            }
            CallNotice::Answered { call_id, sdp, fingerprint, secret, .. } => {
                let Some(live) = self.live.borrow().clone() else { return };
                if live.call_id.get() != call_id {
                    return;
                }
                *live.expected_fingerprint.borrow_mut() = fingerprint;
                self.post_key(&secret, true);
                let name = self.name(live.peer).await;
                self.phase.set(CallPhase::Connecting { name });
                let desc = Object::new();
                set(&desc, "type", &"answer".into());
                set(&desc, "sdp", &sdp.into());
                if let Err(e) = call_async(&live.pc, "setRemoteDescription", &[desc.into()]).await {
                    self.fail(&format!("The answer could not be used: {}", js_error(&e))).await;
                    return;
                }
                live.remote_set.set(true);
                let early = std::mem::take(&mut *live.early_candidates.borrow_mut());
                for c in early {
                    add_candidate(&live.pc, &c).await;
                }
            }
            CallNotice::Candidates { call_id, candidates } => {
                if let Some(ring) = self.ring.borrow_mut().as_mut()
                    && ring.call_id == call_id
                {
                    ring.candidates.extend(candidates);
                    return;
                }
                let Some(live) = self.live.borrow().clone() else { return };
                if live.call_id.get() != call_id {
                    return;
                }
                if !live.remote_set.get() {
                    live.early_candidates.borrow_mut().extend(candidates);
                    return;
                }
                for c in candidates {
                    add_candidate(&live.pc, &c).await;
                }
            }
            CallNotice::Media { call_id, muted, camera_off } => {
                if self.live.borrow().as_ref().is_some_and(|l| l.call_id.get() == call_id) {
                    self.remote_muted.set(muted);
                    self.remote_camera_off.set(camera_off);
                }
            }
            CallNotice::Renegotiate { call_id, sdp, offer, generation } => {
                let Some(live) = self.live.borrow().clone() else { return };
                if live.call_id.get() == call_id {
                    self.renegotiated(&live, sdp, offer, generation).await;
                }
            }
            CallNotice::Elsewhere { peer, connected, .. } => {
                let Ok(peer) = AccountId::from_bytes(&peer) else { return };
                if self.live.borrow().is_some() {
                    return;
                }
                if self.ring.borrow().as_ref().is_some_and(|r| r.peer == peer) {
                    return;
                }
                let name = self.name(peer).await;
                let text = if connected {
                    format!("In a call with {name} on another device.")
                } else {
                    format!("Calling {name} from another device.")
                };
                self.phase.set(CallPhase::Elsewhere { text });
            }
            CallNotice::Ended { call_id, reason, security, .. } => {
                let ringing = self.ring.borrow().as_ref().is_some_and(|r| r.call_id == call_id);
                let live = self.live.borrow().as_ref().is_some_and(|l| l.call_id.get() == call_id);
                if ringing {
                    self.ring.borrow_mut().take();
                }
                if live {
                    self.teardown();
                }
                if ringing
                    || live
                    || matches!(self.phase.get_untracked(), CallPhase::Elsewhere { .. })
                {
                    self.show_ended(reason, security);
                }
            }
        }
    }

    /// Shows `text` on the call screen for a few seconds; the call goes on.
    pub fn say(&self, text: String) {
        self.note.set(text.clone());
        let note = self.note;
        spawn_local(async move {
            crate::transport::sleep(ENDED_SHOWN).await;
            if note.get_untracked() == text {
                note.set(String::new());
            }
        });
    }

    fn show_ended(self: &Rc<Self>, text: String, security: bool) {
        self.phase.set(CallPhase::Ended { text: text.clone(), security });
        let phase = self.phase;
        spawn_local(async move {
            crate::transport::sleep(ENDED_SHOWN).await;
            if matches!(phase.get_untracked(), CallPhase::Ended { text: t, .. } if t == text) {
                phase.set(CallPhase::Idle);
            }
        });
    }

    async fn fail(self: &Rc<Self>, text: &str) {
        self.end_here(text.to_owned(), false).await;
    }

    /// Ends this tab's call from this side: media and keys go, the other end is told
    /// (`security`: because the connection failed the end-to-end check), `text` is shown.
    async fn end_here(self: &Rc<Self>, text: String, security: bool) {
        let call_id = self.live.borrow().as_ref().map(|l| l.call_id.get());
        self.teardown();
        if let Some(call_id) = call_id.filter(|id| *id != 0) {
            let _ = self.device.run(Command::HangUp { call_id, security_failure: security }).await;
        }
        self.show_ended(text, security);
    }

    /// Calls `peer` (named `name`).
    pub async fn start(
        self: &Rc<Self>,
        peer: AccountId,
        name: String,
        video: bool,
    ) -> Result<(), ActionError> {
        if self.live.borrow().is_some() || self.ring.borrow().is_some() {
            return Err(ActionError::invalid("You are already in a call."));
        }
        ask_notification_permission();
        self.phase.set(CallPhase::Calling { name: name.clone(), video });
        let result = async {
            let live = self.connect(peer, video, true).await?;
            let sdp =
                local_description(&live.pc, "createOffer", &[]).await.map_err(|e| failed(&e))?;
            *self.live.borrow_mut() = Some(live.clone());
            let placed =
                self.device.run(Command::PlaceCall { peer: peer.0.to_vec(), sdp, video }).await?;
            let Outcome::CallPlaced { call_id, devices } = placed else {
                return Err(ActionError::unexpected("call"));
            };
            if devices == 0 {
                return Err(ActionError::new(
                    ErrorKind::Failed,
                    format!("{name} has no device that can take calls."),
                ));
            }
            live.call_id.set(call_id);
            let unsent = std::mem::take(&mut *live.unsent.borrow_mut());
            if !unsent.is_empty() {
                let _ = self
                    .device
                    .run(Command::CallCandidates { call_id, candidates: unsent, generation: 0 })
                    .await;
            }
            Ok(())
        }
        .await;
        if let Err(e) = &result {
            self.teardown();
            self.show_ended(e.message.clone(), false);
        }
        result
    }

    /// Answers the call ringing here.
    pub async fn answer(self: &Rc<Self>) {
        let Some(ring) = self.ring.borrow_mut().take() else { return };
        ask_notification_permission();
        let name = self.name(ring.peer).await;
        self.phase.set(CallPhase::Connecting { name });
        let result = async {
            let live = self.connect(ring.peer, ring.video, false).await?;
            live.call_id.set(ring.call_id);
            *live.expected_fingerprint.borrow_mut() = ring.fingerprint.clone();
            *self.live.borrow_mut() = Some(live.clone());
            self.post_key(&ring.secret, false);
            let desc = Object::new();
            set(&desc, "type", &"offer".into());
            set(&desc, "sdp", &ring.sdp.clone().into());
            call_async(&live.pc, "setRemoteDescription", &[desc.into()])
                .await
                .map_err(|e| failed(&e))?;
            live.remote_set.set(true);
            let sdp =
                local_description(&live.pc, "createAnswer", &[]).await.map_err(|e| failed(&e))?;
            self.device
                .run(Command::AnswerCall { call_id: ring.call_id, sdp, video: ring.video })
                .await?;
            for c in &ring.candidates {
                add_candidate(&live.pc, c).await;
            }
            let unsent = std::mem::take(&mut *live.unsent.borrow_mut());
            if !unsent.is_empty() {
                let _ = self
                    .device
                    .run(Command::CallCandidates {
                        call_id: ring.call_id,
                        candidates: unsent,
                        generation: 0,
                    })
                    .await;
            }
            Ok::<(), ActionError>(())
        }
        .await;
        if let Err(e) = result {
            self.teardown();
            let _ = self.device.run(Command::DeclineCall { call_id: ring.call_id }).await;
            self.show_ended(e.message, false);
        }
    }

    /// Declines the call ringing here.
    pub async fn decline(self: &Rc<Self>) {
        let Some(ring) = self.ring.borrow_mut().take() else { return };
        ask_notification_permission();
        let _ = self.device.run(Command::DeclineCall { call_id: ring.call_id }).await;
        self.phase.set(CallPhase::Idle);
    }

    /// Hangs up (or stops calling).
    pub async fn hang_up(self: &Rc<Self>) {
        let text = crate::text::call_ended(tandem_core::calls::EndReason::HungUp);
        self.end_here(text.into(), false).await;
    }

    /// Turns the microphone off or on.
    pub fn toggle_mute(&self) {
        let muted = !self.muted.get_untracked();
        self.set_tracks("getAudioTracks", !muted);
        self.muted.set(muted);
        self.tell_media();
    }

    /// Turns the camera off or on.
    pub fn toggle_camera(&self) {
        let off = !self.camera_off.get_untracked();
        self.set_tracks("getVideoTracks", !off);
        self.camera_off.set(off);
        self.tell_media();
    }

    /// Tells the other end (its screen shows it) that the microphone or camera changed.
    fn tell_media(&self) {
        let Some(call_id) = self.live.borrow().as_ref().map(|l| l.call_id.get()) else { return };
        if call_id == 0 {
            return;
        }
        let (muted, camera_off) = (self.muted.get_untracked(), self.camera_off.get_untracked());
        let device = self.device.clone();
        spawn_local(async move {
            let _ = device.run(Command::CallMedia { call_id, muted, camera_off }).await;
        });
    }

    /// The microphones and cameras this browser has (labels once it allowed this page one).
    pub async fn list_inputs(&self) {
        let Some(media) = web_sys::window().and_then(|w| w.navigator().media_devices().ok()) else {
            return;
        };
        let Ok(list) = call_async(&media, "enumerateDevices", &[]).await else { return };
        let Ok(list) = list.dyn_into::<Array>() else { return };
        let inputs = list
            .iter()
            .filter_map(|d| {
                let kind = get(&d, "kind").as_string()?;
                if kind != "audioinput" && kind != "videoinput" {
                    return None;
                }
                let id = get(&d, "deviceId").as_string()?;
                let label = get(&d, "label").as_string().filter(|l| !l.is_empty());
                let label = label.unwrap_or_else(|| {
                    if kind == "audioinput" { "Microphone" } else { "Camera" }.to_owned()
                });
                Some((kind, id, label))
            })
            .collect();
        self.inputs.set(inputs);
        if let Some(live) = self.live.borrow().as_ref() {
            let id = |which: &str| {
                call(&live.local, which, &[])
                    .ok()
                    .and_then(|t| t.dyn_into::<Array>().ok())
                    .and_then(|t| {
                        let track = t.get(0);
                        let settings = call(&track, "getSettings", &[]).ok()?;
                        get(&settings, "deviceId").as_string()
                    })
                    .unwrap_or_default()
            };
            self.chosen.set((id("getAudioTracks"), id("getVideoTracks")));
        }
    }

    /// Switches the call to another microphone (`kind` "audioinput") or camera
    /// ("videoinput"): the new track replaces the old one in the running connection, with the
    /// same end-to-end transform.
    pub async fn use_input(&self, kind: &str, device_id: String) -> Result<(), ActionError> {
        let Some(live) = self.live.borrow().clone() else { return Ok(()) };
        let media = web_sys::window()
            .and_then(|w| w.navigator().media_devices().ok())
            .ok_or_else(|| ActionError::unexpected("media devices"))?;
        let (track_kind, getter) = if kind == "audioinput" {
            ("audio", "getAudioTracks")
        } else {
            ("video", "getVideoTracks")
        };
        let exact = Object::new();
        set(&exact, "exact", &device_id.clone().into());
        let wanted = Object::new();
        set(&wanted, "deviceId", &exact);
        let constraints = Object::new();
        set(&constraints, track_kind, &wanted);
        let stream =
            call_async(&media, "getUserMedia", &[constraints.into()]).await.map_err(|e| {
                ActionError::new(
                    ErrorKind::Failed,
                    format!("Tandem could not switch to that device: {}.", js_error(&e)),
                )
            })?;
        let fresh = call(&stream, getter, &[])
            .ok()
            .and_then(|t| t.dyn_into::<Array>().ok())
            .map(|t| t.get(0))
            .filter(|t| !t.is_undefined())
            .ok_or_else(|| ActionError::new(ErrorKind::Failed, "That device gave no media."))?;
        let enabled = if track_kind == "audio" {
            !self.muted.get_untracked()
        } else {
            !self.camera_off.get_untracked()
        };
        set(&fresh, "enabled", &enabled.into());
        let senders: Array =
            call(&live.pc, "getSenders", &[]).and_then(|s| s.dyn_into()).unwrap_or_default();
        let sender = senders
            .iter()
            .find(|s| get(&get(s, "track"), "kind").as_string().as_deref() == Some(track_kind));
        let Some(sender) = sender else {
            let _ = call(&fresh, "stop", &[]);
            return Err(ActionError::invalid("This call has no such media to switch."));
        };
        call_async(&sender, "replaceTrack", std::slice::from_ref(&fresh))
            .await
            .map_err(|e| failed(&e))?;
        if let Ok(old) = call(&live.local, getter, &[]).and_then(|t| t.dyn_into::<Array>()) {
            for t in old.iter() {
                let _ = call(&live.local, "removeTrack", std::slice::from_ref(&t));
                let _ = call(&t, "stop", &[]);
            }
        }
        let _ = call(&live.local, "addTrack", &[fresh]);
        self.chosen.update(
            |(a, v)| {
                if track_kind == "audio" { *a = device_id } else { *v = device_id }
            },
        );
        Ok(())
    }

    /// Starts or stops the ringtone (two tones, a second and a bit on, two off, for as long
    /// as a call may ring).
    pub fn set_ringing(&self, on: bool) {
        if !on {
            if let Some(ctx) = self.ringer.borrow_mut().take() {
                let _ = call(&ctx, "close", &[]);
            }
            if let Some((n, _on_click)) = self.ring_notice.borrow_mut().take() {
                let _ = call(&n, "close", &[]);
            }
            self.ringtone.set(false);
            return;
        }
        if self.ringer.borrow().is_some() {
            return;
        }
        let Ok(ctor) = get(&js_sys::global(), "AudioContext").dyn_into::<Function>() else {
            return;
        };
        let Ok(ctx) = Reflect::construct(&ctor, &Array::new()) else { return };
        let tone = || -> Result<(), JsValue> {
            let gain = call(&ctx, "createGain", &[])?;
            let level = get(&gain, "gain");
            set(&level, "value", &0.0.into());
            call(&gain, "connect", &[get(&ctx, "destination")])?;
            for hz in [440.0, 480.0] {
                let osc = call(&ctx, "createOscillator", &[])?;
                set(&get(&osc, "frequency"), "value", &JsValue::from_f64(hz));
                call(&osc, "connect", std::slice::from_ref(&gain))?;
                call(&osc, "start", &[])?;
            }
            let t0 = get(&ctx, "currentTime").as_f64().unwrap_or(0.0);
            let cycles = tandem_core::calls::RING_TIMEOUT.as_secs() / 3 + 1;
            for i in 0..cycles {
                #[allow(clippy::cast_precision_loss)] // at most a few dozen cycles
                let on = t0 + (i as f64) * 3.0;
                call(&level, "setValueAtTime", &[0.08.into(), on.into()])?;
                call(&level, "setValueAtTime", &[0.0.into(), (on + 1.2).into()])?;
            }
            Ok(())
        };
        if tone().is_err() {
            let _ = call(&ctx, "close", &[]);
            return;
        }
        // A page the person never touched may not play sound yet: the tone starts once it may.
        let ringtone = self.ringtone;
        let ctx_for_state = ctx.clone();
        spawn_local(async move {
            let _ = call_async(&ctx_for_state, "resume", &[]).await;
            let running = get(&ctx_for_state, "state").as_string().as_deref() == Some("running");
            ringtone.set(running);
        });
        *self.ringer.borrow_mut() = Some(ctx);
    }

    /// The relay's STUN and TURN servers as an `RTCIceServer` list, fetched once and again
    /// when the TURN credentials are about to expire. Without an answer (the relay is
    /// slow), an empty list: the call still connects by host candidates where it can.
    async fn ice_servers(&self) -> JsValue {
        let fresh = |until: f64| until == 0.0 || until - now_ms() > 10.0 * 60.0 * 1000.0;
        if let Some((list, until)) = self.ice.borrow().as_ref()
            && fresh(*until)
        {
            return list.clone().into();
        }
        let asked =
            crate::transport::within(Duration::from_secs(3), self.device.run(Command::IceServers));
        let Some(Ok(Outcome::IceServers { servers, expires_ms })) = asked.await else {
            return Array::new().into();
        };
        let list = Array::new();
        for s in servers {
            let server = Object::new();
            let urls: Array = s.urls.iter().map(|u| JsValue::from_str(u)).collect();
            set(&server, "urls", &urls);
            if !s.username.is_empty() {
                set(&server, "username", &s.username.into());
                set(&server, "credential", &s.credential.into());
            }
            list.push(&server);
        }
        #[allow(clippy::cast_precision_loss)] // milliseconds since the epoch fit an f64 exactly
        let until = expires_ms as f64;
        *self.ice.borrow_mut() = Some((list.clone(), until));
        list.into()
    }

    /// Ends whatever this tab's calls hold (media, ringtone, the network listener), when the
    /// device they belong to is replaced.
    pub fn close(&self) {
        self.teardown();
        self.set_ringing(false);
        if let (Some(w), Some(online)) = (web_sys::window(), self._online.borrow_mut().take()) {
            let _ =
                w.remove_event_listener_with_callback("online", online.as_ref().unchecked_ref());
        }
        if let Some(w) = self.worker.borrow_mut().take() {
            w.terminate();
        }
    }

    /// The network changed: the caller restarts ICE on a call that is up.
    async fn network_changed(self: &Rc<Self>) {
        let Some(live) = self.live.borrow().clone() else { return };
        if live.outgoing && live.remote_set.get() && live.call_id.get() != 0 {
            self.restart_ice(&live).await;
        }
    }

    /// The caller's side of an ICE restart: a new offer through the encrypted signalling.
    async fn restart_ice(self: &Rc<Self>, live: &Rc<Live>) {
        let generation = live.generation.get() + 1;
        live.generation.set(generation);
        live.restarts.set(live.restarts.get() + 1);
        let options = Object::new();
        set(&options, "iceRestart", &true.into());
        let sdp = match local_description(&live.pc, "createOffer", &[options.into()]).await {
            Ok(sdp) => sdp,
            Err(e) => {
                self.fail(&crate::text::restart_failed(&js_error(&e))).await;
                return;
            }
        };
        self.ice_generation.set(generation);
        let call_id = live.call_id.get();
        let _ = self
            .device
            .run(Command::RenegotiateCall { call_id, sdp, offer: true, generation })
            .await;
    }

    /// The other end's new offer (this device answers it) or its answer to this device's.
    async fn renegotiated(
        self: &Rc<Self>,
        live: &Rc<Live>,
        sdp: String,
        offer: bool,
        generation: u32,
    ) {
        let desc = Object::new();
        set(&desc, "type", &(if offer { "offer" } else { "answer" }).into());
        set(&desc, "sdp", &sdp.into());
        if let Err(e) = call_async(&live.pc, "setRemoteDescription", &[desc.into()]).await {
            self.fail(&crate::text::restart_failed(&js_error(&e))).await;
            return;
        }
        live.generation.set(generation);
        self.ice_generation.set(generation);
        if !offer {
            return;
        }
        match local_description(&live.pc, "createAnswer", &[]).await {
            Ok(sdp) => {
                let call_id = live.call_id.get();
                let _ = self
                    .device
                    .run(Command::RenegotiateCall { call_id, sdp, offer: false, generation })
                    .await;
            }
            Err(e) => {
                self.fail(&crate::text::restart_failed(&js_error(&e))).await;
            }
        }
    }

    /// The connection dropped (`failed`: for good): the caller restarts ICE (a few times);
    /// the callee waits for that restart. A call that does not come back ends.
    async fn connection_lost(self: &Rc<Self>, live: Rc<Live>, failed: bool) {
        self.reconnecting.set(true);
        if live.outgoing
            && live.restarts.get() < MAX_RESTARTS
            && (failed || live.restarts.get() == 0)
        {
            self.restart_ice(&live).await;
        }
        let started = now_ms();
        while now_ms() - started < RECONNECT_WAIT.as_secs_f64() * 1000.0 {
            crate::transport::sleep(Duration::from_millis(500)).await;
            let current = self.live.borrow().as_ref().is_some_and(|l| Rc::ptr_eq(l, &live));
            if !current {
                return;
            }
            if get(&live.pc, "connectionState").as_string().as_deref() == Some("connected") {
                return;
            }
        }
        self.fail("The call's connection was lost. Check your network and call again.").await;
    }

    fn set_tracks(&self, which: &str, enabled: bool) {
        if let Some(live) = self.live.borrow().as_ref()
            && let Ok(tracks) = call(&live.local, which, &[]).and_then(|t| t.dyn_into::<Array>())
        {
            for t in tracks.iter() {
                set(&t, "enabled", &enabled.into());
            }
        }
    }

    /// Makes the media, the peer connection and its transforms.
    async fn connect(
        self: &Rc<Self>,
        peer: AccountId,
        video: bool,
        outgoing: bool,
    ) -> Result<Rc<Live>, ActionError> {
        let worker = self.worker().await.map_err(|e| ActionError::new(ErrorKind::Failed, e))?;
        let window = web_sys::window().ok_or_else(|| ActionError::unexpected("window"))?;
        let media = window.navigator().media_devices().map_err(|_| {
            ActionError::new(
                ErrorKind::Failed,
                "This browser gives this page no camera or microphone (it needs https).",
            )
        })?;
        let constraints = Object::new();
        set(&constraints, "audio", &true.into());
        set(&constraints, "video", &video.into());
        let local = call_async(&media, "getUserMedia", &[constraints.into()]).await.map_err(|e| {
            ActionError::new(
                ErrorKind::Failed,
                format!(
                    "Tandem could not use your {}: {}. Allow it in the browser's site settings and try again.",
                    if video { "camera and microphone" } else { "microphone" },
                    js_error(&e)
                ),
            )
        })?;
        let config = Object::new();
        set(&config, "iceServers", &self.ice_servers().await);
        let ctor = get(&js_sys::global(), "RTCPeerConnection");
        let ctor: Function = ctor.dyn_into().map_err(|_| {
            ActionError::new(ErrorKind::Failed, "This browser cannot make calls (no WebRTC).")
        })?;
        let pc = Reflect::construct(&ctor, &Array::of1(&config)).map_err(|e| failed(&e))?;
        let script = get(&js_sys::global(), "RTCRtpScriptTransform");
        let Ok(script) = script.dyn_into::<Function>() else {
            let _ = call(&pc, "close", &[]);
            stop_tracks(&local);
            return Err(ActionError::new(
                ErrorKind::Failed,
                "This browser cannot encrypt call media end to end (no WebRTC Encoded Transform). Use a current Chromium, Chrome, Edge, Firefox or Safari.",
            ));
        };
        let tracks: Array =
            call(&local, "getTracks", &[]).and_then(|t| t.dyn_into()).unwrap_or_default();
        for track in tracks.iter() {
            let kind = get(&track, "kind").as_string().unwrap_or_default();
            let sender =
                call(&pc, "addTrack", &[track.clone(), local.clone()]).map_err(|e| failed(&e))?;
            let options = Object::new();
            set(&options, "side", &"send".into());
            set(&options, "kind", &kind.into());
            if let Ok(t) = Reflect::construct(&script, &Array::of2(&worker, &options)) {
                set(&sender, "transform", &t);
            }
        }
        prefer_vp8(&pc);
        // Receivers get their transform now, before any media arrives (Chromium inserts it
        // only into a receive stream that does not exist yet).
        if let Ok(transceivers) =
            call(&pc, "getTransceivers", &[]).and_then(|t| t.dyn_into::<Array>())
        {
            for t in transceivers.iter() {
                let receiver = get(&t, "receiver");
                let kind = get(&get(&receiver, "track"), "kind").as_string().unwrap_or_default();
                set_receive_transform(&script, &worker, &receiver, &kind);
            }
        }
        let live_weak: Rc<RefCell<std::rc::Weak<Live>>> = Rc::default();
        let mut closures: Vec<Closure<dyn FnMut(JsValue)>> = Vec::new();
        // Incoming tracks: open each through the worker, show the stream.
        let remote = self.remote;
        let worker_for_tracks = worker.clone();
        let script_for_tracks = script.clone();
        closures.push(Closure::new(move |ev: JsValue| {
            let receiver = get(&ev, "receiver");
            let current = get(&receiver, "transform");
            if current.is_null() || current.is_undefined() {
                let kind = get(&get(&ev, "track"), "kind").as_string().unwrap_or_default();
                set_receive_transform(&script_for_tracks, &worker_for_tracks, &receiver, &kind);
            }
            if let Ok(streams) = get(&ev, "streams").dyn_into::<Array>()
                && let Ok(stream) = streams.get(0).dyn_into::<web_sys::MediaStream>()
            {
                remote.set(Some(SendWrapper::new(stream)));
            }
        }));
        set(&pc, "ontrack", closures[0].as_ref());
        // This side's candidates: to the other end once the call has an id.
        let weak = live_weak.clone();
        let device = self.device.clone();
        closures.push(Closure::new(move |ev: JsValue| {
            let c = get(&ev, "candidate");
            let json = if c.is_null() || c.is_undefined() {
                String::new()
            } else {
                call(&c, "toJSON", &[])
                    .ok()
                    .and_then(|j| js_sys::JSON::stringify(&j).ok())
                    .and_then(|s| s.as_string())
                    .unwrap_or_default()
            };
            let Some(live) = weak.borrow().upgrade() else { return };
            live.unsent.borrow_mut().push(json);
            // Candidates come in bursts: one message per burst, not one per candidate.
            if live.call_id.get() == 0 || live.flush_scheduled.replace(true) {
                return;
            }
            let device = device.clone();
            let weak = Rc::downgrade(&live);
            spawn_local(async move {
                crate::transport::sleep(CANDIDATE_BATCH).await;
                let Some(live) = weak.upgrade() else { return };
                live.flush_scheduled.set(false);
                let candidates = std::mem::take(&mut *live.unsent.borrow_mut());
                let (call_id, generation) = (live.call_id.get(), live.generation.get());
                drop(live);
                let _ =
                    device.run(Command::CallCandidates { call_id, candidates, generation }).await;
            });
        }));
        set(&pc, "onicecandidate", closures[1].as_ref());
        // Connected: check the remote certificate, start the timer; failed: end.
        let weak = live_weak.clone();
        let me = self.me.borrow().clone();
        closures.push(Closure::new(move |_| {
            let (Some(live), Some(calls)) = (weak.borrow().upgrade(), me.upgrade()) else { return };
            let state = get(&live.pc, "connectionState").as_string().unwrap_or_default();
            match state.as_str() {
                "connected" if !live.checked.replace(true) => {
                    spawn_local(async move { calls.check_connection(live).await });
                }
                "connected" => {
                    live.restarts.set(0);
                    calls.reconnecting.set(false);
                }
                "failed" if !live.checked.get() => {
                    spawn_local(async move {
                        calls.fail("The call could not connect. Check your network (and the server's TURN settings) and try again.").await;
                    });
                }
                "disconnected" | "failed" => {
                    let failed = state == "failed";
                    spawn_local(async move { calls.connection_lost(live, failed).await });
                }
                _ => {}
            }
        }));
        set(&pc, "onconnectionstatechange", closures[2].as_ref());
        self.local.set(Some(SendWrapper::new(local.clone().unchecked_into())));
        self.muted.set(false);
        self.camera_off.set(!video);
        self.remote_muted.set(false);
        self.remote_camera_off.set(false);
        self.reconnecting.set(false);
        self.ice_generation.set(0);
        let live = Rc::new(Live {
            call_id: Cell::new(0),
            peer,
            outgoing,
            generation: Cell::new(0),
            restarts: Cell::new(0),
            flush_scheduled: Cell::new(false),
            pc,
            local,
            expected_fingerprint: RefCell::new(Vec::new()),
            early_candidates: RefCell::new(Vec::new()),
            unsent: RefCell::new(Vec::new()),
            remote_set: Cell::new(false),
            checked: Cell::new(false),
            _closures: closures,
        });
        *live_weak.borrow_mut() = Rc::downgrade(&live);
        Ok(live)
    }

    /// Connected: the remote DTLS certificate must be the one the encrypted offer or answer
    /// named; then the call is on.
    async fn check_connection(self: &Rc<Self>, live: Rc<Live>) {
        let expected = live.expected_fingerprint.borrow().clone();
        let seen = match remote_fingerprint(&live.pc).await {
            Some(seen) => Some(seen),
            None => transport_fingerprint(&live.pc),
        };
        let ok =
            seen.as_ref().is_some_and(|s| tandem_core::calls::fingerprints_match(s, &expected));
        if !ok {
            let text = crate::text::call_ended(tandem_core::calls::EndReason::SecurityFailure);
            self.end_here(text.into(), true).await;
            return;
        }
        let name = self.name(live.peer).await;
        self.phase.set(CallPhase::InCall { name, since: now_ms() });
        // What changed before the call connected reaches the other end now.
        if self.muted.get_untracked() || self.camera_off.get_untracked() {
            self.tell_media();
        }
        // The frame counts, for the screen (and tests).
        let worker = self.worker.borrow().clone();
        let weak = Rc::downgrade(&live);
        let inbound = self.inbound;
        inbound.set([0.0; 2]);
        spawn_local(async move {
            while let Some(live) = weak.upgrade() {
                if let Some(w) = &worker {
                    let m = Object::new();
                    set(&m, "stats", &true.into());
                    let _ = w.post_message(&m);
                }
                if let Some(figures) = inbound_stats(&live.pc).await {
                    inbound.set(figures);
                }
                drop(live);
                crate::transport::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Ends this tab's media and connection and forgets the keys.
    fn teardown(&self) {
        if let Some(live) = self.live.borrow_mut().take() {
            let _ = call(&live.pc, "close", &[]);
            stop_tracks(&live.local);
        }
        if let Some(w) = self.worker.borrow().as_ref() {
            let m = Object::new();
            set(&m, "end", &true.into());
            let _ = w.post_message(&m);
        }
        self.remote.set(None);
        self.local.set(None);
    }
}

/// Opens what `receiver` gets (of `kind`) through the media worker.
fn set_receive_transform(
    script: &Function,
    worker: &web_sys::Worker,
    receiver: &JsValue,
    kind: &str,
) {
    let options = Object::new();
    set(&options, "side", &"receive".into());
    set(&options, "kind", &kind.into());
    if let Ok(t) = Reflect::construct(script, &Array::of2(worker, &options)) {
        set(receiver, "transform", &t);
    }
}

/// Makes this side's offer or answer (`create`: `createOffer` or `createAnswer`, with
/// `options`), sets it as the local description, and returns its SDP.
async fn local_description(
    pc: &JsValue,
    create: &str,
    options: &[JsValue],
) -> Result<String, JsValue> {
    let description = call_async(pc, create, options).await?;
    call_async(pc, "setLocalDescription", &[description]).await?;
    Ok(get(&get(pc, "localDescription"), "sdp").as_string().unwrap_or_default())
}

fn failed(e: &JsValue) -> ActionError {
    ActionError::new(ErrorKind::Failed, format!("The call failed: {}.", js_error(e)))
}

fn stop_tracks(stream: &JsValue) {
    if let Ok(tracks) = call(stream, "getTracks", &[]).and_then(|t| t.dyn_into::<Array>()) {
        for t in tracks.iter() {
            let _ = call(&t, "stop", &[]);
        }
    }
}

async fn add_candidate(pc: &JsValue, json: &str) {
    let init = if json.is_empty() {
        JsValue::NULL
    } else {
        match js_sys::JSON::parse(json) {
            Ok(v) => v,
            Err(_) => return,
        }
    };
    let _ = call_async(pc, "addIceCandidate", &[init]).await;
}

/// VP8 first for video: the frame layer leaves its payload header in clear (see
/// `tandem_core::calls::clear_prefix`).
fn prefer_vp8(pc: &JsValue) {
    let caps = call(&get(&js_sys::global(), "RTCRtpSender"), "getCapabilities", &["video".into()]);
    let Ok(caps) = caps else { return };
    let Ok(codecs) = get(&caps, "codecs").dyn_into::<Array>() else { return };
    let vp8: Array = codecs
        .iter()
        .filter(|c| {
            get(c, "mimeType").as_string().is_some_and(|m| m.eq_ignore_ascii_case("video/VP8"))
        })
        .collect();
    if vp8.length() == 0 {
        return;
    }
    if let Ok(transceivers) = call(pc, "getTransceivers", &[]).and_then(|t| t.dyn_into::<Array>()) {
        for t in transceivers.iter() {
            let kind = get(&get(&get(&t, "sender"), "track"), "kind").as_string();
            if kind.as_deref() == Some("video") {
                let _ = call(&t, "setCodecPreferences", &[vp8.clone().into()]);
            }
        }
    }
}

/// The SHA-256 fingerprint of the remote DTLS certificate, from the connection's statistics
/// (Chromium reports certificates there).
async fn remote_fingerprint(pc: &JsValue) -> Option<Vec<u8>> {
    let stats = call_async(pc, "getStats", &[]).await.ok()?;
    let values: Array = call(&stats, "values", &[]).ok().map(|it| Array::from(&it))?;
    let by_id = |id: &str| values.iter().find(|s| get(s, "id").as_string().as_deref() == Some(id));
    let transport =
        values.iter().find(|s| get(s, "type").as_string().as_deref() == Some("transport"))?;
    let cert_id = get(&transport, "remoteCertificateId").as_string()?;
    let cert = by_id(&cert_id)?;
    if !get(&cert, "fingerprintAlgorithm").as_string()?.eq_ignore_ascii_case("sha-256") {
        return None;
    }
    tandem_core::calls::parse_fingerprint(&get(&cert, "fingerprint").as_string()?)
        .map(|f| f.to_vec())
}

/// The SHA-256 of the remote DTLS certificate from the senders' `RTCDtlsTransport`
/// (`getRemoteCertificates`, which Firefox has and its statistics lack). Every sender's
/// transport must show the same single certificate.
fn transport_fingerprint(pc: &JsValue) -> Option<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let senders: Array = call(pc, "getSenders", &[]).ok()?.dyn_into().ok()?;
    let mut seen: Option<Vec<u8>> = None;
    for sender in senders.iter() {
        let transport = get(&sender, "transport");
        let certs: Array = call(&transport, "getRemoteCertificates", &[]).ok()?.dyn_into().ok()?;
        if certs.length() != 1 {
            return None;
        }
        let der = Uint8Array::new(&certs.get(0)).to_vec();
        let digest = Sha256::digest(&der).to_vec();
        match &seen {
            Some(s) if *s != digest => return None,
            _ => seen = Some(digest),
        }
    }
    seen
}

/// The received audio's total energy and the video frames decoded so far.
async fn inbound_stats(pc: &JsValue) -> Option<[f64; 2]> {
    let stats = call_async(pc, "getStats", &[]).await.ok()?;
    let values: Array = call(&stats, "values", &[]).ok().map(|it| Array::from(&it))?;
    let mut out = [0.0; 2];
    for s in values.iter() {
        if get(&s, "type").as_string().as_deref() != Some("inbound-rtp") {
            continue;
        }
        match get(&s, "kind").as_string().as_deref() {
            Some("audio") => out[0] += get(&s, "totalAudioEnergy").as_f64().unwrap_or(0.0),
            Some("video") => out[1] += get(&s, "framesDecoded").as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    Some(out)
}

/// A notification shown and its click handler.
type RingNotice = (JsValue, Closure<dyn FnMut()>);

/// The first time someone uses calls (a click: browsers ask only then), the browser asks
/// whether Tandem may notify them of calls that ring while the tab is in the background.
fn ask_notification_permission() {
    let ctor = get(&js_sys::global(), "Notification");
    if get(&ctor, "permission").as_string().as_deref() == Some("default") {
        let _ = call(&ctor, "requestPermission", &[]);
    }
}

/// A browser notification for a call that rings while the tab is in the background (closed
/// when the ringing stops); a click on it brings the tab to the front. Returns it and its
/// click handler.
fn ring_notification(name: &str, video: bool) -> Option<RingNotice> {
    let hidden = web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.visibility_state() != web_sys::VisibilityState::Visible);
    let ctor = get(&js_sys::global(), "Notification");
    if !hidden || get(&ctor, "permission").as_string().as_deref() != Some("granted") {
        return None;
    }
    let ctor = ctor.dyn_into::<Function>().ok()?;
    let kind = if video { "video call" } else { "call" };
    let options = Object::new();
    set(&options, "body", &"Open Tandem to answer or decline.".into());
    set(&options, "tag", &"tandem-call".into());
    set(&options, "requireInteraction", &true.into());
    let title = JsValue::from_str(&format!("Incoming {kind} from {name}"));
    let n = Reflect::construct(&ctor, &Array::of2(&title, &options)).ok()?;
    let focus = Closure::<dyn FnMut()>::new(|| {
        if let Some(w) = web_sys::window() {
            let _ = w.focus();
        }
    });
    set(&n, "onclick", focus.as_ref());
    Some((n, focus))
}
