//! The room: header (room, people, link), the banner, the video grid, the
//! control bar, and the side panel (chat, comparison); or, once the call is
//! over, the screen that says why and offers the way forward.

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;

use super::when;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use super::chat::ChatPanel;
use super::icons::{Icon, Svg, either};
use super::lobby::DeviceSelect;
use super::people::{Marks, PeoplePanel, Reactions};
use super::rtt::RttPanel;
use super::screens::{ErrorScreen, LeftScreen};
use super::share::ShareLink;
use super::{InRoom, hue, initials};
use crate::audio::{self, Cue, LevelWatch};
use crate::call::{ActiveCall, JoinParams};
use crate::media::{self, Device, Kind};
use crate::state::{Author, ChatEntry, ConnState, Phase, StatusKind, Ui};

/// What the side panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Closed,
    Chat,
    Compare,
    People,
}

impl Panel {
    fn as_str(self) -> &'static str {
        match self {
            Panel::Closed => "closed",
            Panel::Chat => "chat",
            Panel::Compare => "compare",
            Panel::People => "people",
        }
    }
}

/// The room page's own view state, shared by its parts.
#[derive(Clone, Copy)]
pub struct RoomUi {
    pub panel: RwSignal<Panel>,
    /// Messages from others not seen yet (chat closed or page hidden).
    pub unread: RwSignal<u32>,
    /// Join, leave and message sounds (remembered on this browser).
    pub sounds: RwSignal<bool>,
    /// Each member's label: the name, numbered when two share it.
    pub labels: Memo<HashMap<String, String>>,
}

const SOUNDS_KEY: &str = "rooms.sounds";
/// Below this width the page is laid out for a phone.
const PHONE_MAX_PX: f64 = 760.0;

fn storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

fn is_phone() -> bool {
    web_sys::window()
        .and_then(|w| w.inner_width().ok())
        .and_then(|w| w.as_f64())
        .is_some_and(|w| w <= PHONE_MAX_PX)
}

fn page_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

/// Names as shown: "Ana", and "Ana (2)" for a second Ana (we are the
/// first of ours).
fn member_labels(me: (&str, &str), peers: &[(String, String)]) -> HashMap<String, String> {
    let all: Vec<(&str, &str)> = std::iter::once(me)
        .chain(peers.iter().map(|(i, n)| (i.as_str(), n.as_str())))
        .collect();
    all.iter()
        .enumerate()
        .map(|(at, (id, name))| {
            let before = all[..at].iter().filter(|(_, n)| n == name).count();
            let label = if before > 0 {
                format!("{name} ({})", before + 1)
            } else {
                (*name).to_owned()
            };
            ((*id).to_owned(), label)
        })
        .collect()
}

#[component]
pub fn RoomView() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let in_call = move || {
        matches!(
            ui.phase.get(),
            Phase::Connecting | Phase::Joined | Phase::Reconnecting
        )
    };
    let labels = Memo::new(move |_| {
        let me = (ui.self_id.get(), ui.self_name.get());
        let peers: Vec<(String, String)> = ui
            .peers
            .with(|ps| ps.iter().map(|p| (p.id.clone(), p.name.clone())).collect());
        member_labels((&me.0, &me.1), &peers)
    });
    let room_ui = RoomUi {
        panel: RwSignal::new(if is_phone() {
            Panel::Closed
        } else {
            Panel::Chat
        }),
        unread: RwSignal::new(0),
        sounds: RwSignal::new(
            storage()
                .and_then(|s| s.get_item(SOUNDS_KEY).ok().flatten())
                .is_none_or(|v| v != "off"),
        ),
        labels,
    };
    provide_context(room_ui);
    let big = big_tile(ui);
    provide_context(BigTile(big));
    notify(ui, room_ui);
    // From a wide window to a phone's width, the panel (an overlay there)
    // closes; back to a wide one, the chat shows again beside the videos.
    let phone = StoredValue::new(is_phone());
    let resize = window_event_listener(leptos::ev::resize, move |_| {
        let now = is_phone();
        if now != phone.get_value() {
            phone.set_value(now);
            room_ui
                .panel
                .set(if now { Panel::Closed } else { Panel::Chat });
        }
    });
    on_cleanup(move || resize.remove());
    let mode = Signal::derive(move || {
        ui.mode
            .get()
            .or_else(|| call.last_params().map(|p: JoinParams| p.mode))
            .unwrap_or_default()
    });
    let count = move || ui.peers.with(|p| p.len()) + 1;
    view! {
        <main id="room" class="room-page" data-room=move || ui.room.get()
            data-state=move || ui.phase.get().as_str()
            data-panel=move || room_ui.panel.get().as_str()>
            <header class="room-header">
                <span class="brand"><span class="logo" aria-hidden="true">"◉"</span>" "
                    <span class="room-name">{move || ui.room.get()}</span></span>
                {when(in_call, move || view! {
                    <button id="people-button" class="people" title="People in the call"
                        aria-label=move || format!("{} in the call: show them", count())
                        on:click=move |_| room_ui.panel.update(|p| *p = if *p == Panel::People { Panel::Closed } else { Panel::People })>
                        <Svg icon=Icon::People />{count}
                    </button>
                    <button id="layout-button" class="people" type="button"
                        aria-pressed=move || ui.speaker_view.get().to_string()
                        title=move || if ui.speaker_view.get() { "Grid view" } else { "Speaker view: the latest speaker large" }
                        aria-label=move || if ui.speaker_view.get() { "Grid view" } else { "Speaker view" }
                        on:click=move |_| ui.speaker_view.update(|v| *v = !*v)>
                        <Svg icon=Icon::Layout />
                    </button>
                }.into_any())}
                {when(move || in_call() && pip_supported() && big.with(|b| !b.is_empty() && *b != ui.self_id.get()), move || view! {
                    <button id="pip-button" class="people" type="button" title="Picture in picture: the large tile in its own window"
                        aria-label="Picture in picture" on:click=move |_| picture_in_picture()>
                        <Svg icon=Icon::Pip />
                    </button>
                }.into_any())}
                <span id="self-id" data-peer-id=move || ui.self_id.get() class="me">
                    {move || ui.self_name.get()}
                </span>
                {when(in_call, move || view! {
                    <div class="header-share"><ShareLink room=ui.room.into() mode=mode /></div>
                }.into_any())}
            </header>
            <Banner />
            {when(move || ui.sound_blocked.get() && in_call(), move || view! {
                <div class="status" data-kind="sound-blocked">
                    <span>"The browser paused the others' sound until you click."</span>
                    <button id="sound-button" class="primary" on:click=move |_| {
                        ui.sound_blocked.set(false);
                        unmute_remote_videos();
                    }>"Enable sound"</button>
                </div>
            }.into_any())}
            {when(move || ui.media_notice.get().is_some() && in_call(), move || view! {
                <p id="media-notice" class="notice-box banner-notice" data-kind="no-media" role="status">
                    {move || ui.media_notice.get().unwrap_or_default()}
                </p>
            }.into_any())}
            {when(move || ui.phase.get() == Phase::Error, move || view! {<ErrorScreen />}.into_any())}
            {when(move || ui.phase.get() == Phase::Left, move || view! {<LeftScreen />}.into_any())}
            {when(in_call, move || view! {
                <div class="room-body">
                    <Stage />
                    <SidePanel />
                </div>
                <Controls />
                <Shortcuts />
            }.into_any())}
        </main>
    }
}

/// The keyboard shortcuts, as the help overlay lists them.
const SHORTCUTS: [(&str, &str); 7] = [
    ("m", "Microphone on / off"),
    ("v", "Camera on / off"),
    ("h", "Raise / lower your hand"),
    ("c", "Chat: open it and write"),
    ("p", "Pin the next tile (then none)"),
    ("s", "Speaker view / grid"),
    ("?", "This help"),
];

/// Keys for the call (not while typing in a field), and their help (`?`).
#[component]
fn Shortcuts() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let room_ui = expect_context::<RoomUi>();
    let help = RwSignal::new(false);
    let key = window_event_listener(leptos::ev::keydown, move |ev| {
        let typing = ev
            .target()
            .and_then(|t| crate::js::get_str(&t, "tagName"))
            .is_some_and(|t| matches!(t.as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        // A key held down repeats: one toggle per press.
        if typing || ev.repeat() || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match ev.key().as_str() {
            "m" => call.toggle_mic(),
            "v" => call.toggle_camera(),
            "h" => call.toggle_hand(),
            "c" => {
                ev.prevent_default();
                room_ui.panel.set(Panel::Chat);
                focus_later("chat-input");
            }
            "p" => ui.pinned.set(next_pin(ui)),
            "s" => ui.speaker_view.update(|v| *v = !*v),
            "?" => help.update(|h| *h = !*h),
            "Escape" => help.set(false),
            _ => {}
        }
    });
    on_cleanup(move || key.remove());
    view! {
        <div id="shortcuts-help" class="card shortcuts" role="dialog" aria-label="Keyboard shortcuts"
            class:hidden=move || !help.get()>
            <h2>"Keyboard shortcuts"</h2>
            <dl>
                {SHORTCUTS.iter().map(|(k, what)| view! { <dt><kbd>{*k}</kbd></dt><dd>{*what}</dd> }).collect_view()}
            </dl>
            <button type="button" on:click=move |_| help.set(false)>"Close"</button>
        </div>
    }
}

/// `p`: the tile after the pinned one (ours first, then the others in
/// order), and after the last, none.
fn next_pin(ui: Ui) -> String {
    let mut order = vec![ui.self_id.get_untracked()];
    ui.peers
        .with_untracked(|ps| order.extend(ps.iter().map(|p| p.id.clone())));
    let pinned = ui.pinned.get_untracked();
    match order.iter().position(|id| *id == pinned) {
        None => order.into_iter().next().unwrap_or_default(),
        Some(i) => order.get(i + 1).cloned().unwrap_or_default(),
    }
}

/// Focuses the element `id` once the view has shown it.
fn focus_later(id: &'static str) {
    request_animation_frame(move || {
        if let Some(el) = document()
            .get_element_by_id(id)
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
        }
    });
}

/// Sounds, the unread count and the tab title, from what arrives.
fn notify(ui: Ui, room_ui: RoomUi) {
    // Messages and files: count the new ones from others; chime when not in view.
    let seen = StoredValue::new(ui.chat.with_untracked(Vec::len));
    Effect::new(move |_| {
        let (len, fresh) = ui.chat.with(|c| {
            let from = seen.get_value().min(c.len());
            let fresh = c[from..]
                .iter()
                .filter(|e| match e {
                    ChatEntry::Msg(m) => m.from != Author::Me,
                    ChatEntry::File(f) => f.incoming,
                    ChatEntry::Notice { .. } => false,
                })
                .count() as u32;
            (c.len(), fresh)
        });
        seen.set_value(len);
        if fresh == 0 {
            return;
        }
        let visible = room_ui.panel.get_untracked() == Panel::Chat && !page_hidden();
        if !visible {
            room_ui.unread.update(|u| *u += fresh);
        }
        if room_ui.sounds.get_untracked() && (!visible || page_hidden()) {
            audio::play(Cue::Message);
        }
    });
    // Joins and leaves, after our own join (not the members we found there).
    let members = StoredValue::new(None::<HashSet<String>>);
    Effect::new(move |_| {
        let now: HashSet<String> = ui
            .peers
            .with(|ps| ps.iter().map(|p| p.id.clone()).collect());
        let joined = ui.phase.get() == Phase::Joined;
        let before = members.get_value();
        members.set_value(joined.then(|| now.clone()));
        let Some(before) = before.filter(|_| joined) else {
            return;
        };
        if !room_ui.sounds.get_untracked() {
            return;
        }
        if now.difference(&before).next().is_some() {
            audio::play(Cue::Joined);
        } else if before.difference(&now).next().is_some() {
            audio::play(Cue::Left);
        }
    });
    // The tab's title: the room, and the unread count when there is one
    // (none once the chat is open).
    Effect::new(move |_| {
        // Seen: the chat is open and the tab in front.
        if room_ui.panel.get() == Panel::Chat
            && !page_hidden()
            && room_ui.unread.get_untracked() != 0
        {
            room_ui.unread.set(0);
        }
        let room = ui.room.get();
        let unread = room_ui.unread.get();
        let title = match unread {
            0 => format!("{room} · Rooms"),
            n => format!("({n}) {room} · Rooms"),
        };
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            doc.set_title(&title);
        }
    });
    // Back to the tab with the chat open: the messages are seen.
    let focus = window_event_listener(leptos::ev::focus, move |_| {
        if room_ui.panel.get_untracked() == Panel::Chat {
            room_ui.unread.set(0);
        }
    });
    on_cleanup(move || {
        focus.remove();
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            doc.set_title("Rooms — video calls");
        }
    });
}

/// The banner: connecting, reconnecting (what to do after a while), an
/// action refused.
#[component]
fn Banner() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let in_room = expect_context::<InRoom>();
    let kind = move || ui.status.get().map(|s| s.kind);
    view! {
        {when(move || ui.status.get().is_some() && ui.phase.get() != Phase::Error, move || view! {
            <div id="status" role="status" class="status"
                data-kind=move || kind().map(StatusKind::as_str).unwrap_or_default()>
                <span>{move || ui.status.get().map(|s| s.text).unwrap_or_default()}</span>
                {when(move || { kind() == Some(StatusKind::Reconnecting) && ui.outage_secs.get() >= 30 }, move || view! {
                    <button id="give-up" class="danger" on:click=move |_| call.leave()>"Leave the call"</button>
                }.into_any())}
                {when(move || { kind() == Some(StatusKind::Unreachable) && ui.outage_secs.get() >= 10 }, move || view! {
                    <button id="banner-lobby" on:click=move |_| in_room.back_to_lobby(call, Some(&ui.room.get_untracked()))>
                        "Back to the lobby"
                    </button>
                }.into_any())}
                // Errors about one action can be dismissed; connection states clear themselves.
                {when(move || kind().is_some_and(|k| matches!(k, StatusKind::Error | StatusKind::IceFailed)) && ui.phase.get() == Phase::Joined, move || view! {
                    <button class="dismiss" aria-label="Dismiss" on:click=move |_| ui.status.set(None)>
                        <Svg icon=Icon::Close />
                    </button>
                }.into_any())}
            </div>
        }.into_any())}
    }
}

/// The layout that makes `n` tiles of 4:3 largest in a `w`×`h` box:
/// columns, and the tile's width and height (whole pixels).
pub fn grid_layout(n: usize, w: f64, h: f64, gap: f64) -> (usize, f64, f64) {
    let n = n.max(1);
    let mut best = (1, 0.0, 0.0);
    for cols in 1..=n {
        let rows = n.div_ceil(cols);
        let cw = (w - gap * (cols as f64 - 1.0)) / cols as f64;
        let ch = (h - gap * (rows as f64 - 1.0)) / rows as f64;
        let tw = cw.min(ch * 4.0 / 3.0).max(0.0).floor();
        if tw > best.1 + 0.5 {
            best = (cols, tw, (tw * 3.0 / 4.0).floor());
        }
    }
    best
}

/// The video area: the grid laid out to fill it, whatever the window.
#[component]
fn Stage() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let stage = NodeRef::<leptos::html::Section>::new();
    let size = RwSignal::new((0.0f64, 0.0f64));
    // Follow the stage's size (window, side panel, banners).
    let observer: StoredValue<Option<web_sys::ResizeObserver>, LocalStorage> =
        StoredValue::new_local(None);
    Effect::new(move |_| {
        let Some(el) = stage.get() else { return };
        let measure = {
            let el = el.clone();
            move || {
                let _ = size.try_set((f64::from(el.client_width()), f64::from(el.client_height())));
            }
        };
        measure();
        // The callback is never freed: a removed element still gets one
        // last observation, which may come after this component's cleanup
        // (and after the value above is gone); `try_set` makes it harmless.
        let cb = Closure::<dyn FnMut()>::new(measure);
        if let Ok(obs) = web_sys::ResizeObserver::new(cb.as_ref().unchecked_ref()) {
            obs.observe(&el);
            if let Some(old) = observer.try_update_value(|o| o.replace(obs)).flatten() {
                old.disconnect();
            }
        }
        cb.forget();
    });
    on_cleanup(move || {
        if let Some(Some(obs)) = observer.try_update_value(Option::take) {
            obs.disconnect();
        }
    });
    // Ours, each member's, and a tile per shared screen.
    let count = move || {
        let screens = ui
            .peers
            .with(|ps| ps.iter().filter(|p| p.media.screen).count());
        ui.peers.with(|p| p.len()) + 1 + screens + usize::from(ui.screen_on.get())
    };
    // The stage's padding (8 px each side) and the gap between tiles.
    let layout = Memo::new(move |_| {
        let (w, h) = size.get();
        grid_layout(count(), w - 16.0, h - 16.0, 8.0)
    });
    let big = expect_context::<BigTile>().0;
    view! {
        <section class="stage" node_ref=stage aria-label="Videos">
            <RecordingBanner />
            <div class="grid" data-count=count data-cols=move || layout.get().0
                data-layout=move || if big.with(String::is_empty) { "grid" } else { "focus" }
                style:--tile-w=move || format!("{}px", layout.get().1)
                style:--tile-h=move || format!("{}px", layout.get().2)>
                <LocalTile />
                {when(move || ui.screen_on.get(), move || view! {
                    <ScreenTile id=ui.self_id.get_untracked() mine=true />
                }.into_any())}
                <For each=move || ui.peers.with(|ps| ps.iter().map(|p| p.id.clone()).collect::<Vec<_>>())
                    key=|id| id.clone() let:id>
                    <Tile id=id.clone() />
                    {
                        let sharing = {
                            let id = id.clone();
                            move || ui.peers.with(|ps| ps.iter().any(|p| p.id == id && p.media.screen))
                        };
                        when(sharing, move || view! { <ScreenTile id=id.clone() mine=false /> }.into_any())
                    }
                </For>
            </div>
        </section>
    }
}

/// Whether this page may open a picture-in-picture window.
fn pip_supported() -> bool {
    crate::js::get(&document(), "pictureInPictureEnabled").as_bool() == Some(true)
}

/// The large tile's video in a picture-in-picture window.
fn picture_in_picture() {
    let video = document()
        .query_selector(".tile[data-big=true] video")
        .ok()
        .flatten();
    if let Some(v) = video
        && let Ok(f) = crate::js::get(&v, "requestPictureInPicture").dyn_into::<js_sys::Function>()
    {
        // A promise; a refusal (no frame yet) leaves the page as it was.
        let _ = f.call0(&v);
    }
}

/// Whether this browser can record (MediaRecorder).
fn recording_supported() -> bool {
    js_sys::Reflect::has(&window(), &"MediaRecorder".into()).unwrap_or(false)
}

/// Who records the call, said above the videos: nobody is recorded
/// without knowing.
#[component]
fn RecordingBanner() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let room_ui = expect_context::<RoomUi>();
    let who = move || {
        let mut names: Vec<String> = Vec::new();
        if ui.recording.get() {
            names.push("You".into());
        }
        ui.peers.with(|ps| {
            for p in ps.iter().filter(|p| p.media.recording) {
                names.push(
                    room_ui
                        .labels
                        .with(|l| l.get(&p.id).cloned())
                        .unwrap_or_else(|| p.name.clone()),
                );
            }
        });
        names
    };
    let text = move || {
        let names = who();
        let verb = if names.len() > 1 || names.first().is_some_and(|n| n == "You") {
            "are"
        } else {
            "is"
        };
        format!("{} {verb} recording this call", names.join(" and "))
    };
    view! {
        {when(move || !who().is_empty(), move || view! {
            <p id="recording-banner" class="rec-banner" role="status"><span class="rec-dot" aria-hidden="true"></span>{text}</p>
        }.into_any())}
    }
}

/// The tile shown large (a peer id, ours included), or empty for the grid.
#[derive(Clone, Copy)]
struct BigTile(Memo<String>);

/// Which tile is large: the pinned one; else a shared screen (the
/// presentation); else, in speaker view, the latest speaker (never
/// ourselves: we know what we look like), or the first member.
fn big_tile(ui: Ui) -> Memo<String> {
    Memo::new(move |_| {
        let me = ui.self_id.get();
        let pinned = ui.pinned.get();
        let my_screen = ui.screen_on.get().then(|| screen_key(&me));
        ui.peers.with(|ps| {
            let exists = |key: &str| {
                key == me
                    || my_screen.as_deref() == Some(key)
                    || ps
                        .iter()
                        .any(|p| p.id == key || (p.media.screen && screen_key(&p.id) == key))
            };
            if !pinned.is_empty() && exists(&pinned) {
                return pinned;
            }
            if let Some(p) = ps.iter().find(|p| p.media.screen) {
                return screen_key(&p.id);
            }
            if !ui.speaker_view.get() {
                return String::new();
            }
            let speaker = ui.speaker.get();
            ps.iter()
                .find(|p| p.id == speaker)
                .or(ps.first())
                .map(|p| p.id.clone())
                .unwrap_or_default()
        })
    })
}

/// The key (for the large tile and pins) of `peer`'s shared screen.
fn screen_key(peer: &str) -> String {
    format!("{peer}~screen")
}

/// A shared screen: a tile of its own (the presenter's camera stays in
/// theirs). `mine`: the screen we share, else member `id`'s.
#[component]
fn ScreenTile(id: String, mine: bool) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let room_ui = expect_context::<RoomUi>();
    let video = NodeRef::<leptos::html::Video>::new();
    {
        let id = id.clone();
        Effect::new(move |prev: Option<(Option<u32>, bool)>| {
            let rev = if mine {
                Some(ui.local_rev.get())
            } else {
                ui.peers
                    .with(|ps| ps.iter().find(|p| p.id == id).map(|p| p.stream_rev))
            };
            let el = video.get();
            let now = (rev, el.is_some());
            if prev != Some(now)
                && let Some(v) = el
            {
                let stream = if mine {
                    call.screen_stream()
                } else {
                    call.remote_screen(&id)
                };
                if let Some(stream) = stream {
                    media::attach(&v, Some(&stream), || {});
                }
            }
            now
        });
    }
    let label = {
        let id = id.clone();
        Signal::derive(move || {
            if mine {
                "Your screen".to_owned()
            } else {
                let name = room_ui
                    .labels
                    .with(|l| l.get(&id).cloned())
                    .unwrap_or_default();
                format!("{name}'s screen")
            }
        })
    };
    let key = screen_key(&id);
    let big = expect_context::<BigTile>().0;
    let is_big = {
        let key = key.clone();
        move || big.with(|b| *b == key).to_string()
    };
    view! {
        <div class="tile screen" data-screen-of=id data-big=is_big>
            <video node_ref=video autoplay=true playsinline=true prop:muted=true
                aria-label=move || label.get()></video>
            <div class="tile-bar">
                <span class="tile-name" title=move || label.get()>{move || label.get()}</span>
                <span class="cam-state" data-on="true" role="img" aria-label="Shared screen" title="Shared screen">
                    <Svg icon=Icon::Screen />
                </span>
                <PinButton id=Signal::stored(key) />
            </div>
        </div>
    }
}

/// A tile's pin: makes it the large one, or back to the layout.
#[component]
fn PinButton(id: Signal<String>) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let pinned = move || ui.pinned.with(|p| !p.is_empty() && *p == id.get());
    view! {
        <button class="pin" type="button" aria-pressed=move || pinned().to_string()
            title=move || if pinned() { "Unpin" } else { "Pin: show large" }
            aria-label=move || if pinned() { "Unpin" } else { "Pin: show large" }
            on:click=move |_| ui.pinned.set(if pinned() { String::new() } else { id.get() })>
            <Svg icon=Icon::Pin />
        </button>
    }
}

/// A microphone state badge: an icon with its meaning for screen readers.
#[component]
fn MicBadge(on: Signal<bool>) -> impl IntoView {
    view! {
            <span class="mic-state" data-on=move || on.get().to_string() role="img"
                aria-label=move || if on.get() { "Microphone on" } else { "Microphone muted" }
    >
                <Svg icon=either(move || on.get(), Icon::Mic, Icon::MicOff) />
            </span>
        }
}

/// A camera state badge.
#[component]
fn CamBadge(on: Signal<bool>) -> impl IntoView {
    let label = move || if on.get() { "Camera on" } else { "Camera off" };
    view! {
        <span class="cam-state" data-on=move || on.get().to_string() role="img" aria-label=label title=label>
            <Svg icon=either(move || on.get(), Icon::Cam, Icon::CamOff) />
        </span>
    }
}

/// Initials on a coloured disc, for a tile without video.
#[component]
fn Avatar(name: Signal<String>) -> impl IntoView {
    view! {
        <div class="avatar" aria-hidden="true" data-hue=move || hue(&name.get()).to_string()>
            <span>{move || initials(&name.get())}</span>
        </div>
    }
}

#[component]
fn LocalTile() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let local = NodeRef::<leptos::html::Video>::new();
    let meter: StoredValue<Option<LevelWatch>, LocalStorage> = StoredValue::new_local(None);
    Effect::new(move |_| {
        ui.local_rev.track();
        let stream = call.local_stream();
        if let Some(v) = local.get() {
            media::attach(&v, stream.as_ref(), || {});
        }
        meter.set_value(Some(LevelWatch::new(call.local_stream(), ui.mic_level)));
    });
    on_cleanup(move || meter.set_value(None));
    let video_on = move || ui.cam_on.get();
    let speaking = move || ui.mic_on.get() && ui.mic_level.get() > 0.45;
    let big = expect_context::<BigTile>().0;
    let me = Signal::derive(move || ui.self_id.get());
    view! {
        <div class="tile local" class:video-off=move || !video_on() class:speaking=speaking
            data-speaking=move || speaking().to_string()
            data-big=move || (big.with(|b| !b.is_empty() && *b == me.get())).to_string()>
            <video id="local-video" class="mirrored" node_ref=local autoplay=true playsinline=true prop:muted=true
                aria-label="Your video"></video>
            <Avatar name=ui.self_name.into() />
            <Marks id=String::new() me=true />
            <div class="tile-bar">
                <span class="tile-name">{move || format!("{} (you)", ui.self_name.get())}</span>
                <MicBadge on=ui.mic_on.into() />
                <CamBadge on=Signal::derive(video_on) />
                <PinButton id=me />
            </div>
        </div>
    }
}

#[component]
fn Tile(id: String) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let room_ui = expect_context::<RoomUi>();
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
    let flag = move |f: fn(&crate::state::PeerView) -> bool| {
        Signal::derive(move || peer.with(|p| p.as_ref().is_some_and(f)))
    };
    let loaded = {
        let id = id.clone();
        move |_| call.first_frame(&id)
    };
    let label = {
        let id = id.clone();
        Signal::derive(move || {
            room_ui
                .labels
                .with(|l| l.get(&id).cloned())
                .unwrap_or_else(|| {
                    peer.with(|p| p.as_ref().map(|p| p.name.clone()).unwrap_or_default())
                })
        })
    };
    let name = Signal::derive(move || {
        peer.with(|p| p.as_ref().map(|p| p.name.clone()).unwrap_or_default())
    });
    let video_on = flag(|p| p.media.video);
    let big = expect_context::<BigTile>().0;
    let is_big = {
        let id = id.clone();
        move || big.with(|b| *b == id).to_string()
    };
    let pin_id = Signal::stored(id.clone());
    view! {
        <div class="tile" data-peer-id=id.clone() data-big=is_big
            data-speaking=field(|p| (p.speaking && p.media.audio).to_string())
            data-recording=field(|p| p.media.recording.to_string())
            class:video-off=move || !video_on.get()
            data-connection-state=field(|p| p.connection.as_str().to_owned())
            data-presence=field(|p| if p.away { "reconnecting" } else { "present" }.to_owned())
            data-frames-decoded=field(|p| p.frames.to_string())
            data-audio-packets=field(|p| p.audio_packets.to_string())
            data-first-frame-ms=field(|p| p.first_frame_ms.map(|m| format!("{m:.0}")).unwrap_or_default())
            data-quality=field(|p| p.quality.as_str().to_owned())
            data-video-codec=field(|p| p.video_codec.clone().unwrap_or_default())>
            <video data-peer-id=id.clone() node_ref=video autoplay=true playsinline=true
                on:loadeddata=loaded aria-label=move || format!("Video of {}", label.get())></video>
            <Avatar name=name />
            <Marks id=id.clone() />
            <div class="tile-bar">
                <span class="tile-name" title=move || label.get()>{move || label.get()}</span>
                <MicBadge on=flag(|p| p.media.audio) />
                <CamBadge on=video_on />
                <span class="quality" data-quality=field(|p| p.quality.as_str().to_owned()) role="img"
                    aria-label=field(|p| format!("Connection {}", p.quality.as_str()))
                    title=field(|p| match &p.video_codec {
                        Some(codec) => format!("Connection: {} ({}), video {}", p.quality.as_str(), p.connection.as_str(), codec.trim_start_matches("video/")),
                        None => format!("Connection: {} ({})", p.quality.as_str(), p.connection.as_str()),
                    })>
                    <i></i><i></i><i></i>
                </span>
                <PinButton id=pin_id />
            </div>
            {when(move || peer.with(|p| p.as_ref().is_some_and(|p| p.away || p.connection != ConnState::Connected)), move || view! {
                <div class="tile-overlay">{field(|p| if p.away { "Reconnecting to the server…" } else { p.connection.overlay_text() }.to_owned())}</div>
            }.into_any())}
        </div>
    }
}

/// Chat and the comparison, as tabs of one panel (an overlay on phones).
#[component]
fn SidePanel() -> impl IntoView {
    let room_ui = expect_context::<RoomUi>();
    let panel = room_ui.panel;
    let tab = move |p: Panel| panel.get() == p;
    view! {
        <aside class="side" class:hidden=move || panel.get() == Panel::Closed
            aria-label="Side panel">
            <div class="tabs" role="tablist">
                <button id="tab-chat" role="tab" aria-selected=move || tab(Panel::Chat).to_string()
                    on:click=move |_| panel.set(Panel::Chat)>
                    "Chat"
                    <span class="badge" class:hidden=move || room_ui.unread.get() == 0>{move || room_ui.unread.get()}</span>
                </button>
                <button id="tab-people" role="tab" aria-selected=move || tab(Panel::People).to_string()
                    on:click=move |_| panel.set(Panel::People)>"People"</button>
                <button id="tab-compare" role="tab" aria-selected=move || tab(Panel::Compare).to_string()
                    on:click=move |_| panel.set(Panel::Compare)>"Relay vs P2P"</button>
                <button id="panel-close" class="icon-button" aria-label="Close the panel"
                    on:click=move |_| panel.set(Panel::Closed)><Svg icon=Icon::Close /></button>
            </div>
            <div class="tab-body" class:hidden=move || panel.get() != Panel::Chat><ChatPanel /></div>
            <div class="tab-body" class:hidden=move || panel.get() != Panel::Compare><RttPanel /></div>
            <div class="tab-body" class:hidden=move || panel.get() != Panel::People><PeoplePanel /></div>
        </aside>
    }
}

/// What the control bar reads.
#[derive(Clone, Copy)]
struct Bar {
    ui: Ui,
    room: RoomUi,
}

/// A reactive value of the bar from a plain function: every use with the
/// same output type is one closure type, so the view code that renders it
/// is compiled once (what keeps the WASM bundle small), not once per use.
fn rx<T: 'static>(bar: Bar, f: fn(&Bar) -> T) -> impl Fn() -> T + Copy + Send + Sync + 'static {
    move || f(&bar)
}

/// A click handler from a plain function: one closure type for every
/// button that uses it (the bundle's size, as with [`rx`]).
fn tap(call: ActiveCall, f: fn(&ActiveCall)) -> impl Fn(leptos::ev::MouseEvent) + Copy + 'static {
    move |_| f(&call)
}

#[component]
fn Controls() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let room_ui = expect_context::<RoomUi>();
    let bar = Bar { ui, room: room_ui };
    let panel = room_ui.panel;
    let menu = RwSignal::new(false);
    let toggle = move |p: Panel| {
        panel.update(|cur| *cur = if *cur == p { Panel::Closed } else { p });
    };
    let can_share = screen_sharing_supported();
    view! {
        <nav class="controls" aria-label="Call controls">
            <button id="mic-button" class="ctl" class:off=rx(bar, |b| !b.ui.mic_on.get())
                disabled=rx(bar, |b| !b.ui.has_mic.get())
                aria-pressed=rx(bar, |b| if b.ui.has_mic.get() && !b.ui.mic_on.get() { "true" } else { "false" })
                aria-label=rx(bar, |b| if !b.ui.has_mic.get() { "No microphone" } else if b.ui.mic_on.get() { "Mute microphone" } else { "Unmute microphone" })
                on:click=move |_| call.toggle_mic()>
                <span class="mic-ring" style:--level=rx(bar, |b| format!("{:.2}", if b.ui.mic_on.get() { b.ui.mic_level.get() } else { 0.0 }))>
                    <Svg icon=Signal::derive(rx(bar, |b| if b.ui.mic_on.get() { Icon::Mic } else { Icon::MicOff })) />
                </span>
                <span class="label">{rx(bar, |b| if b.ui.mic_on.get() { "Mute" } else { "Unmute" })}</span>
            </button>
            <button id="camera-button" class="ctl" class:off=rx(bar, |b| !b.ui.cam_on.get())
                disabled=rx(bar, |b| !b.ui.has_cam.get())
                aria-pressed=rx(bar, |b| if b.ui.has_cam.get() && !b.ui.cam_on.get() { "true" } else { "false" })
                aria-label=rx(bar, |b| if !b.ui.has_cam.get() { "No camera" } else if b.ui.cam_on.get() { "Turn camera off" } else { "Turn camera on" })
                on:click=move |_| call.toggle_camera()>
                <Svg icon=Signal::derive(rx(bar, |b| if b.ui.cam_on.get() { Icon::Cam } else { Icon::CamOff })) />
                <span class="label">{rx(bar, |b| if b.ui.cam_on.get() { "Stop video" } else { "Start video" })}</span>
            </button>
            {can_share.then(|| view! {
                <button id="screen-button" class="ctl" class:on=rx(bar, |b| b.ui.screen_on.get())
                    aria-pressed=rx(bar, |b| if b.ui.screen_on.get() { "true" } else { "false" })
                    aria-label=rx(bar, |b| if b.ui.screen_on.get() { "Stop sharing the screen" } else { "Share the screen" })
                    on:click=tap(call, ActiveCall::toggle_screen)>
                    <Svg icon=Icon::Screen />
                    <span class="label">{rx(bar, |b| if b.ui.screen_on.get() { "Stop sharing" } else { "Share screen" })}</span>
                </button>
            })}
            {recording_supported().then(|| view! {
                <button id="record-button" class="ctl" class:on=rx(bar, |b| b.ui.recording.get())
                    aria-pressed=rx(bar, |b| if b.ui.recording.get() { "true" } else { "false" })
                    aria-label=rx(bar, |b| if b.ui.recording.get() { "Stop recording" } else { "Record the call (everyone is told)" })
                    on:click=tap(call, ActiveCall::toggle_recording)>
                    <Svg icon=Icon::Record />
                    <span class="label">{rx(bar, |b| if b.ui.recording.get() { "Stop rec." } else { "Record" })}</span>
                </button>
            })}
            <div class="menu-anchor">
                <button id="devices-button" class="ctl" aria-haspopup="true" aria-expanded=move || if menu.get() { "true" } else { "false" }
                    aria-label="Devices and sounds" on:click=move |_| menu.update(|m| *m = !*m)>
                    <Svg icon=Icon::Settings /><span class="label">"Settings"</span>
                </button>
                {when(move || menu.get(), move || view! {
                    <DeviceMenu close=move || menu.set(false) />
                }.into_any())}
            </div>
            <button id="hand-button" class="ctl" class:on=rx(bar, |b| b.ui.hand_up.get())
                aria-pressed=rx(bar, |b| if b.ui.hand_up.get() { "true" } else { "false" })
                aria-label=rx(bar, |b| if b.ui.hand_up.get() { "Lower your hand (h)" } else { "Raise your hand (h)" })
                on:click=tap(call, ActiveCall::toggle_hand)>
                <Svg icon=Icon::Hand />
                <span class="label">{rx(bar, |b| if b.ui.hand_up.get() { "Lower hand" } else { "Raise hand" })}</span>
            </button>
            <Reactions />
            <button id="chat-toggle" class="ctl" class:on=rx(bar, |b| b.room.panel.get() == Panel::Chat)
                aria-pressed=rx(bar, |b| if b.room.panel.get() == Panel::Chat { "true" } else { "false" })
                aria-label=rx(bar, |b| match b.room.unread.get() { 0 => "Chat".to_owned(), n => format!("Chat, {n} unread") })
                on:click=move |_| toggle(Panel::Chat)>
                <Svg icon=Icon::Chat /><span class="label">"Chat"</span>
                <span id="chat-unread" class="badge" class:hidden=rx(bar, |b| b.room.unread.get() == 0)
                    aria-label=rx(bar, |b| format!("{} unread", b.room.unread.get()))>
                    {rx(bar, |b| b.room.unread.get().to_string())}
                </span>
            </button>
            <button id="compare-toggle" class="ctl" class:on=rx(bar, |b| b.room.panel.get() == Panel::Compare)
                aria-pressed=rx(bar, |b| if b.room.panel.get() == Panel::Compare { "true" } else { "false" })
                aria-label="Relay versus peer-to-peer"
                on:click=move |_| toggle(Panel::Compare)>
                <Svg icon=Icon::Chart /><span class="label">"Compare"</span>
            </button>
            <button id="leave-button" class="ctl danger" aria-label="Leave the room"
                on:click=move |_| call.leave()>
                <Svg icon=Icon::Leave /><span class="label">"Leave"</span>
            </button>
        </nav>
    }
}

/// Switch camera and microphone during the call; sounds on or off.
#[component]
fn DeviceMenu(close: impl Fn() + Copy + 'static) -> impl IntoView {
    let call = expect_context::<ActiveCall>();
    let room_ui = expect_context::<RoomUi>();
    let cams = RwSignal::new(Vec::<Device>::new());
    let mics = RwSignal::new(Vec::<Device>::new());
    let cam = RwSignal::new(call.current_device(Kind::Video));
    let mic = RwSignal::new(call.current_device(Kind::Audio));
    leptos::task::spawn_local(async move {
        let (c, m) = media::devices().await;
        let _ = cams.try_set(c);
        let _ = mics.try_set(m);
    });
    Effect::new(move |prev: Option<(Option<String>, Option<String>)>| {
        let now = (cam.get(), mic.get());
        if let Some(prev) = prev {
            if now.0 != prev.0
                && let Some(id) = now.0.clone()
            {
                call.switch_device(Kind::Video, id);
            }
            if now.1 != prev.1
                && let Some(id) = now.1.clone()
            {
                call.switch_device(Kind::Audio, id);
            }
        }
        now
    });
    view! {
        <div id="device-menu" class="menu card" role="dialog" aria-label="Devices and sounds"
            on:keydown=move |ev| if ev.key() == "Escape" { close() }>
            <DeviceSelect id="call-camera-select" label="Camera" devices=cams choice=cam />
            <DeviceSelect id="call-mic-select" label="Microphone" devices=mics choice=mic />
            <label class="check">
                <input id="sound-toggle" type="checkbox" prop:checked=move || room_ui.sounds.get()
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        room_ui.sounds.set(on);
                        if let Some(s) = storage() { let _ = s.set_item(SOUNDS_KEY, if on { "on" } else { "off" }); }
                    } />
                "Sounds for joins and messages"
            </label>
            <button type="button" on:click=move |_| close()>"Done"</button>
        </div>
    }
}

/// `getDisplayMedia` exists (not on phones).
fn screen_sharing_supported() -> bool {
    web_sys::window()
        .and_then(|w| w.navigator().media_devices().ok())
        .is_some_and(|md| {
            js_sys::Reflect::has(md.as_ref(), &"getDisplayMedia".into()).unwrap_or(false)
        })
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
            .and_then(|n| n.dyn_into::<web_sys::HtmlVideoElement>().ok())
        {
            v.set_muted(false);
            let _ = v.play();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fill_the_area() {
        // Three people in a 900×700 stage: two columns (two rows), not three in a row.
        assert_eq!(grid_layout(3, 900.0, 700.0, 8.0), (2, 446.0, 334.0));
        assert_eq!(grid_layout(1, 900.0, 700.0, 8.0).0, 1);
        // A phone in portrait: one column.
        assert_eq!(grid_layout(3, 390.0, 640.0, 8.0).0, 1);
        assert_eq!(grid_layout(6, 1200.0, 700.0, 8.0).0, 3);
        assert_eq!(grid_layout(2, 1200.0, 500.0, 8.0).0, 2);
        // Tiles fit: columns × width plus gaps within the width.
        let (cols, tw, th) = grid_layout(5, 1000.0, 600.0, 8.0);
        assert!(cols as f64 * tw + 8.0 * (cols as f64 - 1.0) <= 1000.0);
        assert!(5usize.div_ceil(cols) as f64 * th <= 600.0);
    }

    #[test]
    fn duplicate_names_are_numbered() {
        let peers = vec![
            ("b".to_owned(), "Ana".to_owned()),
            ("c".to_owned(), "Bo".to_owned()),
            ("d".to_owned(), "Ana".to_owned()),
        ];
        let l = member_labels(("a", "Ana"), &peers);
        assert_eq!(l["a"], "Ana");
        assert_eq!(l["b"], "Ana (2)");
        assert_eq!(l["c"], "Bo");
        assert_eq!(l["d"], "Ana (3)");
    }
}
