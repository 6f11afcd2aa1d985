//! Wire types of the signaling protocol (`PROTOCOL.md`), shared by the
//! server and the WASM client.
//!
//! Every client → server payload has a raw, permissive serde form (what
//! arrives on the wire) and a `validate` step that turns it into a typed,
//! checked value or a [`ValidationError`]. Server and client use the same
//! checks, so they agree on what is valid.
//!
//! No tokio, no axum: this crate compiles to `wasm32-unknown-unknown`.

mod names;
mod payloads;

pub use names::{ChatText, DisplayName, Password, RoomName, ValidationError};
pub use payloads::*;

/// Socket.IO event names, client → server and server → client.
pub mod events {
    pub const JOIN: &str = "join";
    pub const LEAVE: &str = "leave";
    pub const SIGNAL: &str = "signal";
    pub const CHAT: &str = "chat";
    pub const TYPING: &str = "typing";
    pub const PEER_JOINED: &str = "peer-joined";
    pub const PEER_LEFT: &str = "peer-left";
    /// Extensions (documented in docs/protocol-extensions.md).
    pub const MEDIA_STATE: &str = "media-state";
    pub const CHAT_RECEIPT: &str = "chat-receipt";
    pub const PING: &str = "peer-ping";
}

/// The `to` / `from` value that addresses the SFU in an SFU room.
pub const SFU_PEER: &str = "sfu";
