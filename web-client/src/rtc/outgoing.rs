//! What this page sends: the camera/microphone stream, the screen while
//! sharing, and the video codec to prefer. The call owns one [`Outgoing`]
//! and changes it; every connection of that call holds an `Rc` to it and
//! reads it whenever it negotiates.

use std::cell::RefCell;

use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::{MediaStream, MediaStreamTrack, RtcRtpSender, RtcRtpTransceiver};

use crate::js::get_str;
use crate::media::{self, Kind};

pub struct Outgoing {
    /// The local camera/microphone stream, shared by every connection.
    camera: RefCell<Option<MediaStream>>,
    /// The screen while sharing: sent beside the camera on a video sender of
    /// its own, on every connection, including ones made during the share.
    screen: RefCell<Option<MediaStream>>,
    /// The video codec to prefer (a MIME type), from `?codec=` when the page
    /// opened (the address loses its query once the room is joined).
    codec: Option<String>,
}

impl Outgoing {
    pub fn new(camera: Option<MediaStream>, codec: Option<String>) -> Self {
        Self {
            camera: RefCell::new(camera),
            screen: RefCell::new(None),
            codec,
        }
    }

    pub fn camera(&self) -> Option<MediaStream> {
        self.camera.borrow().clone()
    }

    pub fn set_camera(&self, stream: Option<MediaStream>) {
        *self.camera.borrow_mut() = stream;
    }

    pub fn screen(&self) -> Option<MediaStream> {
        self.screen.borrow().clone()
    }

    /// Starts (`Some`) or ends (`None`) sending the screen; returns the
    /// screen stream that was being sent, for the caller to stop.
    pub fn set_screen(&self, stream: Option<MediaStream>) -> Option<MediaStream> {
        std::mem::replace(&mut *self.screen.borrow_mut(), stream)
    }

    /// The screen's video while sharing.
    pub fn screen_track(&self) -> Option<MediaStreamTrack> {
        self.screen
            .borrow()
            .as_ref()
            .and_then(|s| media::first_track(s, Kind::Video))
    }

    /// What the camera/microphone sends of `kind` now.
    pub fn track(&self, kind: Kind) -> Option<MediaStreamTrack> {
        self.camera
            .borrow()
            .as_ref()
            .and_then(|s| media::first_track(s, kind))
    }

    /// `sender.setStreams(camera)` where supported, so the peer's `track`
    /// events name our stream.
    pub(super) fn label(&self, sender: &RtcRtpSender) {
        let Some(stream) = self.camera() else { return };
        if let Ok(f) = Reflect::get(sender.as_ref(), &"setStreams".into())
            && let Ok(f) = f.dyn_into::<Function>()
        {
            let _ = f.call1(sender.as_ref(), stream.as_ref());
        }
    }

    /// `?codec=` in the address: put that video codec first in what this
    /// transceiver offers and accepts (the other side's first common choice
    /// is what gets sent). Browsers without `setCodecPreferences` keep their order.
    pub(super) fn prefer_codec(&self, t: &RtcRtpTransceiver, kind: Kind) {
        if kind != Kind::Video {
            return;
        }
        let Some(want) = &self.codec else {
            return;
        };
        let caps = Reflect::get(&js_sys::global(), &"RTCRtpReceiver".into())
            .ok()
            .and_then(|r| {
                let f: Function = Reflect::get(&r, &"getCapabilities".into())
                    .ok()?
                    .dyn_into()
                    .ok()?;
                f.call1(&r, &"video".into()).ok()
            })
            .and_then(|c| Reflect::get(&c, &"codecs".into()).ok())
            .and_then(|c| c.dyn_into::<js_sys::Array>().ok());
        let Some(codecs) = caps else {
            return;
        };
        let is_wanted =
            |c: &JsValue| get_str(c, "mimeType").is_some_and(|m| m.eq_ignore_ascii_case(want));
        let (first, rest): (Vec<JsValue>, Vec<JsValue>) = codecs.iter().partition(|c| is_wanted(c));
        if first.is_empty() {
            web_sys::console::warn_1(&format!("{want} is not supported by this browser").into());
            return;
        }
        let ordered: js_sys::Array = first.into_iter().chain(rest).collect();
        if let Ok(f) = Reflect::get(t.as_ref(), &"setCodecPreferences".into())
            && let Ok(f) = f.dyn_into::<Function>()
            && let Err(e) = f.call1(t.as_ref(), &ordered)
        {
            web_sys::console::warn_2(&"setCodecPreferences failed".into(), &e);
        }
    }
}
