//! `sfu-view` (extension, docs/protocol-extensions.md): how tall the sender
//! shows a peer's camera, so that the SFU sends it the simulcast layer that
//! fits (the shard engine; the webrtc engine forwards one layer and takes
//! the event as a no-op). Acked, never relayed.

use protocol::{ErrorCode, Mode, ViewRequest};

use super::{Ctx, sfu_remote};
use crate::ack::{Failure, Reply};
use crate::node::Engine;
use crate::rooms::{RoomStore, SfuHost};
use crate::sfu_link::SfuIn;

pub(super) async fn handle<E: Engine>(cx: &Ctx<'_, E>, req: ViewRequest) -> Result<Reply, Failure> {
    let me = cx.node.store.member(cx.conn(), &req.room).await?;
    if me.mode != Mode::Sfu {
        return Err(Failure::new(
            ErrorCode::BadRequest,
            "this is a mesh room: videos come straight from each peer, there is no layer to choose",
        ));
    }
    if req.peer == me.me.id {
        return Err(Failure::bad_request("a peer does not receive its own video"));
    }
    // The peer must be in the room (`unknown_peer` otherwise).
    cx.node.store.route(cx.conn(), &req.room, &req.peer).await?;
    // Before the room's SFU started (nobody offered yet) there is nothing
    // to choose: the first layer sent will be the best one anyway.
    match sfu_remote::host(cx.node, &req.room).await? {
        Some(SfuHost::Here) => cx.node.sfu.view(&req.room, me.me.id, req.peer, req.height),
        Some(SfuHost::Elsewhere(owner)) => {
            let msg = SfuIn::View {
                room: req.room,
                viewer: me.me.id,
                publisher: req.peer,
                height: req.height,
            };
            sfu_remote::send(cx.node, &owner, &msg).await?;
        }
        // No SFU, or one that just moved (the sender will say it again to
        // the new one): no layer to choose.
        Some(SfuHost::Nowhere) | None => {}
    }
    Ok(Reply::ok())
}
