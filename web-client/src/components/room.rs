//! The room: status banner, video grid (local preview and one tile per
//! peer), and the controls.

use leptos::prelude::*;

use super::chat::ChatPanel;
use super::rtt::RttPanel;
use crate::call::ActiveCall;
use crate::media;
use crate::state::{ConnState, Phase, StatusKind, Ui};

#[component]
pub fn RoomView(in_room: RwSignal<bool>) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let share = move || {
        let origin = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        format!("{origin}/r/{}", ui.room.get())
    };
    view! {
        <main id="room" class="room-page" data-room=move || ui.room.get()
            data-state=move || ui.phase.get().as_str()>
            <header class="room-header">
                <span class="brand"><span class="logo" aria-hidden="true">"◉"</span>" "{move || ui.room.get()}</span>
                <span id="self-id" data-peer-id=move || ui.self_id.get() class="me">
                    {move || ui.self_name.get()}
                </span>
                <code class="share" title="Link to this room">{share}</code>
            </header>
            <Show when=move || ui.status.get().is_some()>
                <div id="status" role="status" class="status"
                    data-kind=move || ui.status.get().map(|s| s.kind.as_str()).unwrap_or_default()>
                    <span>{move || ui.status.get().map(|s| s.text).unwrap_or_default()}</span>
                    // Errors about one action can be dismissed; connection states clear themselves.
                    <Show when=move || ui.status.get().is_some_and(|s| s.kind == StatusKind::Error && ui.phase.get() == Phase::Joined)>
                        <button class="dismiss" aria-label="Dismiss" on:click=move |_| ui.status.set(None)>"×"</button>
                    </Show>
                </div>
            </Show>
            <Show when=move || ui.phase.get() == Phase::Left>
                <div class="card left-card">
                    <p>"You left the room."</p>
                    <button class="primary" on:click=move |_| {
                        if let Some(w) = web_sys::window() { let _ = w.location().reload(); }
                    }>"Rejoin"</button>
                    <a href="/" class="button" on:click=move |_| in_room.set(false)>"Back to the lobby"</a>
                </div>
            </Show>
            <Show when=move || ui.sound_blocked.get()>
                <div class="status" data-kind="sound-blocked">
                    "The browser paused the others' sound until you click. "
                    <button id="sound-button" class="primary" on:click=move |_| {
                        ui.sound_blocked.set(false);
                        unmute_remote_videos();
                    }>"Enable sound"</button>
                </div>
            </Show>
            <Show when=move || ui.media_notice.get().is_some() && ui.phase.get() != Phase::Left>
                <p id="media-notice" class="notice-box" data-kind="no-media">
                    {move || ui.media_notice.get().unwrap_or_default()}
                </p>
            </Show>
            <div class="room-body">
                <section class="stage">
                    <Grid />
                    <Controls />
                </section>
                <aside class="side">
                    <ChatPanel />
                    <RttPanel />
                </aside>
            </div>
        </main>
    }
}

#[component]
fn Grid() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let local = NodeRef::<leptos::html::Video>::new();
    Effect::new(move |_| {
        ui.local_rev.track();
        if let Some(v) = local.get() {
            let stream = call.preview_stream();
            media::attach(&v, stream.as_ref(), || {});
        }
    });
    let count = move || ui.peers.with(|p| p.len()) + 1;
    view! {
        <div class="grid" data-count=count>
            <div class="tile local">
                <video id="local-video" node_ref=local autoplay=true playsinline=true prop:muted=true
                    class:mirrored=move || !ui.screen_on.get()
                    aria-label="Your video"></video>
                <div class="tile-bar">
                    <span class="tile-name">{move || format!("{} (you)", ui.self_name.get())}</span>
                    <span class="mic-state" data-on=move || ui.mic_on.get().to_string()
                        title="Microphone">{move || if ui.mic_on.get() { "mic" } else { "muted" }}</span>
                    <span class="cam-state" data-on=move || (ui.cam_on.get() || ui.screen_on.get()).to_string()
                        title="Camera">{move || if ui.screen_on.get() { "screen" } else if ui.cam_on.get() { "cam" } else { "cam off" }}</span>
                </div>
            </div>
            <For each=move || ui.peers.with(|ps| ps.iter().map(|p| p.id.clone()).collect::<Vec<_>>())
                key=|id| id.clone() let:id>
                <Tile id=id />
            </For>
        </div>
    }
}

#[component]
fn Tile(id: String) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let video = NodeRef::<leptos::html::Video>::new();
    let peer = {
        let id = id.clone();
        Memo::new(move |_| ui.peers.with(|ps| ps.iter().find(|p| p.id == id).cloned()))
    };
    {
        let id = id.clone();
        // Re-attach when the peer's stream changes (and once the element exists).
        Effect::new(move |prev: Option<(Option<u32>, bool)>| {
            let rev = ui
                .peers
                .with(|ps| ps.iter().find(|p| p.id == id).map(|p| p.stream_rev));
            let el = video.get();
            let now = (rev, el.is_some());
            if prev != Some(now)
                && let Some(v) = el
                && let Some(stream) = call.remote_stream(&id)
            {
                media::attach(&v, Some(&stream), move || ui.sound_blocked.set(true));
            }
            now
        });
    }
    let field = move |f: fn(&crate::state::PeerView) -> String| {
        move || peer.with(|p| p.as_ref().map(f).unwrap_or_default())
    };
    let loaded = {
        let id = id.clone();
        move |_| call.first_frame(&id)
    };
    view! {
        <div class="tile" data-peer-id=id.clone()
            data-connection-state=field(|p| p.connection.as_str().to_owned())
            data-frames-decoded=field(|p| p.frames.to_string())
            data-audio-packets=field(|p| p.audio_packets.to_string())
            data-first-frame-ms=field(|p| p.first_frame_ms.map(|m| format!("{m:.0}")).unwrap_or_default())
            data-quality=field(|p| p.quality.as_str().to_owned())
            data-video-codec=field(|p| p.video_codec.clone().unwrap_or_default())>
            <video data-peer-id=id.clone() node_ref=video autoplay=true playsinline=true
                on:loadeddata=loaded aria-label=field(|p| format!("Video of {}", p.name))></video>
            <div class="tile-bar">
                <span class="tile-name">{field(|p| p.name.clone())}</span>
                <span class="mic-state" data-on=field(|p| p.media.audio.to_string())
                    title="Microphone">{field(|p| if p.media.audio { "mic".into() } else { "muted".into() })}</span>
                <span class="cam-state" data-on=field(|p| p.media.video.to_string())
                    title="Camera">{field(|p| if p.media.screen { "screen".into() } else if p.media.video { "cam".into() } else { "cam off".into() })}</span>
                <span class="quality" data-quality=field(|p| p.quality.as_str().to_owned())
                    title=field(|p| match &p.video_codec {
                        Some(codec) => format!("Connection: {} ({}), video {}", p.quality.as_str(), p.connection.as_str(), codec.trim_start_matches("video/")),
                        None => format!("Connection: {} ({})", p.quality.as_str(), p.connection.as_str()),
                    })>
                    <i></i><i></i><i></i>
                </span>
            </div>
            <Show when=move || peer.with(|p| p.as_ref().is_some_and(|p| p.connection != ConnState::Connected))>
                <div class="tile-overlay">{field(|p| p.connection.overlay_text().to_owned())}</div>
            </Show>
        </div>
    }
}

#[component]
fn Controls() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    view! {
        <nav class="controls" aria-label="Call controls">
            <button id="mic-button" class:off=move || !ui.mic_on.get()
                disabled=move || !ui.has_mic.get()
                aria-pressed=move || (ui.has_mic.get() && !ui.mic_on.get()).to_string()
                aria-label=move || if !ui.has_mic.get() { "No microphone" } else if ui.mic_on.get() { "Mute microphone" } else { "Unmute microphone" }
                on:click=move |_| call.toggle_mic()>
                {move || if ui.mic_on.get() { "Mute" } else { "Unmute" }}
            </button>
            <button id="camera-button" class:off=move || !ui.cam_on.get()
                disabled=move || !ui.has_cam.get()
                aria-pressed=move || (ui.has_cam.get() && !ui.cam_on.get()).to_string()
                aria-label=move || if !ui.has_cam.get() { "No camera" } else if ui.cam_on.get() { "Turn camera off" } else { "Turn camera on" }
                on:click=move |_| call.toggle_camera()>
                {move || if ui.cam_on.get() { "Stop video" } else { "Start video" }}
            </button>
            <button id="screen-button" class:on=move || ui.screen_on.get()
                aria-pressed=move || ui.screen_on.get().to_string()
                aria-label=move || if ui.screen_on.get() { "Stop sharing the screen" } else { "Share the screen" }
                on:click=move |_| call.toggle_screen()>
                {move || if ui.screen_on.get() { "Stop sharing" } else { "Share screen" }}
            </button>
            <button id="leave-button" class="danger" aria-label="Leave the room"
                on:click=move |_| call.leave()>
                "Leave"
            </button>
        </nav>
    }
}

/// After a click: remote videos may now play with sound.
fn unmute_remote_videos() {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(list) = doc.query_selector_all("video[data-peer-id]") else {
        return;
    };
    for i in 0..list.length() {
        if let Some(v) = list
            .get(i)
            .and_then(|n| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlVideoElement>(n).ok())
        {
            v.set_muted(false);
            let _ = v.play();
        }
    }
}
