//! The socket.io side of a connection: the connect step, reading each
//! event off the wire, the per-socket gate, and the two ways of scheduling
//! a socket's events ([`inline`] on one node, [`queued`] when the room
//! state is remote). It speaks the wire and decides no room rule: those
//! are the handlers' and the store's.
//!
//! Why not `socket.on(...)` with async closures, as socketioxide's examples
//! do:
//! - socketioxide spawns one task per event for async handlers, so two
//!   events read from one socket may run out of order (an ICE candidate
//!   relayed before its offer). Both schedulers keep a socket's order.
//! - handlers registered in the async connect handler may miss an event
//!   sent right after connecting (the connect packet goes out before the
//!   handler runs). [`Connect`] registers them in the connect
//!   *middleware*, which runs before the connect packet is sent.
//! - a failed `Data<T>` extraction silently skips the handler; here every
//!   payload is parsed by hand and a failure is answered `bad_request`.

mod connect;
mod gate;
pub mod inline;
pub mod queued;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use socketioxide::adapter::Adapter;
use socketioxide::handler::DisconnectHandler;
use socketioxide::socket::{DisconnectReason, Sid, Socket};

pub use connect::Connect;

use crate::state::AppState;

/// Marker for the handler traits' type parameter (socketioxide uses it to
/// tell closure impls apart).
#[doc(hidden)]
pub struct Direct;

/// A disconnect for which reason ends the Engine.IO session (everything but
/// leaving the namespace, after which the same session may connect again).
fn session_gone(reason: DisconnectReason) -> bool {
    !matches!(
        reason,
        DisconnectReason::ClientNSDisconnect | DisconnectReason::ServerNSDisconnect
    )
}

/// Wraps a socket's disconnect handler so `signal_connections`, counted in
/// the connect middleware, is uncounted exactly once. socketioxide can fail
/// a connect after its middleware ran (the session closed meanwhile: `40`
/// right before an unparsable packet, or a transport dropped right after
/// it) and then drops the socket without calling the disconnect handler; the
/// handler is dropped with it, uncalled, and uncounts the socket here — and
/// marks the session closed, as the disconnect handler would have.
/// (Found by tests/js/wirefuzz.test.mjs; docs/fuzzing.md.)
struct Counted<H> {
    inner: H,
    state: Arc<AppState>,
    sid: Sid,
    called: AtomicBool,
}

impl<H> Counted<H> {
    fn new<A: Adapter>(state: &Arc<AppState>, s: &Socket<A>, inner: H) -> Self {
        Self {
            inner,
            state: state.clone(),
            sid: s.id,
            called: AtomicBool::new(false),
        }
    }
}

impl<A: Adapter, H: DisconnectHandler<A, Direct>> DisconnectHandler<A, Direct> for Counted<H> {
    fn call_with_defer(
        &self,
        s: Arc<Socket<A>>,
        reason: DisconnectReason,
        defer: fn(Arc<Socket<A>>),
    ) {
        // The inner handler uncounts the socket (at once, or after its queue).
        self.called.store(true, Ordering::Relaxed);
        if session_gone(reason) {
            // A connect read after this (same session, later in a polling
            // POST) is refused.
            self.state.closed.close(s.id, Instant::now());
        }
        tracing::debug!(sid = %s.id, ?reason, "disconnected");
        self.inner.call_with_defer(s, reason, defer);
    }
}

impl<H> Drop for Counted<H> {
    fn drop(&mut self) {
        if !*self.called.get_mut() {
            self.state.closed.close(self.sid, Instant::now());
            self.state.metrics.disconnected();
        }
    }
}
