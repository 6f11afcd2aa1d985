//! The lobby: room, name, mode, password, camera/microphone preview and
//! device choice, and the link to share.

use leptos::prelude::*;
use protocol::Mode;
use web_sys::MediaStream;

use crate::Route;
use crate::call::{ActiveCall, JoinParams};
use crate::media::{self, Choice, Device};
use crate::state::Ui;

/// The lobby's camera preview, handed to the call on join.
type Preview = StoredValue<Option<MediaStream>, LocalStorage>;

/// Shows `stream` in the preview, stopping the one it replaces. A no-op
/// once the lobby is gone.
fn set_preview(preview: Preview, stream: Option<MediaStream>) {
    if let Some(Some(old)) = preview.try_update_value(|p| std::mem::replace(p, stream)) {
        media::stop(&old);
    }
}

/// Starts the call at once; the camera and microphone (the preview's, or
/// freshly acquired) join it as soon as they are ready, so connecting to the
/// server and joining overlap with the browser's media start-up.
pub fn join_now(
    call: ActiveCall,
    ui: Ui,
    in_room: RwSignal<bool>,
    params: JoinParams,
    preview: Option<MediaStream>,
    choice: Option<Choice>,
    clicked_at: f64,
) {
    let live = |s: &MediaStream| {
        media::tracks(s)
            .iter()
            .any(|t| crate::js::get_str(t.as_ref(), "readyState").as_deref() == Some("live"))
    };
    let preview = preview.filter(live);
    if let Some(w) = web_sys::window() {
        let path = format!("/r/{}", params.room);
        let _ = w
            .history()
            .and_then(|h| h.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path)));
    }
    remember_name(&params.name);
    in_room.set(true);
    let pending = preview.is_none();
    call.start(params, preview, pending, clicked_at);
    if pending {
        wasm_bindgen_futures::spawn_local(async move {
            let got = media::acquire(&choice.unwrap_or_default()).await;
            ui.media_notice.set(got.notice);
            call.set_local_media(got.stream);
        });
    }
}

const NAME_KEY: &str = "rooms.name";

/// The name used last time on this browser, so a reload or a new room does
/// not ask again.
fn remembered_name() -> Option<String> {
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

#[component]
pub fn Lobby(route: Route, in_room: RwSignal<bool>) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let preview: Preview = StoredValue::new_local(None);
    let room = RwSignal::new(route.room.clone().unwrap_or_else(crate::random_room));
    let name = RwSignal::new(
        route
            .name
            .clone()
            .or_else(remembered_name)
            .unwrap_or_default(),
    );
    let mode = RwSignal::new(route.mode.unwrap_or_default());
    let password = RwSignal::new(String::new());
    let cams = RwSignal::new(Vec::<Device>::new());
    let mics = RwSignal::new(Vec::<Device>::new());
    let cam = RwSignal::new(None::<String>);
    let mic = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let preview_rev = RwSignal::new(0u32);
    let video = NodeRef::<leptos::html::Video>::new();

    // (Re)acquire the preview whenever the device choice changes.
    Effect::new(move |_| {
        let choice = Choice {
            camera: cam.get(),
            mic: mic.get(),
        };
        wasm_bindgen_futures::spawn_local(async move {
            set_preview(preview, None);
            let got = media::acquire(&choice).await;
            if in_room.get_untracked() {
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
    Effect::new(move |_| {
        preview_rev.track();
        if let Some(v) = video.get() {
            preview.with_value(|p| media::attach(&v, p.as_ref(), || {}));
        }
    });

    let share = move || {
        let origin = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        format!("{origin}/r/{}", room.get())
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let r = room.get_untracked();
        if protocol::RoomName::parse(&r).is_err() {
            error.set(Some(
                "Room names are 1–64 letters, digits, '_' or '-'.".into(),
            ));
            return;
        }
        let n = name.get_untracked();
        if protocol::DisplayName::parse(&n).is_err() {
            error.set(Some("Please enter a name (1–32 characters).".into()));
            return;
        }
        error.set(None);
        let choice = Choice {
            camera: cam.get_untracked(),
            mic: mic.get_untracked(),
        };
        let params = JoinParams {
            room: r,
            name: n.trim().to_owned(),
            mode: mode.get_untracked(),
            password: Some(password.get_untracked()).filter(|p| !p.is_empty()),
        };
        let stream = preview.try_update_value(Option::take).flatten();
        join_now(
            call,
            ui,
            in_room,
            params,
            stream,
            Some(choice),
            crate::js::now_ms(),
        );
    };

    view! {
        <main class="lobby-page">
            <header class="brand"><span class="logo" aria-hidden="true">"◉"</span>" Rooms"</header>
            <form id="lobby" class="card lobby" on:submit=submit>
                <h1>"Join a video room"</h1>
                <div class="lobby-grid">
                    <div class="preview-box">
                        <video id="preview" node_ref=video autoplay=true playsinline=true
                            prop:muted=true aria-label="Your camera preview"></video>
                        <Show when=move || ui.media_notice.get().is_some()>
                            <p id="media-notice" class="notice-box" role="status">
                                {move || ui.media_notice.get().unwrap_or_default()}
                            </p>
                        </Show>
                    </div>
                    <div class="fields">
                        <label>"Room"
                            <input id="room-input" aria-label="Room name" required=true maxlength="64"
                                prop:value=move || room.get()
                                on:input=move |ev| room.set(event_target_value(&ev)) />
                        </label>
                        <label>"Your name"
                            <input id="name-input" aria-label="Your name" required=true maxlength="32"
                                placeholder="Ana" autofocus=true
                                prop:value=move || name.get()
                                on:input=move |ev| name.set(event_target_value(&ev)) />
                        </label>
                        <label>"Mode"
                            <select id="mode-select" aria-label="Mode"
                                on:change=move |ev| mode.set(event_target_value(&ev).parse().unwrap_or_default())>
                                <option value="mesh" selected=move || mode.get() == Mode::Mesh>"Mesh (peer to peer)"</option>
                                <option value="sfu" selected=move || mode.get() == Mode::Sfu>"SFU (through the server)"</option>
                            </select>
                        </label>
                        <label>"Password (optional)"
                            <input id="password-input" type="password" aria-label="Room password" maxlength="128"
                                prop:value=move || password.get()
                                on:input=move |ev| password.set(event_target_value(&ev)) />
                        </label>
                        <label>"Camera"
                            <select id="camera-select" aria-label="Camera"
                                on:change=move |ev| { let v = event_target_value(&ev); cam.set((!v.is_empty()).then_some(v)); }>
                                <option value="">"Default"</option>
                                <For each=move || cams.get() key=|d| d.id.clone() let:d>
                                    <option value=d.id.clone()>{d.label.clone()}</option>
                                </For>
                            </select>
                        </label>
                        <label>"Microphone"
                            <select id="mic-select" aria-label="Microphone"
                                on:change=move |ev| { let v = event_target_value(&ev); mic.set((!v.is_empty()).then_some(v)); }>
                                <option value="">"Default"</option>
                                <For each=move || mics.get() key=|d| d.id.clone() let:d>
                                    <option value=d.id.clone()>{d.label.clone()}</option>
                                </For>
                            </select>
                        </label>
                        <Show when=move || error.get().is_some()>
                            <p class="form-error" role="alert">{move || error.get().unwrap_or_default()}</p>
                        </Show>
                        <button id="join-button" type="submit" class="primary">"Join room"</button>
                        <p class="share">"Share this link: "<code id="share-link">{share}</code></p>
                    </div>
                </div>
            </form>
        </main>
    }
}
