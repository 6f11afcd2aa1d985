//! `leave`: give up one's seat in a room.

use protocol::{HostChanged, LeaveRequest, PeerLeft, RoomName};
use socketioxide::socket::{Sid, Socket};

use super::Ctx;
use crate::ack::{Failure, Reply};
use crate::delivery::Delivery;
use crate::node::{Engine, Node};
use crate::rooms::{self, Left, NotInRoom, RoomStore};

/// Where a member of `E`'s rooms is.
type Addr<E> = <<E as Engine>::Store as RoomStore>::Addr;
use crate::sfu_link::SfuIn;

pub(super) async fn handle<E: Engine>(cx: &Ctx<'_, E>, req: LeaveRequest) -> Result<Reply, Failure> {
    leave_room(cx.node, cx.conn(), Some(cx.socket), &req.room).await?;
    Ok(Reply::ok())
}

/// Takes `conn` out of `room`: the seat, the room's deliveries (when the
/// socket is still there), the SFU, and `peer-left` to the others.
pub(super) async fn leave_room<E: Engine>(
    node: &Node<E>,
    conn: Sid,
    socket: Option<&Socket<E::A>>,
    room: &RoomName,
) -> rooms::Result<(), NotInRoom> {
    let announce = node
        .store
        .leave(conn, room, |left| {
            if let Some(s) = socket {
                node.out.unsubscribe(s, room);
            }
            tracing::debug!(room = %room, peer = %left.id, "left");
            gone(node, room, left, None)
        })
        .await?;
    announce.await;
    Ok(())
}

/// A member is out of `room`: its SFU connection ends and the others get
/// `peer-left` (with `reason`), then `host-changed` when it was the host
/// (sent by the returned future).
pub(super) fn gone<E: Engine>(
    node: &Node<E>,
    room: &RoomName,
    left: Left<Addr<E>>,
    reason: Option<&'static str>,
) -> impl Future<Output = ()> + Send + use<E> {
    let last = left.remaining == 0;
    node.sfu.leave(room, left.id.clone(), last);
    // Scaled out, the room's SFU may be on another node: every node hears
    // it (not awaited: `peer-left` does not wait for it).
    if let Some(link) = node.sfu_link.clone() {
        let msg = SfuIn::Leave {
            room: room.clone(),
            peer: left.id.clone(),
            last,
            from: link.node().to_owned(),
        };
        tokio::spawn(async move {
            if let Err(e) = link.broadcast(&msg).await {
                tracing::debug!("SFU leave not sent to the other nodes: {e}");
            }
        });
    }
    let ev = PeerLeft {
        room: room.clone(),
        id: left.id,
        reason: reason.map(str::to_owned),
    };
    // peer-left first: on one node each is sent as it is made.
    let left_ev = node.out.announce_and(room, left.others_at.clone(), ev, left.remaining);
    let host_ev = left.host.map(|id| {
        tracing::debug!(room = %room, peer = %id, "host changed");
        let ev = HostChanged {
            room: room.clone(),
            id,
        };
        node.out
            .announce_and(room, left.others_at, ev, left.remaining)
    });
    async move {
        left_ev.await;
        if let Some(host_ev) = host_ev {
            host_ev.await;
        }
    }
}

/// A held seat that ended (or was swept): out of the room for good.
pub async fn left_for_good<E: Engine>(node: &Node<E>, room: &RoomName, left: Left<Addr<E>>) {
    gone(node, room, left, None).await;
}
