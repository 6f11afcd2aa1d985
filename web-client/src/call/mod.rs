//! The call: one join of one room. Each concern has its module and owns
//! its state:
//!
//! - [`lifecycle`]: connect, join, errors, reconnect, leave;
//! - [`topology`]: the connections that carry media, [`Topology::Mesh`]
//!   (one per peer, with data channels) or [`Topology::Sfu`] (one, to the
//!   server);
//! - [`chat`]: relay and data-channel chat, receipts, typing;
//! - [`probes`]: pings on both paths, `getStats`, quality;
//! - [`controls`]: microphone, camera, screen, and announcing them.
//!
//! A call is shared as `Rc<Call>`. Components reach it through
//! [`ActiveCall`], which `App` provides by context; browser callbacks
//! (socket.io, peer connections, timers) hold a `Weak<Call>`, so a call that
//! was replaced is dropped and its late callbacks do nothing.

mod chat;
mod controls;
mod files;
mod host;
mod lifecycle;
mod probes;
mod recording;
mod speaker;
mod topology;

pub use files::human_size;
pub use lifecycle::resume_state;

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use protocol::{Mode, RoomName};
use wasm_bindgen::JsValue;
use web_sys::MediaStream;

use crate::signaling::Signaling;
use crate::state::Ui;

use chat::ChatState;
use controls::LocalMedia;
use files::Files;
use lifecycle::Lifecycle;
use probes::Probes;
use recording::Recording;
use speaker::Speakers;
use topology::Topology;

/// What the lobby hands over.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub room: String,
    pub name: String,
    pub mode: Mode,
    pub password: Option<String>,
    /// Join with the microphone on (else muted until the user unmutes).
    pub mic: bool,
    /// Join with the camera on.
    pub camera: bool,
    /// The devices picked in the lobby.
    pub devices: crate::media::Choice,
}

impl JoinParams {
    /// A join of `room` as `name`, microphone and camera on, default devices.
    pub fn new(room: String, name: String, mode: Mode) -> Self {
        Self {
            room,
            name,
            mode,
            password: None,
            mic: true,
            camera: true,
            devices: crate::media::Choice::default(),
        }
    }
}

/// One join of one room.
pub struct Call {
    /// The signals the view reads; the call is their only writer.
    ui: Ui,
    sig: Signaling,
    params: JoinParams,
    life: Lifecycle,
    topology: RefCell<Topology>,
    chat: ChatState,
    files: Files,
    probes: Probes,
    speakers: Speakers,
    recording: Recording,
    media: LocalMedia,
}

impl Call {
    fn is_room(&self, room: &RoomName) -> bool {
        room.as_str() == self.params.room
    }

    /// The room, for requests. Only sent after a join, which checked the name.
    fn room(&self) -> RoomName {
        RoomName::parse(&self.params.room)
            .unwrap_or_else(|_| RoomName::parse("invalid").expect("a constant valid room name"))
    }
}

/// The page's current call, for components: `App` provides it by context.
/// `Copy`; the call itself (not `Send`) stays in the reactive arena.
#[derive(Clone, Copy)]
pub struct ActiveCall {
    ui: Ui,
    /// The video codec to prefer, from `?codec=` when the page opened.
    codec: StoredValue<Option<String>>,
    current: StoredValue<Option<Rc<Call>>, LocalStorage>,
    /// What the last join asked for: "Rejoin" and "Try again" repeat it.
    last: StoredValue<Option<JoinParams>>,
}

impl ActiveCall {
    pub fn new(ui: Ui, codec: Option<String>) -> Self {
        Self {
            ui,
            codec: StoredValue::new(codec),
            current: StoredValue::new_local(None),
            last: StoredValue::new(None),
        }
    }

    /// Joins `params.room`: the call starts at once, and the camera and
    /// microphone (the lobby's preview when it is still live, or freshly
    /// acquired) join it as soon as they are ready, so connecting and
    /// joining overlap with the browser's media start-up.
    pub fn join(&self, params: JoinParams, preview: Option<MediaStream>, clicked_at: f64) {
        let live = |s: &MediaStream| {
            crate::media::tracks(s)
                .iter()
                .any(|t| crate::js::get_str(t.as_ref(), "readyState").as_deref() == Some("live"))
        };
        let preview = preview.filter(live);
        let pending = preview.is_none();
        let choice = params.devices.clone();
        self.last.set_value(Some(params.clone()));
        self.start(params, preview, pending, clicked_at);
        if pending {
            // The stream is for this call only: one that ended meanwhile
            // (left, refused, replaced) never gets it, and it is stopped.
            let asked = self.get().map(|c| Rc::downgrade(&c));
            let ui = self.ui;
            wasm_bindgen_futures::spawn_local(async move {
                let got = crate::media::acquire(&choice).await;
                match asked.and_then(|w| w.upgrade()).filter(|c| !c.is_over()) {
                    Some(call) => {
                        ui.media_notice.set(got.notice);
                        call.set_local_media(got.stream);
                    }
                    None => {
                        if let Some(s) = got.stream {
                            crate::media::stop(&s);
                        }
                    }
                }
            });
        }
    }

    /// Joins again with what the last join asked for, changed by `edit`
    /// (a password typed on the error screen, another mode).
    pub fn rejoin(&self, edit: impl FnOnce(&mut JoinParams)) {
        let Some(mut params) = self.last.get_value() else {
            return;
        };
        edit(&mut params);
        self.join(params, None, crate::js::now_ms());
    }

    /// What the last join asked for.
    pub fn last_params(&self) -> Option<JoinParams> {
        self.last.get_value()
    }

    /// Switches the camera or microphone during the call.
    pub fn switch_device(&self, kind: crate::media::Kind, device: String) {
        if let Some(c) = self.get() {
            let id = Some(device.clone());
            self.last.update_value(|p| {
                for p in p.iter_mut() {
                    match kind {
                        crate::media::Kind::Audio => p.devices.mic = id.clone(),
                        crate::media::Kind::Video => p.devices.camera = id.clone(),
                    }
                }
            });
            c.switch_device(kind, device);
        }
    }

    /// Ends the call without a trace (back to the lobby).
    pub fn end(&self) {
        if let Some(c) = self.current.try_update_value(Option::take).flatten() {
            c.leave();
        }
        // The next room starts with its own chat.
        self.ui.chat.set(Vec::new());
        self.ui.mode.set(None);
    }

    fn get(&self) -> Option<Rc<Call>> {
        self.current.try_get_value().flatten()
    }

    /// Starts a call (ending the previous one): fetch the ICE configuration,
    /// connect, join. With `media_pending`, the local stream arrives later
    /// through [`ActiveCall::set_local_media`].
    pub fn start(
        &self,
        params: JoinParams,
        local: Option<MediaStream>,
        media_pending: bool,
        clicked_at: f64,
    ) {
        if let Some(old) = self.current.try_update_value(Option::take).flatten() {
            old.shutdown();
        }
        let codec = self.codec.get_value();
        let call = Call::start(self.ui, params, local, codec, media_pending, clicked_at);
        self.current.set_value(Some(call));
    }

    /// Sends a chat message over the path the chat panel selects.
    pub fn send_chat(&self, text: String) -> Result<(), String> {
        self.get()
            .ok_or_else(|| "not in a room".to_owned())?
            .send_chat(text)
    }

    /// A keystroke in the chat box.
    pub fn typed(&self) {
        if let Some(c) = self.get() {
            c.typed();
        }
    }

    pub fn toggle_mic(&self) {
        if let Some(c) = self.get() {
            c.toggle_mic();
            // "Rejoin" keeps the microphone as the user left it.
            let on = self.ui.mic_on.get_untracked();
            self.last
                .update_value(|p| p.iter_mut().for_each(|p| p.mic = on));
        }
    }

    pub fn toggle_camera(&self) {
        if let Some(c) = self.get() {
            c.toggle_camera();
            let on = self.ui.cam_on.get_untracked();
            self.last
                .update_value(|p| p.iter_mut().for_each(|p| p.camera = on));
        }
    }

    pub fn toggle_screen(&self) {
        if let Some(c) = self.get() {
            c.toggle_screen();
        }
    }

    pub fn leave(&self) {
        if let Some(c) = self.get() {
            c.leave();
        }
    }

    /// A host control (`kick`, `lock`, `mute-request`): `fields` besides
    /// the room.
    pub fn host(&self, event: &'static str, fields: serde_json::Value) {
        if let Some(c) = self.get() {
            c.host_request(event, fields);
        }
    }

    /// Sends `file` to `to` (a peer id), or to everyone when `None`.
    pub fn send_file(&self, file: web_sys::File, to: Option<String>) -> Result<(), String> {
        self.get()
            .filter(|c| c.self_id().is_some())
            .ok_or_else(|| "not in a room".to_owned())?
            .send_file(file, to)
    }

    /// Cancels the transfer shown as `key`.
    pub fn cancel_file(&self, key: &str) {
        if let Some(c) = self.get() {
            c.cancel_file(key);
        }
    }

    /// Starts or stops recording the call in this browser.
    pub fn toggle_recording(&self) {
        if let Some(c) = self.get().filter(|c| c.self_id().is_some()) {
            c.toggle_recording();
        }
    }

    pub fn toggle_hand(&self) {
        if let Some(c) = self.get().filter(|c| c.self_id().is_some()) {
            c.toggle_hand();
        }
    }

    pub fn react(&self, emoji: &str) {
        if let Some(c) = self.get().filter(|c| c.self_id().is_some()) {
            c.react(emoji);
        }
    }

    /// The screen we share, while we do.
    pub fn screen_stream(&self) -> Option<MediaStream> {
        self.get().and_then(|c| c.screen_stream())
    }

    /// The camera/microphone stream (not the screen).
    pub fn local_stream(&self) -> Option<MediaStream> {
        self.get().and_then(|c| c.local_stream())
    }

    /// The id of the camera or microphone in use.
    pub fn current_device(&self, kind: crate::media::Kind) -> Option<String> {
        let stream = self.local_stream()?;
        let track = crate::media::first_track(&stream, kind)?;
        let settings = track.get_settings();
        crate::js::get_str(settings.as_ref(), "deviceId").filter(|d| !d.is_empty())
    }

    /// What we receive from `peer`.
    pub fn remote_stream(&self, peer: &str) -> Option<MediaStream> {
        self.get().and_then(|c| c.remote_stream(peer))
    }

    /// The screen `peer` shares, as we receive it.
    pub fn remote_screen(&self, peer: &str) -> Option<MediaStream> {
        self.get().and_then(|c| c.remote_screen(peer))
    }

    /// `peer`'s video showed its first frame.
    pub fn first_frame(&self, peer: &str) {
        if let Some(c) = self.get() {
            c.first_frame(peer);
        }
    }
}

fn log(msg: &str) {
    web_sys::console::warn_1(&JsValue::from_str(msg));
}
