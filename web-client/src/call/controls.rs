//! The local media: the camera and microphone arriving (maybe after the
//! join), muting them, sharing the screen, and telling the room.

use std::cell::Cell;
use std::rc::Rc;

use leptos::prelude::*;
use protocol::{MediaStateRequest, events};
use web_sys::{MediaStream, MediaStreamTrack};

use super::Call;
use crate::media::{self, Kind};
use crate::rtc::Outgoing;
use crate::state::StatusKind;

pub(super) struct LocalMedia {
    /// What every connection sends; they hold it too.
    outgoing: Rc<Outgoing>,
    /// False while the camera/microphone are still being acquired: joining
    /// does not wait for them, offers do.
    ready: Cell<bool>,
    /// Whether the user wants the microphone and the camera on (a track
    /// that is off is sent disabled: turning it on needs no negotiation).
    want_mic: Cell<bool>,
    want_cam: Cell<bool>,
}

impl LocalMedia {
    pub(super) fn new(
        camera: Option<MediaStream>,
        codec: Option<String>,
        ready: bool,
        (mic, cam): (bool, bool),
    ) -> Self {
        Self {
            outgoing: Rc::new(Outgoing::new(camera, codec)),
            ready: Cell::new(ready),
            want_mic: Cell::new(mic),
            want_cam: Cell::new(cam),
        }
    }
}

impl Call {
    pub(super) fn outgoing(&self) -> Rc<Outgoing> {
        self.media.outgoing.clone()
    }

    pub(super) fn media_ready(&self) -> bool {
        self.media.ready.get()
    }

    /// The controls and the preview follow the camera/microphone stream.
    pub(super) fn show_local_media(&self) {
        let stream = self.media.outgoing.camera();
        let ui = self.ui;
        let (mic, cam) = (self.media.want_mic.get(), self.media.want_cam.get());
        media::set_enabled(stream.as_ref(), Kind::Audio, mic);
        media::set_enabled(stream.as_ref(), Kind::Video, cam);
        ui.has_mic.set(media::has(stream.as_ref(), Kind::Audio));
        ui.has_cam.set(media::has(stream.as_ref(), Kind::Video));
        ui.mic_on
            .set(mic && media::has(stream.as_ref(), Kind::Audio));
        ui.cam_on
            .set(cam && media::has(stream.as_ref(), Kind::Video));
        ui.local_rev.update(|r| *r += 1);
    }

    /// The camera/microphone acquired after joining: show it, send it to the
    /// peers already connected, and call the peers that were waiting for it.
    pub(super) fn set_local_media(self: &Rc<Self>, stream: Option<MediaStream>) {
        if let Some(old) = self.media.outgoing.camera()
            && stream.as_ref().is_none_or(|s| s.id() != old.id())
        {
            media::stop(&old);
        }
        self.media.outgoing.set_camera(stream.clone());
        self.show_local_media();
        self.media.ready.set(true);
        // Connections made while waiting (we answered a newcomer): add our tracks.
        let existing = self.connections();
        if let Some(stream) = stream {
            wasm_bindgen_futures::spawn_local(async move {
                for (_, pc) in existing {
                    for kind in Kind::BOTH {
                        if let Some(track) = media::first_track(&stream, kind) {
                            pc.replace_track(kind, Some(&track)).await;
                        }
                    }
                }
            });
        }
        self.connect_waiting();
        self.announce_media();
    }

    /// Tells the room what we send (after joining).
    pub(super) fn announce_media(&self) {
        if self.self_id().is_none() {
            return;
        }
        let ui = self.ui;
        let (mic, cam) = (ui.mic_on.get_untracked(), ui.cam_on.get_untracked());
        crate::js::session_set(
            &super::lifecycle::media_key(&self.params.room),
            Some(&format!("{}{}", u8::from(mic), u8::from(cam))),
        );
        self.sig.send(
            events::MEDIA_STATE,
            MediaStateRequest {
                room: self.room(),
                audio: ui.mic_on.get_untracked(),
                video: ui.cam_on.get_untracked(),
                screen: ui.screen_on.get_untracked(),
                recording: ui.recording.get_untracked(),
            },
        );
    }

    /// The host asked us to turn the microphone (or camera) off: it goes
    /// off, and the log says who asked; turning it back on is ours to do.
    pub(super) fn on_mute_request(&self, who: &str, video: bool) {
        let ui = self.ui;
        if video && ui.cam_on.get_untracked() {
            self.toggle_camera();
        } else if !video && ui.mic_on.get_untracked() {
            self.toggle_mic();
        }
        let what = if video { "camera" } else { "microphone" };
        ui.notice(format!(
            "{who}, the host, asked you to turn your {what} off. You can turn it back on."
        ));
    }

    pub(super) fn toggle_mic(&self) {
        if self.is_over() || !self.ui.has_mic.get_untracked() {
            return;
        }
        let on = !self.ui.mic_on.get_untracked();
        self.media.want_mic.set(on);
        media::set_enabled(self.media.outgoing.camera().as_ref(), Kind::Audio, on);
        self.ui.mic_on.set(on);
        self.announce_media();
    }

    pub(super) fn toggle_camera(&self) {
        if self.is_over() || !self.ui.has_cam.get_untracked() {
            return;
        }
        let on = !self.ui.cam_on.get_untracked();
        self.media.want_cam.set(on);
        media::set_enabled(self.media.outgoing.camera().as_ref(), Kind::Video, on);
        self.ui.cam_on.set(on);
        self.announce_media();
    }

    /// Releases the camera and microphone (their lights go off): after
    /// leaving, or when the join was refused.
    pub(super) fn stop_local_media(&self) {
        self.end_screen();
        if let Some(stream) = self.media.outgoing.camera() {
            media::stop(&stream);
        }
        self.media.outgoing.set_camera(None);
        let ui = self.ui;
        ui.has_mic.set(false);
        ui.has_cam.set(false);
        ui.mic_on.set(false);
        ui.cam_on.set(false);
        ui.screen_on.set(false);
        ui.local_rev.update(|r| *r += 1);
    }

    /// Another camera or microphone, during the call: its track replaces
    /// the old one in the local stream and on every connection (no
    /// renegotiation), keeping the on/off state; the old device is released.
    pub(super) fn switch_device(self: &Rc<Self>, kind: Kind, device: String) {
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            // Many phones open one camera at a time: release the old one first.
            if kind == Kind::Video
                && let Some(old) = this
                    .media
                    .outgoing
                    .camera()
                    .and_then(|s| media::first_track(&s, kind))
            {
                old.stop();
            }
            let track = match media::one_track(kind, &device).await {
                Ok(track) => track,
                Err(e) => {
                    this.ui.set_status(
                        StatusKind::Error,
                        format!("Could not switch the {}: {e}", kind.device_name()),
                    );
                    return;
                }
            };
            if this.is_over() {
                track.stop();
                return;
            }
            let on = match kind {
                Kind::Audio => this.media.want_mic.get(),
                Kind::Video => this.media.want_cam.get(),
            };
            track.set_enabled(on);
            let stream = this
                .media
                .outgoing
                .camera()
                .or_else(|| MediaStream::new().ok());
            let Some(stream) = stream else { return };
            if let Some(old) = media::first_track(&stream, kind) {
                stream.remove_track(&old);
                old.stop();
            }
            stream.add_track(&track);
            this.media.outgoing.set_camera(Some(stream));
            let sharing = kind == Kind::Video && this.ui.screen_on.get_untracked();
            if !sharing {
                for (_, pc) in this.connections() {
                    pc.replace_track(kind, Some(&track)).await;
                }
            }
            this.show_local_media();
            this.announce_media();
        });
    }

    /// Starts or stops screen sharing: the screen goes beside the camera on
    /// a video sender of its own on every connection (one negotiation per
    /// connection the first time; later shares only swap its track).
    pub(super) fn toggle_screen(self: &Rc<Self>) {
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if this.ui.screen_on.get_untracked() {
                this.stop_screen().await;
            } else {
                this.start_screen().await;
            }
        });
    }

    async fn start_screen(self: &Rc<Self>) {
        let stream = match media::screen().await {
            Ok(stream) => stream,
            Err(e) => {
                self.ui.set_status(
                    StatusKind::Error,
                    format!("Screen sharing was not started: {e}"),
                );
                return;
            }
        };
        let Some(track) = media::first_track(&stream, Kind::Video) else {
            media::stop(&stream);
            return;
        };
        // The browser's own "Stop sharing" button ends the track.
        let weak = Rc::downgrade(self);
        let ended = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
            if let Some(call) = weak.upgrade() {
                wasm_bindgen_futures::spawn_local(async move { call.stop_screen().await });
            }
        });
        track.set_onended(Some(wasm_bindgen::JsCast::unchecked_ref(ended.as_ref())));
        ended.forget();
        if let Some(old) = self.media.outgoing.set_screen(Some(stream)) {
            media::stop(&old);
        }
        self.send_screen(Some(&track)).await;
        self.ui.screen_on.set(true);
        self.ui.local_rev.update(|r| *r += 1);
        self.announce_media();
    }

    async fn stop_screen(self: &Rc<Self>) {
        if !self.end_screen() {
            return;
        }
        self.send_screen(None).await;
        self.ui.screen_on.set(false);
        self.ui.local_rev.update(|r| *r += 1);
        self.announce_media();
    }

    /// Stops sending the screen, if we were; true if we were.
    pub(super) fn end_screen(&self) -> bool {
        match self.media.outgoing.set_screen(None) {
            Some(stream) => {
                media::stop(&stream);
                true
            }
            None => false,
        }
    }

    async fn send_screen(&self, track: Option<&MediaStreamTrack>) {
        for (_, pc) in self.connections() {
            pc.set_screen(track).await;
        }
    }

    /// The camera/microphone stream.
    pub(super) fn local_stream(&self) -> Option<MediaStream> {
        self.media.outgoing.camera()
    }

    /// The screen we share, while we do.
    pub(super) fn screen_stream(&self) -> Option<MediaStream> {
        self.media.outgoing.screen()
    }
}
