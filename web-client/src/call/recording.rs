//! Recording the call, in this browser: the video area as it is laid out
//! (each tile's video drawn into a canvas [`FPS`] times a second, names
//! on them) with every voice mixed (Web Audio), saved as WebM by
//! MediaRecorder. Everyone in the room is told while it runs (`media-state`
//! with `"recording": true`, docs/protocol-extensions.md), latecomers too.
//! The file appears in the chat log with a Save link when it stops.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    AudioContext, CanvasRenderingContext2d, Element, HtmlCanvasElement, HtmlVideoElement,
    MediaRecorder, MediaRecorderOptions, MediaStream, MediaStreamAudioDestinationNode,
    MediaStreamAudioSourceNode,
};

use super::Call;
use crate::js::{Listeners, get, unix_ms};
use crate::state::{ChatEntry, FileItem, FileProgress, FileState};

/// The recording's size and frame rate.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const FPS: u32 = 25;

#[derive(Default)]
pub(super) struct Recording(RefCell<Option<Rec>>);

struct Rec {
    recorder: MediaRecorder,
    canvas: HtmlCanvasElement,
    audio: AudioContext,
    mix: MediaStreamAudioDestinationNode,
    /// Audio tracks mixed in so far (by id), and their source nodes.
    mixed: RefCell<(HashSet<String>, Vec<MediaStreamAudioSourceNode>)>,
    chunks: Rc<RefCell<Vec<JsValue>>>,
    listeners: Listeners,
    timer: Option<IntervalHandle>,
    started: f64,
}

impl Call {
    pub(super) fn toggle_recording(self: &Rc<Self>) {
        if self.recording.0.borrow().is_some() {
            self.stop_recording(false);
        } else if let Err(e) = self.start_recording() {
            self.ui
                .notice(format!("The recording could not start: {e}"));
        }
    }

    fn start_recording(self: &Rc<Self>) -> Result<(), String> {
        let err = |e: JsValue| crate::js::error_text(&e);
        let canvas: HtmlCanvasElement = document()
            .create_element("canvas")
            .map_err(err)?
            .unchecked_into();
        canvas.set_width(WIDTH);
        canvas.set_height(HEIGHT);
        let audio = crate::audio::context().ok_or("sound is not available on this page yet")?;
        let mix = audio.create_media_stream_destination().map_err(err)?;
        let video = canvas
            .capture_stream_with_frame_request_rate(f64::from(FPS))
            .map_err(err)?;
        let tracks = js_sys::Array::new();
        for t in video
            .get_video_tracks()
            .iter()
            .chain(mix.stream().get_audio_tracks().iter())
        {
            tracks.push(&t);
        }
        let stream = MediaStream::new_with_tracks(&tracks).map_err(err)?;
        let opts = MediaRecorderOptions::new();
        let mime = ["video/webm;codecs=vp8,opus", "video/webm"]
            .into_iter()
            .find(|m| MediaRecorder::is_type_supported(m))
            .ok_or("this browser cannot record WebM")?;
        opts.set_mime_type(mime);
        let recorder =
            MediaRecorder::new_with_media_stream_and_media_recorder_options(&stream, &opts)
                .map_err(err)?;
        let chunks: Rc<RefCell<Vec<JsValue>>> = Rc::default();
        let listeners = Listeners::default();
        {
            let chunks = chunks.clone();
            listeners.add(&recorder, "dataavailable", move |ev| {
                chunks.borrow_mut().push(get(&ev, "data"));
            });
        }
        let weak = Rc::downgrade(self);
        let timer = set_interval_with_handle(
            move || {
                if let Some(call) = weak.upgrade() {
                    call.draw_frame();
                }
            },
            Duration::from_millis(u64::from(1000 / FPS)),
        )
        .ok();
        recorder.start_with_time_slice(1000).map_err(err)?;
        *self.recording.0.borrow_mut() = Some(Rec {
            recorder,
            canvas,
            audio,
            mix,
            mixed: RefCell::default(),
            chunks,
            listeners,
            timer,
            started: unix_ms(),
        });
        self.draw_frame();
        self.ui.recording.set(true);
        self.announce_media();
        Ok(())
    }

    /// Stops, and puts the file in the chat log; with `save` (the call is
    /// ending, its chat log goes away) the browser also saves it at once.
    pub(super) fn stop_recording(&self, save: bool) {
        let Some(mut rec) = self.recording.0.borrow_mut().take() else {
            return;
        };
        self.ui.recording.set(false);
        self.announce_media();
        if let Some(t) = rec.timer.take() {
            t.clear();
        }
        let ui = self.ui;
        let room = self.params.room.clone();
        let chunks = rec.chunks.clone();
        let started = rec.started;
        let recorder = rec.recorder.clone();
        // The last piece of data comes before `stop`; then the file.
        wasm_bindgen_futures::spawn_local(async move {
            if recorder.state() != web_sys::RecordingState::Inactive {
                let _ = recorder.stop();
                crate::js::next_event(&recorder, &["stop"]).await;
            }
            let parts: js_sys::Array = chunks.borrow().iter().collect();
            let opts = web_sys::BlobPropertyBag::new();
            opts.set_type("video/webm");
            let Ok(blob) = web_sys::Blob::new_with_blob_sequence_and_options(&parts, &opts) else {
                return;
            };
            let url = web_sys::Url::create_object_url_with_blob(&blob).unwrap_or_default();
            let secs = ((unix_ms() - started) / 1000.0).round();
            let name = format!("{room}-{}.webm", crate::js::clock(started).replace(':', ""));
            if save {
                save_as(&url, &name);
            }
            let item = FileItem {
                key: format!("rec-{started}"),
                name,
                size: blob.size(),
                incoming: true,
                peer: String::new(),
                peer_name: String::new(),
                progress: RwSignal::new(FileProgress {
                    state: FileState::Done,
                    bytes: blob.size(),
                    rate: 0.0,
                    note: format!(
                        "Your recording of this call ({secs} s), kept in this browser only."
                    ),
                    url,
                }),
            };
            ui.chat.update(|c| c.push(ChatEntry::File(item)));
            // The page's audio context stays (sounds, meters): only ours go.
            for source in rec.mixed.borrow().1.iter() {
                let _ = source.disconnect();
            }
            drop(rec.listeners);
        });
    }

    /// One frame: each tile's video where the page shows it, fitted into
    /// the canvas; every voice not yet mixed in, added.
    fn draw_frame(&self) {
        let rec = self.recording.0.borrow();
        let Some(rec) = rec.as_ref() else { return };
        let Some(g) = rec
            .canvas
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
        else {
            return;
        };
        let (w, h) = (f64::from(WIDTH), f64::from(HEIGHT));
        g.set_fill_style_str("#0f1115");
        g.fill_rect(0.0, 0.0, w, h);
        let Some(grid) = document().query_selector(".grid").ok().flatten() else {
            return;
        };
        let area = grid.get_bounding_client_rect();
        if area.width() <= 0.0 || area.height() <= 0.0 {
            return;
        }
        let scale = (w / area.width()).min(h / area.height());
        let (ox, oy) = (
            (w - area.width() * scale) / 2.0,
            (h - area.height() * scale) / 2.0,
        );
        let tiles = grid.query_selector_all(".tile").ok();
        for tile in tiles
            .iter()
            .flat_map(|l| (0..l.length()).filter_map(move |i| l.item(i)))
        {
            let Ok(tile) = tile.dyn_into::<Element>() else {
                continue;
            };
            let r = tile.get_bounding_client_rect();
            let (x, y) = (
                ox + (r.left() - area.left()) * scale,
                oy + (r.top() - area.top()) * scale,
            );
            let (tw, th) = (r.width() * scale, r.height() * scale);
            g.set_fill_style_str("#1b1e25");
            g.fill_rect(x, y, tw, th);
            let video = tile
                .query_selector("video")
                .ok()
                .flatten()
                .and_then(|v| v.dyn_into::<HtmlVideoElement>().ok());
            let shown = !tile.matches(".video-off").unwrap_or(false);
            if let Some(v) = video.filter(|v| shown && v.video_width() > 0) {
                // Fill the tile, cropping the picture's overflow (as the page does).
                let (vw, vh) = (f64::from(v.video_width()), f64::from(v.video_height()));
                let k = (tw / vw).max(th / vh);
                let (sw, sh) = (tw / k, th / k);
                let _ = g
                    .draw_image_with_html_video_element_and_sw_and_sh_and_dx_and_dy_and_dw_and_dh(
                        &v,
                        (vw - sw) / 2.0,
                        (vh - sh) / 2.0,
                        sw,
                        sh,
                        x,
                        y,
                        tw,
                        th,
                    );
                if let Some(stream) = v.src_object() {
                    self.mix_in(rec, &stream);
                }
            }
            if let Some(name) = tile
                .query_selector(".tile-name")
                .ok()
                .flatten()
                .and_then(|n| n.text_content())
            {
                g.set_fill_style_str("#ffffff");
                g.set_font("600 20px sans-serif");
                let _ = g.fill_text(&name, x + 10.0, y + th - 12.0);
            }
        }
        // Our own voice: the microphone, not the (muted) preview.
        if let Some(mine) = self.local_stream() {
            self.mix_in(rec, &mine);
        }
    }

    /// Adds `stream`'s audio tracks to the recording's mix, each once.
    fn mix_in(&self, rec: &Rec, stream: &MediaStream) {
        for track in stream.get_audio_tracks().iter() {
            let track: web_sys::MediaStreamTrack = track.unchecked_into();
            let mut mixed = rec.mixed.borrow_mut();
            if !mixed.0.insert(track.id()) {
                continue;
            }
            let one = MediaStream::new_with_tracks(&js_sys::Array::of1(&track));
            if let Ok(source) = one.and_then(|s| rec.audio.create_media_stream_source(&s)) {
                let _ = source.connect_with_audio_node(&rec.mix);
                mixed.1.push(source);
            }
        }
    }
}

/// Has the browser save `url` as `name` (a click on a download link).
fn save_as(url: &str, name: &str) {
    if let Ok(a) = document().create_element("a") {
        let _ = a.set_attribute("href", url);
        let _ = a.set_attribute("download", name);
        if let Some(a) = a.dyn_ref::<web_sys::HtmlElement>() {
            a.click();
        }
    }
}
