//! `hand` (PROTOCOL.md version 2, any member): raise or lower one's hand.
//! The others get `hand`; later joiners see it in the ack's `peers`.

use protocol::{HandEvent, HandRequest};

use super::Ctx;
use crate::ack::{Failure, Reply};
use crate::delivery::Delivery;
use crate::node::Engine;
use crate::rooms::{Act, RoomStore};

pub(super) async fn handle<E: Engine>(cx: &Ctx<'_, E>, req: HandRequest) -> Result<Reply, Failure> {
    let node = cx.node;
    let done = node
        .store
        .act(cx.conn(), &req.room, Act::Hand(req.raised))
        .await?;
    let ev = HandEvent {
        room: req.room.clone(),
        from: done.by,
        raised: req.raised,
    };
    node.out
        .to_room(cx.socket, &req.room, ev, done.count.saturating_sub(1))
        .await;
    Ok(Reply::ok())
}
