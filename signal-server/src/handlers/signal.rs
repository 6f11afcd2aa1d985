//! `signal`: WebRTC offers, answers and candidates, relayed to the
//! addressed peer only; in an SFU room, to and from the room's SFU, on this
//! node or, scaled out, on the node that hosts the room (`sfu_remote.rs`).

use std::sync::Arc;

use protocol::{ErrorCode, Mode, SignalData, SignalEvent, SignalRequest};

use super::{Ctx, parcel, sfu_remote};
use crate::ack::{Failure, Reply};
use crate::node::{Engine, Node};
use crate::rooms::{Parcel, RoomStore, SfuHost};
use crate::sfu_link::SfuIn;
use crate::sfu_rooms::{Sender, SfuRefusal};

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
/// room task (`sfu_rooms.rs`), here or on the node that hosts the room.
async fn to_sfu<E: Engine>(cx: &Ctx<'_, E>, req: SignalRequest) -> Result<Reply, Failure> {
    let node = cx.node;
    let me = node.store.member(cx.conn(), &req.room).await?;
    if me.mode != Mode::Sfu {
        return Err(Failure::new(
            ErrorCode::UnknownPeer,
            "this is a mesh room: there is no \"sfu\" peer",
        ));
    }
    let from = Sender {
        peer: me.me.id,
        addr: cx.client().map(|slot| slot.addr().clone()),
        limit: node.state.config.limits.sfu_peers_per_ip,
    };
    let owner = match sfu_remote::host(node, &req.room).await? {
        // It moved just now: everyone reconnects, this signal is stale.
        None => return Ok(Reply::ok()),
        Some(SfuHost::Here) => {
            // Its seat is counted by the room here from now on.
            node.sfu.forget_remote(&req.room, &from.peer);
            return here(node, req, from);
        }
        Some(SfuHost::Elsewhere(owner)) => owner,
        Some(SfuHost::Nowhere) => return Err(sfu_remote::nowhere()),
    };
    crate::sfu_rooms::check(&req.data).map_err(refusal)?;
    let room = req.room;
    let msg = match req.data {
        SignalData::Bye => {
            node.sfu.forget_remote(&room, &from.peer);
            SfuIn::Bye {
                room,
                peer: from.peer,
            }
        }
        data => {
            if matches!(data, SignalData::Offer { .. }) {
                node.sfu.count_remote(&room, &from).map_err(refusal)?;
            }
            SfuIn::Signal {
                room,
                peer: from.peer,
                data,
            }
        }
    };
    sfu_remote::send(node, &owner, &msg).await?;
    Ok(Reply::ok())
}

/// A signal for the SFU of a room this node hosts.
fn here<E: Engine>(
    node: &Arc<Node<E>>,
    req: SignalRequest,
    from: Sender,
) -> Result<Reply, Failure> {
    if matches!(req.data, SignalData::Bye) {
        // Its connection to the SFU is over (a page that reloaded and took
        // its seat back starts a new one): the next offer starts afresh.
        node.sfu.leave(&req.room, from.peer, false);
        return Ok(Reply::ok());
    }
    let started = node
        .sfu
        .signal(&req.room, from, req.data)
        .map_err(refusal)?;
    if let Some(outbox) = started {
        sfu_remote::relay_from_sfu(node.clone(), req.room, outbox);
    }
    Ok(Reply::ok())
}

fn refusal(e: SfuRefusal) -> Failure {
    let code = match e {
        SfuRefusal::Bad(_) => ErrorCode::BadRequest,
        SfuRefusal::TooMany(_) => ErrorCode::RateLimited,
        SfuRefusal::Unavailable(_) => ErrorCode::Internal,
    };
    Failure::new(code, e.to_string())
}
