//! The screens after a call: refused (why, and the way forward: a password
//! prompt, try again, another mode, the lobby) and left (rejoin at once, or
//! the lobby). Neither keeps the camera or the microphone.

use leptos::prelude::*;
use protocol::Mode;

use super::InRoom;
use crate::call::ActiveCall;
use crate::state::{StatusKind, Ui};

/// The join was refused: `#error-screen`, with `#status` (its `data-kind`)
/// saying why.
#[component]
pub fn ErrorScreen() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let in_room = expect_context::<InRoom>();
    let kind = Memo::new(move |_| ui.status.get().map(|s| s.kind).unwrap_or(StatusKind::Error));
    let title = move || match kind.get() {
        StatusKind::Unauthorized => "This room needs a password",
        StatusKind::RoomFull => "This room is full",
        StatusKind::InvalidRoom => "This link does not lead to a room",
        StatusKind::ModeUnavailable => "This kind of call is not available here",
        StatusKind::Locked => "This room is locked",
        StatusKind::Kicked => "You were removed from the call",
        _ => "Could not join the room",
    };
    let password = RwSignal::new(String::new());
    let lobby = move |_| {
        let room =
            (kind.get_untracked() != StatusKind::InvalidRoom).then(|| ui.room.get_untracked());
        in_room.back_to_lobby(call, room.as_deref());
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let pw = password.get_untracked();
        if pw.is_empty() {
            return;
        }
        call.rejoin(|p| p.password = Some(pw));
    };
    view! {
        <section id="error-screen" class="card screen" data-kind=move || kind.get().as_str() role="alert">
            <h1>{title}</h1>
            <p id="status" data-kind=move || kind.get().as_str()>
                {move || ui.status.get().map(|s| s.text).unwrap_or_default()}
            </p>
            {move || match kind.get() {
                StatusKind::Unauthorized => view! {
                    <form class="retry-form" on:submit=submit>
                        <label>"Password"
                            <input id="retry-password" type="password" aria-label="Room password" maxlength="128"
                                autofocus=true autocomplete="off"
                                prop:value=move || password.get()
                                on:input=move |ev| password.set(event_target_value(&ev)) />
                        </label>
                        <div class="actions">
                            <button id="retry-button" type="submit" class="primary"
                                disabled=move || password.with(String::is_empty)>"Join"</button>
                            <button id="lobby-button" type="button" on:click=lobby>"Back to the lobby"</button>
                        </div>
                    </form>
                }.into_any(),
                // Removed by the host: no "Try again" offered right back in.
                k @ (StatusKind::InvalidRoom | StatusKind::Kicked) => view! {
                    <div class="actions">
                        <button id="lobby-button" class="primary" on:click=lobby>
                            {if k == StatusKind::Kicked { "Back to the lobby" } else { "Choose a room" }}
                        </button>
                    </div>
                }.into_any(),
                StatusKind::ModeUnavailable => view! {
                    <div class="actions">
                        <button id="mesh-button" class="primary" on:click=move |_| call.rejoin(|p| p.mode = Mode::Mesh)>
                            "Join as a peer-to-peer call"
                        </button>
                        <button id="lobby-button" on:click=lobby>"Back to the lobby"</button>
                    </div>
                }.into_any(),
                _ => view! {
                    <div class="actions">
                        <button id="retry-button" class="primary" on:click=move |_| call.rejoin(|_| {})>"Try again"</button>
                        <button id="lobby-button" on:click=lobby>"Back to the lobby"</button>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}

/// After "Leave": `#left-screen`.
#[component]
pub fn LeftScreen() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let in_room = expect_context::<InRoom>();
    view! {
        <section id="left-screen" class="card screen">
            <h1>"You left the call"</h1>
            <p>{move || format!("You left {}. Your camera and microphone are off.", ui.room.get())}</p>
            <div class="actions">
                <button id="rejoin-button" class="primary" on:click=move |_| call.rejoin(|_| {})>"Rejoin"</button>
                <button id="lobby-button" on:click=move |_| in_room.back_to_lobby(call, Some(&ui.room.get_untracked()))>
                    "Back to the lobby"
                </button>
            </div>
        </section>
    }
}
