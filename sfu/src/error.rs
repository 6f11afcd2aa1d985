//! What went wrong inside a room.

use crate::validate::BadSignal;

/// What went wrong inside a room; logged by the room, which keeps running.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    #[error("{what}: {message}")]
    WebRtc { what: &'static str, message: String },
    /// webrtc-rs refused what a peer sent (its SDP or candidate).
    #[error("{what}: {message}")]
    Peer { what: &'static str, message: String },
    /// A peer's description or candidate failed the SFU's own checks.
    #[error("refused: {0}")]
    BadSignal(#[from] BadSignal),
    #[error("no free UDP port in the configured range")]
    NoPort,
    /// The peer's [`PeerAllowance`](crate::PeerAllowance) refused a new connection.
    #[error("no connection allowed for this peer (its limit is reached)")]
    Refused,
    #[error("no such peer in this room")]
    NoPeer,
    #[error("no such published track")]
    NoTrack,
    #[error("the SFU room is busy or gone")]
    Busy,
}

impl SfuError {
    /// For `map_err`: a webrtc-rs error with what was being done.
    pub fn webrtc<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> SfuError {
        move |e| SfuError::WebRtc {
            what,
            message: e.to_string(),
        }
    }

    /// For `map_err`: webrtc-rs refused what a peer sent.
    pub fn peer<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> SfuError {
        move |e| SfuError::Peer {
            what,
            message: e.to_string(),
        }
    }

    /// Whether a peer's input or limits caused it, rather than the
    /// server's state: logged at DEBUG, since a flood of garbage must not
    /// flood the log. (`NoPort` too: the port pool warns once when the
    /// range runs out.)
    pub fn caused_by_peer(&self) -> bool {
        matches!(
            self,
            SfuError::Peer { .. }
                | SfuError::BadSignal(_)
                | SfuError::Refused
                | SfuError::NoPeer
                | SfuError::NoPort
        )
    }
}
