//! `lock` (PROTOCOL.md version 2, host only): while locked, a join that is
//! not a resume gets `forbidden`. The whole room gets `room-locked`.

use protocol::{LockRequest, RoomLockedEvent};

use super::Ctx;
use crate::ack::{Failure, Reply};
use crate::delivery::Delivery;
use crate::node::Engine;
use crate::rooms::{Act, RoomStore};

pub(super) async fn handle<E: Engine>(cx: &Ctx<'_, E>, req: LockRequest) -> Result<Reply, Failure> {
    let node = cx.node;
    let done = node
        .store
        .act(cx.conn(), &req.room, Act::Lock(req.locked))
        .await?;
    let ev = RoomLockedEvent {
        room: req.room.clone(),
        locked: req.locked,
        by: done.by,
    };
    node.out.announce(&req.room, ev, done.count).await;
    Ok(Reply::ok())
}
