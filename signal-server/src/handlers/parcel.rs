//! Events addressed to one peer, wherever that peer is: its connection, or
//! kept for its held seat until it resumes (PROTOCOL.md version 2).

use protocol::{PeerId, RoomName};

use crate::ack::Failure;
use crate::delivery::{Delivery, Undelivered};
use crate::node::{Engine, Node};
use crate::rooms::{Dest, Parcel, RoomStore};

/// Sends `parcel` to peer `to` of `room`, found at `dest`. A peer whose
/// socket went away a moment ago is tried once more: its seat may be held
/// by now (the parcel is kept) or resumed elsewhere.
pub(super) async fn send<E: Engine>(
    node: &Node<E>,
    room: &RoomName,
    to: &PeerId,
    dest: Dest<<E::Store as RoomStore>::Addr>,
    parcel: Parcel,
) -> Result<(), Failure> {
    let mut dest = dest;
    for attempt in 0..2 {
        let addr = match dest {
            Dest::Live(addr) => addr,
            Dest::Held => match node.store.keep(room, to, parcel.clone()).await? {
                None => return Ok(()),
                Some(addr) => addr,
            },
        };
        let sent = match &parcel {
            Parcel::Signal(ev) => node.out.to_peer(&addr, ev.clone()).await,
            Parcel::Receipt(ev) => node.out.to_peer(&addr, ev.clone()).await,
            Parcel::MuteRequest(ev) => node.out.to_peer(&addr, ev.clone()).await,
        };
        match sent {
            Err(Undelivered::Gone) if attempt == 0 => {
                dest = match node.store.addr_of(room, to).await {
                    Ok(Some(d)) if d != Dest::Live(addr) => d,
                    Ok(_) => return Err(Undelivered::Gone.into()),
                    Err(e) => return Err(e.into()),
                };
            }
            res => return res.map_err(Failure::from),
        }
    }
    Err(Undelivered::Gone.into())
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
