//! The two engines a node can run on, and how each schedules its events.

use std::sync::Arc;

use socketioxide::adapter::{Emitter, LocalAdapter};
use socketioxide::socket::Socket;
use socketioxide_redis::CustomRedisAdapter;

use crate::delivery::{ClusterDelivery, LocalDelivery};
use crate::node::{Engine, Immediate, Node};
use crate::redis_driver::ReconnectingDriver;
use crate::rooms::{LocalStore, RedisStore};
use crate::session;

/// One node: rooms in memory, the local adapter; events run inline.
pub struct Single;

impl Engine for Single {
    type A = LocalAdapter;
    type Store = LocalStore;
    type Out = LocalDelivery;

    fn attach(node: &Arc<Node<Self>>, s: &Arc<Socket<LocalAdapter>>) {
        session::inline::attach(node, s);
    }
}

/// The local store's and the local adapter's futures are ready at once.
impl Immediate for Single {}

/// socket.io on Redis, with our reconnecting driver.
pub type RedisAdapter = CustomRedisAdapter<Emitter, ReconnectingDriver>;

/// One node of several: rooms in Redis, relays through socketioxide-redis;
/// each socket's events queued for its own task.
pub struct Scaled;

impl Engine for Scaled {
    type A = RedisAdapter;
    type Store = RedisStore;
    type Out = ClusterDelivery<RedisAdapter>;

    fn attach(node: &Arc<Node<Self>>, s: &Arc<Socket<RedisAdapter>>) {
        session::queued::attach(node, s);
    }
}
