//! Delivery across nodes, through socketioxide-redis: a broadcast is
//! published to every node, each delivers to its own sockets. Each socket
//! also joins a socket.io room named after itself ([`conn_room`]), so an
//! event for a peer on another node is a broadcast to that room. (Room names
//! from clients are `[A-Za-z0-9_-]`: they never collide with `conn:…`.)
//!
//! When Redis cannot be reached, a broadcast still reaches this node's own
//! sockets, and an event for a peer on another node fails as
//! [`Undelivered::Unreachable`].

use std::future::Future;
use std::sync::Arc;

use protocol::{Event, RoomName};
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::{Sid, Socket};
use socketioxide::{BroadcastError, SocketIo};

use super::{Delivery, Undelivered};
use crate::rooms::Conn;
use crate::state::AppState;

/// The socket.io room of one connection (on whichever node it is).
fn conn_room(sid: Sid) -> String {
    format!("conn:{sid}")
}

/// The socket.io rooms of these connections.
fn conn_rooms(conns: &[Conn]) -> Vec<String> {
    conns.iter().map(|c| conn_room(c.sid)).collect()
}

pub struct ClusterDelivery<A: Adapter>(Arc<Inner<A>>);

struct Inner<A: Adapter> {
    io: SocketIo<A>,
    /// This node's name in the room store.
    node: Arc<str>,
    state: Arc<AppState>,
}

impl<A: Adapter> ClusterDelivery<A> {
    pub fn new(io: SocketIo<A>, node: Arc<str>, state: Arc<AppState>) -> Self {
        Self(Arc::new(Inner { io, node, state }))
    }
}

impl<A: Adapter> Inner<A> {
    /// Broadcasts on every node; if the adapter cannot publish, this node's
    /// own sockets still get it. `op` makes the operator (the same twice).
    async fn broadcast<T: Event>(
        &self,
        op: impl Fn() -> BroadcastOperators<A>,
        ev: T,
        recipients: usize,
    ) {
        let metrics = &self.state.metrics;
        let res = match op().emit(T::NAME, &ev).await {
            Err(BroadcastError::Adapter(e)) => {
                tracing::warn!(event = T::NAME, "broadcast reached this node only: {e}");
                metrics.dropped(1);
                op().local().emit(T::NAME, &ev).await
            }
            res => res,
        };
        metrics.delivered(recipients as u64);
        if let Err(e) = res {
            tracing::warn!(event = T::NAME, "broadcast partly failed: {e}");
            let n = match &e {
                BroadcastError::Socket(errs) => errs.len().max(1),
                _ => 1,
            };
            metrics.dropped(n as u64);
        }
    }

    /// Emits to a socket of this node.
    fn emit_here<T: Event>(&self, sid: Sid, ev: &T) -> Result<(), Undelivered> {
        let metrics = &self.state.metrics;
        // Disconnected a moment ago: its peer-left is on its way.
        let peer = self.io.get_socket(sid).ok_or(Undelivered::Gone)?;
        match peer.emit(T::NAME, ev) {
            Ok(()) => metrics.delivered(1),
            Err(e) => {
                metrics.dropped(1);
                tracing::warn!(event = T::NAME, "not delivered: {e}");
            }
        }
        Ok(())
    }

    /// Publishes to a socket of another node.
    async fn publish<T: Event>(&self, sid: Sid, ev: T) -> Result<(), Undelivered> {
        let metrics = &self.state.metrics;
        match self.io.to(conn_room(sid)).emit(T::NAME, &ev).await {
            Ok(()) => metrics.delivered(1),
            Err(BroadcastError::Adapter(e)) => return Err(Undelivered::Unreachable(e.to_string())),
            Err(e) => {
                metrics.dropped(1);
                tracing::warn!(event = T::NAME, "not delivered: {e}");
            }
        }
        Ok(())
    }
}

impl<A: Adapter> Delivery for ClusterDelivery<A> {
    type A = A;
    type Addr = Conn;

    fn attach(&self, s: &Socket<A>) {
        s.join(conn_room(s.id));
    }

    fn subscribe(&self, s: &Socket<A>, room: &RoomName) {
        s.join(room.as_str().to_owned());
    }

    fn unsubscribe(&self, s: &Socket<A>, room: &RoomName) {
        s.leave(room.as_str().to_owned());
    }

    fn gone(&self, to: &Conn) -> bool {
        *to.node == *self.0.node && self.0.io.get_socket(to.sid).is_none()
    }

    fn unsubscribe_addr(&self, to: &Conn, room: &RoomName) {
        let room = room.as_str().to_owned();
        if *to.node == *self.0.node {
            if let Some(s) = self.0.io.get_socket(to.sid) {
                s.leave(room);
            }
            return;
        }
        let op = self.0.io.to(conn_room(to.sid)).leave(room);
        tokio::spawn(async move {
            if let Err(e) = op.await {
                tracing::debug!("could not take a replaced socket out of its room: {e}");
            }
        });
    }

    fn to_peer<T: Event>(
        &self,
        to: &Conn,
        ev: T,
    ) -> impl Future<Output = Result<(), Undelivered>> + Send + use<A, T> {
        // A peer on this node gets it now, like on one node.
        let here = (*to.node == *self.0.node).then(|| self.0.emit_here(to.sid, &ev));
        let (inner, sid) = (self.0.clone(), to.sid);
        async move {
            match here {
                Some(done) => done,
                None => inner.publish(sid, ev).await,
            }
        }
    }

    fn to_room<T: Event>(
        &self,
        from: &Socket<A>,
        room: &RoomName,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<A, T> {
        let (inner, room, from) = (self.0.clone(), room.as_str().to_owned(), from.id);
        async move {
            if recipients > 0 {
                let op = || inner.io.to(room.clone()).except(conn_room(from));
                inner.broadcast(op, ev, recipients).await;
            }
        }
    }

    fn to_room_and<T: Event>(
        &self,
        from: &Socket<A>,
        room: &RoomName,
        also: Vec<Conn>,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<A, T> {
        let (inner, room, from) = (self.0.clone(), room.as_str().to_owned(), from.id);
        let also = conn_rooms(&also);
        async move {
            if recipients > 0 {
                let op = || {
                    let to = inner.io.to(room.clone()).to(also.clone());
                    to.except(conn_room(from))
                };
                inner.broadcast(op, ev, recipients).await;
            }
        }
    }

    fn announce<T: Event>(
        &self,
        room: &RoomName,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<A, T> {
        let (inner, room) = (self.0.clone(), room.as_str().to_owned());
        async move {
            if recipients > 0 {
                let op = || inner.io.to(room.clone());
                inner.broadcast(op, ev, recipients).await;
            }
        }
    }

    fn announce_and<T: Event>(
        &self,
        room: &RoomName,
        also: Vec<Conn>,
        ev: T,
        recipients: usize,
    ) -> impl Future<Output = ()> + Send + use<A, T> {
        let (inner, room) = (self.0.clone(), room.as_str().to_owned());
        let also = conn_rooms(&also);
        async move {
            if recipients > 0 {
                let op = || inner.io.to(room.clone()).to(also.clone());
                inner.broadcast(op, ev, recipients).await;
            }
        }
    }
}
