//! `kick` (PROTOCOL.md version 2, host only): the peer is out of the room.
//! It gets `kicked`; the others get `peer-left` with `"reason": "kicked"`.

use protocol::{KickRequest, KickedEvent};

use super::Ctx;
use super::leave::gone;
use crate::ack::{Failure, Reply};
use crate::delivery::Delivery;
use crate::node::Engine;
use crate::rooms::{Act, Dest, RoomStore};

pub(super) async fn handle<E: Engine>(cx: &Ctx<'_, E>, req: KickRequest) -> Result<Reply, Failure> {
    let node = cx.node;
    let done = node
        .store
        .act(cx.conn(), &req.room, Act::Kick(req.peer.clone()))
        .await?;
    tracing::info!(room = %req.room, peer = %req.peer, by = %done.by, "kicked");
    if let Some(Dest::Live(to)) = &done.target {
        node.out.unsubscribe_addr(to, &req.room);
        let ev = KickedEvent {
            room: req.room.clone(),
            by: done.by.clone(),
        };
        // Gone a moment ago: it is out either way.
        let _ = node.out.to_peer(to, ev).await;
    }
    if let Some(left) = done.left {
        gone(node, &req.room, left, Some("kicked")).await;
    }
    Ok(Reply::ok())
}
