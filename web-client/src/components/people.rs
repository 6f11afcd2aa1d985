//! Version 2: the participants panel (with the host's controls), the marks
//! on a tile (a raised hand, a reaction), and the hand and reaction
//! buttons of the control bar.

use leptos::prelude::*;
use protocol::events;
use serde_json::json;

use super::icons::{Icon, Svg};
use super::room::RoomUi;
use crate::call::ActiveCall;
use crate::state::Ui;

/// What people can react with.
const REACTIONS: [&str; 5] = ["👍", "👏", "😂", "🎉", "❤️"];

/// Everyone in the room: name, host, microphone and camera, hand; for the
/// host, per member "Ask to mute", "Ask to stop video", "Remove", and the
/// room's lock.
#[component]
pub fn PeoplePanel() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let room_ui = expect_context::<RoomUi>();
    let am_host = move || {
        let me = ui.self_id.get();
        !me.is_empty() && ui.host_id.get() == me
    };
    let label = move |id: &str| {
        room_ui
            .labels
            .with(|l| l.get(id).cloned().unwrap_or_default())
    };
    let rows = move || {
        let host = ui.host_id.get();
        let me = ui.self_id.get();
        let mine = (
            me.clone(),
            format!("{} (you)", ui.self_name.get()),
            ui.mic_on.get(),
            ui.cam_on.get(),
            ui.hand_up.get(),
        );
        let others = ui.peers.with(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p.id.clone(),
                        label(&p.id),
                        p.media.audio,
                        p.media.video,
                        p.hand,
                    )
                })
                .collect::<Vec<_>>()
        });
        let host_view = am_host();
        std::iter::once(mine)
            .chain(others)
            .map(|(id, name, mic, cam, hand)| {
                let state = format!(
                    "{}{}{}",
                    if mic { "mic on" } else { "muted" },
                    if cam { ", camera on" } else { ", camera off" },
                    if hand { ", hand raised" } else { "" }
                );
                // Every row has the same shape (one view type: the bundle's
                // size): what does not apply is hidden.
                let (a, b, c) = (id.clone(), id.clone(), id.clone());
                view! {
                    <li class="person" data-peer-id=id.clone() data-host=(id == host).to_string() data-hand=hand.to_string()>
                        <span class="person-name">{name}</span>
                        <span class="host-badge" class:hidden=id != host>"Host"</span>
                        <span class="hand-badge" class:hidden=!hand role="img" aria-label="Hand raised"><Svg icon=Icon::Hand /></span>
                        <span class="person-state">{state}</span>
                        <span class="person-actions" class:hidden=!host_view || id == me>
                            <button class="ask-mute" on:click=move |_| call.host(events::MUTE_REQUEST, json!({"peer": a, "kind": "audio"}))>"Ask to mute"</button>
                            <button class="ask-video" on:click=move |_| call.host(events::MUTE_REQUEST, json!({"peer": b, "kind": "video"}))>"Ask to stop video"</button>
                            <button class="remove danger" on:click=move |_| call.host(events::KICK, json!({"peer": c}))>"Remove"</button>
                        </span>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <div id="people-panel">
            <label class="check" class:hidden=move || !am_host()>
                <input id="lock-toggle" type="checkbox" prop:checked=move || ui.locked.get()
                    on:change=move |ev| call.host(events::LOCK, json!({"locked": event_target_checked(&ev)})) />
                "Lock the room (nobody new can join)"
            </label>
            <p class="hint" class:hidden=move || am_host()>
                {move || if ui.locked.get() { "The host locked the room." } else { "" }}
            </p>
            <ul id="people-list">{rows}</ul>
        </div>
    }
}

/// A tile's marks: a raised hand, and the reactions of the moment.
#[component]
pub fn Marks(id: String, #[prop(optional)] me: bool) -> impl IntoView {
    let ui = expect_context::<Ui>();
    let hand = {
        let id = id.clone();
        move || {
            if me {
                ui.hand_up.get()
            } else {
                ui.peers.with(|ps| ps.iter().any(|p| p.id == id && p.hand))
            }
        }
    };
    let shown = move || {
        let who = if me { ui.self_id.get() } else { id.clone() };
        ui.reactions.with(|r| {
            r.iter()
                .filter(|(_, p, _)| *p == who)
                .map(|(k, _, e)| view! { <span class="reaction" data-key=k.to_string()>{e.clone()}</span> })
                .collect_view()
        })
    };
    view! {
        <span class="tile-hand hand-badge" class:hidden=move || !hand() role="img" aria-label="Hand raised"><Svg icon=Icon::Hand /></span>
        <div class="reactions" aria-hidden="true">{shown}</div>
    }
}

/// The control bar's reactions.
#[component]
pub fn Reactions() -> impl IntoView {
    let call = expect_context::<ActiveCall>();
    let open = RwSignal::new(false);
    view! {
        <div class="menu-anchor">
            <button id="react-button" class="ctl" aria-haspopup="true"
                aria-expanded=move || open.get().to_string() aria-label="React"
                on:click=move |_| open.update(|o| *o = !*o)>
                <Svg icon=Icon::Smile />
                <span class="label">"React"</span>
            </button>
            <div id="reaction-menu" class="menu card reaction-menu" class:hidden=move || !open.get() role="menu">
                {REACTIONS.iter().map(|e| view! {
                    <button class="react" role="menuitem" data-emoji=*e aria-label=format!("React {e}")
                        on:click=move |_| { call.react(e); open.set(false); }>{*e}</button>
                }).collect_view()}
            </div>
        </div>
    }
}
