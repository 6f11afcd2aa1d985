//! The synchronous media core of issue 19 (docs/sfu-engine.md), built on
//! the sans-IO `rtc` crate: so far one [`Shard`] (many connections on one
//! UDP socket, forwarding in the pass that reads) and the simulcast layer
//! switch ([`layers`]) it will use. Rooms still run on the
//! `webrtc` engine (`room/`) until the shard is wired in.

mod congestion;
pub mod layers;
mod rooms;
mod shard;
mod stun;
mod udp_peer;

pub use rooms::{ShardRooms, Waker};
pub use shard::{ConnId, Event, LAYER_IDLE, Opened, PLI_THROTTLE, Shard, ShardStats, Source};
pub use udp_peer::{UdpPeer, VP8, connection_at, payload_type, video_track};
