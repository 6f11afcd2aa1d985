//! Version 2: host controls, raised hands and reactions (PROTOCOL.md "Host
//! controls"). What the room tells us, read field by field rather than
//! through serde (a decoder per event type would cost the bundle a few KB),
//! and what we ask of it.

use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use protocol::events;
use serde_json::json;
use wasm_bindgen::JsValue;

use super::Call;
use super::lifecycle::token_key;
use crate::state::StatusKind;

/// A reaction floats over its tile this long.
const REACTION_MS: u64 = 4000;

fn field(v: &JsValue, k: &str) -> String {
    crate::js::get_str(v, k).unwrap_or_default()
}

fn flag(v: &JsValue, k: &str) -> bool {
    crate::js::get(v, k).as_bool() == Some(true)
}

impl Call {
    pub(super) fn wire_host_events(self: &Rc<Self>) {
        fn here(c: &Call, v: &JsValue) -> bool {
            field(v, "room") == c.params.room
        }
        self.on(events::KICKED, move |c, v| {
            if here(c, &v) {
                let by = c.ui.peer_name(&field(&v, "by"));
                crate::js::session_set(&token_key(&c.params.room), None);
                c.fail(
                    StatusKind::Kicked,
                    &format!("{by}, the host, removed you from this room."),
                );
            }
        });
        self.on(events::MUTE_REQUEST, move |c, v| {
            if here(c, &v) {
                let who = c.ui.peer_name(&field(&v, "from"));
                c.on_mute_request(&who, field(&v, "kind") == "video");
            }
        });
        self.on(events::HOST_CHANGED, move |c, v| {
            if here(c, &v) {
                let id = field(&v, "id");
                let text = match c.self_id() {
                    Some(me) if me == id => "You are now the host.".to_owned(),
                    _ => format!("{} is now the host.", c.ui.peer_name(&id)),
                };
                c.ui.host_id.set(id);
                c.ui.notice(text);
            }
        });
        self.on(events::ROOM_LOCKED, move |c, v| {
            if here(c, &v) {
                let by = c.ui.peer_name(&field(&v, "by"));
                let locked = flag(&v, "locked");
                c.ui.locked.set(locked);
                c.ui.notice(if locked {
                    format!("{by} locked the room: nobody new can join.")
                } else {
                    format!("{by} unlocked the room.")
                });
            }
        });
        self.on(events::HAND, move |c, v| {
            if here(c, &v) {
                let from = field(&v, "from");
                let raised = flag(&v, "raised");
                c.ui.update_peer(&from, |p| p.hand = raised);
                if raised {
                    c.ui.notice(format!("{} raised a hand", c.ui.peer_name(&from)));
                }
            }
        });
        self.on(events::REACTION, move |c, v| {
            if here(c, &v) {
                let from = field(&v, "from");
                let emoji = field(&v, "emoji");
                c.ui.notice(format!("{} reacted {emoji}", c.ui.peer_name(&from)));
                c.show_reaction(from, emoji);
            }
        });
    }

    /// Floats `emoji` over `peer`'s tile (ours: our own id) for a moment.
    fn show_reaction(&self, peer: String, emoji: String) {
        let reactions = self.ui.reactions;
        let key = reactions.with_untracked(|r| r.last().map_or(0, |l| l.0.wrapping_add(1)));
        reactions.update(|r| r.push((key, peer, emoji)));
        set_timeout(
            move || {
                let _ = reactions.try_update(|r| r.retain(|x| x.0 != key));
            },
            Duration::from_millis(REACTION_MS),
        );
    }

    /// Sends a host control, a hand or a reaction (`fields` besides the
    /// room); a refusal is shown in the banner.
    pub(super) fn host_request(self: &Rc<Self>, event: &'static str, fields: serde_json::Value) {
        let mut payload = fields;
        payload["room"] = json!(self.params.room);
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = this
                .sig
                .request::<_, protocol::OkAck>(event, &payload)
                .await
            {
                this.ui
                    .set_status(StatusKind::Error, format!("Not done: {e}"));
            }
        });
    }

    pub(super) fn toggle_hand(self: &Rc<Self>) {
        let up = !self.ui.hand_up.get_untracked();
        self.ui.hand_up.set(up);
        self.host_request(events::HAND, json!({ "raised": up }));
    }

    pub(super) fn react(self: &Rc<Self>, emoji: &str) {
        if let Some(me) = self.self_id() {
            self.show_reaction(me, emoji.to_owned());
        }
        self.host_request(events::REACTION, json!({ "emoji": emoji }));
    }
}
