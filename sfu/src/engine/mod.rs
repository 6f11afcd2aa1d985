//! The synchronous media core of issue 19 (docs/sfu-engine.md), built on
//! the sans-IO `rtc` crate and the default engine of SFU rooms: one
//! [`Shard`] (many connections on one UDP socket, and ICE-TCP on one TCP
//! port, forwarding in the pass that reads), its rooms ([`ShardRooms`]),
//! the simulcast layer switch ([`layers`]) and the loss that caps a
//! subscriber's layer (`congestion`).

mod congestion;
pub mod layers;
mod rooms;
mod shard;
mod stun;
mod tcp;
mod udp_peer;

pub use rooms::{ShardRooms, Waker};
pub use shard::{ConnId, Event, LAYER_IDLE, Opened, PLI_THROTTLE, Shard, ShardStats, Source};
pub use udp_peer::{UdpPeer, VP8, connection_at, payload_type, video_track};
