//! A socket that is gone leaves every room it was in, or, when its
//! connection was lost rather than closed by its client, keeps its seats
//! for a resume (PROTOCOL.md version 2). Not an event of the protocol: the
//! schedulers run it after a socket's last event, and the node's upkeep
//! retries it for leaves the store could not take.

use protocol::PeerReconnecting;
use socketioxide::socket::{DisconnectReason, Sid, Socket};

use super::leave::leave_room;
use crate::delivery::Delivery;
use crate::node::{Engine, Node};
use crate::rooms::{RoomStore, StoreError};

/// Whether `reason` means the connection was lost (its seats are held for
/// a resume) rather than left: the client's own `disconnect()` leaves, and
/// so does a client that broke the protocol. A server that stops counts as
/// lost: scaled out, its peers resume on another node.
pub fn lost(reason: DisconnectReason) -> bool {
    matches!(
        reason,
        DisconnectReason::TransportClose
            | DisconnectReason::TransportError
            | DisconnectReason::HeartbeatTimeout
            | DisconnectReason::ClosingServer
    )
}

/// After a socket's disconnect: holds its seats (a lost connection, when
/// resume is on) or leaves its rooms, now or later if the store cannot be
/// reached.
pub async fn disconnected<E: Engine>(node: &Node<E>, s: &Socket<E::A>, reason: DisconnectReason) {
    if lost(reason) && !node.state.config.resume_grace.is_zero() {
        node.store.forget(s.id);
        match node.store.hold(s.id).await {
            Ok(held) => {
                for seat in held {
                    node.out.unsubscribe(s, &seat.room);
                    tracing::debug!(room = %seat.room, peer = %seat.id, "held");
                    let ev = PeerReconnecting {
                        room: seat.room.clone(),
                        id: seat.id,
                    };
                    node.out.announce(&seat.room, ev, 1).await;
                }
                return;
            }
            Err(e) => tracing::warn!(sid = %s.id, "seats not held, leaving instead: {e}"),
        }
    }
    if !leave_all(node, s.id, Some(s)).await {
        node.defer_leave(s.id);
    }
}

/// Removes `conn` from all its rooms; `false` if the store could not be
/// reached (some rooms may still hold it).
pub async fn leave_all<E: Engine>(
    node: &Node<E>,
    conn: Sid,
    socket: Option<&Socket<E::A>>,
) -> bool {
    node.store.forget(conn);
    let rooms = match node.store.rooms_of(conn).await {
        Ok(rooms) => rooms,
        Err(e) => {
            tracing::warn!(%conn, "leave deferred: {e}");
            return false;
        }
    };
    let mut complete = true;
    for room in rooms {
        match leave_room(node, conn, socket, &room).await {
            // Already gone (a leave raced with the disconnect).
            Ok(()) | Err(StoreError::Rule(_)) => {}
            Err(StoreError::Unavailable(e)) => {
                tracing::warn!(%conn, "leave deferred: {e}");
                complete = false;
            }
        }
    }
    complete
}
