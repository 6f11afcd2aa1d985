//! One node: each event runs to its end on the socket's read loop, in the
//! order it arrived. The engine's futures are all ready at once
//! ([`Immediate`]), so a handler completes in one poll: no task, no queue,
//! no allocation.

use std::sync::Arc;

use socketioxide::handler::{DisconnectHandler, MessageHandler, Value};
use socketioxide::socket::{DisconnectReason, Socket};

use super::gate::{Gate, Incoming};
use super::{Counted, Direct};
use crate::handlers::{self, Ctx};
use crate::immediate;
use crate::node::{Immediate, Node};

/// Installs a socket's handlers.
pub fn attach<E: Immediate>(node: &Arc<Node<E>>, s: &Arc<Socket<E::A>>) {
    let gate = Gate::new(&node.state.config.limits);
    s.on_fallback(Events {
        node: node.clone(),
        gate: gate.clone(),
    });
    let on_disconnect = OnDisconnect {
        node: node.clone(),
        gate,
    };
    s.on_disconnect(Counted::new(&node.state, s, on_disconnect));
}

struct Events<E: Immediate> {
    node: Arc<Node<E>>,
    gate: Arc<Gate>,
}

impl<E: Immediate> MessageHandler<E::A, Direct> for Events<E> {
    fn call(&self, s: Arc<Socket<E::A>>, v: Value, ack_id: Option<i64>) {
        let node = &self.node;
        let metrics = &node.state.metrics;
        let mut ev = Incoming::read(metrics, &s, v, ack_id);
        // Held while the event runs: the disconnect waits for it.
        let mut gate = self.gate.lock();
        let req = gate.admit(&node.state.config.limits, &s, &mut ev);
        let ack = ev.ack;
        let req = match req {
            Ok(req) => req,
            Err(f) => {
                let _ = ack.send(metrics, Err(f));
                return;
            }
        };
        let cx = Ctx { node, socket: &s };
        if immediate::now(handlers::dispatch(&cx, req, ack)).is_none() {
            // Its ack answered `internal` as it was dropped.
            tracing::error!(sid = %s.id, "an event did not complete at once on one node");
        }
        drop(gate);
    }
}

/// A disconnect leaves every room the socket was in, at once.
struct OnDisconnect<E: Immediate> {
    node: Arc<Node<E>>,
    gate: Arc<Gate>,
}

impl<E: Immediate> DisconnectHandler<E::A, Direct> for OnDisconnect<E> {
    fn call_with_defer(
        &self,
        s: Arc<Socket<E::A>>,
        reason: DisconnectReason,
        defer: fn(Arc<Socket<E::A>>),
    ) {
        let mut gate = self.gate.lock();
        gate.close();
        if immediate::now(handlers::disconnected(&self.node, &s, reason)).is_none() {
            tracing::error!(sid = %s.id, "a disconnect did not complete at once on one node");
        }
        drop(gate);
        self.node.state.metrics.disconnected();
        defer(s);
    }
}
