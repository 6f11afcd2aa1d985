//! The room's link: shown, copied with one click (with a fallback that
//! selects it when the clipboard is refused), as a QR code for a phone (drawn
//! by the server, `/api/qr`), and carrying the room's mode.

use leptos::prelude::*;
use protocol::Mode;

use super::icons::{Icon, Svg};

/// `https://host/r/<room>` (plus `?mode=sfu` for an SFU room), or `None`
/// for a name the server would refuse.
pub fn room_link(room: &str, mode: Mode) -> Option<String> {
    protocol::RoomName::parse(room).ok()?;
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    Some(match mode {
        Mode::Mesh => format!("{origin}/r/{room}"),
        Mode::Sfu => format!("{origin}/r/{room}?mode=sfu"),
    })
}

/// What the copy button last did (`data-copied`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copied {
    No,
    Yes,
    /// The clipboard was refused: the link is selected for Ctrl+C.
    Selected,
}

/// Copies `text`; on refusal selects the `#share-link` field instead.
fn copy(text: String, state: RwSignal<Copied>, field: NodeRef<leptos::html::Input>) {
    let clipboard = web_sys::window().map(|w| w.navigator().clipboard());
    leptos::task::spawn_local(async move {
        let done = match clipboard {
            Some(c) => wasm_bindgen_futures::JsFuture::from(c.write_text(&text))
                .await
                .is_ok(),
            None => false,
        };
        if done {
            state.set(Copied::Yes);
        } else {
            if let Some(el) = field.try_get_untracked().flatten() {
                el.select();
            }
            state.set(Copied::Selected);
        }
        set_timeout(
            move || {
                let _ = state.try_set(Copied::No);
            },
            std::time::Duration::from_secs(3),
        );
    });
}

/// The link as a read-only field and a "Copy link" button.
#[component]
pub fn ShareLink(room: Signal<String>, mode: Signal<Mode>) -> impl IntoView {
    let state = RwSignal::new(Copied::No);
    let field = NodeRef::<leptos::html::Input>::new();
    let link = Memo::new(move |_| room_link(&room.get(), mode.get()).unwrap_or_default());
    view! {
        <div class="share-row">
            <input id="share-link" node_ref=field readonly=true aria-label="Link to this room"
                prop:value=move || link.get() on:focus=move |_| { if let Some(el) = field.get_untracked() { el.select(); } } />
            <button id="copy-link" type="button" class="copy"
                data-copied=move || match state.get() { Copied::No => "", Copied::Yes => "true", Copied::Selected => "selected" }
                on:click=move |_| copy(link.get_untracked(), state, field)>
                <Svg icon=Icon::Link />
                <span aria-live="polite">{move || match state.get() {
                    Copied::No => "Copy link",
                    Copied::Yes => "Copied",
                    Copied::Selected => "Press Ctrl+C",
                }}</span>
            </button>
            <details class="qr">
                <summary id="qr-button" aria-label="QR code of the link">"QR"</summary>
                <img id="qr-code" width="240" height="240" loading="lazy"
                    alt="QR code of the link to this room: point a phone's camera at it"
                    src=move || format!("/api/qr?text={}", String::from(js_sys::encode_uri_component(&link.get())))/>
            </details>
        </div>
    }
}
