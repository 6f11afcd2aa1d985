//! Chat: messages with delivery ticks, notices, typing indicator, and the
//! relay / peer-to-peer switch. Text is always text, never markup.

use leptos::prelude::*;

use crate::call::ActiveCall;
use crate::js::clock;
use crate::state::{Author, ChatEntry, Ticks, Ui, Via};

#[component]
pub fn ChatPanel() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let draft = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let log = NodeRef::<leptos::html::Ol>::new();
    // Keep the newest message in view.
    Effect::new(move |_| {
        ui.chat.track();
        if let Some(el) = log.get() {
            el.set_scroll_top(el.scroll_height());
        }
    });
    let send = move || {
        let text = draft.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        match call.send_chat(text) {
            Ok(()) => {
                draft.set(String::new());
                error.set(None);
            }
            Err(e) => error.set(Some(e)),
        }
    };
    let typing = move || {
        ui.typing.with(|t| match t.as_slice() {
            [] => String::new(),
            [(_, a)] => format!("{a} is typing…"),
            [(_, a), (_, b)] => format!("{a} and {b} are typing…"),
            more => format!("{} people are typing…", more.len()),
        })
    };
    view! {
        <section class="card chat" aria-label="Chat">
            <header class="chat-head">
                <h2>"Chat"</h2>
                <label class="via">"via "
                    <select id="chat-transport" aria-label="Send chat via"
                        on:change=move |ev| ui.via.set(if event_target_value(&ev) == "p2p" { Via::P2p } else { Via::Relay })>
                        <option value="relay" selected=move || ui.via.get() == Via::Relay>"server relay (WebSocket)"</option>
                        <option value="p2p" selected=move || ui.via.get() == Via::P2p>"peer-to-peer (DataChannel)"</option>
                    </select>
                </label>
            </header>
            <ol id="chat-log" node_ref=log aria-live="polite">
                <For each=move || ui.chat.get() key=|e| (e.key(), entry_rev(e)) let:entry>
                    {match entry {
                        ChatEntry::Notice { text, .. } => view! { <li class="notice">{text}</li> }.into_any(),
                        ChatEntry::Msg(m) => {
                            let mine = m.from == Author::Me;
                            view! {
                                <li class="msg" class:mine=mine data-msg-id=m.id.clone() data-from=m.from.data_from().to_owned()
                                    data-via=m.via.as_str()>
                                    <span class="msg-author">{m.name.clone()}</span>
                                    <span class="msg-text">{m.text.clone()}</span>
                                    <span class="msg-meta">
                                        <span class="msg-via">{if m.via == Via::P2p { "p2p" } else { "relay" }}</span>
                                        <time class="msg-time">{clock(m.ts)}</time>
                                        <Show when=move || mine>
                                            <span class="msg-ticks" data-ticks=m.ticks.as_data() title=m.ticks.title()>{m.ticks.glyph()}</span>
                                        </Show>
                                    </span>
                                </li>
                            }.into_any()
                        }
                    }}
                </For>
            </ol>
            <p id="typing" class="typing" aria-live="polite">{typing}</p>
            <Show when=move || error.get().is_some()>
                <p class="form-error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
            <form class="chat-form" on:submit=move |ev| { ev.prevent_default(); send(); }>
                <input id="chat-input" aria-label="Message" placeholder="Message" maxlength="2000" autocomplete="off"
                    prop:value=move || draft.get()
                    on:input=move |ev| {
                        draft.set(event_target_value(&ev));
                        call.typed();
                    } />
                <button id="chat-send" type="submit" aria-label="Send message">"Send"</button>
            </form>
        </section>
    }
}

/// Part of the key, so a message re-renders when its id or ticks change.
fn entry_rev(e: &ChatEntry) -> Option<Ticks> {
    match e {
        ChatEntry::Msg(m) => Some(m.ticks),
        ChatEntry::Notice { .. } => None,
    }
}
