//! The event handlers, each written once against the two seams (room
//! state: [`crate::rooms`]; delivery: [`crate::delivery`]), for one node and
//! for many. One file per event; a handler answers its ack exactly once
//! (it returns the [`Answered`] proof).
//!
//! [`events!`] below is THE list of client → server events: the request
//! enum, the metrics labels, the "expected one of …" error text and the
//! dispatch all come from it. Adding an event: its payload type (with its
//! name, in `protocol`), its handler file here, its line in the list, and a
//! test (docs/architecture.md).

#[macro_use]
mod list;
mod disconnect;
mod failures;
mod parcel;
mod sfu_remote;

use std::sync::Arc;

use socketioxide::socket::{Sid, Socket};

use crate::ack::{Ack, Answered, Failure, Reply};
use crate::node::{Engine, Node};

pub use disconnect::{disconnected, leave_all};
pub use leave::left_for_good;
pub use sfu_remote::{left_behind, moved as sfu_moved, serve_sfu_inbox};

events! {
    Join => join::handle(protocol::JoinRequest, ack),
    Leave => leave::handle(protocol::LeaveRequest),
    Signal => signal::handle(protocol::SignalRequest),
    Chat => chat::handle(protocol::ChatRequest),
    Typing => typing::handle(protocol::TypingRequest),
    MediaState => media_state::handle(protocol::MediaStateRequest),
    ChatReceipt => receipt::handle(protocol::ReceiptRequest),
    Ping => ping::handle(protocol::PingRequest),
    Reaction => reaction::handle(protocol::ReactionRequest),
    Kick => kick::handle(protocol::KickRequest),
    Lock => lock::handle(protocol::LockRequest),
    Mute => mute_request::handle(protocol::MuteRequestRequest),
    Hand => hand::handle(protocol::HandRequest),
    View => view::handle(protocol::ViewRequest),
}

/// What a handler works with: the node and the sending socket.
pub struct Ctx<'a, E: Engine> {
    pub node: &'a Arc<Node<E>>,
    pub socket: &'a Arc<Socket<E::A>>,
}

impl<E: Engine> Ctx<'_, E> {
    /// The sender's connection.
    pub fn conn(&self) -> Sid {
        self.socket.id
    }

    /// The sender's client address and its per-address counters (every
    /// session has one, from its handshake).
    pub fn client(&self) -> Option<&Arc<crate::conn_limit::Slot>> {
        self.socket
            .req_parts()
            .extensions
            .get::<Arc<crate::conn_limit::Slot>>()
    }

    /// Answers the event.
    pub fn answer(&self, ack: Ack<E::A>, result: Result<Reply, Failure>) -> Answered {
        ack.send(&self.node.state.metrics, result)
    }
}

/// Milliseconds since the Unix epoch (chat timestamps).
fn now_millis() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
