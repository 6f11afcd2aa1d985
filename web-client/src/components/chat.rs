//! Chat: messages with delivery ticks, notices, typing indicator, and the
//! relay / peer-to-peer switch. Text is always text, never markup.

use leptos::prelude::*;

use protocol::Mode;

use super::icons::{Icon, Svg};
use super::room::RoomUi;
use super::when;
use crate::call::{ActiveCall, human_size};
use crate::js::clock;
use crate::state::{Author, ChatEntry, FileItem, Phase, Ticks, Ui, Via};

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
    // Files go to everyone, or to the one person picked here (back to
    // everyone when that person leaves).
    let file_to = RwSignal::new(String::new());
    Effect::new(move |_| {
        let to = file_to.get();
        if !to.is_empty() && !ui.peers.with(|ps| ps.iter().any(|p| p.id == to)) {
            file_to.set(String::new());
        }
    });
    let send_files = move |files: Option<web_sys::FileList>| {
        let Some(files) = files else { return };
        let to = Some(file_to.get_untracked()).filter(|t| !t.is_empty());
        for i in 0..files.length() {
            if let Some(f) = files.item(i)
                && let Err(e) = call.send_file(f, to.clone())
            {
                error.set(Some(e));
                return;
            }
        }
        error.set(None);
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
        <section class="chat" aria-label="Chat"
            on:dragover=move |ev| ev.prevent_default()
            on:drop=move |ev: web_sys::DragEvent| {
                ev.prevent_default();
                if joined() {
                    send_files(ev.data_transfer().and_then(|d| d.files()));
                }
            }>
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
                <label class="via">"files to "
                    <select id="file-to" aria-label="Send files to" on:change=move |ev| file_to.set(event_target_value(&ev))>
                        <option value="" selected=move || file_to.with(String::is_empty)>"everyone"</option>
                        <For each=move || ui.peers.get() key=|p| p.id.clone() let:p>
                            <option value=p.id.clone() selected={let id = p.id.clone(); move || file_to.with(|t| *t == id)}>{author(&p.id, &p.name)}</option>
                        </For>
                    </select>
                </label>
            </header>
            <p class="hint" class:hidden=move || !sfu()>"This room sends everything through the server (SFU): chat goes by the relay."</p>
            <ol id="chat-log" node_ref=log aria-live="polite">
                <For each=move || ui.chat.get() key=|e| (e.key(), entry_rev(e)) let:entry>
                    {match entry {
                        ChatEntry::Notice { text, .. } => view! { <li class="notice">{text}</li> }.into_any(),
                        ChatEntry::File(item) => file_row(item, call).into_any(),
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
                <label class="attach" class:disabled=move || !joined() title="Send a file (or drop it here)">
                    <input id="file-input" type="file" multiple class="visually-hidden" aria-label="Send a file"
                        disabled=move || !joined()
                        on:change=move |ev| {
                            let input = event_target::<web_sys::HtmlInputElement>(&ev);
                            send_files(input.files());
                            input.set_value("");
                        } />
                    <Svg icon=Icon::Clip />
                </label>
                <button id="chat-send" type="submit" class="primary" aria-label="Send message" disabled=move || !joined()>"Send"</button>
            </form>
        </section>
    }
}

/// Part of the key, so a message re-renders when its id or ticks change.
fn entry_rev(e: &ChatEntry) -> Option<Ticks> {
    match e {
        ChatEntry::Msg(m) => Some(m.ticks),
        ChatEntry::Notice { .. } | ChatEntry::File(_) => None,
    }
}

/// A file on its way, or arrived: who, what, how far, how fast; Cancel
/// while it moves, Save once it arrived whole.
fn file_row(item: FileItem, call: ActiveCall) -> impl IntoView {
    let p = item.progress;
    let state = move || p.with(|p| p.state);
    let key = item.key.clone();
    let name = item.name.clone();
    let head = if item.peer.is_empty() {
        "Recording".to_owned()
    } else if item.incoming {
        format!("File from {}", item.peer_name)
    } else {
        format!("File to {}", item.peer_name)
    };
    let size = item.size;
    view! {
        <li class="file" data-transfer-id=item.key.clone() data-peer-id=item.peer.clone()
            data-direction=if item.incoming { "in" } else { "out" } data-state=move || state().as_str()>
            <span class="file-head">{head}</span>
            <span class="file-name">{item.name.clone()}</span>
            <span class="file-size">{human_size(size)}</span>
            <progress class="file-progress" max=size.max(1.0) value=move || p.with(|p| p.bytes)></progress>
            <span class="file-rate">{move || p.with(|p| if p.rate > 0.0 { format!("{}/s", human_size(p.rate)) } else { String::new() })}</span>
            <span class="file-note" role="status">{move || p.with(|p| p.note.clone())}</span>
            {when(move || !state().ended(), move || {
                let key = key.clone();
                view! { <button type="button" class="file-cancel" on:click=move |_| call.cancel_file(&key)>"Cancel"</button> }.into_any()
            })}
            {when(move || p.with(|p| !p.url.is_empty()), move || view! {
                <a class="file-download" href=move || p.with(|p| p.url.clone()) download=name.clone()>"Save"</a>
            }.into_any())}
        </li>
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
