//! Delivery: how an event reaches a socket, on one node
//! ([`LocalDelivery`]) or on any node of a scaled-out deployment
//! ([`ClusterDelivery`], through socketioxide-redis). The counterpart of
//! the room store: the store says who, delivery gets it there.
//!
//! Every method sends what it can before it returns, and the local one
//! sends everything: called inside a store's critical section, its
//! deliveries are ordered with the room's state. The returned future
//! finishes what needs I/O (publishing to the other nodes); it borrows
//! nothing, so it can leave the critical section.

mod cluster;
mod local;

use std::fmt::Debug;
use std::future::Future;

use protocol::{Event, RoomName};
use socketioxide::adapter::Adapter;
use socketioxide::socket::Socket;

pub use cluster::ClusterDelivery;
pub use local::LocalDelivery;

/// Why an event for one peer was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum Undelivered {
    /// The peer's socket is gone (its `peer-left` is on its way).
    #[error("peer has just left")]
    Gone,
    /// The peer's node cannot be reached.
    #[error("cannot reach the peer's server ({0}); try again shortly")]
    Unreachable(String),
}

/// Gets events to sockets.
pub trait Delivery: Send + Sync + 'static {
    type A: Adapter;
    /// Where a socket is: what the room store hands back for a member.
    type Addr: Clone + Debug + PartialEq + Send + Sync + 'static;

    /// A new socket (before any of its events).
    fn attach(&self, s: &Socket<Self::A>);

    /// From now on `s` gets what is sent to `room`.
    fn subscribe(&self, s: &Socket<Self::A>, room: &RoomName);

    fn unsubscribe(&self, s: &Socket<Self::A>, room: &RoomName);

    /// The socket at `to`, on any node, no longer gets what is sent to
    /// `room` (its seat was taken back by a resume from another socket).
    fn unsubscribe_addr(&self, to: &Self::Addr, room: &RoomName);

    /// Whether the socket at `to` is on this node and gone (disconnected a
    /// moment ago); `false` for a socket on another node.
    fn gone(&self, to: &Self::Addr) -> bool;

    /// Sends `ev` to one socket.
    fn to_peer<T: Event>(
        &self,
        to: &Self::Addr,
        ev: T,
    ) -> impl Future<Output = Result<(), Undelivered>> + Send + use<Self, T>;

    /// Sends `ev` to everyone in `room` but `from`; `recipients` is how
    /// many that is (for the counters; 0 sends nothing).
    fn to_room<T: Event>(
        &self,
        from: &Socket<Self::A>,
        room: &RoomName,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<Self, T>;

    /// [`Delivery::to_room`], and to each of `also` (members whose sockets
    /// may not have entered the room's broadcast group yet) wherever they
    /// are; each socket gets it once.
    fn to_room_and<T: Event>(
        &self,
        from: &Socket<Self::A>,
        room: &RoomName,
        also: Vec<Self::Addr>,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<Self, T>;

    /// Sends `ev` to everyone in `room`, on behalf of a socket that is not
    /// (or no longer) in it.
    fn announce<T: Event>(
        &self,
        room: &RoomName,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<Self, T>;

    /// [`Delivery::announce`], and to each of `also` as in
    /// [`Delivery::to_room_and`].
    fn announce_and<T: Event>(
        &self,
        room: &RoomName,
        also: Vec<Self::Addr>,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<Self, T>;
}
