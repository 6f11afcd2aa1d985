//! `typing`: the sender started or stopped typing.

use protocol::{TypingEvent, TypingRequest};

use super::Ctx;
use crate::ack::{Failure, Reply};
use crate::delivery::Delivery;
use crate::node::Engine;
use crate::rooms::RoomStore;

pub(super) async fn handle<E: Engine>(cx: &Ctx<'_, E>, req: TypingRequest) -> Result<Reply, Failure> {
    let node = cx.node;
    let m = node.store.member(cx.conn(), &req.room).await?;
    let others = m.count.saturating_sub(1);
    let ev = TypingEvent {
        room: req.room.clone(),
        from: m.me.id,
        typing: req.typing,
    };
    node.out.to_room(cx.socket, &req.room, ev, others).await;
    Ok(Reply::ok())
}
