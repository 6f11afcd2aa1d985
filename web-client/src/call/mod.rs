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
mod lifecycle;
mod probes;
mod topology;

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
use lifecycle::Lifecycle;
use probes::Probes;
use topology::Topology;

/// What the lobby hands over.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub room: String,
    pub name: String,
    pub mode: Mode,
    pub password: Option<String>,
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
    probes: Probes,
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
}

impl ActiveCall {
    pub fn new(ui: Ui, codec: Option<String>) -> Self {
        Self {
            ui,
            codec: StoredValue::new(codec),
            current: StoredValue::new_local(None),
        }
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

    /// The camera/microphone acquired after joining.
    pub fn set_local_media(&self, stream: Option<MediaStream>) {
        match self.get().filter(|c| !c.is_over()) {
            Some(call) => call.set_local_media(stream),
            // The user left before the camera was ready.
            None => {
                if let Some(s) = stream {
                    crate::media::stop(&s);
                }
            }
        }
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
        }
    }

    pub fn toggle_camera(&self) {
        if let Some(c) = self.get() {
            c.toggle_camera();
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

    /// The stream the local preview shows: the screen while sharing.
    pub fn preview_stream(&self) -> Option<MediaStream> {
        self.get().and_then(|c| c.preview_stream())
    }

    /// What we receive from `peer`.
    pub fn remote_stream(&self, peer: &str) -> Option<MediaStream> {
        self.get().and_then(|c| c.remote_stream(peer))
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
