//! `mute-request` (PROTOCOL.md version 2, host only): asks one peer to turn
//! its microphone or camera off (a request: the client decides). Kept for a
//! held peer, like every event that names one peer.

use protocol::{MuteRequestEvent, MuteRequestRequest};

use super::{Ctx, parcel};
use crate::ack::{Failure, Reply};
use crate::node::Engine;
use crate::rooms::{Act, Parcel, RoomStore};

pub(super) async fn handle<E: Engine>(
    cx: &Ctx<'_, E>,
    req: MuteRequestRequest,
) -> Result<Reply, Failure> {
    let node = cx.node;
    let done = node
        .store
        .act(cx.conn(), &req.room, Act::Mute(req.peer.clone()))
        .await?;
    let Some(dest) = done.target else {
        return Err(Failure::from(crate::rooms::ActError::UnknownPeer));
    };
    let ev = MuteRequestEvent {
        room: req.room.clone(),
        from: done.by,
        kind: req.kind,
    };
    parcel::send(node, &req.room, &req.peer, dest, Parcel::MuteRequest(ev)).await?;
    Ok(Reply::ok())
}
