//! The view: lobby, room (grid, tiles, controls), chat, round-trip panel.

mod chat;
mod lobby;
mod room;
mod rtt;

use leptos::prelude::*;

use crate::Route;
use crate::call::{ActiveCall, JoinParams};
use crate::state::Ui;

/// The whole app: the lobby until the user joins, then the room.
#[component]
pub fn App() -> impl IntoView {
    let route = Route::current();
    let ui = Ui::new();
    provide_context(ui);
    let call = ActiveCall::new(ui, route.codec.clone());
    provide_context(call);
    let in_room = RwSignal::new(false);
    // A shared link with a name joins at once.
    if let (Some(room), Some(name)) = (route.room.clone(), route.name.clone()) {
        let params = JoinParams {
            room,
            name,
            mode: route.mode.unwrap_or_default(),
            password: None,
        };
        lobby::join_now(call, ui, in_room, params, None, None, crate::js::now_ms());
    }
    view! {
        <Show
            when=move || in_room.get()
            fallback=move || view! { <lobby::Lobby route=route.clone() in_room=in_room /> }
        >
            <room::RoomView in_room=in_room />
        </Show>
    }
}
