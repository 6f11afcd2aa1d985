//! SFU rooms of a scaled-out deployment (docs/sfu-scale-out.md): each is
//! hosted by one node that runs the SFU, its owner. A member's signals for
//! `"sfu"` go to the owner (through [`SfuLink`]); what the owner's SFU says
//! goes back to each peer through the delivery, on whichever node the peer
//! is ([`relay_from_sfu`]). When the owner is gone the room moves to
//! another SFU node and its members are told (`sfu-moved`).
//!
//! On one node every room is hosted here and nothing of this goes through
//! Redis.
//!
//! [`SfuLink`]: crate::sfu_link::SfuLink

use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use protocol::{ErrorCode, PeerId, RoomName, SfuMoved, SignalEvent};

use super::parcel;
use crate::ack::Failure;
use crate::delivery::Delivery;
use crate::node::{Engine, Node};
use crate::rooms::{Parcel, RoomStore, SfuHost, SfuMove};
use crate::sfu_link::SfuIn;
use crate::sfu_rooms::{Sender, SfuOutbox};

/// Where the SFU of `room` runs, or `None` when that lookup moved the room
/// (its owner was gone): its members, the sender included, are told to
/// connect afresh, so the signal that found it is for a connection that is
/// gone, and goes nowhere.
pub(super) async fn host<E: Engine>(
    node: &Node<E>,
    room: &RoomName,
) -> Result<Option<SfuHost>, Failure> {
    let route = node.store.sfu_route(room).await?;
    if let Some(mv) = route.moved {
        moved(node, mv).await;
        return Ok(None);
    }
    Ok(Some(route.host))
}

/// The refusal while no node runs the SFU.
pub(super) fn nowhere() -> Failure {
    Failure::new(
        ErrorCode::Internal,
        "no server of this deployment runs the SFU now; try again shortly",
    )
}

/// Sends `msg` to `owner`, the node that hosts the room.
pub(super) async fn send<E: Engine>(
    node: &Node<E>,
    owner: &str,
    msg: &SfuIn,
) -> Result<(), Failure> {
    let unreachable = || {
        Failure::new(
            ErrorCode::Internal,
            "cannot reach the server that hosts this room's SFU; try again shortly",
        )
    };
    let link = node.sfu_link.as_ref().ok_or_else(unreachable)?;
    link.send(owner, msg).await.map_err(|e| {
        tracing::debug!(owner, "SFU message not sent: {e}");
        unreachable()
    })
}

/// `room` moved to another node: its members connect to it afresh
/// (`sfu-moved`), and the node it left, if it still lives, ends its SFU
/// room there.
pub async fn moved<E: Engine>(node: &Node<E>, mv: SfuMove) {
    tracing::info!(
        room = %mv.room,
        from = mv.from.as_deref().unwrap_or("(none)"),
        to = mv.to,
        epoch = mv.epoch,
        "SFU room moved"
    );
    node.state.metrics.sfu_moved();
    // The old room ends first: nothing it says may reach the members'
    // new connections (what is already on its way is dropped by
    // `relay_from_sfu`, as Redis now names another owner).
    if let (Some(from), Some(link)) = (&mv.from, &node.sfu_link) {
        if from == link.node() {
            node.sfu.end(&mv.room);
        } else if let Err(e) = link
            .send(
                from,
                &SfuIn::Close {
                    room: mv.room.clone(),
                },
            )
            .await
        {
            tracing::debug!("could not tell the SFU room's old node: {e}");
        }
    }
    let ev = SfuMoved {
        room: mv.room.clone(),
        epoch: mv.epoch,
    };
    node.out.announce(&mv.room, ev, mv.members).await;
}

/// `mv.room` moved away from this node while it could not hear of it (its
/// liveness lapsed in a stall): it ends here, and its members are told
/// again, for those who missed it (those on the new placement already
/// ignore it).
pub async fn left_behind<E: Engine>(node: &Node<E>, mv: SfuMove) {
    tracing::info!(room = %mv.room, to = mv.to, epoch = mv.epoch, "SFU room moved away: ended here");
    node.sfu.end(&mv.room);
    let ev = SfuMoved {
        room: mv.room.clone(),
        epoch: mv.epoch,
    };
    node.out.announce(&mv.room, ev, mv.members).await;
}

/// Relays what the SFU of `room` says to each peer, as `signal` from
/// `"sfu"`, until the room ends; scaled out, only while the room is this
/// node's (a room that moved away may still have said something).
pub(super) fn relay_from_sfu<E: Engine>(node: Arc<Node<E>>, room: RoomName, mut outbox: SfuOutbox) {
    tokio::spawn(async move {
        while let Some((peer, data)) = outbox.recv().await {
            let Ok(Some(dest)) = node.store.sfu_addr_of(&room, &peer).await else {
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

/// Scaled out: takes what the other nodes send this one for the SFU rooms
/// it hosts, until aborted. (The driver drops what does not fit in the
/// inbox: a leave lost so is made good when the room ends.)
pub async fn serve_sfu_inbox<E: Engine>(node: Arc<Node<E>>, inbox: impl Stream<Item = SfuIn>) {
    let mut inbox = std::pin::pin!(inbox);
    while let Some(msg) = inbox.next().await {
        on_message(&node, msg);
    }
}

fn on_message<E: Engine>(node: &Arc<Node<E>>, msg: SfuIn) {
    match msg {
        SfuIn::Signal { room, peer, data } => {
            if node.sfu.has_left(&room, &peer) {
                // Sent before its leave, which came first.
                tracing::debug!(room = %room, peer = %peer, "SFU signal of a peer that left: dropped");
                return;
            }
            // Checked and counted by the member's node, which knows its
            // address.
            let from = Sender {
                peer,
                addr: None,
                limit: usize::MAX,
            };
            match node.sfu.signal(&room, from, data) {
                Ok(Some(outbox)) => relay_from_sfu(node.clone(), room, outbox),
                Ok(None) => {}
                Err(e) => tracing::debug!(room = %room, "SFU signal from another node: {e}"),
            }
        }
        SfuIn::View {
            room,
            viewer,
            publisher,
            height,
        } => node.sfu.view(&room, viewer, publisher, height),
        SfuIn::Bye { room, peer } => node.sfu.leave(&room, peer, false),
        SfuIn::Leave {
            room, peer, last, ..
        } => {
            node.sfu.left_elsewhere(&room, &peer);
            node.sfu.leave(&room, peer, last)
        }
        SfuIn::Close { room } => node.sfu.end(&room),
    }
}
