//! Events addressed to one peer, wherever that peer is: its connection, or
//! kept for its held seat until it resumes (PROTOCOL.md version 2).

use protocol::{PeerId, RoomName};

use crate::ack::Failure;
use crate::delivery::{Delivery, Undelivered};
use crate::node::{Engine, Node};
use crate::rooms::{Dest, Keep, Parcel, RoomStore};

/// Sends `parcel` to peer `to` of `room`, found at `dest`, without a copy.
/// A peer whose socket on this node went away a moment ago is looked up
/// once more: its seat may be held by now (the parcel is kept) or taken
/// back elsewhere.
pub(super) async fn send<E: Engine>(
    node: &Node<E>,
    room: &RoomName,
    to: &PeerId,
    dest: Dest<<E::Store as RoomStore>::Addr>,
    parcel: Parcel,
) -> Result<(), Failure> {
    let dest = match dest {
        Dest::Live(addr) if node.out.gone(&addr) => node
            .store
            .addr_of(room, to)
            .await?
            .filter(|d| !matches!(d, Dest::Live(a) if node.out.gone(a)))
            .ok_or(Undelivered::Gone)?,
        dest => dest,
    };
    let (addr, parcel) = match dest {
        Dest::Live(addr) => (addr, parcel),
        Dest::Held => match node.store.keep(room, to, parcel).await? {
            Keep::Kept => return Ok(()),
            Keep::Live(addr, parcel) => (addr, parcel),
        },
    };
    let sent = match parcel {
        Parcel::Signal(ev) => node.out.to_peer(&addr, ev).await,
        Parcel::Receipt(ev) => node.out.to_peer(&addr, ev).await,
        Parcel::MuteRequest(ev) => node.out.to_peer(&addr, ev).await,
    };
    Ok(sent?)
}

/// Sends `parcel` on socket `s` (the joiner taking back its seat).
pub(super) fn emit<A: socketioxide::adapter::Adapter>(
    node_metrics: &crate::metrics::Metrics,
    s: &socketioxide::socket::Socket<A>,
    parcel: Parcel,
) {
    use protocol::Event;
    let res = match &parcel {
        Parcel::Signal(ev) => s.emit(protocol::SignalEvent::NAME, ev),
        Parcel::Receipt(ev) => s.emit(protocol::ReceiptEvent::NAME, ev),
        Parcel::MuteRequest(ev) => s.emit(protocol::MuteRequestEvent::NAME, ev),
    };
    match res {
        Ok(()) => node_metrics.delivered(1),
        Err(e) => {
            node_metrics.dropped(1);
            tracing::warn!("kept event not delivered: {e}");
        }
    }
}
