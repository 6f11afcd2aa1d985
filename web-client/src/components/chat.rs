//! Chat: messages with delivery ticks, notices, typing indicator, and the
//! relay / peer-to-peer switch. Text is always text, never markup.

use leptos::prelude::*;

use protocol::Mode;

use super::room::RoomUi;
use crate::call::ActiveCall;
use crate::js::clock;
use crate::state::{Author, ChatEntry, Phase, Ticks, Ui, Via};

/// A piece of a message: text, or a web address shown as a link.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Link(&'a str),
}

/// Splits `text` at `http://` and `https://` addresses (up to whitespace,
/// minus trailing punctuation).
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest
        .find("https://")
        .into_iter()
        .chain(rest.find("http://"))
        .min()
    {
        let (before, from) = rest.split_at(at);
        let end = from.find(char::is_whitespace).unwrap_or(from.len());
        let link = from[..end].trim_end_matches(['.', ',', ')', '!', '?', ';', ':', '"', '\'']);
        let scheme = if link.starts_with("https://") { 8 } else { 7 };
        if link.len() <= scheme {
            out.push(Piece::Text(&rest[..at + end]));
            rest = &rest[at + end..];
            continue;
        }
        if !before.is_empty() {
            out.push(Piece::Text(before));
        }
        out.push(Piece::Link(link));
        rest = &from[link.len()..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// A message's text: plain text nodes, and `<a>` for web addresses.
fn message_text(text: &str) -> impl IntoView + use<> {
    pieces(text)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => t.to_owned().into_any(),
            Piece::Link(l) => view! {
                <a href=l.to_owned() target="_blank" rel="noopener noreferrer nofollow">{l.to_owned()}</a>
            }
            .into_any(),
        })
        .collect_view()
}

#[component]
pub fn ChatPanel() -> impl IntoView {
    let ui = expect_context::<Ui>();
    let call = expect_context::<ActiveCall>();
    let room_ui = expect_context::<RoomUi>();
    let sfu = move || ui.mode.get() == Some(Mode::Sfu);
    // Through the SFU there is no channel between browsers.
    Effect::new(move |_| {
        if sfu() && ui.via.get_untracked() == Via::P2p {
            ui.via.set(Via::Relay);
        }
    });
    // While the server is away the seat is held: what is written waits
    // and goes when it is back.
    let joined = move || match ui.phase.get() {
        Phase::Joined => true,
        Phase::Reconnecting => !ui.self_id.get().is_empty(),
        _ => false,
    };
    let author = move |id: &str, name: &str| {
        room_ui
            .labels
            .with_untracked(|l| l.get(id).cloned())
            .unwrap_or_else(|| name.to_owned())
    };
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
        <section class="chat" aria-label="Chat">
            <header class="chat-head">
                <label class="via">"via "
                    <select id="chat-transport" aria-label="Send chat via"
                        on:change=move |ev| ui.via.set(if event_target_value(&ev) == "p2p" { Via::P2p } else { Via::Relay })>
                        <option value="relay" selected=move || ui.via.get() == Via::Relay>"server relay (WebSocket)"</option>
                        <option value="p2p" selected=move || ui.via.get() == Via::P2p disabled=sfu>
                            {move || if sfu() { "peer-to-peer (not in SFU rooms)" } else { "peer-to-peer (DataChannel)" }}
                        </option>
                    </select>
                </label>
            </header>
            <p class="hint" class:hidden=move || !sfu()>"This room sends everything through the server (SFU): chat goes by the relay."</p>
            <ol id="chat-log" node_ref=log aria-live="polite">
                <For each=move || ui.chat.get() key=|e| (e.key(), entry_rev(e)) let:entry>
                    {match entry {
                        ChatEntry::Notice { text, .. } => view! { <li class="notice">{text}</li> }.into_any(),
                        ChatEntry::Msg(m) => {
                            let mine = m.from == Author::Me;
                            view! {
                                <li class="msg" class:mine=mine data-msg-id=m.id.clone() data-from=m.from.data_from().to_owned()
                                    data-via=m.via.as_str()>
                                    <span class="msg-author">{author(m.from.data_from(), &m.name)}</span>
                                    <span class="msg-text">{message_text(&m.text)}</span>
                                    <span class="msg-meta">
                                        <span class="msg-via">{if m.via == Via::P2p { "p2p" } else { "relay" }}</span>
                                        <time class="msg-time">{clock(m.ts)}</time>
                                        {mine.then(|| view! {
                                            <span class="msg-ticks" data-ticks=m.ticks.as_data() title=m.ticks.title()>{m.ticks.glyph()}</span>
                                        })}
                                    </span>
                                </li>
                            }.into_any()
                        }
                    }}
                </For>
            </ol>
            <p id="typing" class="typing" aria-live="polite">{typing}</p>
            <p class="form-error" role="alert" class:hidden=move || error.with(Option::is_none)>{move || error.get().unwrap_or_default()}</p>
            <form class="chat-form" on:submit=move |ev| { ev.prevent_default(); send(); }>
                <input id="chat-input" aria-label="Message" maxlength="2000" autocomplete="off"
                    placeholder=move || if joined() { "Message everyone" } else { "Waiting for the connection…" }
                    disabled=move || !joined()
                    prop:value=move || draft.get()
                    on:input=move |ev| {
                        draft.set(event_target_value(&ev));
                        call.typed();
                    } />
                <button id="chat-send" type="submit" class="primary" aria-label="Send message" disabled=move || !joined()>"Send"</button>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found() {
        assert_eq!(pieces("hi"), vec![Piece::Text("hi")]);
        assert_eq!(
            pieces("see https://example.com/a?b=1, then"),
            vec![
                Piece::Text("see "),
                Piece::Link("https://example.com/a?b=1"),
                Piece::Text(", then")
            ]
        );
        assert_eq!(
            pieces("(http://x.org)"),
            vec![
                Piece::Text("("),
                Piece::Link("http://x.org"),
                Piece::Text(")")
            ]
        );
        assert_eq!(
            pieces("https:// nothing"),
            vec![Piece::Text("https://"), Piece::Text(" nothing")]
        );
        assert_eq!(
            pieces("javascript:alert(1)"),
            vec![Piece::Text("javascript:alert(1)")]
        );
    }
}
