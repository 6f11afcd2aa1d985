//! `chat`: a text message to the room, kept in its bounded history.

use protocol::{ChatAck, ChatRequest};

use super::{Ctx, now_millis};
use crate::ack::{Failure, Reply};
use crate::delivery::Delivery;
use crate::node::Engine;
use crate::rooms::{NewMessage, RoomStore};

pub(super) async fn handle<E: Engine>(cx: &Ctx<'_, E>, req: ChatRequest) -> Result<Reply, Failure> {
    let node = cx.node;
    let id = uuid::Uuid::new_v4().to_string();
    let ts = now_millis();
    let room = &req.room;
    // Sent in the room's critical section: a joiner has the message in its
    // history or receives it, not both and not neither.
    let msg = NewMessage {
        text: req.text,
        id: id.clone(),
        ts,
        from_ip: cx.client().map(|c| c.ip()),
    };
    let sent = node
        .store
        .chat(cx.conn(), room, msg, |msg, members| {
            node.out.to_room(cx.socket, room, msg, members.saturating_sub(1))
        })
        .await?;
    sent.await;
    Ok(Reply::Chat(ChatAck {
        ok: protocol::True,
        id,
        ts,
    }))
}
