//! The selective forwarding unit: each browser sends its media once to the
//! server, which forwards it to every other peer of the room.
//!
//! It knows nothing of socket.io: the signaling server hands it the
//! PROTOCOL.md `signal` data a peer addressed to `"sfu"` ([`RoomHandle::try_signal`],
//! after the checks of [`validate_offer`] and its kin) and relays what it
//! emits back as `signal` from `"sfu"`. One [`Sfu`] per server starts the
//! rooms, which share its [`PortPool`].
//!
//! Tested in-process with webrtc-rs peers (`tests/room.rs`); signal-server
//! runs it with `--sfu`. The API facts and pitfalls behind it:
//! docs/sfu-design.md.

mod config;
pub mod engine;
mod error;
mod host;
mod keyframe;
mod peer;
mod ports;
mod room;
mod validate;

pub use config::{SfuConfig, SfuEngine};
pub use error::SfuError;
pub use host::Sfu;
pub use keyframe::{ReadFilter, is_keyframe_request, keyframe_request_forwarder};
pub use peer::{
    Applied, PcOptions, Transports, apply_as_polite, build_pc, candidate_from_wire,
    candidate_to_wire,
};
pub use ports::{PortLease, PortPool};
/// A peer as the signaling server names it, in every map and message of the SFU.
pub use protocol::PeerId;
pub use room::{
    MAX_TRACKS_PER_PEER, PeerAllowance, PeerMetrics, PeerSnapshot, RoomHandle, RoomMetrics,
    RoomTotals, SIGNAL_QUEUE, SINGLE_LAYER,
};
pub use rtc::interceptor::Registry;
pub use validate::{
    BadSignal, MAX_MEDIA_SECTIONS, check_description, validate_answer, validate_candidate,
    validate_offer,
};
