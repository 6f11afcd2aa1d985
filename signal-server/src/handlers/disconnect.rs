//! A socket that is gone leaves every room it was in. Not an event of the
//! protocol: the schedulers run it after a socket's last event, and the
//! node's upkeep retries it for leaves the store could not take.

use socketioxide::socket::{Sid, Socket};

use super::leave::leave_room;
use crate::node::{Engine, Node};
use crate::rooms::{RoomStore, StoreError};

/// After a socket's disconnect: leaves its rooms now, or later if the store
/// cannot be reached.
pub async fn disconnected<E: Engine>(node: &Node<E>, s: &Socket<E::A>) {
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
