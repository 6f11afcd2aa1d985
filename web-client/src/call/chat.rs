//! Chat: over the server relay or the mesh's data channels, with delivery
//! ticks from receipts, and the typing indicator.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use leptos::prelude::*;
use protocol::{
    ChatAck, ChatMessage, ChatRequest, ChatText, ReceiptRequest, TypingEvent, TypingRequest, events,
};

use super::Call;
use super::topology::Wire;
use crate::js::{now_ms, random_id, unix_ms};
use crate::state::{Author, ChatEntry, ChatLine, StatusKind, Ticks, Via};

/// How often `typing: true` is repeated while typing goes on.
const TYPING_REPEAT_MS: f64 = 2000.0;
/// Quiet for this long after the last `typing: true`: typing stopped.
const TYPING_EXPIRE_MS: f64 = 3000.0;

#[derive(Default)]
pub(super) struct ChatState {
    /// Our messages waiting for receipts: id → peers that have not confirmed.
    pending: RefCell<HashMap<String, HashSet<String>>>,
    typing: Cell<Typing>,
}

/// What the others were last told about our typing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Typing {
    #[default]
    Idle,
    /// `typing: true` was sent at this time (`now_ms`).
    Announced { at: f64 },
}

impl Call {
    /// Sends a chat message over the selected path.
    pub(super) fn send_chat(self: &Rc<Self>, text: String) -> Result<(), String> {
        let text = ChatText::parse(text).map_err(|e| e.to_string())?;
        if self.self_id().is_none() {
            return Err("not in the room yet".into());
        }
        self.stop_typing();
        match self.ui.via.get_untracked() {
            Via::P2p if self.is_sfu() => {
                Err("peer-to-peer chat is not available in SFU rooms; switch to the relay".into())
            }
            Via::P2p => self.send_p2p(text),
            Via::Relay => {
                self.send_relay(text);
                Ok(())
            }
        }
    }

    /// On every open data channel; refused unless every peer can get it.
    fn send_p2p(&self, text: ChatText) -> Result<(), String> {
        let peers = self.data_peers();
        let id = random_id();
        let ts = unix_ms();
        let wire = Wire::Chat {
            id: id.clone(),
            text: text.as_str().to_owned(),
            ts,
            name: self.params.name.clone(),
        };
        let sent: HashSet<String> = peers
            .iter()
            .filter(|p| self.send_data(p, &wire))
            .cloned()
            .collect();
        if sent.len() < peers.len() {
            return Err(format!(
                "the data channel is not open to {} of {} peers; use the relay",
                peers.len() - sent.len(),
                peers.len()
            ));
        }
        let ticks = if sent.is_empty() {
            Ticks::Delivered
        } else {
            Ticks::Sent
        };
        self.chat.pending.borrow_mut().insert(id.clone(), sent);
        self.ui.chat.update(|c| {
            c.push(ChatEntry::Msg(ChatLine {
                id,
                from: Author::Me,
                name: self.params.name.clone(),
                text: text.as_str().to_owned(),
                ts,
                via: Via::P2p,
                ticks,
            }))
        });
        Ok(())
    }

    /// Through the server: shown at once, ticked when the server acks.
    fn send_relay(self: &Rc<Self>, text: ChatText) {
        // Everyone in the room sends a receipt, whatever the topology.
        let peers: HashSet<String> = self
            .ui
            .peers
            .with_untracked(|ps| ps.iter().map(|p| p.id.clone()).collect());
        let local_id = format!("local-{}", random_id());
        self.ui.chat.update(|c| {
            c.push(ChatEntry::Msg(ChatLine {
                id: local_id.clone(),
                from: Author::Me,
                name: self.params.name.clone(),
                text: text.as_str().to_owned(),
                ts: unix_ms(),
                via: Via::Relay,
                ticks: Ticks::Sending,
            }))
        });
        let this = self.clone();
        let req = ChatRequest {
            room: self.room(),
            text,
        };
        wasm_bindgen_futures::spawn_local(async move {
            match this.sig.request::<_, ChatAck>(events::CHAT, &req).await {
                Ok(ack) => {
                    // Receipts may only arrive after this ack is read: register first.
                    let everyone = peers.is_empty();
                    if !everyone {
                        this.chat.pending.borrow_mut().insert(ack.id.clone(), peers);
                    }
                    this.ui.update_msg(&local_id, |m| {
                        m.id = ack.id.clone();
                        m.ts = ack.ts as f64;
                        m.ticks = if everyone {
                            Ticks::Delivered
                        } else {
                            Ticks::Sent
                        };
                    });
                }
                Err(e) => {
                    this.ui.update_msg(&local_id, |m| m.ticks = Ticks::Sending);
                    this.ui
                        .set_status(StatusKind::Error, format!("Message not sent: {e}"));
                }
            }
        });
    }

    /// The room's recent messages, from the join ack: shown once (a rejoin
    /// brings the same messages again).
    pub(super) fn show_history(&self, history: &[ChatMessage], me: &str) {
        self.ui.chat.update(|chat| {
            for m in history {
                if !chat
                    .iter()
                    .any(|e| matches!(e, ChatEntry::Msg(l) if l.id == m.id))
                {
                    chat.push(ChatEntry::Msg(line_from_relay(m, Some(me))));
                }
            }
        });
    }

    pub(super) fn on_relay_chat(&self, m: ChatMessage) {
        let me = self.self_id();
        self.add_line(line_from_relay(&m, me.as_deref()));
        self.sig.send(
            events::CHAT_RECEIPT,
            ReceiptRequest {
                room: m.room,
                id: m.id,
            },
        );
    }

    /// A message on `peer`'s data channel: shown, and acknowledged on it.
    pub(super) fn on_p2p_chat(&self, peer: &str, id: String, text: String, ts: f64, name: String) {
        let Ok(text) = ChatText::parse(text) else {
            return;
        };
        self.add_line(ChatLine {
            id: id.clone(),
            from: Author::Peer(peer.to_owned()),
            name,
            text: text.as_str().to_owned(),
            ts,
            via: Via::P2p,
            ticks: Ticks::Sending,
        });
        self.send_data(peer, &Wire::Ack { id });
    }

    fn add_line(&self, line: ChatLine) {
        if let Author::Peer(id) = &line.from {
            self.ui.typing.update(|t| t.retain(|(p, _)| p != id));
        }
        self.ui.chat.update(|c| {
            if !c
                .iter()
                .any(|e| matches!(e, ChatEntry::Msg(m) if m.id == line.id))
            {
                c.push(ChatEntry::Msg(line));
            }
        });
    }

    /// `from` has our message `msg` (a relay receipt or a data-channel ack).
    pub(super) fn on_receipt(&self, msg: &str, from: &str) {
        let done = {
            let mut pending = self.chat.pending.borrow_mut();
            match pending.get_mut(msg) {
                Some(waiting) => {
                    waiting.remove(from);
                    waiting.is_empty()
                }
                None => false,
            }
        };
        if done {
            self.chat.pending.borrow_mut().remove(msg);
            self.ui.update_msg(msg, |m| m.ticks = Ticks::Delivered);
        }
    }

    /// A peer that left can no longer confirm anything.
    pub(super) fn forget_receipts_from(&self, peer: &str) {
        let done: Vec<String> = {
            let mut pending = self.chat.pending.borrow_mut();
            let done = pending
                .iter_mut()
                .filter_map(|(msg, waiting)| {
                    (waiting.remove(peer) && waiting.is_empty()).then(|| msg.clone())
                })
                .collect();
            for msg in &done {
                pending.remove(msg);
            }
            done
        };
        for msg in done {
            self.ui.update_msg(&msg, |m| m.ticks = Ticks::Delivered);
        }
    }

    /// The server forgot us: no receipt is coming for what we sent.
    pub(super) fn forget_pending_chat(&self) {
        self.chat.pending.borrow_mut().clear();
    }

    pub(super) fn on_typing(&self, t: TypingEvent) {
        let id = t.from.to_string();
        let name = self.ui.peer_name(&id);
        self.ui.typing.update(|list| {
            list.retain(|(p, _)| *p != id);
            if t.typing {
                list.push((id, name));
            }
        });
    }

    /// Called on each keystroke in the chat box: `typing: true` at most every 2 s.
    pub(super) fn typed(&self) {
        let now = now_ms();
        let due = match self.chat.typing.get() {
            Typing::Idle => true,
            Typing::Announced { at } => now - at > TYPING_REPEAT_MS,
        };
        if due {
            self.chat.typing.set(Typing::Announced { at: now });
            self.send_typing(true);
        }
    }

    fn stop_typing(&self) {
        if self.chat.typing.replace(Typing::Idle) != Typing::Idle {
            self.send_typing(false);
        }
    }

    /// Every second: typing stops when the keystrokes do.
    pub(super) fn expire_typing(&self, now: f64) {
        if let Typing::Announced { at } = self.chat.typing.get()
            && now - at > TYPING_EXPIRE_MS
        {
            self.stop_typing();
        }
    }

    fn send_typing(&self, typing: bool) {
        self.sig.send(
            events::TYPING,
            TypingRequest {
                room: self.room(),
                typing,
            },
        );
    }
}

fn line_from_relay(m: &ChatMessage, me: Option<&str>) -> ChatLine {
    let mine = me == Some(m.from.id.as_str());
    ChatLine {
        id: m.id.clone(),
        from: if mine {
            Author::Me
        } else {
            Author::Peer(m.from.id.to_string())
        },
        name: m.from.name.clone(),
        text: m.text.clone(),
        ts: m.ts as f64,
        via: Via::Relay,
        ticks: if mine { Ticks::Sent } else { Ticks::Sending },
    }
}
