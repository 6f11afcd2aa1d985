//! `signal`: WebRTC offers, answers and candidates, relayed to the
//! addressed peer only; in an SFU room, to and from the room's SFU.

use std::sync::Arc;

use protocol::{ErrorCode, Mode, PeerId, RoomName, SignalEvent, SignalRequest};

use super::{Ctx, parcel};
use crate::ack::{Failure, Reply};
use crate::node::{Engine, Node};
use crate::rooms::{Parcel, RoomStore};
use crate::sfu_rooms::{Sender, SfuOutbox, SfuRefusal};

pub(super) async fn handle<E: Engine>(cx: &Ctx<'_, E>, req: SignalRequest) -> Result<Reply, Failure> {
    req.data
        .validate()
        .map_err(|e| Failure::bad_request(e.to_string()))?;
    if req.to.as_str() == protocol::SFU_PEER {
        return to_sfu(cx, req).await;
    }
    let node = cx.node;
    let (from, dest) = node.store.route(cx.conn(), &req.room, &req.to).await?;
    let ev = SignalEvent {
        room: req.room.clone(),
        from,
        data: req.data,
    };
    parcel::send(node, &req.room, &req.to, dest, Parcel::Signal(ev)).await?;
    Ok(Reply::ok())
}

/// A signal for the SFU of an SFU room: checked (a description that is not
/// usable SDP is `bad_request`; a new connection beyond the address's
/// `sfu_peers_per_ip` is `rate_limited`), then queued, in order, to its
/// room task (`sfu_rooms.rs`).
async fn to_sfu<E: Engine>(cx: &Ctx<'_, E>, req: SignalRequest) -> Result<Reply, Failure> {
    let me = cx.node.store.member(cx.conn(), &req.room).await?;
    if me.mode != Mode::Sfu {
        return Err(Failure::new(
            ErrorCode::UnknownPeer,
            "this is a mesh room: there is no \"sfu\" peer",
        ));
    }
    if matches!(req.data, protocol::SignalData::Bye) {
        // Its connection to the SFU is over (a page that reloaded and took
        // its seat back starts a new one): the next offer starts afresh.
        cx.node.sfu.leave(&req.room, me.me.id, false);
        return Ok(Reply::ok());
    }
    let from = Sender {
        peer: me.me.id,
        addr: cx.client().map(|slot| slot.addr().clone()),
        limit: cx.node.state.config.limits.sfu_peers_per_ip,
    };
    let started = cx
        .node
        .sfu
        .signal(&req.room, from, req.data)
        .map_err(|e| {
            let code = match e {
                SfuRefusal::Bad(_) => ErrorCode::BadRequest,
                SfuRefusal::TooMany(_) => ErrorCode::RateLimited,
                SfuRefusal::Unavailable(_) => ErrorCode::Internal,
            };
            Failure::new(code, e.to_string())
        })?;
    if let Some(outbox) = started {
        relay_from_sfu(cx.node.clone(), req.room, outbox);
    }
    Ok(Reply::ok())
}

/// Relays what the SFU of `room` says to each peer, as `signal` from
/// `"sfu"`, until the room ends.
fn relay_from_sfu<E: Engine>(node: Arc<Node<E>>, room: RoomName, mut outbox: SfuOutbox) {
    tokio::spawn(async move {
        while let Some((peer, data)) = outbox.recv().await {
            let Ok(Some(dest)) = node.store.addr_of(&room, &peer).await else {
                continue;
            };
            let ev = SignalEvent {
                room: room.clone(),
                from: PeerId::from(protocol::SFU_PEER.to_owned()),
                data,
            };
            // A peer that just left needs no answer; a held one gets it
            // when it resumes.
            let _ = parcel::send(&node, &room, &peer, dest, Parcel::Signal(ev)).await;
        }
    });
}
