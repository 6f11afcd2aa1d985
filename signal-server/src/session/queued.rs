//! Scaled out: the room state is in Redis, so handlers wait on it. Each
//! socket gets one task that runs its events in arrival order (an ICE
//! candidate must not overtake its offer); a socket never waits for
//! another. The read loop admits an event and queues it; the disconnect
//! queues the leave last, so it runs after every admitted event.

use std::sync::Arc;

use protocol::ErrorCode;
use socketioxide::handler::{DisconnectHandler, MessageHandler, Value};
use socketioxide::socket::{DisconnectReason, Socket};
use tokio::sync::mpsc;

use super::gate::{Gate, Incoming};
use super::{Counted, Direct};
use crate::ack::{Ack, Failure};
use crate::handlers::{self, Ctx, Request};
use crate::node::{Engine, Node};

/// Events of one socket waiting for the store; more are answered
/// `rate_limited`.
const QUEUE: usize = 256;

enum Job<E: Engine> {
    Event {
        s: Arc<Socket<E::A>>,
        req: Request,
        ack: Ack<E::A>,
    },
    Disconnect(Arc<Socket<E::A>>, DisconnectReason),
}

/// Installs a socket's handlers and starts its task.
pub fn attach<E: Engine>(node: &Arc<Node<E>>, s: &Arc<Socket<E::A>>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(worker(node.clone(), rx));
    let gate = Gate::new(&node.state.config.limits);
    s.on_fallback(Events {
        node: node.clone(),
        gate: gate.clone(),
        tx: tx.clone(),
    });
    s.on_disconnect(Counted::new(&node.state, s, OnDisconnect { gate, tx }));
}

/// Admits on the socket's read loop, then queues for the socket's task.
struct Events<E: Engine> {
    node: Arc<Node<E>>,
    gate: Arc<Gate>,
    tx: mpsc::Sender<Job<E>>,
}

impl<E: Engine> MessageHandler<E::A, Direct> for Events<E> {
    fn call(&self, s: Arc<Socket<E::A>>, v: Value, ack_id: Option<i64>) {
        let state = &self.node.state;
        let mut ev = Incoming::read(&state.metrics, &s, v, ack_id);
        // Held while queueing: the disconnect's job comes after this one.
        let mut gate = self.gate.lock();
        let req = gate.admit(&state.config.limits, &s, &mut ev);
        let ack = ev.ack;
        let req = match req {
            Ok(req) => req,
            Err(f) => {
                let _ = ack.send(&state.metrics, Err(f));
                return;
            }
        };
        let refused = match self.tx.try_send(Job::Event { s, req, ack }) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(job)) => (
                job,
                Failure::new(
                    ErrorCode::RateLimited,
                    format!("{QUEUE} events already wait for the room state; slow down"),
                ),
            ),
            Err(mpsc::error::TrySendError::Closed(job)) => (
                job,
                Failure::new(ErrorCode::Internal, "this connection is closing"),
            ),
        };
        drop(gate);
        if let (Job::Event { ack, .. }, f) = refused {
            let _ = ack.send(&state.metrics, Err(f));
        }
    }
}

/// Closes the gate and queues the leave after the socket's pending events.
struct OnDisconnect<E: Engine> {
    gate: Arc<Gate>,
    tx: mpsc::Sender<Job<E>>,
}

impl<E: Engine> DisconnectHandler<E::A, Direct> for OnDisconnect<E> {
    fn call_with_defer(
        &self,
        s: Arc<Socket<E::A>>,
        reason: DisconnectReason,
        defer: fn(Arc<Socket<E::A>>),
    ) {
        let mut gate = self.gate.lock();
        gate.close();
        let job = Job::Disconnect(s.clone(), reason);
        if let Err(mpsc::error::TrySendError::Full(job)) = self.tx.try_send(job) {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(job).await;
            });
        }
        drop(gate);
        defer(s);
    }
}

/// Runs one socket's events in order; ends after its disconnect.
async fn worker<E: Engine>(node: Arc<Node<E>>, mut rx: mpsc::Receiver<Job<E>>) {
    while let Some(job) = rx.recv().await {
        match job {
            Job::Event { s, req, ack } => {
                let cx = Ctx {
                    node: &node,
                    socket: &s,
                };
                let _ = handlers::dispatch(&cx, req, ack).await;
            }
            Job::Disconnect(s, reason) => {
                handlers::disconnected(&node, &s, reason).await;
                node.state.metrics.disconnected();
                return;
            }
        }
    }
}
