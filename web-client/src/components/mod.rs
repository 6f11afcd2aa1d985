//! The view: lobby, room (grid, tiles, controls), side panel (chat and the
//! relay vs peer-to-peer comparison), and the screens after the call
//! (left, refused).

mod chat;
mod icons;
mod lobby;
mod people;
mod room;
mod rtt;
mod screens;
mod share;

use leptos::prelude::*;
use protocol::DisplayName;

use crate::Route;
use crate::call::{ActiveCall, JoinParams};
use crate::state::Ui;

/// Whether the page shows the room (else the lobby).
#[derive(Clone, Copy)]
pub struct InRoom(pub RwSignal<bool>);

impl InRoom {
    /// Ends any call and shows the lobby, for `room` when given.
    pub fn back_to_lobby(self, call: ActiveCall, room: Option<&str>) {
        call.end();
        let path = match room.filter(|r| protocol::RoomName::parse(r).is_ok()) {
            Some(r) => format!("/r/{r}"),
            None => "/".to_owned(),
        };
        push_path(&path);
        self.0.set(false);
    }
}

/// Shows `path` in the address bar without loading it.
pub fn push_path(path: &str) {
    if let Some(h) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = h.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(path));
    }
}

/// The whole app: the lobby until the user joins, then the room.
#[component]
pub fn App() -> impl IntoView {
    let route = Route::current();
    let ui = Ui::new();
    provide_context(ui);
    let call = ActiveCall::new(ui, route.codec.clone());
    provide_context(call);
    let in_room = InRoom(RwSignal::new(false));
    provide_context(in_room);
    // A shared link with a (valid) name joins at once; so does a reload in
    // a call (it takes its seat back, as it was).
    let resume = route.room.as_deref().and_then(crate::call::resume_state);
    let name = route
        .name
        .clone()
        .or_else(|| resume.and_then(|_| lobby::remembered_name()));
    if let (Some(room), Some(name)) = (route.room.clone(), name)
        && DisplayName::parse(&name).is_ok()
    {
        let mut params =
            JoinParams::new(room, name.trim().to_owned(), route.mode.unwrap_or_default());
        if let Some((mic, camera)) = resume {
            (params.mic, params.camera) = (mic, camera);
        }
        lobby::enter(call, in_room, params, None, crate::js::now_ms());
    }
    view! {
        {when(move || in_room.0.get(), || view! { <room::RoomView /> }.into_any())}
        {when(move || !in_room.0.get(), || view! { <lobby::Lobby /> }.into_any())}
    }
}

/// `view` while `cond` holds: what `<Show>` does, in less code. The
/// reactive part is one function for every use (the condition and the view
/// arrive type-erased), which keeps the WASM bundle small.
pub fn when(
    cond: impl Fn() -> bool + Send + Sync + 'static,
    view: impl Fn() -> AnyView + Send + Sync + 'static,
) -> AnyView {
    show(Signal::derive(cond), std::sync::Arc::new(view))
}

type ViewMaker = std::sync::Arc<dyn Fn() -> AnyView + Send + Sync>;

fn show(cond: Signal<bool>, view: ViewMaker) -> AnyView {
    let shown = Memo::new(move |_| cond.get());
    (move || shown.get().then(|| view())).into_any()
}

/// Up to two initials of a name, for a tile without video.
pub fn initials(name: &str) -> String {
    let mut words = name.split_whitespace().filter_map(|w| w.chars().next());
    let first = words.next();
    let last = words.next_back();
    first
        .into_iter()
        .chain(last)
        .flat_map(char::to_uppercase)
        .collect()
}

/// One of eight hues for a name's avatar (`data-hue`), the same on every page.
pub fn hue(name: &str) -> u32 {
    name.bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_and_hues() {
        assert_eq!(initials("Ana"), "A");
        assert_eq!(initials("ana maria bo"), "AB");
        assert_eq!(initials("  "), "");
        assert_eq!(initials("émile zola"), "ÉZ");
        assert_eq!(hue("Ana"), hue("Ana"));
        assert!(hue("x") < 8);
    }
}
