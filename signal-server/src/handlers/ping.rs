//! `peer-ping` (docs/protocol-extensions.md): a round-trip probe to one
//! peer through the relay, for the relay vs peer-to-peer comparison.

use protocol::{PingEvent, PingRequest};

use super::Ctx;
use crate::ack::{Failure, Reply};
use crate::delivery::Delivery;
use crate::node::Engine;
use crate::rooms::{Dest, RoomStore};

pub(super) async fn handle<E: Engine>(cx: &Ctx<'_, E>, req: PingRequest) -> Result<Reply, Failure> {
    let node = cx.node;
    let (from, to) = node.store.route(cx.conn(), &req.room, &req.to).await?;
    // A held peer cannot answer; a ping kept until it resumes would time
    // a round trip that never happened.
    let Dest::Live(to) = to else {
        return Ok(Reply::ok());
    };
    let ev = PingEvent {
        room: req.room,
        from,
        seq: req.seq,
        pong: req.pong,
    };
    node.out.to_peer(&to, ev).await?;
    Ok(Reply::ok())
}
