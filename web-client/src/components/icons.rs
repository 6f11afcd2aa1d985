//! Inline SVG icons (24×24, `currentColor`): no icon font, no request, and
//! nothing the Content-Security-Policy could block. Each is decorative
//! (`aria-hidden`): the button or badge around it carries the label.

use leptos::prelude::*;

/// The icons of the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    Mic,
    MicOff,
    Cam,
    CamOff,
    Screen,
    Chat,
    Chart,
    Leave,
    Link,
    Settings,
    Close,
    People,
    Hand,
    Smile,
    Clip,
    Pin,
    Layout,
    Record,
    Pip,
}

impl Icon {
    fn path(self) -> &'static str {
        match self {
            Icon::Hand => {
                "M23 5.5V20c0 2.2-1.8 4-4 4h-7.3c-1.1 0-2.1-.4-2.9-1.2L1 14.8l1.3-1.3c.2-.2.5-.3.8-.3.2 0 .4.1.6.2L8 15.9V4c0-.8.7-1.5 1.5-1.5S11 3.2 11 4v7h1V1.5c0-.8.7-1.5 1.5-1.5S15 .7 15 1.5V11h1V2.5c0-.8.7-1.5 1.5-1.5s1.5.7 1.5 1.5V11h1V5.5c0-.8.7-1.5 1.5-1.5s1.5.7 1.5 1.5z"
            }
            Icon::Smile => {
                "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16zm3.5-9a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3zm-7 0a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3zm3.5 6.5c2.3 0 4.3-1.5 5.1-3.5H6.9c.8 2 2.8 3.5 5.1 3.5z"
            }
            Icon::Mic => {
                "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11h-2z"
            }
            Icon::MicOff => {
                "M19 11h-2a5 5 0 0 1-.7 2.5l1.5 1.5A7 7 0 0 0 19 11zM15 11V5a3 3 0 0 0-5.9-.8L15 10.1V11zM4.3 3 3 4.3l6 6V11a3 3 0 0 0 4.4 2.7l1.5 1.5A5 5 0 0 1 7 11H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 3.3-1.3l3.4 3.4 1.3-1.3z"
            }
            Icon::Cam => {
                "M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11z"
            }
            Icon::CamOff => {
                "M21 6.5l-4 4V7a1 1 0 0 0-1-1H9.8L21 17.2zM3.3 2 2 3.3 4.7 6H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12l.2-.1 3.5 3.4 1.3-1.3z"
            }
            Icon::Screen => {
                "M20 18a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2H4a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2H0v2h24v-2zM4 6h16v10H4zm8 1-4 4h3v3h2v-3h3z"
            }
            Icon::Chat => {
                "M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2zm0 14H5.2L4 17.2V4h16z"
            }
            Icon::Chart => "M3 3h2v16h16v2H3zm4 10 4-4 3 3 5-6 1.5 1.3L14 15l-3-3-2.6 2.6z",
            Icon::Leave => {
                "M12 9c-1.6 0-3.1.3-4.6.7v3.1c0 .4-.2.7-.6.9a11 11 0 0 0-2.7 1.9.9.9 0 0 1-1.3 0L.3 13.1a.9.9 0 0 1 0-1.3A17 17 0 0 1 12 7c4.6 0 8.7 1.8 11.7 4.8.4.4.4.9 0 1.3l-2.5 2.5a.9.9 0 0 1-1.3 0 11 11 0 0 0-2.6-1.9.9.9 0 0 1-.6-.9V9.7A15 15 0 0 0 12 9z"
            }
            Icon::Link => {
                "M3.9 12a3.1 3.1 0 0 1 3.1-3.1h4V7H7a5 5 0 0 0 0 10h4v-1.9H7A3.1 3.1 0 0 1 3.9 12zM8 13h8v-2H8zm9-6h-4v1.9h4a3.1 3.1 0 0 1 0 6.2h-4V17h4a5 5 0 0 0 0-10z"
            }
            Icon::Settings => {
                "M19.4 13a7.5 7.5 0 0 0 0-2l2.1-1.6-2-3.5-2.5 1a7 7 0 0 0-1.7-1L15 3h-4l-.4 2.9a7 7 0 0 0-1.7 1l-2.5-1-2 3.5L6.6 11a7.5 7.5 0 0 0 0 2l-2.1 1.6 2 3.5 2.5-1a7 7 0 0 0 1.7 1L11 21h4l.4-2.9a7 7 0 0 0 1.7-1l2.5 1 2-3.5zM13 15.5a3.5 3.5 0 1 1 0-7 3.5 3.5 0 0 1 0 7z"
            }
            Icon::Clip => {
                "M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6h-1.5z"
            }
            Icon::Pin => "M16 3v2h-1v6l3 3v2h-5v6h-2v-6H6v-2l3-3V5H8V3h8z",
            Icon::Layout => "M3 3h18v12H3V3zm0 14h5v4H3v-4zm6.5 0h5v4h-5v-4zm6.5 0h5v4h-5v-4z",
            Icon::Record => {
                "M12 7a5 5 0 1 0 0 10 5 5 0 0 0 0-10zm0-5a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16z"
            }
            Icon::Pip => {
                "M19 11h-8v6h8v-6zm4 8V5c0-1.1-.9-2-2-2H3a2 2 0 0 0-2 2v14c0 1.1.9 2 2 2h18a2 2 0 0 0 2-2zm-2 0H3V5h18v14z"
            }
            Icon::Close => {
                "M19 6.4 17.6 5 12 10.6 6.4 5 5 6.4 10.6 12 5 17.6 6.4 19 12 13.4 17.6 19 19 17.6 13.4 12z"
            }
            Icon::People => {
                "M16 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm-8 0a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm0 2c-2.3 0-7 1.2-7 3.5V19h14v-2.5C15 14.2 10.3 13 8 13zm8 0h-1a4 4 0 0 1 2 3.5V19h6v-2.5c0-2.3-4.7-3.5-7-3.5z"
            }
        }
    }
}

/// An icon as an inline SVG; one that changes (microphone on, off) swaps
/// its path, not the element.
#[component]
pub fn Svg(#[prop(into)] icon: Signal<Icon>) -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
            <path fill="currentColor" d=move || icon.get().path() />
        </svg>
    }
}

/// `on` or `off` by a condition.
pub fn either(
    cond: impl Fn() -> bool + Send + Sync + 'static,
    on: Icon,
    off: Icon,
) -> Signal<Icon> {
    Signal::derive(move || if cond() { on } else { off })
}
