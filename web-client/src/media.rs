//! Camera, microphone and screen: acquire with graceful fallbacks, list
//! devices, stop tracks on cleanup.

use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaDeviceInfo, MediaStream, MediaStreamConstraints, MediaStreamTrack};

use crate::js::{error_text, to_js};

/// A track's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
}

impl Kind {
    pub const BOTH: [Kind; 2] = [Kind::Audio, Kind::Video];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
        }
    }

    /// The device, as a person names it.
    pub fn device_name(self) -> &'static str {
        match self {
            Kind::Audio => "microphone",
            Kind::Video => "camera",
        }
    }

    /// `MediaStreamTrack.kind`.
    pub fn of(track: &MediaStreamTrack) -> Option<Kind> {
        match track.kind().as_str() {
            "audio" => Some(Kind::Audio),
            "video" => Some(Kind::Video),
            _ => None,
        }
    }
}

/// A selectable input device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub label: String,
}

/// What the user picked in the lobby (`None`: the browser's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    pub camera: Option<String>,
    pub mic: Option<String>,
}

/// The outcome of asking for media: a stream (maybe partial) and, when
/// something is missing, a sentence for the user.
pub struct Acquired {
    pub stream: Option<MediaStream>,
    pub notice: Option<String>,
}

#[derive(Serialize)]
struct Constraints {
    audio: serde_json::Value,
    video: serde_json::Value,
}

fn device_constraint(id: &Option<String>, video: bool) -> serde_json::Value {
    match (id, video) {
        (Some(id), true) => {
            serde_json::json!({"deviceId": {"exact": id}, "width": {"ideal": 640}, "height": {"ideal": 480}})
        }
        (Some(id), false) => serde_json::json!({"deviceId": {"exact": id}}),
        (None, true) => serde_json::json!({"width": {"ideal": 640}, "height": {"ideal": 480}}),
        (None, false) => serde_json::json!(true),
    }
}

/// Why the browser gave no camera or microphone: the exception's name
/// (`NotFoundError`, …) and its message, for the log.
#[derive(Debug, Clone)]
pub struct MediaError {
    pub name: String,
    pub message: String,
}

impl MediaError {
    fn from_js(e: &JsValue) -> Self {
        Self {
            name: crate::js::get_str(e, "name").unwrap_or_default(),
            message: error_text(e),
        }
    }

    /// The reason, as a person reads it.
    pub fn reason(&self) -> &'static str {
        match self.name.as_str() {
            "NotAllowedError" | "SecurityError" => {
                "access was blocked: allow the camera and microphone for this site (in the address bar), then reload"
            }
            "NotFoundError" | "OverconstrainedError" => "none was found on this device",
            "NotReadableError" | "AbortError" => "it is in use by another app",
            "NoSecureContext" => "the page must be opened over https (or on localhost)",
            _ => "the browser could not start it",
        }
    }
}

impl std::fmt::Display for MediaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

async fn get_user_media(
    audio: serde_json::Value,
    video: serde_json::Value,
) -> Result<MediaStream, MediaError> {
    let no_access = || MediaError {
        name: "NoSecureContext".into(),
        message: "navigator.mediaDevices is missing".into(),
    };
    let devices = web_sys::window()
        .ok_or_else(no_access)?
        .navigator()
        .media_devices()
        .map_err(|_| no_access())?;
    let constraints: MediaStreamConstraints = to_js(&Constraints { audio, video }).unchecked_into();
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|e| MediaError::from_js(&e))?;
    JsFuture::from(promise)
        .await
        .map(|s| s.unchecked_into())
        .map_err(|e| MediaError::from_js(&e))
}

/// One track of `kind` from `device` (switching devices during a call).
pub async fn one_track(kind: Kind, device: &str) -> Result<MediaStreamTrack, MediaError> {
    let id = Some(device.to_owned());
    let off = serde_json::Value::Bool(false);
    let stream = match kind {
        Kind::Audio => get_user_media(device_constraint(&id, false), off).await?,
        Kind::Video => get_user_media(off, device_constraint(&id, true)).await?,
    };
    first_track(&stream, kind).ok_or(MediaError {
        name: "NotFoundError".into(),
        message: "no track".into(),
    })
}

/// Camera and microphone; falls back to one of them, then to nothing.
pub async fn acquire(choice: &Choice) -> Acquired {
    let audio = device_constraint(&choice.mic, false);
    let video = device_constraint(&choice.camera, true);
    let both = get_user_media(audio.clone(), video.clone()).await;
    let err = match both {
        Ok(s) => {
            return Acquired {
                stream: Some(s),
                notice: None,
            };
        }
        Err(e) => e,
    };
    web_sys::console::info_1(&format!("camera and microphone: {}", err.message).into());
    if let Ok(s) = get_user_media(audio, serde_json::Value::Bool(false)).await {
        return Acquired {
            stream: Some(s),
            notice: Some(format!(
                "Camera unavailable: {err}. Others will hear you but not see you."
            )),
        };
    }
    if let Ok(s) = get_user_media(serde_json::Value::Bool(false), video).await {
        return Acquired {
            stream: Some(s),
            notice: Some(format!(
                "Microphone unavailable: {err}. Others will see you but not hear you."
            )),
        };
    }
    Acquired {
        stream: None,
        notice: Some(format!(
            "Camera and microphone unavailable: {err}. You can still join to see and hear the others."
        )),
    }
}

/// The screen, for screen sharing.
pub async fn screen() -> Result<MediaStream, String> {
    let devices = web_sys::window()
        .ok_or("no window")?
        .navigator()
        .media_devices()
        .map_err(|e| error_text(&e))?;
    let promise = devices.get_display_media().map_err(|e| error_text(&e))?;
    JsFuture::from(promise)
        .await
        .map(|s| s.unchecked_into())
        .map_err(|e| error_text(&e))
}

/// Cameras and microphones the browser lists (labels appear once permission is granted).
pub async fn devices() -> (Vec<Device>, Vec<Device>) {
    let mut cams = Vec::new();
    let mut mics = Vec::new();
    let Some(md) = web_sys::window().and_then(|w| w.navigator().media_devices().ok()) else {
        return (cams, mics);
    };
    let Ok(promise) = md.enumerate_devices() else {
        return (cams, mics);
    };
    let Ok(list) = JsFuture::from(promise).await else {
        return (cams, mics);
    };
    let list: js_sys::Array = list.unchecked_into();
    for (i, d) in list.iter().enumerate() {
        let d: MediaDeviceInfo = d.unchecked_into();
        let kind = crate::js::get_str(d.as_ref(), "kind").unwrap_or_default();
        let mut label = d.label();
        if label.is_empty() {
            label = format!("{kind} {}", i + 1);
        }
        let dev = Device {
            id: d.device_id(),
            label,
        };
        match kind.as_str() {
            "videoinput" => cams.push(dev),
            "audioinput" => mics.push(dev),
            _ => {}
        }
    }
    (cams, mics)
}

pub fn tracks(stream: &MediaStream) -> Vec<MediaStreamTrack> {
    stream
        .get_tracks()
        .iter()
        .filter_map(|t| t.dyn_into().ok())
        .collect()
}

/// Stops every track (releases the camera light).
pub fn stop(stream: &MediaStream) {
    for t in tracks(stream) {
        t.stop();
    }
}

/// Whether the stream has a live track of `kind`.
pub fn has(stream: Option<&MediaStream>, kind: Kind) -> bool {
    stream.is_some_and(|s| tracks(s).iter().any(|t| Kind::of(t) == Some(kind)))
}

/// The stream's first track of `kind`.
pub fn first_track(stream: &MediaStream, kind: Kind) -> Option<MediaStreamTrack> {
    let tracks = match kind {
        Kind::Audio => stream.get_audio_tracks(),
        Kind::Video => stream.get_video_tracks(),
    };
    tracks.get(0).dyn_into().ok()
}

/// Enables or disables the tracks of `kind` (mute without renegotiation).
pub fn set_enabled(stream: Option<&MediaStream>, kind: Kind, on: bool) {
    if let Some(s) = stream {
        for t in tracks(s).iter().filter(|t| Kind::of(t) == Some(kind)) {
            t.set_enabled(on);
        }
    }
}

/// Attaches a stream to a `<video>` (only one with tracks: an empty stream
/// blocks the page's load event) and plays it. When the browser refuses to
/// play sound without a click, the video plays muted and `on_blocked` runs
/// (the room then offers an "enable sound" button).
pub fn attach(
    video: &web_sys::HtmlVideoElement,
    stream: Option<&MediaStream>,
    on_blocked: impl FnOnce() + 'static,
) {
    let usable = stream.filter(|s| !tracks(s).is_empty());
    if let (Some(new), Some(cur)) = (usable, video.src_object())
        && JsValue::from(new.clone()) == JsValue::from(cur)
    {
        return;
    }
    video.set_src_object(usable);
    if usable.is_none() {
        return;
    }
    let Ok(promise) = video.play() else { return };
    let video = video.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = JsFuture::from(promise).await
            && crate::js::get_str(&e, "name").as_deref() == Some("NotAllowedError")
            && !video.muted()
        {
            video.set_muted(true);
            if let Ok(p) = video.play() {
                let _ = JsFuture::from(p).await;
            }
            on_blocked();
        }
    });
}
