//! One node of the server: the room store and the delivery it runs on (an
//! [`Engine`]: one node in memory, or many on Redis), the SFU rooms it
//! hosts, and what it shares with HTTP.

use std::sync::{Arc, Mutex, PoisonError};

use socketioxide::adapter::Adapter;
use socketioxide::socket::{Sid, Socket};

use crate::delivery::Delivery;
use crate::metrics::{RedisSnapshot, SfuRoomSnapshot};
use crate::redis_driver::RedisHealth;
use crate::rooms::RoomStore;
use crate::sfu_link::SfuLink;
use crate::sfu_rooms::SfuRooms;
use crate::state::AppState;

/// Where room state lives and how events get to sockets; chosen once, when
/// the app is built.
pub trait Engine: Sized + Send + Sync + 'static {
    type A: Adapter;
    type Store: RoomStore;
    type Out: Delivery<A = Self::A, Addr = <Self::Store as RoomStore>::Addr>;

    /// Installs a new socket's event and disconnect handlers: this is where
    /// an engine picks how its events are scheduled.
    fn attach(node: &Arc<Node<Self>>, s: &Arc<Socket<Self::A>>);
}

/// Marks engines whose store and delivery futures are all ready when
/// created: their events can run inline on the socket's read loop.
pub trait Immediate: Engine {}

pub struct Node<E: Engine> {
    pub state: Arc<AppState>,
    pub store: E::Store,
    pub out: E::Out,
    pub sfu: SfuRooms,
    /// Scaled out: the way to the other nodes' SFUs.
    pub sfu_link: Option<SfuLink>,
    /// Scaled out: Redis's health, for `/healthz` and `/metrics`.
    pub redis: Option<Arc<RedisHealth>>,
    /// Connections whose leave could not be stored (Redis down); retried
    /// by the node's upkeep.
    deferred: Mutex<Vec<Sid>>,
}

impl<E: Engine> Node<E> {
    /// `sfu`: the SFU this node hosts rooms on, if any; `sfu_link`: scaled
    /// out, the way to the other nodes'.
    pub fn new(
        state: Arc<AppState>,
        store: E::Store,
        out: E::Out,
        sfu: Option<sfu::Sfu>,
        sfu_link: Option<SfuLink>,
        redis: Option<Arc<RedisHealth>>,
    ) -> Self {
        let sfu = SfuRooms::new(sfu, sfu_link.is_some());
        Self {
            state,
            store,
            out,
            sfu,
            sfu_link,
            redis,
            deferred: Mutex::new(Vec::new()),
        }
    }

    /// Remembers a connection whose leave must be retried.
    pub fn defer_leave(&self, conn: Sid) {
        self.deferred
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }

    /// The connections whose leave waits for a retry.
    pub fn take_deferred(&self) -> Vec<Sid> {
        std::mem::take(&mut *self.deferred.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What HTTP reads of a node, whatever its engine.
pub trait NodeStats: Send + Sync {
    fn state(&self) -> &AppState;
    /// Rooms and memberships (on one node: all; scaled out: this node's).
    fn room_counts(&self) -> (usize, usize);
    /// Seats held for a resume.
    fn held_seats(&self) -> usize;
    /// `None` on a single node.
    fn redis(&self) -> Option<RedisSnapshot>;
    fn sfu(&self) -> Vec<SfuRoomSnapshot>;
    /// Whether SFU rooms can be made (here or, scaled out, on some node).
    fn sfu_enabled(&self) -> bool;
    /// Whether SFU rooms take simulcast (the shard engine, on every SFU node).
    fn sfu_simulcast(&self) -> bool;
    /// Whether this node's own SFU forwards simulcast (what its `/metrics` tally).
    fn sfu_tallied(&self) -> bool;
}

impl<E: Engine> NodeStats for Node<E> {
    fn state(&self) -> &AppState {
        &self.state
    }

    fn room_counts(&self) -> (usize, usize) {
        self.store.counts()
    }

    fn held_seats(&self) -> usize {
        self.store.held_count()
    }

    fn redis(&self) -> Option<RedisSnapshot> {
        use std::sync::atomic::Ordering::Relaxed;
        self.redis.as_ref().map(|h| RedisSnapshot {
            up: h.is_healthy(),
            connects: h.connects.load(Relaxed),
            errors: h.errors.load(Relaxed),
        })
    }

    fn sfu(&self) -> Vec<SfuRoomSnapshot> {
        self.sfu.snapshot()
    }

    fn sfu_enabled(&self) -> bool {
        self.sfu.enabled()
    }
    fn sfu_simulcast(&self) -> bool {
        self.sfu.simulcast()
    }
    fn sfu_tallied(&self) -> bool {
        self.sfu.here() && self.sfu.tallies()
    }
}
