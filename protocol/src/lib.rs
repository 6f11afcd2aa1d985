//! Wire types of the signaling protocol (`PROTOCOL.md`), shared by the
//! server and the WASM client.
//!
//! Every client → server payload has a raw, permissive serde form (what
//! arrives on the wire) and a `validate` step that turns it into a typed,
//! checked value or a [`ValidationError`]. Server and client use the same
//! checks, so they agree on what is valid.
//!
//! No tokio, no axum: this crate compiles to `wasm32-unknown-unknown`.

mod acks;
mod names;
mod payloads;
mod values;

pub use acks::*;
pub use names::{ChatText, DisplayName, Password, ResumeToken, RoomName, ValidationError};
pub use payloads::*;
pub use values::{Mode, Object, PeerId};

/// Parses `v` as `T` and checks it serialises back to `v` exactly.
#[cfg(test)]
fn roundtrip<T>(v: serde_json::Value) -> T
where
    T: serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug + PartialEq,
{
    let t: T = serde_json::from_value(v.clone()).expect("deserializes");
    assert_eq!(serde_json::to_value(&t).expect("serializes"), v);
    t
}

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
    /// Version 2, resume (PROTOCOL.md).
    pub const PEER_RECONNECTING: &str = "peer-reconnecting";
    pub const PEER_RESUMED: &str = "peer-resumed";
    /// Version 2, host controls, raised hands and reactions.
    pub const KICK: &str = "kick";
    pub const KICKED: &str = "kicked";
    pub const LOCK: &str = "lock";
    pub const ROOM_LOCKED: &str = "room-locked";
    pub const MUTE_REQUEST: &str = "mute-request";
    pub const HAND: &str = "hand";
    pub const REACTION: &str = "reaction";
    pub const HOST_CHANGED: &str = "host-changed";
    /// Extension: the size a subscriber shows a peer's video at, for the
    /// SFU's choice of simulcast layer.
    pub const SFU_VIEW: &str = "sfu-view";
    /// Extension: scaled out, the SFU of the room moved to another server;
    /// members connect to it afresh.
    pub const SFU_MOVED: &str = "sfu-moved";
}

/// The `to` / `from` value that addresses the SFU in an SFU room.
pub const SFU_PEER: &str = "sfu";
