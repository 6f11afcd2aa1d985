//! `reaction` (PROTOCOL.md, version 2): an emoji the sender shows to the
//! room for a moment.

use protocol::{ReactionEvent, ReactionRequest};

use super::Ctx;
use crate::ack::{Failure, Reply};
use crate::delivery::Delivery;
use crate::node::Engine;
use crate::rooms::RoomStore;

pub(super) async fn handle<E: Engine>(
    cx: &Ctx<'_, E>,
    req: ReactionRequest,
) -> Result<Reply, Failure> {
    let node = cx.node;
    let m = node.store.member(cx.conn(), &req.room).await?;
    let ev = ReactionEvent {
        room: req.room.clone(),
        from: m.me.id,
        emoji: req.emoji,
    };
    node.out
        .to_room(cx.socket, &req.room, ev, m.count.saturating_sub(1))
        .await;
    Ok(Reply::ok())
}
