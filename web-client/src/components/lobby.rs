//! The lobby (pre-join screen): camera preview with microphone and camera
//! switches and a level meter, name, room, Join, then the options (mode,
//! password, devices) and the link to share.

use leptos::prelude::*;

use super::when;
use protocol::Mode;
use web_sys::MediaStream;

use super::icons::{Icon, Svg, either};
use super::share::ShareLink;
use super::{InRoom, push_path};
use crate::Route;
use crate::audio::LevelWatch;
use crate::call::{ActiveCall, JoinParams};
use crate::media::{self, Choice, Device, Kind};
use crate::state::Ui;

/// The lobby's camera preview, handed to the call on join.
type Preview = StoredValue<Option<MediaStream>, LocalStorage>;

/// Shows `stream` in the preview, stopping the one it replaces. A no-op
/// once the lobby is gone.
fn set_preview(preview: Preview, stream: Option<MediaStream>) {
    let mut incoming = stream.clone();
    match preview.try_update_value(|p| std::mem::replace(p, stream)) {
        Some(Some(old)) => media::stop(&old),
        Some(None) => {}
        // The lobby is gone: nobody will show (or stop) this stream.
        None => {
            if let Some(s) = incoming.take() {
                media::stop(&s);
            }
        }
    }
}

/// Shows the room and starts the call (with the preview's stream when it
/// is still live).
pub fn enter(
    call: ActiveCall,
    in_room: InRoom,
    params: JoinParams,
    preview: Option<MediaStream>,
    clicked_at: f64,
) {
    push_path(&format!("/r/{}", params.room));
    remember_name(&params.name);
    in_room.0.set(true);
    call.join(params, preview, clicked_at);
}

const NAME_KEY: &str = "rooms.name";

/// The name used last time on this browser, so a reload or a new room does
/// not ask again.
pub(super) fn remembered_name() -> Option<String> {
    web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(NAME_KEY).ok().flatten())
        .filter(|n| protocol::DisplayName::parse(n).is_ok())
}

fn remember_name(name: &str) {
    if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = s.set_item(NAME_KEY, name);
    }
}

/// What `/api/config` offers: the modes a join may create, and the default.
async fn offered_modes() -> Option<(Vec<Mode>, Mode)> {
    let json = crate::js::fetch_json("/api/config").await?;
    let modes: Vec<Mode> = crate::js::from_js(&crate::js::get(&json, "modes")).ok()?;
    let default = crate::js::from_js(&crate::js::get(&json, "defaultMode")).unwrap_or_default();
    Some((modes, default))
}

const NAME_MAX: usize = 32;

#[component]
pub fn Lobby() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let in_room = expect_context::<InRoom>();
    let route = Route::current();
    let last = call.last_params();
    let preview: Preview = StoredValue::new_local(None);
    let room = RwSignal::new(
        route
            .room
            .clone()
            .or_else(|| last.as_ref().map(|p| p.room.clone()))
            .filter(|r| protocol::RoomName::parse(r).is_ok())
            .unwrap_or_else(crate::random_room),
    );
    let long_name = route
        .name
        .as_ref()
        .is_some_and(|n| n.trim().chars().count() > NAME_MAX);
    let name = RwSignal::new(
        route
            .name
            .clone()
            .map(|n| n.trim().chars().take(NAME_MAX).collect())
            .or_else(remembered_name)
            .unwrap_or_default(),
    );
    let mode = RwSignal::new(route.mode.unwrap_or_default());
    // Until /api/config answers: mesh only (every server has it).
    let modes = RwSignal::new(vec![Mode::Mesh]);
    let password = RwSignal::new(String::new());
    let cams = RwSignal::new(Vec::<Device>::new());
    let mics = RwSignal::new(Vec::<Device>::new());
    let cam = RwSignal::new(last.as_ref().and_then(|p| p.devices.camera.clone()));
    let mic = RwSignal::new(last.as_ref().and_then(|p| p.devices.mic.clone()));
    let mic_on = RwSignal::new(last.as_ref().is_none_or(|p| p.mic));
    let cam_on = RwSignal::new(last.as_ref().is_none_or(|p| p.camera));
    let has_mic = RwSignal::new(false);
    let has_cam = RwSignal::new(false);
    let error = RwSignal::new(long_name.then(|| {
        format!("Names are at most {NAME_MAX} characters: yours was shortened. Check it and join.")
    }));
    let preview_rev = RwSignal::new(0u32);
    let video = NodeRef::<leptos::html::Video>::new();
    let level = ui.mic_level;
    let meter: StoredValue<Option<LevelWatch>, LocalStorage> = StoredValue::new_local(None);

    leptos::task::spawn_local(async move {
        if let Some((offered, default)) = offered_modes().await {
            // The lobby may be gone (joined meanwhile).
            let Some(current) = mode.try_get_untracked() else {
                return;
            };
            let pick = if route.mode.is_none() && offered.contains(&default) {
                default
            } else if offered.contains(&current) {
                current
            } else {
                Mode::Mesh
            };
            mode.set(pick);
            modes.set(offered);
        }
    });

    // (Re)acquire the preview whenever the device choice changes.
    Effect::new(move |_| {
        let choice = Choice {
            camera: cam.get(),
            mic: mic.get(),
        };
        wasm_bindgen_futures::spawn_local(async move {
            set_preview(preview, None);
            let got = media::acquire(&choice).await;
            if in_room.0.get_untracked() {
                // Joined meanwhile: the call acquires its own stream.
                if let Some(s) = got.stream {
                    media::stop(&s);
                }
                return;
            }
            ui.media_notice.set(got.notice);
            set_preview(preview, got.stream);
            let (c, m) = media::devices().await;
            cams.set(c);
            mics.set(m);
            preview_rev.update(|r| *r += 1);
        });
    });
    // The preview follows the stream and the two switches.
    Effect::new(move |_| {
        preview_rev.track();
        let (m, c) = (mic_on.get(), cam_on.get());
        preview.with_value(|p| {
            media::set_enabled(p.as_ref(), Kind::Audio, m);
            media::set_enabled(p.as_ref(), Kind::Video, c);
            has_mic.set(media::has(p.as_ref(), Kind::Audio));
            has_cam.set(media::has(p.as_ref(), Kind::Video));
            if let Some(v) = video.get() {
                media::attach(&v, p.as_ref(), || {});
            }
        });
    });
    Effect::new(move |_| {
        preview_rev.track();
        let stream = preview.with_value(Clone::clone);
        meter.set_value(Some(LevelWatch::new(stream, level)));
    });
    on_cleanup(move || {
        meter.set_value(None);
        // Not joined (back, or away): release the camera.
        if !in_room.0.get_untracked() {
            set_preview(preview, None);
        }
    });

    let valid_room = Signal::derive(move || protocol::RoomName::parse(&room.get()).is_ok());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let r = room.get_untracked().trim().to_owned();
        if protocol::RoomName::parse(&r).is_err() {
            error.set(Some(
                "Room names are 1–64 letters, digits, '_' or '-' (no spaces).".into(),
            ));
            return;
        }
        let n = name.get_untracked();
        if protocol::DisplayName::parse(&n).is_err() {
            error.set(Some("Please enter your name (1–32 characters).".into()));
            return;
        }
        error.set(None);
        let mut params = JoinParams::new(r, n.trim().to_owned(), mode.get_untracked());
        params.password = Some(password.get_untracked()).filter(|p| !p.is_empty());
        params.mic = mic_on.get_untracked();
        params.camera = cam_on.get_untracked();
        params.devices = Choice {
            camera: cam.get_untracked(),
            mic: mic.get_untracked(),
        };
        let stream = preview.try_update_value(Option::take).flatten();
        enter(call, in_room, params, stream, crate::js::now_ms());
    };
    let name_len = move || name.with(|n| n.chars().count());

    view! {
        <main class="lobby-page">
            <header class="brand"><span class="logo" aria-hidden="true">"◉"</span>" Rooms"</header>
            <form id="lobby" class="card lobby" on:submit=submit novalidate=true>
                <h1>"Ready to join?"</h1>
                <div class="lobby-grid">
                    <div class="preview-box">
                        <div class="preview-frame">
                            <video id="preview" node_ref=video autoplay=true playsinline=true
                                prop:muted=true aria-label="Your camera preview"
                                class:hidden=move || !cam_on.get() || !has_cam.get()></video>
                            {when(move || !cam_on.get() || !has_cam.get(), move || view! {
                                <div class="preview-off">{move || if has_cam.get() { "Camera is off" } else { "No camera" }}</div>
                            }.into_any())}
                            <div class="preview-switches">
                                <button id="prejoin-mic" type="button" class="round" class:off=move || !mic_on.get()
                                    disabled=move || !has_mic.get()
                                    aria-pressed=move || (!mic_on.get()).to_string()
                                    aria-label=move || if !has_mic.get() { "No microphone" } else if mic_on.get() { "Join with the microphone off" } else { "Join with the microphone on" }
                                    title=move || if mic_on.get() { "Microphone on" } else { "Microphone off" }
                                    on:click=move |_| mic_on.update(|v| *v = !*v)>
                                    <Svg icon=either(move || mic_on.get() && has_mic.get(), Icon::Mic, Icon::MicOff) />
                                </button>
                                <button id="prejoin-camera" type="button" class="round" class:off=move || !cam_on.get()
                                    disabled=move || !has_cam.get()
                                    aria-pressed=move || (!cam_on.get()).to_string()
                                    aria-label=move || if !has_cam.get() { "No camera" } else if cam_on.get() { "Join with the camera off" } else { "Join with the camera on" }
                                    title=move || if cam_on.get() { "Camera on" } else { "Camera off" }
                                    on:click=move |_| cam_on.update(|v| *v = !*v)>
                                    <Svg icon=either(move || cam_on.get() && has_cam.get(), Icon::Cam, Icon::CamOff) />
                                </button>
                            </div>
                        </div>
                        <div class="level-row" class:hidden=move || !has_mic.get()>
                            <span class="muted">"Mic"</span>
                            <div id="mic-level" class="level" role="meter" aria-label="Microphone level"
                                aria-valuemin="0" aria-valuemax="100"
                                aria-valuenow=move || ((level.get() * 100.0).round() as u32).to_string()
                                data-level=move || format!("{:.2}", level.get())>
                                <i style:width=move || format!("{:.0}%", if mic_on.get() { level.get() * 100.0 } else { 0.0 })></i>
                            </div>
                        </div>
                        {when(move || ui.media_notice.get().is_some(), move || view! {
                            <p id="media-notice" class="notice-box" role="status">
                                {move || ui.media_notice.get().unwrap_or_default()}
                            </p>
                        }.into_any())}
                    </div>
                    <div class="fields">
                        <label>"Your name"
                            <input id="name-input" aria-label="Your name" required=true maxlength="32"
                                placeholder="Ana" autofocus=true autocomplete="nickname"
                                prop:value=move || name.get()
                                on:input=move |ev| name.set(event_target_value(&ev)) />
                            <span id="name-count" class="hint" aria-live="polite" class:hidden=move || { name_len() < NAME_MAX - 4 }>
                                {move || format!("{}/{NAME_MAX} characters", name_len())}
                            </span>
                        </label>
                        <label>"Room"
                            <input id="room-input" aria-label="Room name" required=true maxlength="64"
                                autocapitalize="off" spellcheck="false"
                                prop:value=move || room.get()
                                on:input=move |ev| room.set(event_target_value(&ev)) />
                        </label>
                        <p class="form-error" role="alert" class:hidden=move || error.with(Option::is_none)>{move || error.get().unwrap_or_default()}</p>
                        <button id="join-button" type="submit" class="primary join">"Join now"</button>
                        <div class="options">
                            {when(move || modes.with(|m| m.len() > 1), move || view! {
                                <label>"Call type"
                                    <select id="mode-select" aria-label="Mode"
                                        on:change=move |ev| mode.set(event_target_value(&ev).parse().unwrap_or_default())>
                                        // Shown only when both are offered.
                                        <option value="mesh" selected=move || mode.get() == Mode::Mesh>{mode_label(Mode::Mesh)}</option>
                                        <option value="sfu" selected=move || mode.get() == Mode::Sfu>{mode_label(Mode::Sfu)}</option>
                                    </select>
                                </label>
                            }.into_any())}
                            <label>"Room password (optional)"
                                <input id="password-input" type="password" aria-label="Room password" maxlength="128"
                                    autocomplete="off"
                                    prop:value=move || password.get()
                                    on:input=move |ev| password.set(event_target_value(&ev)) />
                            </label>
                            <DeviceSelect id="camera-select" label="Camera" devices=cams choice=cam />
                            <DeviceSelect id="mic-select" label="Microphone" devices=mics choice=mic />
                        </div>
                        {when(move || valid_room.get(), move || view! { <ShareLink room=room.into() mode=mode.into() /> }.into_any())}
                        <p class="share muted" class:hidden=move || valid_room.get()>"Pick a valid room name to get its link."</p>
                    </div>
                </div>
            </form>
        </main>
    }
}

fn mode_label(m: Mode) -> &'static str {
    match m {
        Mode::Mesh => "Peer to peer (mesh), best up to 4 people",
        Mode::Sfu => "Through the server (SFU), for larger rooms",
    }
}

/// A camera or microphone `select`: "Default", then what the browser lists.
#[component]
pub fn DeviceSelect(
    id: &'static str,
    label: &'static str,
    devices: RwSignal<Vec<Device>>,
    choice: RwSignal<Option<String>>,
) -> impl IntoView {
    view! {
        <label>{label}
            <select id=id aria-label=label
                on:change=move |ev| { let v = event_target_value(&ev); choice.set((!v.is_empty()).then_some(v)); }>
                <option value="">"Default"</option>
                {move || {
                    let picked = choice.get();
                    devices.get().into_iter().map(|d| {
                        let selected = picked.as_deref() == Some(d.id.as_str());
                        view! { <option value=d.id selected=selected>{d.label}</option> }
                    }).collect_view()
                }}
            </select>
        </label>
    }
}
