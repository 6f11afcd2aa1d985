//! Delivery on one node: straight to the sockets of the local adapter.
//! Everything is sent before a method returns; the futures are ready.

use std::future::{Future, ready};
use std::sync::Arc;

use protocol::{Event, RoomName};
use socketioxide::adapter::LocalAdapter;
use socketioxide::socket::{Sid, Socket};
use socketioxide::{BroadcastError, SocketIo};

use super::{Delivery, Undelivered};
use crate::immediate;
use crate::state::AppState;

pub struct LocalDelivery {
    io: SocketIo<LocalAdapter>,
    state: Arc<AppState>,
}

impl LocalDelivery {
    pub fn new(io: SocketIo<LocalAdapter>, state: Arc<AppState>) -> Self {
        Self { io, state }
    }

    /// Runs a broadcast of the local adapter, which completes at once.
    fn broadcast(
        &self,
        event: &'static str,
        fut: impl Future<Output = Result<(), BroadcastError>>,
    ) {
        let dropped = match immediate::now(fut) {
            Some(Ok(())) => 0,
            Some(Err(e)) => {
                tracing::warn!(event, "broadcast partly failed: {e}");
                match &e {
                    BroadcastError::Socket(errs) => errs.len().max(1),
                    _ => 1,
                }
            }
            None => {
                tracing::error!(event, "a local broadcast did not complete at once");
                1
            }
        };
        if dropped > 0 {
            self.state.metrics.dropped(dropped as u64);
        }
    }
}

impl Delivery for LocalDelivery {
    type A = LocalAdapter;
    type Addr = Sid;

    fn attach(&self, _: &Socket<LocalAdapter>) {}

    fn subscribe(&self, s: &Socket<LocalAdapter>, room: &RoomName) {
        s.join(room.as_str().to_owned());
    }

    fn unsubscribe(&self, s: &Socket<LocalAdapter>, room: &RoomName) {
        s.leave(room.as_str().to_owned());
    }

    fn gone(&self, to: &Sid) -> bool {
        self.io.get_socket(*to).is_none()
    }

    fn unsubscribe_addr(&self, to: &Sid, room: &RoomName) {
        if let Some(s) = self.io.get_socket(*to) {
            s.leave(room.as_str().to_owned());
        }
    }

    fn to_peer<T: Event>(
        &self,
        to: &Sid,
        ev: T,
    ) -> impl Future<Output = Result<(), Undelivered>> + Send + use<T> {
        let metrics = &self.state.metrics;
        let res = match self.io.get_socket(*to) {
            Some(peer) => {
                match peer.emit(T::NAME, &ev) {
                    Ok(()) => metrics.delivered(1),
                    Err(e) => {
                        metrics.dropped(1);
                        tracing::warn!(event = T::NAME, "not delivered: {e}");
                    }
                }
                Ok(())
            }
            None => Err(Undelivered::Gone),
        };
        ready(res)
    }

    fn to_room<T: Event>(
        &self,
        from: &Socket<LocalAdapter>,
        room: &RoomName,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<T> {
        if recipients > 0 {
            self.state.metrics.delivered(recipients as u64);
            let op = from.to(room.as_str().to_owned());
            self.broadcast(T::NAME, op.emit(T::NAME, &ev));
        }
        ready(())
    }

    /// On one node a member is in the room's group from inside the lock
    /// its join took, before anyone else's join: the room reaches all.
    fn to_room_and<T: Event>(
        &self,
        from: &Socket<LocalAdapter>,
        room: &RoomName,
        _also: Vec<Sid>,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<T> {
        self.to_room(from, room, ev, recipients)
    }

    fn announce<T: Event>(
        &self,
        room: &RoomName,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<T> {
        if recipients > 0 {
            self.state.metrics.delivered(recipients as u64);
            let op = self.io.to(room.as_str().to_owned());
            self.broadcast(T::NAME, op.emit(T::NAME, &ev));
        }
        ready(())
    }

    fn announce_and<T: Event>(
        &self,
        room: &RoomName,
        _also: Vec<Sid>,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<T> {
        self.announce(room, ev, recipients)
    }
}
